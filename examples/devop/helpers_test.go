package devop_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/multiapp-go/multiapp/examples/devop"
)

// testKey is shared by every OP of the tests: generating an RSA key per test
// would cost more than the tests themselves.
var testKey *rsa.PrivateKey

func TestMain(m *testing.M) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	testKey = k
	// zitadel/oidc logs request errors to the default logger; the tests
	// provoke many on purpose.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// rp stands in for an application: it receives back-channel logout POSTs.
type rp struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
	times  []time.Time
	status int
	delay  time.Duration
}

func newRP(t *testing.T) *rp {
	r := &rp{status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/auth/backchannel-logout" || req.Method != http.MethodPost {
			http.NotFound(w, req)
			return
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			http.Error(w, "bad content type "+ct, http.StatusBadRequest)
			return
		}
		tok := req.PostFormValue("logout_token")
		r.mu.Lock()
		r.tokens = append(r.tokens, tok)
		r.times = append(r.times, time.Now())
		status, delay := r.status, r.delay
		r.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-req.Context().Done(): // the OP gave up
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rp) URL() string { return r.srv.URL }

func (r *rp) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// client registers a confidential client for client_secret_post, the method
// most tests send (authPost); tests of the default method register their own.
func (r *rp) client(id, secret string) devop.Client {
	return devop.Client{
		ID:                     id,
		Secret:                 secret,
		AuthMethod:             devop.AuthMethodPost,
		RedirectURIs:           []string{r.URL() + "/auth/callback"},
		PostLogoutRedirectURIs: []string{r.URL() + "/"},
		BackChannelLogoutURI:   r.URL() + "/auth/backchannel-logout",
	}
}

// env is an OP with two confidential web clients (each with its own
// back-channel receiver), a public SPA client and a native CLI client.
type env struct {
	op         *devop.OP
	dash, docs *rp
	dashboard  devop.Client
	docsClient devop.Client
	spa        devop.Client
	cli        devop.Client
	events     *eventLog
}

type eventLog struct {
	mu     sync.Mutex
	events []devop.Event
}

func (l *eventLog) add(e devop.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) kinds() []devop.EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []devop.EventKind
	for _, e := range l.events {
		k = append(k, e.Kind)
	}
	return k
}

const spaRedirect = "http://localhost:8083/auth/callback"

func newEnv(t *testing.T, mod ...func(*devop.Config)) *env {
	t.Helper()
	e := &env{dash: newRP(t), docs: newRP(t), events: &eventLog{}}
	e.dashboard = e.dash.client("dashboard", "dashboard-secret")
	e.docsClient = e.docs.client("docs", "docs-secret")
	e.spa = devop.Client{ID: "spa", RedirectURIs: []string{spaRedirect}, PostLogoutRedirectURIs: []string{"http://localhost:8083/"}}
	e.cli = devop.Client{ID: "cli", Native: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}
	cfg := devop.Config{
		Clients:             []devop.Client{e.dashboard, e.docsClient, e.spa, e.cli},
		Users:               devop.DefaultUsers(),
		AccessTokenAudience: []string{"api"},
		SigningKey:          testKey,
		OnEvent:             e.events.add,
	}
	for _, m := range mod {
		m(&cfg)
	}
	e.op = devop.Start(t, cfg)
	return e
}

// browser is a user agent with a cookie jar that follows redirects while
// they stay at the OP, and stops at the first redirect that leaves it.
type browser struct {
	t      *testing.T
	op     *devop.OP
	c      *http.Client
	visits []string // OP paths visited, in order
}

func newBrowser(t *testing.T, o *devop.OP) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, op: o, c: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is what the browser ended on.
type page struct {
	status int
	body   string
	// left is set when the OP redirected the browser elsewhere.
	left *url.URL
	// loginForms counts the login forms the browser was shown on the way.
	loginForms int
	header     http.Header
}

func (p page) isLoginForm() bool {
	return (p.status == http.StatusOK || p.status == http.StatusUnauthorized) && strings.Contains(p.body, `name="password"`) && strings.Contains(p.body, `name="authRequestID"`)
}

func (b *browser) visit(method, raw string, form url.Values) page {
	b.t.Helper()
	opURL, _ := url.Parse(b.op.Issuer())
	var p page
	for range 10 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, raw, body)
		if err != nil {
			b.t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		b.visits = append(b.visits, req.URL.Path)
		resp, err := b.c.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p.status, p.body, p.header = resp.StatusCode, string(data), resp.Header
		if p.isLoginForm() {
			p.loginForms++
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return p
		}
		loc, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		if loc.Host != opURL.Host {
			p.left = loc
			return p
		}
		method, raw, form = http.MethodGet, loc.String(), nil
	}
	b.t.Fatal("too many redirects")
	return p
}

// auth describes an authorization request.
type auth struct {
	client   devop.Client
	redirect string // default: the client's first redirect URI
	scope    string // default: the library's default scopes
	state    string
	nonce    string
	verifier string // PKCE S256 verifier; empty: no PKCE
	method   string // override code_challenge_method
	prompt   string
	extra    url.Values
}

func (a *auth) redirectURI() string {
	if a.redirect != "" {
		return a.redirect
	}
	return a.client.RedirectURIs[0]
}

