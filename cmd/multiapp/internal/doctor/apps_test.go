package doctor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/rp"
)

// TestBackchannel: the app's back-channel endpoint must be reachable and
// answer 400 to a logout token with a forged signature.
func TestBackchannel(t *testing.T) {
	f := newFakeOP(t)
	provider, err := rp.Discover(context.Background(), f.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := provider.Client(rp.Config{ClientID: testClient})
	if err != nil {
		t.Fatal(err)
	}
	// A correct receiver: rp.VerifyLogoutToken, 400 on failure.
	correct := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.WriteHeader(405)
			return
		}
		if _, err := verifier.VerifyLogoutToken(r.Context(), r.PostFormValue("logout_token")); err != nil {
			var ve *rp.ValidationError
			if !errors.As(err, &ve) || ve.Code != rp.CodeSignature {
				t.Errorf("the forged token should fail on its signature only, got %v", err)
			}
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
	}
	cases := []struct {
		name   string
		h      http.HandlerFunc
		status Status
		says   []string
	}{
		{"correct", correct, OK, []string{"refuses a logout token with a forged signature (HTTP 400)"}},
		{"no Cache-Control", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }, Warn, []string{"Cache-Control: no-store"}},
		{"accepts anything", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }, Fail, []string{"ACCEPTED", "rp.VerifyLogoutToken"}},
		{"behind a login middleware", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/auth/login", http.StatusFound)
		}, Fail, []string{"redirects (HTTP 302 to /auth/login)", "not behind a login-required middleware"}},
		{"CSRF protection", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "CSRF token missing", 403) }, Fail, []string{"HTTP 403", "exempt the back-channel route from CSRF"}},
		{"no route", http.NotFound, Fail, []string{"HTTP 404", "/auth/backchannel-logout"}},
		{"GET only", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(405) }, Fail, []string{"does not accept POST"}},
		{"crashes", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, Fail, []string{"HTTP 500", "failed delivery"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				path string
			)
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				path = r.URL.Path
				mu.Unlock()
				tc.h(w, r)
			}))
			defer app.Close()
			a := goodApp(f)
			a.RedirectURL = app.URL + "/auth/callback"
			a.CheckBackchannel = true
			f.register(testClient, []string{a.RedirectURL}, a.PostLogoutRedirectURL)
			r := diagnose(t, Options{}, a)
			want(t, r, "web", "backchannel_url", tc.status, tc.says...)
			mu.Lock()
			defer mu.Unlock()
			if path != DefaultBackchannelPath {
				t.Errorf("probed %q, want the default route derived from the redirect URL", path)
			}
		})
	}
	t.Run("explicit URL, unreachable", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		a := goodApp(f)
		a.BackchannelURL = closed.URL + "/bcl"
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "backchannel_url", Fail, "not reachable from this machine", "connection refused")
	})
	t.Run("a hosted OP cannot reach localhost", func(t *testing.T) {
		run := &appRun{issuer: "https://yourenv.scalekit.com"}
		for u, reachable := range map[string]bool{"http://localhost:8081": false, "http://10.0.0.5": false, "https://app.example.com": true} {
			tu := mustParse(t, u)
			if got := run.reachableByOP(tu) == ""; got != reachable {
				t.Errorf("%s: reachable %v, want %v", u, got, reachable)
			}
		}
	})
}

