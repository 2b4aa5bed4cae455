package middleware_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// storyAPI is the audience of the API the apps call.
const storyAPI = "https://api.story.test"

// storyApp is a web app of the interop story: the real middleware, a
// session page, and a page that calls the API with the session's token.
type storyApp struct {
	id      string
	secret  string
	profile storyProfile
	key     *rp.ClientKey // the private_key_jwt key (fapi2)
	srv     *httptest.Server
	client  *rp.Client
	store   *tokenstore.Memory
	created *recordingStore // the sessions the web layer created, with their DPoP keys
	handle  http.Handler
}

// storyProfile is how the story's apps are registered and wired.
type storyProfile struct {
	// method is the registered token_endpoint_auth_method: the one the
	// library must end up using.
	method string
	// fapi2 turns on the OP's FAPI 2.0 profile; the apps are then on
	// rp.FAPI2 with a private_key_jwt key (no secret) and DPoP-bound
	// sessions (WebConfig.DPoP), and the API requires DPoP.
	fapi2 bool
}

func (p storyProfile) name() string {
	if p.fapi2 {
		return "fapi2"
	}
	return p.method
}

func newStoryApp(t *testing.T, id string, p storyProfile) *storyApp {
	a := &storyApp{id: id, secret: id + " s:e%c+r/t", profile: p} // RFC 6749 §2.3.1 encoding on the wire
	if p.fapi2 {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		a.key, a.secret = &rp.ClientKey{Signer: ec}, ""
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.handle.ServeHTTP(w, r) }))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *storyApp) registration(t *testing.T) nodeop.Client {
	c := nodeop.Client{
		ID: a.id, Secret: a.secret, AuthMethod: a.profile.method,
		RedirectURIs: []string{a.srv.URL + "/auth/callback"}, PostLogoutRedirectURIs: []string{a.srv.URL + "/"},
		BackchannelLogoutURI: a.srv.URL + "/auth/backchannel-logout",
	}
	if a.key != nil {
		jwks, err := rp.JWKS(a.key)
		if err != nil {
			t.Fatal(err)
		}
		c.JWKS = jwks
	}
	return c
}

// wire builds the app as a user would: rp.Config without AuthMethod (the
// library's default choice must work with every registration); under FAPI
// 2.0 only the key, the profile and DPoP sessions are set.
func (a *storyApp) wire(t *testing.T, issuer, apiURL string) {
	var err error
	provider, err := rp.Discover(context.Background(), issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rp.Config{
		ClientID: a.id, ClientSecret: a.secret,
		RedirectURL: a.srv.URL + "/auth/callback", PostLogoutRedirectURL: a.srv.URL + "/",
	}
	if a.profile.fapi2 {
		cfg.Key, cfg.Profile = a.key, rp.FAPI2
	}
	a.client, err = provider.Client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.store = tokenstore.NewMemory(tokenstore.MemoryOptions{})
	t.Cleanup(func() { a.store.Close() })
	a.created = &recordingStore{Store: a.store}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client: a.client, Store: a.created, CookieKeys: [][]byte{testKey}, DPoP: a.profile.fapi2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/me", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		tok, err := s.TokenContext(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": s.Claims().Subject, "sid": s.Claims().SessionID, "at": tok.AccessToken, "tt": tok.TokenType})
	})))
	mux.Handle("/call-api", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Get(apiURL + "/api/me")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "home of "+a.id) })
	a.handle = mux
}

// dpopKey is the DPoP key of the app's latest session (WebConfig.DPoP),
// as the web layer sealed it in the session record.
func (a *storyApp) dpopKey(t *testing.T) *dpop.Signer {
	t.Helper()
	a.created.mu.Lock()
	defer a.created.mu.Unlock()
	if len(a.created.created) == 0 {
		t.Fatalf("%s created no session", a.id)
	}
	key, err := dpop.ParseSigner(a.created.created[len(a.created.created)-1].DPoPKey)
	if err != nil {
		t.Fatalf("%s: the session's DPoP key: %v", a.id, err)
	}
	return key
}

// TestInteropStory runs the multi-app story against node-oidc-provider with
// the confidential clients registered for client_secret_basic, and again for
// client_secret_post. The fixture enforces the registered method (as Ory
// Hydra does), and the apps leave the method to the library: login, SSO,
// refresh with rotation, 20 parallel requests making one refresh,
// RP-initiated logout, back-channel logout of every app, re-login, and an
// API accepting the sessions' access tokens.
//
// The fapi2 run is the same story with the OP's FAPI 2.0 Security Profile
// on (issue 15's done-when): the apps on rp.FAPI2 with private_key_jwt
// (an ES256 key each, no secret), PAR, ES256 ID tokens, DPoP-bound
// sessions (WebConfig.DPoP) and an API that requires DPoP.
func TestInteropStory(t *testing.T) {
	for _, p := range []storyProfile{
		{method: rp.AuthClientSecretBasic},
		{method: rp.AuthClientSecretPost},
		{method: rp.AuthPrivateKeyJWT, fapi2: true},
	} {
		t.Run(p.name(), func(t *testing.T) { runInteropStory(t, p) })
	}
}

