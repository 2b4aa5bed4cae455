package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// realApp is a web app wired to node-oidc-provider with the real
// middleware, as a user of the library would write it.
type realApp struct {
	id     string
	srv    *httptest.Server
	web    *middleware.Web
	handle http.Handler
}

func startRealApp(t *testing.T, id string) *realApp {
	a := &realApp{id: id}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.handle.ServeHTTP(w, r) }))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *realApp) client(withBackchannel bool) nodeop.Client {
	c := nodeop.Client{
		ID: a.id, Secret: a.id + "-secret", AuthMethod: "client_secret_post",
		RedirectURIs: []string{a.srv.URL + "/auth/callback"}, PostLogoutRedirectURIs: []string{a.srv.URL + "/"},
	}
	if withBackchannel {
		c.BackchannelLogoutURI = a.srv.URL + "/auth/backchannel-logout"
	}
	return c
}

func (a *realApp) wire(t *testing.T, op *nodeop.OP, opts ...func(*middleware.WebConfig)) {
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{
		ClientID: a.id, ClientSecret: a.id + "-secret",
		RedirectURL: a.srv.URL + "/auth/callback", PostLogoutRedirectURL: a.srv.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	cfg := middleware.WebConfig{
		Client: c, Store: store, CookieKeys: [][]byte{testKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a.web, err = middleware.NewWeb(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", a.web.Routes())
	mux.Handle("/me", a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": s.Claims().Subject, "sid": s.Claims().SessionID, "at": s.AccessToken()})
	})))
	mux.Handle("/public", a.web.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := middleware.SessionFrom(r.Context()); ok {
			io.WriteString(w, "hello "+s.Claims().Subject)
			return
		}
		io.WriteString(w, "hello anonymous")
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "home of "+a.id) })
	a.handle = mux
}

// meJSON asks /me as an XHR would: 200 with the session, 401 without.
func meJSON(t *testing.T, b *nodeop.Browser, a *realApp) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.srv.URL+"/me", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&me)
	return resp.StatusCode, me
}

// TestTwoAppsShareOneSession: sign in on app A (one login form), open app B
// (no login form: SSO), sign out on B, and A's next request is anonymous
// because the OP's back-channel POST ended A's session.
func TestTwoAppsShareOneSession(t *testing.T) {
	a, b := startRealApp(t, "webc_dashboard"), startRealApp(t, "webc_docs")
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{a.client(true), b.client(true)},
		Users:   []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
	})
	a.wire(t, op)
	b.wire(t, op)
	br := nodeop.NewBrowser(t, "alice@example.test", "pw")

	final, resp, err := br.Navigate(a.srv.URL+"/me", nil)
	if err != nil || resp.StatusCode != 200 || final.Path != "/me" {
		t.Fatalf("sign in on A: %v %v %v", err, final, resp)
	}
	if br.LoginForms() != 1 {
		t.Fatalf("A: %d login forms", br.LoginForms())
	}
	final, resp, err = br.Navigate(b.srv.URL+"/me", nil)
	if err != nil || resp.StatusCode != 200 || final.Path != "/me" {
		t.Fatalf("open B: %v %v", err, final)
	}
	if br.LoginForms() != 1 {
		t.Fatalf("B showed a login form: no SSO")
	}
	_, meA := meJSON(t, br, a)
	_, meB := meJSON(t, br, b)
	if meA["sub"] != "usr_alice" || meB["sub"] != "usr_alice" {
		t.Fatalf("A %v, B %v", meA, meB)
	}

	final, _, err = br.PostForm(b.srv.URL+"/auth/logout", nil, nil)
	if err != nil || final.Path != "/" || final.Host != mustHost(b.srv.URL) {
		t.Fatalf("logout on B: %v %v", err, final)
	}
	if br.LogoutForms() != 1 {
		t.Fatalf("%d end-session confirmations", br.LogoutForms())
	}
	delivered := 0
	for _, ev := range op.BackchannelLogouts() {
		if ev.OK {
			delivered++
		}
	}
	if delivered != 2 {
		t.Fatalf("%d back-channel logouts delivered, want 2: %+v", delivered, op.BackchannelLogouts())
	}
	if code, _ := meJSON(t, br, a); code != http.StatusUnauthorized {
		t.Fatalf("A after logout on B: %d, want 401", code)
	}
	if code, _ := meJSON(t, br, b); code != http.StatusUnauthorized {
		t.Fatalf("B after its logout: %d", code)
	}
	// Signing in again shows the login form again.
	if _, resp, err = br.Navigate(a.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 || br.LoginForms() != 2 {
		t.Fatalf("sign in again: %v %d forms", err, br.LoginForms())
	}
}