func TestLoadApps(t *testing.T) {
	env := map[string]string{"DASH_SECRET": "s1"}
	getenv := func(k string) string { return env[k] }
	apps, err := LoadApps(strings.NewReader(`{
		"issuer": "https://env.example.com",
		"apps": [
			{"name": "dashboard", "client_id": "webc_1", "client_secret_env": "DASH_SECRET",
			 "redirect_url": "https://dash.example.com/auth/callback", "backchannel": true},
			{"client_id": "spac_2", "redirect_url": "https://spa.example.com/cb", "issuer": "https://other.example.com"},
			{"name": "api", "client_id": "api_3", "client_secret_env": "UNSET"}
		]}`), getenv, "https://default.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 3 || apps[0].Name != "dashboard" || apps[0].ClientSecret != "s1" || !apps[0].CheckBackchannel ||
		apps[0].Issuer != "https://env.example.com" || apps[1].Name != "spac_2" || apps[1].Issuer != "https://other.example.com" ||
		apps[2].SecretEnv != "UNSET" || apps[2].ClientSecret != "" {
		t.Fatalf("%+v", apps)
	}
	apps, err = LoadApps(strings.NewReader(`[{"client_id": "a"}]`), getenv, "https://default.example.com")
	if err != nil || len(apps) != 1 || apps[0].Issuer != "https://default.example.com" {
		t.Fatalf("bare array: %+v %v", apps, err)
	}
	for in, says := range map[string]string{
		`{"apps": [{"client_id": "a", "client_secret": "x"}]}`: "keep secrets out of files",
		`{"apps": [{"client_id": "a", "redirect_uri": "x"}]}`:  `unknown field "redirect_uri"`,
		`{"apps": []}`:              "lists no apps",
		`{"apps": [{"name": "x"}]}`: "has no client_id",
		`{"apps": [{"client_id": "a"}, {"client_id": "a"}]}`: `two apps are named "a"`,
		`not json`: "not valid JSON",
		`{"apps": [{"client_id": "a", "name": "n"}, {"name": "n", "client_id": "b"}]}`: `two apps are named "n"`,
	} {
		if _, err := LoadApps(strings.NewReader(in), getenv, ""); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: got %v, want it to say %q", in, err, says)
		}
	}
}

// TestSeveralApps: apps share a session only at one issuer.
func TestSeveralApps(t *testing.T) {
	f := newFakeOP(t)
	other := newFakeOP(t) // another OP environment
	web := goodApp(f)
	spa := App{Name: "spa", Issuer: f.Issuer, ClientID: "spac_2", RedirectURL: "http://localhost:8082/auth/callback"}
	f.register("spac_2", []string{spa.RedirectURL})

	r := diagnose(t, Options{}, web, spa)
	noFailures(t, r)
	want(t, r, "", "shared_issuer", OK, "all 2 apps use issuer "+f.Issuer)
	want(t, r, "", "client_ids", OK)
	want(t, r, "", "cookies", OK, "web on localhost:8081, spa on localhost:8082 share the cookies of host localhost", "after its client id")
	// The OP's checks are not repeated for the second app of the same OP.
	want(t, r, "spa", "op", Warn, "the same OP as web", "11 checks", "see the checks of web")
	if _, ok := r.Find("spa", "jwks"); ok {
		t.Error("the OP's checks were repeated")
	}
	want(t, r, "spa", "authorize", OK)

	stray := App{Name: "admin", Issuer: other.Issuer, ClientID: "webc_admin", RedirectURL: "https://admin.example.com/auth/callback"}
	other.register("webc_admin", []string{stray.RedirectURL})
	r = diagnose(t, Options{}, web, spa, stray)
	want(t, r, "", "shared_issuer", Fail, "2 issuers", "(web, spa)", "(admin)", "cannot share a sign-in session", `exactly the same issuer (e.g. "`+f.Issuer+`")`)
	if c, _ := r.Find("admin", "authorize"); c.Status != OK {
		t.Errorf("the stray app itself is fine: %+v", c)
	}

	slash := spa
	slash.Issuer = f.Issuer + "/"
	r = diagnose(t, Options{}, web, slash)
	want(t, r, "", "shared_issuer", Fail, "only a trailing slash differs")
	want(t, r, "spa", "issuer", Fail, "only a trailing slash differs")

	twin := spa
	twin.Name, twin.ClientID = "spa2", testClient
	r = diagnose(t, Options{}, web, twin)
	want(t, r, "", "client_ids", Warn, testClient+" (web, spa2)", "register each app as its own client")
}
