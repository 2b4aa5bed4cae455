package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// testApp is one web app (one client id) on an httptest server, wired to a
// scriptable OP.
type testApp struct {
	t      *testing.T
	op     *oidctest.OP
	srv    *httptest.Server
	web    *middleware.Web
	client *rp.Client
	store  tokenstore.Store
	logs   *bytes.Buffer
	id     string
}

func newTestApp(t *testing.T, op *oidctest.OP, clientID string, mutate func(*middleware.WebConfig)) *testApp {
	t.Helper()
	a := &testApp{t: t, op: op, logs: &bytes.Buffer{}, id: clientID}
	var h http.Handler
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(a.srv.Close)
	// httptest listens on 127.0.0.1: plain-http localhost development.
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{
		ClientID: clientID, ClientSecret: "secret",
		RedirectURL: a.srv.URL + "/auth/callback", PostLogoutRedirectURL: a.srv.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	a.client = c
	a.store = tokenstore.NewMemory(tokenstore.MemoryOptions{})
	cfg := middleware.WebConfig{
		Client: c, Store: a.store, CookieKeys: [][]byte{testKey},
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{w: a.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	web, err := middleware.NewWeb(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.web = web
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/me", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		cl := s.Claims()
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": cl.Subject, "sid": cl.SessionID, "email": cl.Email, "at": s.AccessToken()})
	})))
	mux.Handle("/public", web.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := middleware.SessionFrom(r.Context()); ok {
			io.WriteString(w, "hello "+s.Claims().Subject)
			return
		}
		io.WriteString(w, "hello anonymous")
	})))
	h = mux
	return a
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see every hop.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, rawURL string, hdr map[string]string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, rawURL, nil)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func (b *browser) get(rawURL string) *http.Response { return b.do(http.MethodGet, rawURL, nil) }

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// login drives login -> OP -> callback for sub and returns the final
// response (the redirect to return_to).
func (a *testApp) login(b *browser, returnTo, sub string, claims func(map[string]any)) *http.Response {
	a.t.Helper()
	resp, _ := a.loginVia(b, "/auth/login?return_to="+url.QueryEscape(returnTo), sub, claims)
	return resp
}

func (a *testApp) sessionCookie(b *browser) *http.Cookie {
	u, _ := url.Parse(a.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "ma-"+a.id {
			return c
		}
	}
	return nil
}

func TestLoginCallbackAndRequire(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)

	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/login?return_to=%2Fme" {
		t.Fatalf("anonymous /me: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = a.login(b, "/me?tab=1", "usr_1", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/me?tab=1" {
		t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
	}
	c := a.sessionCookie(b)
	if c == nil {
		t.Fatal("no session cookie")
	}
	resp = b.get(a.srv.URL + "/me")
	var me map[string]string
	_ = json.Unmarshal([]byte(body(resp)), &me)
	if resp.StatusCode != 200 || me["sub"] != "usr_1" || me["sid"] != "ses_1" || me["at"] == "" {
		t.Fatalf("/me: %d %v", resp.StatusCode, me)
	}
	if !strings.Contains(a.logs.String(), `"msg":"multiapp.login"`) {
		t.Fatalf("no login audit event: %s", a.logs.String())
	}
	for _, secret := range []string{me["at"], "rt-code"} {
		if strings.Contains(a.logs.String(), secret) {
			t.Fatal("a token was logged")
		}
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	resp := a.login(b, "/", "usr_1", nil)
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "ma-webc_a" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
		t.Fatalf("session cookie %+v (plain-http localhost: not Secure)", sc)
	}
	if len(sc.Value) < 60 {
		t.Fatal("session cookie not sealed")
	}
}

func TestSecureCookiesOutsideLocalhost(t *testing.T) {
	op := oidctest.New(t)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: "webc_a", ClientSecret: "s", RedirectURL: "https://app.example.com/auth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	web, err := middleware.NewWeb(middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	web.Routes().ServeHTTP(rec, httptest.NewRequest("GET", "https://app.example.com/auth/login", nil))
	cs := rec.Result().Cookies()
	if len(cs) != 1 || !cs[0].Secure || !strings.HasPrefix(cs[0].Name, "__Host-") {
		t.Fatalf("cookies %+v", cs)
	}
}

