package spa_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/spa"
)

func serve(t *testing.T, cfg spa.Config) *httptest.Server {
	t.Helper()
	h, err := spa.Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestStaticFilesWithAStrictCSP(t *testing.T) {
	srv := serve(t, spa.Config{
		Issuer: "http://127.0.0.1:9000", ClientID: "spa",
		RedirectURL: "http://localhost:8083/auth/callback", PostLogoutRedirectURL: "http://localhost:8083/",
		APIURL: "http://localhost:8084",
	})
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `<script src="/app.js" defer></script>`},
		{"/auth/callback", "text/html", `id="signed-in"`},
		{"/app.js", "text/javascript", "code_challenge_method"},
		{"/style.css", "text/css", ".card"},
		{"/config.json", "application/json", `"client_id":"spa"`},
	} {
		resp, body := get(t, srv.URL+c.path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{
			"default-src 'none'", "script-src 'self';", "style-src 'self';",
			"connect-src 'self' http://127.0.0.1:9000 http://localhost:8084;",
			"base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'",
		} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", c.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows unsafe code: %q", c.path, csp)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", c.path, resp.Header)
		}
	}
	// No inline script or style anywhere: the CSP would block it.
	_, page := get(t, srv.URL+"/")
	if strings.Contains(page, "<script>") || strings.Contains(page, "<style") || strings.Contains(page, " style=") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("index.html has inline code")
	}
	if resp, _ := get(t, srv.URL+"/secret.txt"); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	_, conf := get(t, srv.URL+"/config.json")
	var c map[string]any
	if err := json.Unmarshal([]byte(conf), &c); err != nil {
		t.Fatal(err)
	}
	if c["issuer"] != "http://127.0.0.1:9000" || c["redirect_uri"] != "http://localhost:8083/auth/callback" || c["api_url"] != "http://localhost:8084" ||
		!strings.Contains(conf, `"offline_access"`) {
		t.Errorf("config.json: %s", conf)
	}
	if strings.Contains(conf, "secret") {
		t.Errorf("config.json mentions a secret: %s", conf)
	}
}

// TestTheOPLetsTheSPACallItsTokenEndpoint: the SPA exchanges its code and
// refreshes from the browser, a cross-origin POST, so the OP must answer
// CORS for the SPA's origin.
func TestTheOPLetsTheSPACallItsTokenEndpoint(t *testing.T) {
	o := devop.Start(t, devop.Config{})
	req, _ := http.NewRequest(http.MethodOptions, o.Issuer()+devop.TokenPath, nil)
	req.Header.Set("Origin", "http://localhost:8083")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:8083" {
		t.Errorf("preflight: Access-Control-Allow-Origin %q (status %d)", got, resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, o.Issuer()+devop.TokenPath, strings.NewReader("grant_type=refresh_token&refresh_token=x&client_id=spa"))
	req.Header.Set("Origin", "http://localhost:8083")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:8083" || resp.StatusCode != 400 {
		t.Errorf("token POST: %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"MULTIAPP_ISSUER":       "https://example.scalekit.dev",
		"MULTIAPP_CLIENT_ID":    "spac_1",
		"MULTIAPP_REDIRECT_URL": "http://localhost:8083/auth/callback",
		"MULTIAPP_API_URL":      "http://localhost:8084",
	}
	cfg, addr, err := spa.ConfigFromEnv(appenv.Map(env))
	if err != nil || addr != "localhost:8083" || cfg.APIURL != "http://localhost:8084" {
		t.Fatalf("%v %q %+v", err, addr, cfg)
	}
	env["MULTIAPP_CLIENT_SECRET"] = "s3cret"
	if _, _, err := spa.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), "public client") {
		t.Errorf("a secret is refused: %v", err)
	}
}
