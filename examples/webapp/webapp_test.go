package webapp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
	"github.com/multiapp-go/multiapp/examples/webapp"
)

// app is a web app on a test server, registered at a development OP.
type app struct {
	id  string
	url string
	srv *httptest.Server
	app *webapp.App
}

func (a *app) URL() string { return a.url }

func (a *app) client() devop.Client {
	return devop.Client{
		ID: a.id, Secret: a.id + "-secret",
		RedirectURIs:           []string{a.url + "/auth/callback"},
		PostLogoutRedirectURIs: []string{a.url + "/"},
		BackChannelLogoutURI:   a.url + "/auth/backchannel-logout",
	}
}

// start runs the apps against one development OP, as the demo does.
func start(t *testing.T, mod func(id string, c *webapp.Config), ids ...string) (*devop.OP, map[string]*app) {
	t.Helper()
	apps := map[string]*app{}
	var clients []devop.Client
	for _, id := range ids {
		a := &app{id: id, srv: httptest.NewUnstartedServer(nil)}
		a.url = "http://" + a.srv.Listener.Addr().String()
		apps[id] = a
		clients = append(clients, a.client())
	}
	o := devop.Start(t, devop.Config{Clients: clients, AccessTokenAudience: []string{devop.DemoAPIAudience}})
	for _, id := range ids {
		a := apps[id]
		cfg := webapp.Config{
			Issuer: o.Issuer(), ClientID: id, ClientSecret: id + "-secret",
			RedirectURL: a.url + "/auth/callback", PostLogoutRedirectURL: a.url + "/",
			CookieKey: []byte("0123456789abcdef0123456789abcdef"),
		}
		if mod != nil {
			mod(id, &cfg)
		}
		var err error
		if a.app, err = webapp.New(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		a.srv.Config.Handler = a.app
		a.srv.Start()
		t.Cleanup(func() { a.srv.Close(); a.app.Close() })
	}
	return o, apps
}

func TestMe(t *testing.T) {
	_, apps := start(t, nil, "dashboard")
	a := apps["dashboard"]
	br := testbrowser.New("alice@example.com", devop.DemoPassword)

	// Not signed in, asked as JSON: 401 with a JSON body.
	status, body, err := br.JSON(a.URL() + "/me")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized || !strings.Contains(body, `"error":"login_required"`) {
		t.Errorf("/me as JSON without a session: %d %s", status, body)
	}

	// Not signed in, a browser navigation: a redirect to the login.
	nav := *br.Client
	nav.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nav.Get(a.URL() + "/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/auth/login?return_to=%2Fme" {
		t.Errorf("/me navigation without a session: %d %q", resp.StatusCode, loc)
	}

	// Signed in: the session as JSON.
	p, err := br.Get(a.URL() + "/me")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || p.URL.Path != "/me" || br.LoginForms != 1 {
		t.Fatalf("/me after login: %d %s (%d login forms)", p.Status, p.URL, br.LoginForms)
	}
	var me webapp.Me
	if err := json.Unmarshal([]byte(p.Body), &me); err != nil {
		t.Fatalf("%v: %s", err, p.Body)
	}
	if me.Subject != "usr_alice" || !strings.HasPrefix(me.SessionID, "ses_") || me.Email != "alice@example.com" ||
		!strings.HasPrefix(me.Issuer, "http://127.0.0.1:") || me.App != "dashboard" {
		t.Errorf("/me: %+v", me)
	}
	if strings.Join(me.Roles, ",") != "admin,member" || !strings.Contains(strings.Join(me.Permissions, ","), "dashboard:admin") {
		t.Errorf("/me roles %v permissions %v", me.Roles, me.Permissions)
	}
	if _, err := time.Parse(time.RFC3339, me.AccessTokenExpiry); err != nil {
		t.Errorf("access_token_expires_at %q", me.AccessTokenExpiry)
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if status, _, _ := br.JSON(a.URL() + "/me"); status != 200 {
		t.Errorf("/me as JSON with a session: %d", status)
	}
}

// TestSingleSignOnAndBackChannelLogout: docs signs in without a login form
// (silent SSO on its home page), and signing out on docs signs the
// dashboard out through the OP's back-channel logout.
func TestSingleSignOnAndBackChannelLogout(t *testing.T) {
	o, apps := start(t, nil, "dashboard", "docs")
	dash, docs := apps["dashboard"], apps["docs"]
	br := testbrowser.New("bob@example.com", devop.DemoPassword)

	// The home page tries a silent sign-in first, and stays anonymous.
	p, err := br.Get(dash.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Body, `id="signed-out"`) || br.LoginForms != 0 {
		t.Fatalf("dashboard home without an OP session: %d forms\n%s", br.LoginForms, p.Body)
	}
	if p, err = br.Get(dash.URL() + "/auth/login?return_to=/"); err != nil || !strings.Contains(p.Body, `id="signed-in"`) {
		t.Fatalf("sign in on the dashboard: %v %s", err, p.Body)
	}
	if p, err = br.Get(docs.URL() + "/"); err != nil || !strings.Contains(p.Body, `id="signed-in"`) || !strings.Contains(p.Body, "bob@example.com") {
		t.Fatalf("docs after signing in on the dashboard: %v %s", err, p.Body)
	}
	if br.LoginForms != 1 {
		t.Fatalf("%d login forms, want 1", br.LoginForms)
	}
	if st := o.Stats(); st.Logins != 1 || st.SilentLogins != 1 {
		t.Errorf("OP: %d logins, %d silent", st.Logins, st.SilentLogins)
	}

	// GET logout shows a form; POST signs out everywhere.
	if p, err = br.Get(docs.URL() + "/auth/logout"); err != nil || !strings.Contains(p.Body, `method="post"`) {
		t.Fatalf("GET logout: %v %s", err, p.Body)
	}
	p, err = br.Do(http.MethodPost, docs.URL()+"/auth/logout", url.Values{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Body, `id="signed-out"`) || p.URL.Host != strings.TrimPrefix(docs.URL(), "http://") {
		t.Fatalf("after logout on docs: %s\n%s", p.URL, p.Body)
	}
	if status, _, _ := br.JSON(dash.URL() + "/me"); status != http.StatusUnauthorized {
		t.Errorf("dashboard /me after logout on docs: %d, want 401", status)
	}
	for _, d := range o.Stats().BackChannel {
		if !d.OK() {
			t.Errorf("back-channel delivery failed: %+v", d)
		}
	}
	if n := len(o.Stats().BackChannel); n != 2 {
		t.Errorf("%d back-channel deliveries, want 2", n)
	}
}

// TestHomeCallsTheAPIAsTheUser: with an API URL, the home page calls the
// API's /api/me with the session's access token.
func TestHomeCallsTheAPIAsTheUser(t *testing.T) {
	var got string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sub":"usr_alice","path":"` + r.URL.Path + `"}`))
	}))
	defer api.Close()
	_, apps := start(t, func(id string, c *webapp.Config) { c.APIURL = api.URL; c.Name = "Dashboard" }, "dashboard")
	br := testbrowser.New("alice@example.com", devop.DemoPassword)
	p, err := br.Get(apps["dashboard"].URL() + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "Bearer ey") {
		t.Errorf("API called with Authorization %q", got)
	}
	if !strings.Contains(p.Body, `id="api"`) || !strings.Contains(p.Body, "/api/me") || !strings.Contains(p.Body, "<title>Dashboard</title>") {
		t.Errorf("home page:\n%s", p.Body)
	}
	csp := p.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self' http://127.0.0.1:") {
		t.Errorf("CSP %q", csp)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"MULTIAPP_ISSUER":                   "https://example.scalekit.dev",
		"MULTIAPP_CLIENT_ID":                "skc_1",
		"MULTIAPP_CLIENT_SECRET":            "s3cret",
		"MULTIAPP_REDIRECT_URL":             "http://localhost:8081/auth/callback",
		"MULTIAPP_POST_LOGOUT_REDIRECT_URL": "http://localhost:8081/",
		"MULTIAPP_COOKIE_KEY":               strings.Repeat("ab", 32),
	}
	cfg, addr, err := webapp.ConfigFromEnv(appenv.Map(env))
	if err != nil {
		t.Fatal(err)
	}
	if addr != "localhost:8081" || cfg.ClientSecret != "s3cret" || len(cfg.CookieKey) != 32 || cfg.PostLogoutRedirectURL != "http://localhost:8081/" {
		t.Errorf("%q %+v", addr, cfg)
	}
	if cfg.AuthMethod != "" {
		t.Errorf("AuthMethod %q without %s", cfg.AuthMethod, appenv.AuthMethod)
	}
	env["MULTIAPP_AUTH_METHOD"] = "client_secret_post"
	if cfg, _, _ := webapp.ConfigFromEnv(appenv.Map(env)); cfg.AuthMethod != "client_secret_post" {
		t.Errorf("MULTIAPP_AUTH_METHOD ignored: %q", cfg.AuthMethod)
	}
	env["MULTIAPP_ADDR"] = ":9999"
	if _, addr, _ := webapp.ConfigFromEnv(appenv.Map(env)); addr != ":9999" {
		t.Errorf("MULTIAPP_ADDR ignored: %q", addr)
	}
	env["MULTIAPP_COOKIE_KEY"] = "short"
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), "MULTIAPP_COOKIE_KEY") {
		t.Errorf("short cookie key: %v", err)
	}
	delete(env, "MULTIAPP_ISSUER")
	delete(env, "MULTIAPP_CLIENT_ID")
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), "MULTIAPP_CLIENT_ID, MULTIAPP_ISSUER") {
		t.Errorf("missing variables: %v", err)
	}
}