func TestNewWebConfigErrors(t *testing.T) {
	op := oidctest.New(t)
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	c, _ := provider.Client(rp.Config{ClientID: "webc_a", ClientSecret: "s", RedirectURL: "http://localhost:1/cb"})
	cases := map[string]middleware.WebConfig{
		"no client":         {CookieKeys: [][]byte{testKey}},
		"no keys":           {Client: c},
		"short key":         {Client: c, CookieKeys: [][]byte{[]byte("short")}},
		"callback path off": {Client: c, CookieKeys: [][]byte{testKey}},
	}
	for name, cfg := range cases {
		if _, err := middleware.NewWeb(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRequireForNonNavigation(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	cases := []struct {
		method string
		hdr    map[string]string
	}{
		{"GET", map[string]string{"Accept": "application/json"}},
		{"GET", map[string]string{"X-Requested-With": "XMLHttpRequest"}},
		{"GET", map[string]string{"Sec-Fetch-Mode": "cors"}},
		{"POST", nil},
		{"DELETE", nil},
	}
	for _, tc := range cases {
		b := newBrowser(t)
		resp := b.do(tc.method, a.srv.URL+"/me", tc.hdr)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %v: %d %s", tc.method, tc.hdr, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s %v: set cookies %v (a pile of login cookies)", tc.method, tc.hdr, resp.Cookies())
		}
		var e map[string]string
		if json.Unmarshal([]byte(body(resp)), &e) != nil || e["error"] != "login_required" {
			t.Errorf("body %q", body(resp))
		}
	}
}

func TestBadCookiesMeanSignedOut(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	good := a.sessionCookie(b)
	other := newTestApp(t, op, "webc_b", func(c *middleware.WebConfig) { c.CookieKeys = [][]byte{[]byte("ffffffffffffffffffffffffffffffff")} })
	b2 := newBrowser(t)
	other.login(b2, "/", "usr_1", nil)
	foreign := other.sessionCookie(b2)
	for name, v := range map[string]string{
		"tampered":  good.Value[:len(good.Value)-4] + "AAAA",
		"truncated": good.Value[:20],
		"empty":     "",
		"garbage":   "%%%<script>",
		"foreign":   foreign.Value,
	} {
		req, _ := http.NewRequest("GET", a.srv.URL+"/me", nil)
		req.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: v})
		resp, err := newBrowser(t).c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Errorf("%s cookie: status %d, want a redirect to login", name, resp.StatusCode)
		}
	}
}

func TestReturnToOpenRedirects(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	bad := []string{
		"//evil.example.com", `/\evil.example.com`, "%2f%5cevil.example.com", "/%2f%2fevil.example.com", "/%5c%5cevil",
		"https://evil.example.com", "http:evil", "/ok\r\nLocation: https://evil", "/ok%0d%0aSet-Cookie:x=y",
		"javascript:alert(1)", "evil.example.com", "/\tevil", " /x", "///evil", "/" + strings.Repeat("a", 3000),
	}
	for _, rt := range bad {
		resp := newBrowser(t).get(a.srv.URL + "/auth/login?return_to=" + url.QueryEscape(rt))
		if resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
			t.Errorf("return_to %q: %d (want 400, no transaction)", rt, resp.StatusCode)
		}
	}
	for _, rt := range []string{"/", "/reports?x=1&y=%2F", "/a/b#frag", "/%E2%9C%93"} {
		resp := newBrowser(t).get(a.srv.URL + "/auth/login?return_to=" + url.QueryEscape(rt))
		if resp.StatusCode != http.StatusFound {
			t.Errorf("return_to %q refused: %d", rt, resp.StatusCode)
		}
	}
	// Even a transaction sealed with our key cannot carry an unsafe path:
	// the callback redirects to what the login route accepted.
}

