package doctortest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// multiapp is the path of the built command.
var multiapp string

func TestMain(m *testing.M) {
	// zitadel/oidc logs the request errors the tests provoke on purpose.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir, err := os.MkdirTemp("", "doctortest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	multiapp = filepath.Join(dir, "multiapp")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	build := exec.Command(goTool, "build", "-o", multiapp, "github.com/multiapp-go/multiapp/cmd/multiapp")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the multiapp command: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type check struct {
	App, Name, Status, Message, Fix string
}

type report struct {
	OK      bool           `json:"ok"`
	Summary map[string]int `json:"summary"`
	Checks  []check        `json:"checks"`
	out     string
}

// doctor runs `multiapp doctor --json args...` with env as the only
// MULTIAPP_* variables and returns its report and exit status.
func doctor(t *testing.T, env map[string]string, args ...string) (*report, int) {
	t.Helper()
	cmd := exec.Command(multiapp, append([]string{"doctor", "--json"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MULTIAPP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := &report{out: stdout.String()}
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		t.Fatalf("exit %d, not a JSON report: %v\n%s%s", code, err, stdout.String(), stderr.String())
	}
	if r.OK != (code == 0) {
		t.Errorf("ok %v but exit status %d", r.OK, code)
	}
	if strings.Contains(r.out, secret) || strings.Contains(r.out, postSecret) {
		t.Errorf("a secret was printed:\n%s", r.out)
	}
	return r, code
}

// want asserts one check's status and that its message and fix say things.
func (r *report) want(t *testing.T, app, name, status string, says ...string) check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name != name || (app != "" && c.App != app) {
			continue
		}
		if c.Status != status {
			t.Errorf("%s/%s: %s, want %s: %s (fix: %s)", c.App, name, c.Status, status, c.Message, c.Fix)
			return c
		}
		text := c.Message + " | fix: " + c.Fix
		for _, s := range says {
			if !strings.Contains(text, s) {
				t.Errorf("%s/%s %s: %q does not say %q", c.App, name, c.Status, text, s)
			}
		}
		return c
	}
	t.Fatalf("no check %s/%s in\n%s", app, name, r.out)
	return check{}
}

// problems lists the app/name of every WARN and FAIL.
func (r *report) problems() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == "WARN" || c.Status == "FAIL" {
			out = append(out, c.App+"/"+c.Name+"="+c.Status)
		}
	}
	return out
}

const (
	secret     = "web-s3cret: with + and %"
	postSecret = "post-s3cret"
	// The apps are never contacted (except the web app's back-channel
	// endpoint): their ports only have to be registered.
	spaURL    = "http://localhost:8093"
	postURL   = "http://localhost:8094"
	nativeURL = "http://127.0.0.1/callback"
)