func (a *auth) url(o *devop.OP) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {a.client.ID},
		"redirect_uri":  {a.redirectURI()},
		"scope":         {a.scope},
		"state":         {a.state},
		"nonce":         {a.nonce},
	}
	if a.scope == "" {
		q.Set("scope", "openid profile email offline_access")
	}
	if a.verifier != "" {
		q.Set("code_challenge", s256(a.verifier))
		q.Set("code_challenge_method", "S256")
	}
	if a.method != "" {
		q.Set("code_challenge_method", a.method)
	}
	if a.prompt != "" {
		q.Set("prompt", a.prompt)
	}
	for k, v := range a.extra {
		q[k] = v
	}
	return o.Issuer() + devop.AuthorizePath + "?" + q.Encode()
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var authRequestIDRe = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// submitLogin fills in the login form shown on p.
func (b *browser) submitLogin(p page, email, password string) page {
	b.t.Helper()
	m := authRequestIDRe.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no login form: status %d, body %.300s", p.status, p.body)
	}
	return b.visit(http.MethodPost, b.op.Issuer()+"/login", url.Values{
		"authRequestID": {m[1]}, "username": {email}, "password": {password},
	})
}

// codeFrom checks that p is the OP's successful redirect to a and returns
// the code.
func codeFrom(t *testing.T, p page, a *auth) string {
	t.Helper()
	if p.left == nil {
		t.Fatalf("expected a redirect to the client, got status %d: %.300s", p.status, p.body)
	}
	want, _ := url.Parse(a.redirectURI())
	got := *p.left
	got.RawQuery = ""
	if got.String() != want.String() {
		t.Fatalf("redirected to %s, want %s", got.String(), want)
	}
	q := p.left.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		t.Fatalf("state %q, want %q", q.Get("state"), a.state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", p.left)
	}
	return q.Get("code")
}

// login runs an authorization request that must show the login form, signs
// in, and returns the code.
func (b *browser) login(a *auth, email string) string {
	b.t.Helper()
	p := b.visit(http.MethodGet, a.url(b.op), nil)
	if !p.isLoginForm() {
		b.t.Fatalf("expected the login form, got status %d left=%v: %.300s", p.status, p.left, p.body)
	}
	return codeFrom(b.t, b.submitLogin(p, email, devop.DemoPassword), a)
}

type tokenResponse struct {
	Status           int         `json:"-"`
	Header           http.Header `json:"-"`
	AccessToken      string      `json:"access_token"`
	IDToken          string      `json:"id_token"`
	RefreshToken     string      `json:"refresh_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        int         `json:"expires_in"`
	Scope            string      `json:"scope"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
}

// clientAuth says how a token request authenticates the client.
type clientAuth int

const (
	authPost clientAuth = iota
	authBasic
	authNone
)

func tokenRequest(t *testing.T, o *devop.OP, c devop.Client, how clientAuth, form url.Values) tokenResponse {
	t.Helper()
	return tokenRequestWith(t, o, c, how, form, nil)
}

// tokenRequestWith is tokenRequest with extra request headers (DPoP).
func tokenRequestWith(t *testing.T, o *devop.OP, c devop.Client, how clientAuth, form url.Values, header http.Header) tokenResponse {
	t.Helper()
	form = cloneValues(form)
	switch how {
	case authPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case authNone:
		form.Set("client_id", c.ID)
	}
	req, _ := http.NewRequest(http.MethodPost, o.Issuer()+devop.TokenPath, strings.NewReader(form.Encode()))
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if how == authBasic {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatalf("token response (status %d): %v", resp.StatusCode, err)
	}
	tr.Status = resp.StatusCode
	tr.Header = resp.Header
	return tr
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func exchange(t *testing.T, o *devop.OP, a *auth, code string, how clientAuth) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}}
	if a.verifier != "" {
		form.Set("code_verifier", a.verifier)
	}
	return tokenRequest(t, o, a.client, how, form)
}

func mustTokens(t *testing.T, tr tokenResponse) tokenResponse {
	t.Helper()
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token request failed: %d %s: %s", tr.Status, tr.Error, tr.ErrorDescription)
	}
	return tr
}

func refresh(t *testing.T, o *devop.OP, c devop.Client, how clientAuth, rt string) tokenResponse {
	t.Helper()
	return tokenRequest(t, o, c, how, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// jwt is a verified token.
type jwt struct {
	typ    string
	kid    string
	claims map[string]any
}

func (j jwt) str(name string) string {
	s, _ := j.claims[name].(string)
	return s
}

func (j jwt) num(name string) int64 {
	f, _ := j.claims[name].(float64)
	return int64(f)
}

func (j jwt) strs(name string) []string {
	switch v := j.claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// verify checks the token's RS256 signature with the key the OP publishes at
// its jwks_uri and returns header and claims.
func verify(t *testing.T, o *devop.OP, token string) jwt {
	t.Helper()
	resp, err := http.Get(o.Issuer() + devop.KeysPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse %q: %v", token, err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	if keys[0].Use != "sig" || keys[0].Algorithm != "RS256" {
		t.Fatalf("JWKS key use=%q alg=%q", keys[0].Use, keys[0].Algorithm)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	j := jwt{kid: h.KeyID, claims: map[string]any{}}
	j.typ, _ = h.ExtraHeaders[jose.HeaderType].(string)
	if err := json.Unmarshal(payload, &j.claims); err != nil {
		t.Fatal(err)
	}
	return j
}

// atHash is the at_hash of an RS256 ID token for the access token.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// introspect asks the OP about token, as the docs client.
func introspect(t *testing.T, o *devop.OP, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.Issuer()+devop.IntrospectionPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("docs", "docs-secret") // introspection takes Basic whatever the token endpoint method
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}
