package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// route serves path with h behind Require, next to the app's routes.
func (a *testApp) route(path string, h http.HandlerFunc) {
	old := a.srv.Config.Handler
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			old.ServeHTTP(w, r)
			return
		}
		a.web.Require(h).ServeHTTP(w, r)
	})
}

// recordingStore keeps the records the web layer creates.
type recordingStore struct {
	tokenstore.Store
	mu      sync.Mutex
	created []*tokenstore.Session
}

func (s *recordingStore) Create(ctx context.Context, rec *tokenstore.Session) error {
	s.mu.Lock()
	s.created = append(s.created, rec.Clone())
	s.mu.Unlock()
	return s.Store.Create(ctx, rec)
}

// dpopAPI is a resource server as strict as bearer with DPoP and nonces:
// "Authorization: DPoP <token>" with a proof (dpop.Verifier, ath, its own
// nonce) by the key the OP bound the token to. It answers the token, and
// counts its use_dpop_nonce answers.
func dpopAPI(t *testing.T, op *oidctest.OP) (string, *atomic.Int64) {
	var nonceAnswers atomic.Int64
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{}), NonceSecret: []byte(strings.Repeat("n", 32))})
	if err != nil {
		t.Fatal(err)
	}
	var api string
	api = newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		jkt := op.DPoPBinding(token)
		if !ok || jkt == "" {
			http.Error(w, "not a DPoP-bound token with the DPoP scheme", 401)
			return
		}
		_, err := v.Verify(r.Context(), r.Header.Get("DPoP"), dpop.Request{Method: r.Method, URI: api + r.URL.Path, AccessToken: token, Thumbprint: jkt})
		var e *dpop.Error
		if errors.As(err, &e) && e.Code == dpop.CodeUseNonce {
			nonceAnswers.Add(1)
			w.Header().Set("DPoP-Nonce", v.Nonce())
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(401)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), 401)
			return
		}
		io.WriteString(w, token)
	}))
	return api, &nonceAnswers
}

// TestWebDPoP: with WebConfig.DPoP every login gets its own key, sealed in
// the session record (never in a cookie or a log); the code exchange and
// the refreshes prove possession of it, so the OP binds the session's
// tokens to it; Session.Client calls an API with the DPoP scheme and
// proofs by it (after the API's use_dpop_nonce); TokenContext says DPoP.
func TestWebDPoP(t *testing.T) {
	op := oidctest.New(t)
	op.EnableDPoP()
	clk := &clock{}
	store := &recordingStore{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.DPoP, c.Now, c.Store = true, clk.now, store })
	api, nonceAnswers := dpopAPI(t, op)
	a.route("/call", func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		tok, err := s.TokenContext(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		resp, err := s.Client(r.Context()).Get(api + "/orders")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "%s %d %s", tok.TokenType, resp.StatusCode, got)
	})
	call := func(b *browser) (tokenType string, status int, token string) {
		t.Helper()
		resp := b.get(a.srv.URL + "/call")
		if _, err := fmt.Sscan(body(resp), &tokenType, &status, &token); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/call: %d %q", resp.StatusCode, body(resp))
		}
		return
	}

	var jkts []string
	for i, sub := range []string{"usr_1", "usr_2"} {
		b := newBrowser(t)
		_, q := a.loginVia(b, "/auth/login?return_to=/", sub, nil)
		code := "code-" + q.Get("state")[:10]
		if len(store.created) != i+1 {
			t.Fatalf("%s: no session was created", sub)
		}
		rec := store.created[i]
		key, err := dpop.ParseSigner(rec.DPoPKey)
		if err != nil || rec.TokenType != "DPoP" {
			t.Fatalf("%s: the record holds key %v (%v) and token type %q", sub, key, err, rec.TokenType)
		}
		jkt := op.DPoPBinding(rec.AccessToken)
		if jkt != key.Thumbprint() || op.DPoPBinding(rec.RefreshToken) != jkt {
			t.Fatalf("%s: tokens bound to %q, the session's key is %q", sub, jkt, key.Thumbprint())
		}
		jkts = append(jkts, jkt)
		for _, c := range b.c.Jar.Cookies(mustURL(a.srv.URL)) {
			if strings.Contains(c.Value, string(rec.DPoPKey)) || strings.Contains(c.Value, "\"d\"") {
				t.Fatalf("cookie %s holds the key", c.Name)
			}
		}
		tt, status, token := call(b)
		if tt != "DPoP" || status != 200 || token != rec.AccessToken {
			t.Fatalf("%s: API call: %s %d %s", sub, tt, status, token)
		}

		// A refresh proves possession of the same key (the OP refuses
		// another), and the API takes the new token with proofs by it.
		a.op.AddGrant(rec.RefreshToken, oidctest.Grant{Claims: a.op.IDClaims("webc_a", sub, ""), RefreshToken: "rt2-" + code})
		clk.advance(299 * time.Second)
		tt, status, token = call(b)
		if tt != "DPoP" || status != 200 || token == rec.AccessToken || op.DPoPBinding(token) != jkt || op.DPoPBinding("rt2-"+code) != jkt {
			t.Fatalf("%s: after the refresh: %s %d %s", sub, tt, status, token)
		}
		clk.advance(-299 * time.Second)
	}
	if jkts[0] == jkts[1] {
		t.Fatal("two sessions share a DPoP key")
	}
	// The API's nonce was learnt once, for every session and request.
	if n := nonceAnswers.Load(); n != 1 {
		t.Fatalf("the API answered use_dpop_nonce %d times, want once", n)
	}
	if logs := a.logs.String(); strings.Contains(logs, `"d":`) || strings.Contains(logs, string(store.created[0].DPoPKey)) {
		t.Fatal("a DPoP key was logged")
	}
}