// setup starts the dev OP with a web app (client_secret_basic, the
// default, with a real back-channel endpoint), a web app registered for
// client_secret_post, an SPA and a native app.
func setup(t *testing.T) (o *devop.OP, webURL string) {
	// The app's back-channel endpoint, once the OP is there to verify
	// logout tokens with.
	var bc atomic.Pointer[backchannel.Handler]
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := bc.Load()
		if r.URL.Path != "/auth/backchannel-logout" || h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	webURL = strings.Replace(app.URL, "127.0.0.1", "localhost", 1)
	o = devop.Start(t, devop.Config{Clients: []devop.Client{
		{ID: "web", Secret: secret, RedirectURIs: []string{webURL + "/auth/callback"},
			PostLogoutRedirectURIs: []string{webURL + "/"}, BackChannelLogoutURI: webURL + "/auth/backchannel-logout"},
		{ID: "post", Secret: postSecret, AuthMethod: devop.AuthMethodPost, RedirectURIs: []string{postURL + "/auth/callback"},
			PostLogoutRedirectURIs: []string{postURL + "/"}},
		{ID: "spa", RedirectURIs: []string{spaURL + "/auth/callback"}, PostLogoutRedirectURIs: []string{spaURL + "/"}},
		{ID: "cli", Native: true, RedirectURIs: []string{nativeURL}},
	}})
	provider, err := rp.Discover(context.Background(), o.Issuer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: "web", ClientSecret: secret, RedirectURL: webURL + "/auth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	bc.Store(&backchannel.Handler{Verifier: c, Store: tokenstore.NewMemory(tokenstore.MemoryOptions{}), Logger: slog.New(slog.DiscardHandler)})
	return o, webURL
}

func webEnv(o *devop.OP, webURL string) map[string]string {
	return map[string]string{
		"MULTIAPP_ISSUER":                   o.Issuer(),
		"MULTIAPP_CLIENT_ID":                "web",
		"MULTIAPP_CLIENT_SECRET":            secret,
		"MULTIAPP_REDIRECT_URL":             webURL + "/auth/callback",
		"MULTIAPP_POST_LOGOUT_REDIRECT_URL": webURL + "/",
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestDoctorAgainstDevOP: the doctor's verdicts against the project's own
// development OP, which checks the client before the code and enforces
// each client's registered token_endpoint_auth_method, as Ory Hydra does.
func TestDoctorAgainstDevOP(t *testing.T) {
	o, webURL := setup(t)
	env := webEnv(o, webURL)

	t.Run("a correct web app: no FAIL, and no WARN but plain http", func(t *testing.T) {
		r, code := doctor(t, env, "--backchannel")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		if p := r.problems(); len(p) != 1 || p[0] != "web/https=WARN" {
			t.Errorf("problems %v, want only the plain-http WARN", p)
		}
		r.want(t, "web", "auth_method", "OK", "client_secret_basic (the library's default)")
		r.want(t, "web", "authorize", "OK", "are registered", "login_required")
		r.want(t, "web", "post_logout_url", "OK", "is registered")
		r.want(t, "web", "client_auth", "OK", "accepts the secret of client web with client_secret_basic", "deliberately wrong secret got invalid_client")
		r.want(t, "web", "backchannel_url", "OK")
	})

	t.Run("a wrong secret", func(t *testing.T) {
		r, code := doctor(t, with(env, "MULTIAPP_CLIENT_SECRET", "rotated"))
		if code != 1 {
			t.Fatalf("exit %d", code)
		}
		r.want(t, "web", "client_auth", "FAIL", "refuses the secret of client web with both secret methods", "wrong client secret", "registered for client_secret_basic", "set MULTIAPP_CLIENT_SECRET")
	})

	t.Run("a confidential client without its secret", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_CLIENT_SECRET", ""))
		r.want(t, "web", "client_auth", "FAIL", "refuses client web without a secret", "confidential client", "set MULTIAPP_CLIENT_SECRET")
	})

	t.Run("a method the client is not registered for", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_AUTH_METHOD", "client_secret_post"))
		r.want(t, "web", "auth_method", "OK", "client_secret_post, chosen with MULTIAPP_AUTH_METHOD")
		r.want(t, "web", "client_auth", "FAIL", "refuses client_secret_post for client web", "accepts the same secret with client_secret_basic", "MULTIAPP_AUTH_METHOD=client_secret_basic")
	})

	t.Run("a client registered for client_secret_post", func(t *testing.T) {
		post := with(env, "MULTIAPP_CLIENT_ID", "post", "MULTIAPP_CLIENT_SECRET", postSecret,
			"MULTIAPP_REDIRECT_URL", postURL+"/auth/callback", "MULTIAPP_POST_LOGOUT_REDIRECT_URL", postURL+"/")
		// Not chosen: the library detects the method the OP accepts.
		r, code := doctor(t, post)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		r.want(t, "post", "client_auth", "OK", "refuses client_secret_basic for client post", "accepts the secret with client_secret_post", "the library detects it", "MULTIAPP_AUTH_METHOD=client_secret_post skips")
		// Chosen wrong: the app fails, and the doctor names the method.
		r, _ = doctor(t, post, "--auth-method", "client_secret_basic")
		r.want(t, "post", "client_auth", "FAIL", "refuses client_secret_basic for client post", "accepts the same secret with client_secret_post", "--auth-method client_secret_post")
		r, code = doctor(t, post, "--auth-method", "client_secret_post")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		r.want(t, "post", "client_auth", "OK", "with client_secret_post")
		r, _ = doctor(t, with(post, "MULTIAPP_CLIENT_SECRET", "rotated"), "--auth-method", "client_secret_post")
		r.want(t, "post", "client_auth", "FAIL", "refuses the secret of client post")
	})

	t.Run("an SPA", func(t *testing.T) {
		spa := map[string]string{"MULTIAPP_ISSUER": o.Issuer(), "MULTIAPP_CLIENT_ID": "spa",
			"MULTIAPP_REDIRECT_URL": spaURL + "/auth/callback", "MULTIAPP_POST_LOGOUT_REDIRECT_URL": spaURL + "/"}
		r, code := doctor(t, spa)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		r.want(t, "spa", "auth_method", "OK", "none (the library's default)", "public client")
		r.want(t, "spa", "authorize", "OK", "login_required")
		r.want(t, "spa", "client_auth", "OK", "as a public client", "unknown client id got invalid_client")
		// A secret the SPA does not have.
		r, _ = doctor(t, with(spa, "MULTIAPP_CLIENT_SECRET", "made-up"))
		r.want(t, "spa", "client_auth", "FAIL", "refuses")
	})

	t.Run("a native app on a loopback port", func(t *testing.T) {
		r, code := doctor(t, map[string]string{"MULTIAPP_ISSUER": o.Issuer(), "MULTIAPP_CLIENT_ID": "cli",
			"MULTIAPP_REDIRECT_URL": "http://127.0.0.1:53682/callback"})
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.out)
		}
		r.want(t, "cli", "authorize", "OK", "login_required")
	})

	t.Run("an unknown client", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_CLIENT_ID", "webc_from_staging"))
		r.want(t, "webc_from_staging", "authorize", "FAIL", "does not know client webc_from_staging")
		r.want(t, "webc_from_staging", "client_auth", "FAIL", "refuses the secret", "unknown client")
	})

	t.Run("a wrong issuer", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_ISSUER", o.Issuer()+"/"))
		r.want(t, "web", "issuer", "FAIL", "only a trailing slash differs", `set MULTIAPP_ISSUER to exactly "`+o.Issuer()+`"`)
		r.want(t, "web", "authorize", "OK")
	})

	t.Run("the post-logout URL without its trailing slash", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_POST_LOGOUT_REDIRECT_URL", webURL))
		r.want(t, "web", "post_logout_url", "FAIL", "but accepts "+webURL+"/", "set MULTIAPP_POST_LOGOUT_REDIRECT_URL to "+webURL+"/")
	})

	t.Run("problems only", func(t *testing.T) {
		r, _ := doctor(t, env, "-problems-only")
		if len(r.Checks) != 1 || r.Checks[0].Name != "https" || r.Summary["OK"] < 15 {
			t.Errorf("problems only: %s", r.out)
		}
	})
}

