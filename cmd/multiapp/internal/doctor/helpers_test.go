package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

// fakeOP is oidctest's OP (discovery, JWKS) with a scriptable front
// channel: an authorization endpoint that knows registered clients and
// their redirect URIs, as real OPs do, and an end-session endpoint; and a
// token endpoint that authenticates the client before it looks at the code,
// with the method the client is registered for, as Ory Hydra and the dev OP
// do (codeFirst makes it judge the code first instead).
type fakeOP struct {
	*oidctest.OP
	front *httptest.Server

	mu      sync.Mutex
	clients map[string]*fakeClient
	// authorize, when set, answers authorization requests instead.
	authorize http.HandlerFunc
	// noIss leaves RFC 9207 iss out of authorization responses.
	noIss bool
	// loginHop answers every valid authorization request through the OP's
	// own /login page first, as zitadel/oidc (the dev OP) does: only that
	// page answers prompt=none.
	loginHop bool
	// codeFirst makes the token endpoint refuse an unknown code with
	// invalid_grant before it authenticates the client.
	codeFirst bool
	// requests counts authorization requests.
	requests int
}

type fakeClient struct {
	redirects   []string
	postLogouts []string
	// secret is empty for a public client; method is the registered
	// token_endpoint_auth_method (default client_secret_basic with a
	// secret, none without).
	secret, method string
}

func newFakeOP(t *testing.T) *fakeOP {
	f := &fakeOP{OP: oidctest.New(t), clients: map[string]*fakeClient{}}
	f.front = httptest.NewServer(http.HandlerFunc(f.serveFront))
	t.Cleanup(f.front.Close)
	f.SetMeta("authorization_endpoint", f.front.URL+"/oauth/authorize")
	f.SetMeta("end_session_endpoint", f.front.URL+"/oidc/logout")
	f.SetMeta("authorization_response_iss_parameter_supported", true)
	f.SetMeta("scopes_supported", []string{"openid", "profile", "email", "offline_access"})
	f.SetTokenHook(f.token)
	return f
}

// token authenticates the client, then refuses the code: the fake OP
// knows no codes.
func (f *fakeOP) token(form url.Values) (int, any) {
	f.mu.Lock()
	clients, codeFirst := f.clients, f.codeFirst
	f.mu.Unlock()
	invalidGrant := map[string]any{"error": "invalid_grant", "error_description": "unknown code"}
	if codeFirst {
		return 400, invalidGrant
	}
	used, id, secret := "none", form.Get("client_id"), ""
	if bid, ok := form["basic_client_id"]; ok {
		used = "client_secret_basic"
		id, _ = url.QueryUnescape(bid[0])
		secret, _ = url.QueryUnescape(form.Get("basic_client_secret"))
	} else if s, ok := form["client_secret"]; ok {
		used, secret = "client_secret_post", s[0]
	}
	c, ok := clients[id]
	if !ok {
		return 401, map[string]any{"error": "invalid_client", "error_description": "unknown client"}
	}
	want := c.method
	switch {
	case want != "":
	case c.secret == "":
		want = "none"
	default:
		want = "client_secret_basic"
	}
	if used != want {
		return 401, map[string]any{"error": "invalid_client", "error_description": fmt.Sprintf("the client supports client authentication method '%s', but method '%s' was requested", want, used)}
	}
	if secret != c.secret {
		return 401, map[string]any{"error": "invalid_client", "error_description": "client authentication failed"}
	}
	return 400, invalidGrant
}

// register registers a public client.
func (f *fakeOP) register(id string, redirects []string, postLogouts ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = &fakeClient{redirects: redirects, postLogouts: postLogouts}
}

// setSecret makes a registered client confidential, registered for method
// (empty: client_secret_basic).
func (f *fakeOP) setSecret(id, secret, method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id].secret, f.clients[id].method = secret, method
}

func (f *fakeOP) setAuthorize(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorize = h
}