// TestRefreshAfterOPRevocationSignsOut: A has no back-channel URI, so only
// its refresh can learn that the shared session ended; it must then sign
// the user out of A.
func TestRefreshAfterOPRevocationSignsOut(t *testing.T) {
	a, b := startRealApp(t, "webc_a"), startRealApp(t, "webc_b")
	op := nodeop.Start(t, nodeop.Config{
		Clients:        []nodeop.Client{a.client(false), b.client(true)},
		AccessTokenTTL: 4 * time.Second,
	})
	a.wire(t, op)
	b.wire(t, op)
	br := nodeop.NewBrowser(t, "carol", "any")
	signedIn := time.Now()
	if _, resp, err := br.Navigate(a.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in on A: %v", err)
	}
	if _, resp, err := br.Navigate(b.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in on B: %v", err)
	}
	if _, _, err := br.PostForm(b.srv.URL+"/auth/logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	// A still has a local session, whose access token is still valid.
	if code, _ := meJSON(t, br, a); code != 200 {
		t.Fatalf("A before its token expires: %d", code)
	}
	time.Sleep(time.Until(signedIn.Add(4200 * time.Millisecond))) // the access token expires; the next request refreshes
	before := op.TokenRequests("refresh_token")
	if code, _ := meJSON(t, br, a); code != http.StatusUnauthorized {
		t.Fatalf("A after the OP revoked the session: %d, want 401", code)
	}
	if op.TokenRequests("refresh_token")-before != 1 {
		t.Fatal("A did not try to refresh")
	}
}

// TestFiftyConcurrentRequestsOneRefresh: 50 concurrent requests on one
// session whose access token expired make exactly one refresh request at
// the OP (counted there, with rotation on), and all 50 succeed.
func TestFiftyConcurrentRequestsOneRefresh(t *testing.T) {
	a := startRealApp(t, "webc_a")
	op := nodeop.Start(t, nodeop.Config{
		Clients:             []nodeop.Client{a.client(false)},
		AccessTokenTTL:      2 * time.Second,
		RotateRefreshTokens: true,
	})
	a.wire(t, op)
	br := nodeop.NewBrowser(t, "dave", "any")
	if _, resp, err := br.Navigate(a.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in: %v", err)
	}
	_, first := meJSON(t, br, a)
	time.Sleep(2100 * time.Millisecond)
	before := op.TokenRequests("refresh_token")
	var wg sync.WaitGroup
	var ok atomic.Int32
	tokens := sync.Map{}
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, me := meJSON(t, br, a)
			if code == 200 && me["at"] != first["at"] {
				ok.Add(1)
				tokens.Store(me["at"], true)
			}
		}()
	}
	wg.Wait()
	n := op.TokenRequests("refresh_token") - before
	count := 0
	tokens.Range(func(any, any) bool { count++; return true })
	if n != 1 || ok.Load() != 50 || count != 1 {
		t.Fatalf("%d refresh requests at the OP, %d/50 served, %d distinct tokens", n, ok.Load(), count)
	}
}

func mustHost(raw string) string {
	u, _ := url.Parse(raw)
	return u.Host
}