func runInteropStory(t *testing.T, p storyProfile) {
	const ttl = 2 * time.Second
	method := p.method
	dash, docs := newStoryApp(t, "webc_dashboard", p), newStoryApp(t, "webc_docs", p)
	apiHandler := http.NewServeMux()
	api := httptest.NewServer(apiHandler)
	t.Cleanup(api.Close)
	op := nodeop.Start(t, nodeop.Config{
		FAPI2:               p.fapi2,
		Clients:             []nodeop.Client{dash.registration(t), docs.registration(t)},
		Users:               []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw", Permissions: []string{"docs:read"}}},
		Resource:            &nodeop.Resource{Audience: storyAPI, Scopes: []string{"docs:read"}},
		RotateRefreshTokens: true,
		AccessTokenTTL:      ttl,
	})
	dash.wire(t, op.Issuer, api.URL)
	docs.wire(t, op.Issuer, api.URL)
	verifier, err := dash.client.Provider().AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{storyAPI}, StrictRFC9068: true, Revocations: dash.store})
	if err != nil {
		t.Fatal(err)
	}
	bcfg := bearer.Config{Verifier: verifier, Realm: "story"}
	if p.fapi2 {
		proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dash.store})
		if err != nil {
			t.Fatal(err)
		}
		bcfg.DPoP = &bearer.DPoPConfig{Proofs: proofs, Required: true}
	}
	storyBearer, err := bearer.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	apiHandler.Handle("GET /api/me", storyBearer.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := bearer.ClaimsFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": cl.Subject})
	})))
	br := nodeop.NewBrowser(t, "alice@example.test", "pw")
	me := func(a *storyApp) (int, map[string]string) {
		t.Helper()
		return meJSON(t, br, &realApp{srv: a.srv})
	}
	// pushed counts an app's authorization requests accepted at the PAR
	// endpoint (RFC 9126).
	pushed := func(a *storyApp) int {
		return op.Count(func(ev nodeop.Event) bool {
			return ev.Route == "pushed_authorization_request" && ev.Status == http.StatusCreated && ev.ClientID == a.id
		})
	}
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // each step builds on the previous ones
		}
	}

	var signedIn time.Time
	step("login", func(t *testing.T) {
		signedIn = time.Now()
		if final, resp, err := br.Navigate(dash.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 || final.Path != "/me" {
			t.Fatalf("%v %v", err, final)
		}
		if br.LoginForms() != 1 {
			t.Fatalf("%d login forms", br.LoginForms())
		}
		// The secret methods are left to the library, which confirms the
		// registered one; the FAPI 2.0 apps configure their key, so the
		// method comes from the config and the code exchange the OP
		// accepted is the proof.
		if a := dash.client.ClientAuth(); a.Method != method || (!p.fapi2 && !a.Confirmed) || (p.fapi2 && a.Source != rp.AuthFromConfig) {
			t.Fatalf("client authentication %+v, want the registered %s, confirmed", a, method)
		}
		if p.fapi2 {
			// FAPI 2.0: the authorization request was pushed (PAR), and
			// the session's tokens are bound to its DPoP key.
			if n := pushed(dash); n != 1 {
				t.Fatalf("%d pushed authorization requests by %s, want 1", n, dash.id)
			}
			if _, m := me(dash); m["tt"] != "DPoP" {
				t.Fatalf("token_type %q, want DPoP", m["tt"])
			}
			// The OP signs ID tokens with ES256 under FAPI 2.0: the web
			// layer verified one.
			dash.created.mu.Lock()
			idToken := dash.created.created[0].IDToken
			dash.created.mu.Unlock()
			if hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(idToken, ".")[0]); !strings.Contains(string(hdr), `"alg":"ES256"`) {
				t.Fatalf("ID token header %s, want ES256", hdr)
			}
		}
	})
	step("SSO", func(t *testing.T) {
		if _, resp, err := br.Navigate(docs.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v", err)
		}
		if br.LoginForms() != 1 {
			t.Fatal("docs showed a login form: no SSO")
		}
		_, a := me(dash)
		_, b := me(docs)
		if a["sub"] != "usr_alice" || b["sub"] != "usr_alice" || a["sid"] == "" {
			t.Fatalf("dashboard %v, docs %v", a, b)
		}
		if p.fapi2 {
			if n := pushed(docs); n != 1 || b["tt"] != "DPoP" {
				t.Fatalf("docs: %d pushed authorization requests, token_type %q; want 1, DPoP", n, b["tt"])
			}
		}
	})
	step("API", func(t *testing.T) {
		resp, err := br.Client.Get(dash.srv.URL + "/call-api")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("API: %d %s", resp.StatusCode, body)
		}
		var got map[string]string
		_ = json.Unmarshal(body, &got)
		if got["sub"] != "usr_alice" {
			t.Fatalf("API saw %v", got)
		}
	})
	step("refresh with rotation", func(t *testing.T) {
		last := signedIn
		_, prev := me(dash)
		for round := range 2 { // the second refresh proves the rotated token was kept
			time.Sleep(time.Until(last.Add(ttl + 200*time.Millisecond)))
			before := op.TokenRequests("refresh_token")
			last = time.Now()
			code, next := me(dash)
			if code != 200 || op.TokenRequests("refresh_token")-before != 1 || next["at"] == prev["at"] || next["sub"] != "usr_alice" || next["tt"] != prev["tt"] {
				t.Fatalf("round %d: %d, %d refreshes, new token %v, token_type %q (was %q)", round, code, op.TokenRequests("refresh_token")-before, next["at"] != prev["at"], next["tt"], prev["tt"])
			}
			prev = next
		}
		if n := op.Count(func(ev nodeop.Event) bool { return ev.Detail == "refresh token already used" }); n != 0 {
			t.Fatalf("a rotated-out refresh token was sent %d times", n)
		}
	})
	step("20 parallel requests, one refresh", func(t *testing.T) {
		_, first := me(docs)
		time.Sleep(ttl + 200*time.Millisecond)
		before := op.TokenRequests("refresh_token")
		var wg sync.WaitGroup
		var ok atomic.Int32
		tokens := sync.Map{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, m := meJSON(t, br, &realApp{srv: docs.srv})
				if code == 200 && m["at"] != first["at"] {
					ok.Add(1)
					tokens.Store(m["at"], true)
				}
			}()
		}
		wg.Wait()
		distinct := 0
		tokens.Range(func(any, any) bool { distinct++; return true })
		if n := op.TokenRequests("refresh_token") - before; n != 1 || ok.Load() != 20 || distinct != 1 {
			t.Fatalf("%d refreshes at the OP, %d/20 served, %d distinct tokens", n, ok.Load(), distinct)
		}
	})
	// callAPI calls the API with the dashboard session's access token as
	// its own client would: a bearer token, or (fapi2) the DPoP scheme with
	// a proof by the session's key.
	callAPI := func(t *testing.T, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if p.fapi2 {
			key := dash.dpopKey(t)
			proof, err := key.Proof(req.Method, req.URL.String(), token, "")
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "DPoP "+token)
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	step("RP-initiated logout and back-channel logout of every app", func(t *testing.T) {
		_, m := me(dash)
		oldToken := m["at"]
		if code := callAPI(t, oldToken); code != http.StatusOK {
			t.Fatalf("API with the session's token before logout: %d", code)
		}
		final, _, err := br.PostForm(dash.srv.URL+"/auth/logout", nil, nil)
		if err != nil || final.Path != "/" || final.Host != mustHost(dash.srv.URL) {
			t.Fatalf("logout: %v %v", err, final)
		}
		delivered := map[string]bool{}
		for _, ev := range op.BackchannelLogouts() {
			delivered[ev.ClientID] = ev.OK
		}
		if !delivered[dash.id] || !delivered[docs.id] {
			t.Fatalf("back-channel deliveries %v, want both apps", delivered)
		}
		for _, a := range []*storyApp{dash, docs} {
			if code, _ := me(a); code != http.StatusUnauthorized {
				t.Fatalf("%s after logout: %d", a.id, code)
			}
		}
		// The API consults the dashboard's store: the logged-out session's
		// access token is refused before it expires.
		if code := callAPI(t, oldToken); code != http.StatusUnauthorized {
			t.Fatalf("API with a logged-out session's token: %d", code)
		}
	})
	step("re-login", func(t *testing.T) {
		if _, resp, err := br.Navigate(docs.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 || br.LoginForms() != 2 {
			t.Fatalf("%v, %d login forms", err, br.LoginForms())
		}
		if _, resp, err := br.Navigate(dash.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 || br.LoginForms() != 2 {
			t.Fatalf("SSO after re-login: %v, %d login forms", err, br.LoginForms())
		}
	})
	// Only client_secret_post registrations cost invalid_client answers
	// (the library's check tries its default, client_secret_basic, first).
	if n := op.Count(func(ev nodeop.Event) bool { return ev.Route == "token" && ev.Error == "invalid_client" }); method != rp.AuthClientSecretPost && n != 0 {
		t.Errorf("%d invalid_client answers for clients registered with %s", n, method)
	}
}