func (f *fakeOP) authorizeRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeOP) serveFront(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	h, noIss, loginHop := f.authorize, f.noIss, f.loginHop
	if r.URL.Path == "/oauth/authorize" {
		f.requests++
	}
	clients := f.clients
	f.mu.Unlock()
	q := r.URL.Query()
	switch r.URL.Path {
	case "/oauth/authorize":
		if h != nil {
			h(w, r)
			return
		}
		c, ok := clients[q.Get("client_id")]
		if !ok {
			writeErrorPage(w, 400, "Unknown client: the client_id is not registered")
			return
		}
		if !slices.Contains(c.redirects, q.Get("redirect_uri")) {
			writeErrorPage(w, 400, "Invalid parameter: redirect_uri")
			return
		}
		if loginHop {
			http.Redirect(w, r, "/login?"+url.Values{"authRequestID": {q.Encode()}}.Encode(), http.StatusFound)
			return
		}
		f.login(w, r, q, noIss)
	case "/login":
		q, err := url.ParseQuery(q.Get("authRequestID"))
		if err != nil || !loginHop {
			http.NotFound(w, r)
			return
		}
		f.login(w, r, q, noIss)
	case "/oidc/logout":
		c, ok := clients[q.Get("client_id")]
		plr := q.Get("post_logout_redirect_uri")
		switch {
		case !ok:
			errorJSON(w, 400, "invalid_client", "unknown client")
		case plr != "" && !slices.Contains(c.postLogouts, plr):
			errorJSON(w, 400, "invalid_request", "post_logout_redirect_uri not registered")
		case plr != "":
			http.Redirect(w, r, plr, http.StatusFound)
		default:
			fmt.Fprint(w, "<p>You are signed out.</p>")
		}
	default:
		http.NotFound(w, r)
	}
}

// login answers an accepted authorization request q without a session: a
// login form, or login_required for prompt=none.
func (f *fakeOP) login(w http.ResponseWriter, r *http.Request, q url.Values, noIss bool) {
	if q.Get("prompt") != "none" {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<form method="post"><input name="login"><input type="password" name="password"></form>`)
		return
	}
	back := url.Values{"error": {"login_required"}, "state": {q.Get("state")}}
	if !noIss {
		back.Set("iss", f.Issuer)
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
}

func writeErrorPage(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><head><title>Error</title><style>p{color:red}</style></head><body><h1>Error</h1><p>%s</p></body></html>", text)
}

func errorJSON(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, desc)
}

const (
	testClient = "webc_app"
	testSecret = "sup3r-s3cret-value"
	appURL     = "http://localhost:8081"
)

// goodApp is an app registered correctly at f.
func goodApp(f *fakeOP) App {
	f.register(testClient, []string{appURL + "/auth/callback"}, appURL+"/")
	f.setSecret(testClient, testSecret, "")
	return App{
		Name: "web", Issuer: f.Issuer, ClientID: testClient, ClientSecret: testSecret,
		RedirectURL: appURL + "/auth/callback", PostLogoutRedirectURL: appURL + "/",
	}
}

func diagnose(t *testing.T, opts Options, apps ...App) *Report {
	t.Helper()
	r := Diagnose(context.Background(), apps, opts)
	if testing.Verbose() {
		var b strings.Builder
		_ = r.WriteText(&b)
		t.Log("\n" + b.String())
	}
	return r
}

// want asserts a check's status and that its message and fix say things.
func want(t *testing.T, r *Report, app, name string, status Status, says ...string) Check {
	t.Helper()
	c, ok := r.Find(app, name)
	if !ok {
		t.Fatalf("no check %q for app %q in %v", name, app, names(r))
	}
	if c.Status != status {
		t.Fatalf("%s: status %s, want %s: %s (fix: %s)", name, c.Status, status, c.Message, c.Fix)
	}
	text := c.Message + " | fix: " + c.Fix
	for _, s := range says {
		if !strings.Contains(text, s) {
			t.Errorf("%s %s: %q does not say %q", name, c.Status, text, s)
		}
	}
	return c
}

func names(r *Report) []string {
	var out []string
	for _, c := range r.Checks {
		out = append(out, c.App+"/"+c.Name+"="+string(c.Status))
	}
	return out
}

// noFailures asserts that nothing failed.
func noFailures(t *testing.T, r *Report) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Status == Fail {
			t.Errorf("unexpected FAIL %s/%s: %s", c.App, c.Name, c.Message)
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