func TestCallbackRejects(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/auth/login?return_to=/me")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	state := authURL.Query().Get("state")

	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"wrong state", "code=x&state=forged", 400},
		{"no state", "code=x", 400},
		{"duplicate params", "code=x&state=" + state + "&state=" + state, 400},
		{"OP error, escaped", "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=" + state, 403},
	}
	for _, tc := range cases {
		resp := b.get(a.srv.URL + "/auth/callback?" + tc.query)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if strings.Contains(body(resp), "<script>") {
			t.Errorf("%s: OP text not escaped", tc.name)
		}
		if a.sessionCookie(b) != nil {
			t.Errorf("%s: a session was created", tc.name)
		}
	}
	// The error consumed the transaction: its state cannot be used again.
	op.AddGrant("late", oidctest.Grant{Claims: op.IDClaims("webc_a", "u", authURL.Query().Get("nonce")), Challenge: authURL.Query().Get("code_challenge")})
	if resp := b.get(a.srv.URL + "/auth/callback?code=late&state=" + state); resp.StatusCode != 400 {
		t.Errorf("transaction reused: %d", resp.StatusCode)
	}
}

func TestCallbackReplay(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/auth/login")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	q := authURL.Query()
	// An attacker copies the browser's cookies before the callback.
	u, _ := url.Parse(a.srv.URL)
	stolen := b.c.Jar.Cookies(u)
	op.AddGrant("c1", oidctest.Grant{Claims: op.IDClaims("webc_a", "u", q.Get("nonce")), Challenge: q.Get("code_challenge")})
	op.AddGrant("c2", oidctest.Grant{Claims: op.IDClaims("webc_a", "u", q.Get("nonce")), Challenge: q.Get("code_challenge")})
	if resp := b.get(a.srv.URL + "/auth/callback?code=c1&state=" + q.Get("state")); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", a.srv.URL+"/auth/callback?code=c2&state="+q.Get("state"), nil)
	for _, c := range stolen {
		req.AddCookie(c)
	}
	resp2, _ := newBrowser(t).c.Do(req)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed transaction cookie: %d", resp2.StatusCode)
	}
}

func TestNewSessionIDAtEveryLogin(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	first := a.sessionCookie(b).Value
	a.login(b, "/", "usr_1", nil)
	second := a.sessionCookie(b).Value
	if first == second {
		t.Fatal("session id reused across logins (fixation)")
	}
	req, _ := http.NewRequest("GET", a.srv.URL+"/me", nil)
	req.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: first})
	resp, _ := newBrowser(t).c.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatal("the previous session still works after a new login")
	}
}

func TestLogout(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	if resp := b.get(a.srv.URL + "/auth/logout"); resp.StatusCode != 200 || !strings.Contains(body(resp), `method="post"`) {
		t.Fatalf("GET logout: %d", resp.StatusCode)
	}
	if b.get(a.srv.URL+"/me").StatusCode != 200 {
		t.Fatal("GET logout signed the user out")
	}
	resp := b.do("POST", a.srv.URL+"/auth/logout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST logout: %d", resp.StatusCode)
	}
	end, _ := url.Parse(resp.Header.Get("Location"))
	q := end.Query()
	if !strings.HasPrefix(end.String(), op.Issuer+"/oidc/logout") || q.Get("id_token_hint") == "" || q.Get("client_id") != "webc_a" ||
		q.Get("post_logout_redirect_uri") != a.srv.URL+"/" {
		t.Fatalf("end-session redirect %s", end)
	}
	if a.sessionCookie(b) != nil {
		t.Fatal("cookie not cleared")
	}
	if b.get(a.srv.URL+"/me").StatusCode != http.StatusFound {
		t.Fatal("still signed in after logout")
	}
	if !strings.Contains(a.logs.String(), "multiapp.logout") {
		t.Fatal("no logout audit event")
	}
	// Logging out without a session lands on the app (see
	// TestLogoutWithoutIDToken).
	resp = newBrowser(t).do("POST", a.srv.URL+"/auth/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("anonymous logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSilentSSO(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.SilentSSO = true })
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/public")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "prompt=none") {
		t.Fatalf("silent SSO not attempted: %d %q", resp.StatusCode, loc)
	}
	resp = b.get(a.srv.URL + loc)
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	if authURL.Query().Get("prompt") != "none" {
		t.Fatalf("authorization request without prompt=none: %s", authURL)
	}
	// The OP has no session: login_required.
	resp = b.get(a.srv.URL + "/auth/callback?error=login_required&state=" + authURL.Query().Get("state"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/public" {
		t.Fatalf("login_required: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = b.get(a.srv.URL + "/public")
	if resp.StatusCode != 200 || body(resp) != "hello anonymous" {
		t.Fatalf("anonymous visitor not served: %d %q", resp.StatusCode, body(resp))
	}
	// JSON clients are never redirected.
	if resp := newBrowser(t).do("GET", a.srv.URL+"/public", map[string]string{"Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("json: %d", resp.StatusCode)
	}
}

func TestSilentSSOSignsIn(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.SilentSSO = true })
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/public")
	resp = b.get(a.srv.URL + resp.Header.Get("Location"))
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	q := authURL.Query()
	op.AddGrant("silent", oidctest.Grant{Claims: op.IDClaims("webc_a", "usr_9", q.Get("nonce")), Challenge: q.Get("code_challenge")})
	b.get(a.srv.URL + "/auth/callback?code=silent&state=" + q.Get("state"))
	if got := body(b.get(a.srv.URL + "/public")); got != "hello usr_9" {
		t.Fatalf("got %q", got)
	}
}

var _ = time.Second

func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCookieKeyRotation(t *testing.T) {
	op := oidctest.New(t)
	old := []byte("old-key-old-key-old-key-old-key-")
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.CookieKeys = [][]byte{old} })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	sealed := a.sessionCookie(b).Value
	// The app restarts with a new key first and the old one still listed.
	rotated, err := middleware.NewWeb(middleware.WebConfig{Client: a.client, Store: a.store, CookieKeys: [][]byte{testKey, old}})
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	h := rotated.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok = true }))
	req := httptest.NewRequest("GET", "/me", nil)
	req.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: sealed})
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !ok {
		t.Fatal("a cookie sealed with the previous key no longer opens")
	}
	// Once the old key is dropped, its cookies are "not signed in".
	dropped, _ := middleware.NewWeb(middleware.WebConfig{Client: a.client, Store: a.store, CookieKeys: [][]byte{testKey}})
	rec := httptest.NewRecorder()
	dropped.Require(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusFound {
		t.Fatalf("dropped key: %d", rec.Code)
	}
}