// TestRedirectNearMissesAgainstDevOP: each near miss of a registered
// redirect URL is found, and the fix names the registered URL.
func TestRedirectNearMissesAgainstDevOP(t *testing.T) {
	o, webURL := setup(t)
	env := webEnv(o, webURL)
	registered := webURL + "/auth/callback"
	port := webURL[strings.LastIndexByte(webURL, ':')+1:]
	cases := []struct {
		name, configured, addr, says string
	}{
		{"trailing slash", registered + "/", "", "only a trailing slash differs"},
		{"127.0.0.1 instead of localhost", strings.Replace(registered, "localhost", "127.0.0.1", 1), "", "the host differs"},
		{"https instead of http", strings.Replace(registered, "http:", "https:", 1), "", "the scheme differs"},
		{"another port", strings.Replace(registered, ":"+port, ":1", 1), ":" + port, "the port differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := with(env, "MULTIAPP_REDIRECT_URL", tc.configured)
			if tc.addr != "" {
				e["MULTIAPP_ADDR"] = tc.addr
			}
			r, code := doctor(t, e)
			if code != 1 {
				t.Fatalf("exit %d", code)
			}
			c := r.want(t, "web", "authorize", "FAIL", "but it accepts "+registered, tc.says, "is not registered for client")
			if !strings.HasPrefix(c.Fix, "set MULTIAPP_REDIRECT_URL to "+registered+",") {
				t.Errorf("the fix does not name the registered URL: %s", c.Fix)
			}
		})
	}
	t.Run("registered nowhere", func(t *testing.T) {
		r, _ := doctor(t, with(env, "MULTIAPP_REDIRECT_URL", webURL+"/callback"))
		r.want(t, "web", "authorize", "FAIL", "none of its near variants", "Registered: "+registered)
	})
}