// TestStartChecksTheClient: at start the app asks the OP whether it accepts
// its credentials (a made-up code, no user needed) and logs what it learnt:
// a warning naming the registered method when the configured one is
// rejected, a warning about the credentials when the secret is wrong, and
// the detected method when none was configured (the sign-in then works).
func TestStartChecksTheClient(t *testing.T) {
	for _, c := range []struct {
		name, method, secret string
		want                 []string
		signIn               bool
	}{
		{"method rejected", "client_secret_basic", "dashboard-secret", []string{"level=WARN", "rejects this client authentication method", "registered=client_secret_post", "MULTIAPP_AUTH_METHOD=client_secret_post"}, false},
		{"wrong secret", "", "not-the-secret", []string{"level=WARN", "rejects this client's credentials"}, false},
		{"detected", "", "dashboard-secret", []string{"level=INFO", "event=client_auth", "auth_method=client_secret_post", "source=detected"}, true},
		{"configured", "client_secret_post", "dashboard-secret", []string{"level=INFO", "auth_method=client_secret_post", "source=config"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			a := &app{id: "dashboard", srv: httptest.NewUnstartedServer(nil)}
			a.url = "http://" + a.srv.Listener.Addr().String()
			reg := a.client()
			reg.AuthMethod = devop.AuthMethodPost
			o := devop.Start(t, devop.Config{Clients: []devop.Client{reg}})
			app, err := webapp.New(context.Background(), webapp.Config{
				Issuer: o.Issuer(), ClientID: a.id, ClientSecret: c.secret, AuthMethod: c.method,
				RedirectURL: a.url + "/auth/callback", CookieKey: []byte("0123456789abcdef0123456789abcdef"),
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			a.srv.Config.Handler = app
			a.srv.Start()
			t.Cleanup(func() { a.srv.Close(); app.Close() })
			for _, w := range c.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs.String())
				}
			}
			if strings.Contains(logs.String(), c.secret) {
				t.Errorf("the secret is in the log")
			}
			br := testbrowser.New("alice@example.com", devop.DemoPassword)
			p, err := br.Get(a.url + "/auth/login?return_to=/")
			if got := err == nil && strings.Contains(p.Body, `id="signed-in"`); got != c.signIn {
				t.Errorf("signed in: %v, want %v (%v)", got, c.signIn, err)
			}
		})
	}
}
