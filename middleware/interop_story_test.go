package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
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
	id     string
	secret string
	srv    *httptest.Server
	client *rp.Client
	store  *tokenstore.Memory
	handle http.Handler
}

func newStoryApp(t *testing.T, id string) *storyApp {
	a := &storyApp{id: id, secret: id + " s:e%c+r/t"} // RFC 6749 §2.3.1 encoding on the wire
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.handle.ServeHTTP(w, r) }))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *storyApp) registration(method string) nodeop.Client {
	return nodeop.Client{
		ID: a.id, Secret: a.secret, AuthMethod: method,
		RedirectURIs: []string{a.srv.URL + "/auth/callback"}, PostLogoutRedirectURIs: []string{a.srv.URL + "/"},
		BackchannelLogoutURI: a.srv.URL + "/auth/backchannel-logout",
	}
}

// wire builds the app as a user would: rp.Config without AuthMethod (the
// library's default choice must work with every registration).
func (a *storyApp) wire(t *testing.T, issuer, apiURL string) {
	var err error
	provider, err := rp.Discover(context.Background(), issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.client, err = provider.Client(rp.Config{
		ClientID: a.id, ClientSecret: a.secret,
		RedirectURL: a.srv.URL + "/auth/callback", PostLogoutRedirectURL: a.srv.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	a.store = tokenstore.NewMemory(tokenstore.MemoryOptions{})
	t.Cleanup(func() { a.store.Close() })
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client: a.client, Store: a.store, CookieKeys: [][]byte{testKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/me", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": s.Claims().Subject, "sid": s.Claims().SessionID, "at": s.AccessToken()})
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

// TestInteropStory runs the multi-app story against node-oidc-provider with
// the confidential clients registered for client_secret_basic, and again for
// client_secret_post. The fixture enforces the registered method (as Ory
// Hydra does), and the apps leave the method to the library: login, SSO,
// refresh with rotation, 20 parallel requests making one refresh,
// RP-initiated logout, back-channel logout of every app, re-login, and an
// API accepting the sessions' access tokens.
func TestInteropStory(t *testing.T) {
	for _, method := range []string{rp.AuthClientSecretBasic, rp.AuthClientSecretPost} {
		t.Run(method, func(t *testing.T) { runInteropStory(t, method) })
	}
}

func runInteropStory(t *testing.T, method string) {
	const ttl = 2 * time.Second
	dash, docs := newStoryApp(t, "webc_dashboard"), newStoryApp(t, "webc_docs")
	apiHandler := http.NewServeMux()
	api := httptest.NewServer(apiHandler)
	t.Cleanup(api.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients:             []nodeop.Client{dash.registration(method), docs.registration(method)},
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
	storyBearer, err := bearer.New(bearer.Config{Verifier: verifier, Realm: "story"})
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
		if a := dash.client.ClientAuth(); a.Method != method || !a.Confirmed {
			t.Fatalf("client authentication %+v, want the registered %s, confirmed", a, method)
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
			if code != 200 || op.TokenRequests("refresh_token")-before != 1 || next["at"] == prev["at"] || next["sub"] != "usr_alice" {
				t.Fatalf("round %d: %d, %d refreshes, new token %v", round, code, op.TokenRequests("refresh_token")-before, next["at"] != prev["at"])
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
	var oldToken string
	step("RP-initiated logout and back-channel logout of every app", func(t *testing.T) {
		_, m := me(dash)
		oldToken = m["at"]
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
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+oldToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("API with a logged-out session's token: %d", resp.StatusCode)
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
	if n := op.Count(func(ev nodeop.Event) bool { return ev.Route == "token" && ev.Error == "invalid_client" }); method == rp.AuthClientSecretBasic && n != 0 {
		t.Errorf("%d invalid_client answers for clients registered with the default method", n)
	}
}