// TestWebDPoPNeedsTheOP: WebConfig.DPoP with an OP that does not accept
// ES256 proofs, and a web client with rp.Config.DPoP, are configuration
// errors at NewWeb, not failed logins or API calls.
func TestWebDPoPNeedsTheOP(t *testing.T) {
	op := oidctest.New(t)
	p, _ := rp.Discover(context.Background(), op.Issuer, nil)
	c, err := p.Client(rp.Config{ClientID: "webc_a", ClientSecret: "secret", RedirectURL: "http://localhost:1/auth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = middleware.NewWeb(middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}, DPoP: true})
	if rp.ClassOf(err) != rp.ClassMisconfigured || !strings.Contains(err.Error(), "dpop_signing_alg_values_supported") {
		t.Fatalf("NewWeb: %v", err)
	}
	// A web client with a key of its own: its tokens would be DPoP-bound
	// but the sessions would hold no key to send them with.
	op.EnableDPoP()
	p, _ = rp.Discover(context.Background(), op.Issuer, nil)
	key, _ := dpop.GenerateSigner("")
	c, err = p.Client(rp.Config{ClientID: "webc_a", ClientSecret: "secret", RedirectURL: "http://localhost:1/auth/callback", DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		_, err = middleware.NewWeb(middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}, DPoP: on})
		if rp.ClassOf(err) != rp.ClassMisconfigured || !strings.Contains(err.Error(), "WebConfig.DPoP") {
			t.Fatalf("NewWeb with rp.Config.DPoP (WebConfig.DPoP %v): %v", on, err)
		}
	}
}

// TestWebDPoPBearerSessionsUnchanged: a session signed in without DPoP
// keeps calling APIs with its bearer token.
func TestWebDPoPBearerSessionsUnchanged(t *testing.T) {
	op := oidctest.New(t)
	op.EnableDPoP()
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	_, me := a.me(b)
	if op.DPoPBinding(me["at"]) != "" {
		t.Fatal("a session without WebConfig.DPoP got a DPoP-bound token")
	}
}

// TestWebDPoPUnreadableKey: a session whose record holds a DPoP key that
// does not decode (a damaged record) is never refreshed without it (its
// refresh token is bound to the key): the user signs in again, and
// Session.Client fails rather than sending the token without a proof.
func TestWebDPoPUnreadableKey(t *testing.T) {
	op := oidctest.New(t)
	op.EnableDPoP()
	clk := &clock{}
	store := &recordingStore{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.DPoP, c.Now, c.Store = true, clk.now, store })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	rec := store.created[0].Clone()
	rec.DPoPKey = []byte(`{"kty":"EC"}`)
	if err := store.Update(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	var callErr error
	a.route("/call", func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		_, callErr = s.Client(r.Context()).Get(a.srv.URL + "/public")
	})
	if resp := b.get(a.srv.URL + "/call"); resp.StatusCode != 200 || !errors.Is(callErr, middleware.ErrSignedOut) {
		t.Fatalf("Session.Client with an unreadable key: %d %v", resp.StatusCode, callErr)
	}
	before := op.TokenRequests.Load()
	clk.advance(299 * time.Second)
	if code, _ := a.me(b); code == 200 {
		t.Fatal("a session whose key is unreadable was refreshed")
	}
	if op.TokenRequests.Load() != before {
		t.Fatal("its refresh token was sent")
	}
	if !strings.Contains(a.logs.String(), "dpop_key_unreadable") {
		t.Fatal("no audit event says why")
	}
}