func TestCustomPrefix(t *testing.T) {
	op := oidctest.New(t)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: "webc_a", ClientSecret: "s", RedirectURL: "http://localhost:8080/account/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	web, err := middleware.NewWeb(middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}, Prefix: "/account/oidc/"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	web.Require(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Header().Get("Location") != "/account/oidc/login?return_to=%2Fx" {
		t.Fatalf("%q", rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	web.Routes().ServeHTTP(rec, httptest.NewRequest("GET", "/account/oidc/login", nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("login under the prefix: %d", rec.Code)
	}
}

func TestLogoutRefusesCrossSite(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	for name, hdr := range map[string]map[string]string{
		"cross-site fetch metadata": {"Sec-Fetch-Site": "cross-site"},
		"same-site, other app":      {"Sec-Fetch-Site": "same-site"},
		"foreign Origin":            {"Origin": "https://evil.example.com"},
		"other port, same host":     {"Origin": "http://127.0.0.1:1"},
	} {
		resp := b.do("POST", a.srv.URL+"/auth/logout", hdr)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if b.get(a.srv.URL+"/me").StatusCode != 200 {
		t.Fatal("a cross-site POST signed the user out")
	}
	if resp := b.do("POST", a.srv.URL+"/auth/logout", map[string]string{"Origin": "null"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("Origin null without fetch metadata: %d, want 403", resp.StatusCode)
	}
	// A page with Referrer-Policy no-referrer: the browser sends Origin null.
	resp := b.do("POST", a.srv.URL+"/auth/logout", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin logout: %d", resp.StatusCode)
	}
	// An old browser (Origin, no fetch metadata) behind a proxy that
	// rewrites Host: the app's public origin (its redirect URL's) passes.
	a.login(b, "/", "usr_1", nil)
	req, _ := http.NewRequest("POST", a.srv.URL+"/auth/logout", nil)
	req.Host = "app.internal:8080"
	req.Header.Set("Origin", a.srv.URL)
	if resp, err := b.c.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin logout through a proxy: %v %v", resp, err)
	}
	page := b.get(a.srv.URL + "/auth/logout")
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+op.Issuer) {
		t.Fatalf("logout page CSP %q must allow the OP in form-action", csp)
	}
}
