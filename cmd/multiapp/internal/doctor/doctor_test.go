package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

func TestHealthySetup(t *testing.T) {
	f := newFakeOP(t)
	r := diagnose(t, Options{}, goodApp(f))
	noFailures(t, r)
	for _, name := range []string{"config", "discovery", "clock", "issuer", "endpoints", "end_session", "backchannel_logout", "pkce", "iss_parameter", "revocation", "refresh", "jwks", "redirect_url", "library", "authorize", "post_logout_url", "client_auth"} {
		c, ok := r.Find("web", name)
		if !ok {
			t.Errorf("check %s missing", name)
			continue
		}
		if c.Status != OK && !(name == "https" && c.Status == Warn) {
			t.Errorf("%s: %s %s", name, c.Status, c.Message)
		}
	}
	want(t, r, "web", "authorize", OK, "registered", "login_required")
	want(t, r, "web", "https", Warn, "local development only")
	want(t, r, "web", "client_auth", OK, "client_secret_basic", "invalid_grant")
	if _, ok := r.Find("web", "backchannel_url"); ok {
		t.Error("the back-channel endpoint was checked without being asked")
	}
}

func TestDiscoveryFailures(t *testing.T) {
	f := newFakeOP(t)
	redirecting := httptest.NewServer(http.RedirectHandler(f.Issuer+"/.well-known/openid-configuration", http.StatusMovedPermanently))
	t.Cleanup(redirecting.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	cases := []struct {
		name, issuer string
		says         []string
	}{
		{"not an OP", f.Issuer + "/nothing", []string{"HTTP 404", "no OpenID Provider", "environment URL"}},
		{"redirect", redirecting.URL, []string{"redirects (HTTP 301)", `set MULTIAPP_ISSUER to "` + f.Issuer + `"`}},
		{"nothing listens", closed.URL, []string{"connection refused"}},
		{"no such host", "https://op.invalid", []string{"does not resolve"}},
		{"not a URL", "yourenv.scalekit.com", []string{"not an absolute http(s) URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := goodApp(f)
			app.Issuer = tc.issuer
			r := diagnose(t, Options{Timeout: 5 * time.Second}, app)
			want(t, r, "web", "discovery", Fail, tc.says...)
			if !r.Failed() {
				t.Fatal("report not failed")
			}
			if c, ok := r.Find("web", "authorize"); ok && c.Status != Skip {
				t.Errorf("authorize ran after discovery failed: %+v", c)
			}
		})
	}
}

func TestIssuerMismatch(t *testing.T) {
	f := newFakeOP(t)
	app := goodApp(f)
	app.Issuer = f.Issuer + "/"
	r := diagnose(t, Options{}, app)
	want(t, r, "web", "issuer", Fail, "only a trailing slash differs", `set MULTIAPP_ISSUER to exactly "`+f.Issuer+`"`)
	// The other checks still run, with the OP's issuer.
	want(t, r, "web", "authorize", OK)
	want(t, r, "web", "library", OK)
}

func TestClockSkew(t *testing.T) {
	f := newFakeOP(t)
	cases := []struct {
		offset time.Duration // this machine's clock minus the OP's
		status Status
		says   []string
	}{
		{0, OK, []string{"within"}},
		{3 * time.Second, OK, nil},
		{-25 * time.Second, Warn, []string{"25s behind the OP's", "not synchronised", "NTP"}},
		{25 * time.Second, Warn, []string{"25s ahead of the OP's"}},
		{-2 * time.Minute, Fail, []string{"2m0s behind", "more than the 1m0s the library tolerates", "issued in the future", "NTP"}},
		{10 * time.Minute, Fail, []string{"10m0s ahead of", "look expired early"}},
	}
	for _, tc := range cases {
		t.Run(tc.offset.String(), func(t *testing.T) {
			now := func() time.Time { return time.Now().Add(tc.offset) }
			r := diagnose(t, Options{Now: now}, goodApp(f))
			want(t, r, "web", "clock", tc.status, tc.says...)
		})
	}
	t.Run("a larger tolerance", func(t *testing.T) {
		now := func() time.Time { return time.Now().Add(-2 * time.Minute) }
		r := diagnose(t, Options{Now: now, ClockSkew: 5 * time.Minute}, goodApp(f))
		want(t, r, "web", "clock", Warn, "within the 5m0s tolerance")
	})
}

func TestFeatures(t *testing.T) {
	cases := []struct {
		name   string
		meta   map[string]any
		check  string
		status Status
		says   []string
	}{
		{"no end session", map[string]any{"end_session_endpoint": nil}, "end_session", Warn, []string{"cannot end the shared OP session"}},
		{"no back-channel logout", map[string]any{"backchannel_logout_supported": nil}, "backchannel_logout", Warn, []string{"keep their local sessions"}},
		{"back-channel without sid", map[string]any{"backchannel_logout_session_supported": nil}, "backchannel_logout", OK, []string{"without sid"}},
		{"PKCE plain only", map[string]any{"code_challenge_methods_supported": []string{"plain"}}, "pkce", Fail, []string{"without S256", "enable PKCE S256"}},
		{"PKCE not advertised", map[string]any{"code_challenge_methods_supported": nil}, "pkce", Warn, []string{"sends PKCE S256 anyway"}},
		{"no RFC 9207", map[string]any{"authorization_response_iss_parameter_supported": nil}, "iss_parameter", OK, []string{"checks it when present"}},
		{"no revocation", map[string]any{"revocation_endpoint": nil}, "revocation", Warn, []string{"cannot be revoked"}},
		{"no offline_access", map[string]any{"scopes_supported": []string{"openid", "email"}}, "refresh", Warn, []string{"lacks it", "invalid_scope"}},
		{"no refresh grant", map[string]any{"grant_types_supported": []string{"authorization_code"}}, "refresh", Warn, []string{"lacks refresh_token"}},
		{"no jwks_uri", map[string]any{"jwks_uri": nil}, "endpoints", Fail, []string{"lacks"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOP(t)
			for k, v := range tc.meta {
				f.SetMeta(k, v)
			}
			r := diagnose(t, Options{}, goodApp(f))
			want(t, r, "web", tc.check, tc.status, tc.says...)
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Run("private key published", func(t *testing.T) {
		f := newFakeOP(t)
		srv := jwksServer(t, `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}`)
		f.SetMeta("jwks_uri", srv)
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "jwks", Fail, "secret key material", "hmac (symmetric key)", "rotate")
	})
	t.Run("only weak keys", func(t *testing.T) {
		f := newFakeOP(t)
		// A 1024-bit RSA modulus.
		srv := jwksServer(t, `{"keys":[{"kty":"RSA","kid":"weak","use":"sig","alg":"RS256","e":"AQAB","n":"`+strings.Repeat("x", 171)+`w"}]}`)
		f.SetMeta("jwks_uri", srv)
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "jwks", Fail, "no key the library can verify with")
	})
	t.Run("down", func(t *testing.T) {
		f := newFakeOP(t)
		f.JWKSDown.Store(true)
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "jwks", Fail, "HTTP 503")
	})
	t.Run("an advertised alg without key", func(t *testing.T) {
		f := newFakeOP(t)
		f.SetMeta("id_token_signing_alg_values_supported", []string{"RS256", "ES256"})
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "jwks", OK, "none for [ES256]")
	})
	t.Run("several keys, one encryption key", func(t *testing.T) {
		f := newFakeOP(t)
		f.AddKey(oidctest.NewKey("k2", "ES256"), false)
		f.SetMeta("id_token_signing_alg_values_supported", []string{"RS256", "ES256"})
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "jwks", OK, "2 usable signature keys (k1, k2)")
	})
}

func jwksServer(t *testing.T, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRedirectMismatches: the authorization probe names the difference
// between the configured redirect URL and the one the OP has registered.
func TestRedirectMismatches(t *testing.T) {
	cases := []struct {
		name, registered, configured, addr string
		says                               []string
	}{
		{"trailing slash", appURL + "/auth/callback", appURL + "/auth/callback/", "", []string{"only a trailing slash differs", "set MULTIAPP_REDIRECT_URL to " + appURL + "/auth/callback"}},
		{"http vs https", "https://localhost:8081/auth/callback", appURL + "/auth/callback", "", []string{"the scheme differs (https vs http)"}},
		{"localhost vs 127.0.0.1", "http://127.0.0.1:8081/auth/callback", appURL + "/auth/callback", "", []string{"the host differs (127.0.0.1 vs localhost"}},
		{"port of the app", "http://localhost:8082/auth/callback", appURL + "/auth/callback", ":8082", []string{"the port differs (8082 vs 8081)"}},
		{"explicit default port", "https://app.example.com/auth/callback", "https://app.example.com:443/auth/callback", "", []string{"default port explicitly"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOP(t)
			f.register(testClient, []string{tc.registered})
			app := App{Name: "web", Issuer: f.Issuer, ClientID: testClient, ClientSecret: testSecret, RedirectURL: tc.configured, Addr: tc.addr}
			r := diagnose(t, Options{}, app)
			c := want(t, r, "web", "authorize", Fail, append([]string{"but it accepts " + tc.registered}, tc.says...)...)
			if !strings.Contains(c.Message, "Invalid parameter: redirect_uri") {
				t.Errorf("the OP's own words are not quoted: %s", c.Message)
			}
		})
	}
	t.Run("no near miss registered", func(t *testing.T) {
		f := newFakeOP(t)
		f.register(testClient, []string{"https://elsewhere.example.com/cb"})
		r := diagnose(t, Options{}, App{Name: "web", Issuer: f.Issuer, ClientID: testClient, RedirectURL: appURL + "/auth/callback"})
		want(t, r, "web", "authorize", Fail, "refused the redirect URL", "none of its near variants", "register "+appURL+"/auth/callback exactly")
		if n := f.authorizeRequests(); n > 8 {
			t.Errorf("%d authorization requests: the probe must stay small", n)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		f := newFakeOP(t)
		r := diagnose(t, Options{}, App{Name: "web", Issuer: f.Issuer, ClientID: "webc_other_env", RedirectURL: appURL + "/auth/callback"})
		want(t, r, "web", "authorize", Fail, "does not know client webc_other_env", "another environment")
	})
	t.Run("redirect URL port differs from MULTIAPP_ADDR", func(t *testing.T) {
		f := newFakeOP(t)
		app := goodApp(f)
		app.Addr = "localhost:9000"
		r := diagnose(t, Options{}, app)
		want(t, r, "web", "redirect_url", Warn, "points to port 8081, but the app listens on localhost:9000")
	})
	t.Run("plain http outside localhost", func(t *testing.T) {
		f := newFakeOP(t)
		app := goodApp(f)
		app.RedirectURL = "http://app.example.com/auth/callback"
		r := diagnose(t, Options{}, app)
		want(t, r, "web", "redirect_url", Fail, "plain http outside localhost")
		want(t, r, "web", "library", Fail, "refuses this configuration")
		want(t, r, "web", "authorize", Skip)
	})
}

// TestAuthorizeAnswers: what each kind of answer to the prompt=none probe
// means.
func TestAuthorizeAnswers(t *testing.T) {
	redirectBack := func(params url.Values) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if params.Get("state") == "" {
				params.Set("state", q.Get("state"))
			}
			http.Redirect(w, r, q.Get("redirect_uri")+"?"+params.Encode(), http.StatusFound)
		}
	}
	cases := []struct {
		name   string
		h      http.HandlerFunc
		noIss  bool
		status Status
		says   []string
	}{
		{"interaction_required", redirectBack(url.Values{"error": {"interaction_required"}, "iss": {"ISS"}}), false, OK, []string{"registered", "interaction_required"}},
		{"invalid_scope", redirectBack(url.Values{"error": {"invalid_scope"}, "error_description": {"offline_access not allowed"}, "iss": {"ISS"}}), false, Fail, []string{"refused the login request", "offline_access not allowed", "enable the scopes"}},
		{"unauthorized_client", redirectBack(url.Values{"error": {"unauthorized_client"}, "iss": {"ISS"}}), false, Fail, []string{"unauthorized_client", "not allowed this grant"}},
		{"access_denied", redirectBack(url.Values{"error": {"access_denied"}, "iss": {"ISS"}}), false, Warn, []string{"access_denied"}},
		{"iss missing although advertised", redirectBack(url.Values{"error": {"login_required"}}), false, Fail, []string{"callback would refuse", "iss is missing"}},
		{"wrong iss", redirectBack(url.Values{"error": {"login_required"}, "iss": {"https://other.example.com"}}), false, Fail, []string{"callback would refuse", "https://other.example.com"}},
		{"wrong state", redirectBack(url.Values{"error": {"login_required"}, "state": {"not-ours"}, "iss": {"ISS"}}), false, Fail, []string{"state"}},
		{"code without a session", redirectBack(url.Values{"code": {"c0de"}, "iss": {"ISS"}}), false, OK, []string{"with a code (not redeemed)"}},
		{"login page", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`<html><form><input name=login><input type="password" name=password></form></html>`))
		}, false, Warn, []string{"login page", "ignores prompt=none"}},
		{"JavaScript page", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`<html><body><div id="root"></div><script>render()</script></body></html>`))
		}, false, Warn, []string{"not confirmed"}},
		{"error page with 200", func(w http.ResponseWriter, r *http.Request) {
			writeErrorPage(w, 200, "Something went wrong: error 4711")
		}, false, Fail, []string{"Something went wrong", "not registered for client"}},
		{"OP's own error page by redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/fallbacks/error?error=invalid_request&error_description=The+redirect_uri+does+not+match", http.StatusFound)
		}, false, Fail, []string{"redirected to", "fallbacks/error", "does not match"}},
		{"redirect to an upstream IdP", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://idp.example.com/saml?SAMLRequest=x", http.StatusFound)
		}, false, Warn, []string{"https://idp.example.com/saml", "cannot be confirmed"}},
		{"OP failure", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", 500)
		}, false, Fail, []string{"HTTP 500"}},
		{"JSON error", func(w http.ResponseWriter, r *http.Request) {
			errorJSON(w, 400, "invalid_request", "redirect_uri mismatch")
		}, false, Fail, []string{"invalid_request: redirect_uri mismatch", "none of its near variants"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOP(t)
			app := goodApp(f)
			if tc.h != nil {
				h := tc.h
				f.setAuthorize(func(w http.ResponseWriter, r *http.Request) {
					rec := httptest.NewRecorder()
					h(rec, r)
					if loc := rec.Header().Get("Location"); loc != "" {
						rec.Header().Set("Location", strings.ReplaceAll(loc, "ISS", url.QueryEscape(f.Issuer)))
					}
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes())
				})
			}
			r := diagnose(t, Options{}, app)
			c := want(t, r, "web", "authorize", tc.status, tc.says...)
			if strings.Contains(c.Message, "c0de") {
				t.Error("an authorization code was printed")
			}
		})
	}
}

func TestPostLogoutURL(t *testing.T) {
	f := newFakeOP(t)
	app := goodApp(f)
	app.PostLogoutRedirectURL = appURL // registered with a trailing slash
	r := diagnose(t, Options{}, app)
	want(t, r, "web", "post_logout_url", Fail, "post_logout_redirect_uri not registered", "but accepts "+appURL+"/", "only a trailing slash differs")

	app.PostLogoutRedirectURL = "https://elsewhere.example.com/bye"
	r = diagnose(t, Options{}, app)
	want(t, r, "web", "post_logout_url", Fail, "refuses https://elsewhere.example.com/bye", "register https://elsewhere.example.com/bye exactly")

	app.PostLogoutRedirectURL = "/relative"
	r = diagnose(t, Options{}, app)
	want(t, r, "web", "post_logout_url", Fail, "not an absolute URL")
}

// TestClientAuth: the token endpoint probe tells a wrong secret, a missing
// secret and a method the OP rejects apart wherever the OP's answers allow
// it, and says "inconclusive", never OK, where they do not (an OP that
// judges the code before the client).
func TestClientAuth(t *testing.T) {
	const post, basic = "client_secret_post", "client_secret_basic"
	cases := []struct {
		name string
		// registered is the client's registration at the OP: its secret
		// ("" public) and method.
		secret, method string
		// app is how the app is configured.
		appSecret, appMethod string
		codeFirst            bool
		only                 []string // the OP's token_endpoint_auth_methods_supported
		status               Status
		says                 []string
	}{
		{name: "right secret", secret: testSecret, appSecret: testSecret, status: OK,
			says: []string{"accepts the secret of client " + testClient + " with client_secret_basic", "deliberately wrong secret got invalid_client"}},
		{name: "wrong secret", secret: testSecret, appSecret: "rotated", status: Fail,
			says: []string{"refuses the secret of client " + testClient, "with both secret methods (client_secret_basic: invalid_client: client authentication failed; client_secret_post:", "current secret in this environment"}},
		{name: "registered for post, the library detects it", secret: testSecret, method: post, appSecret: testSecret, status: OK,
			says: []string{"refuses client_secret_basic for client " + testClient, "accepts the secret with client_secret_post", "the library detects it", "MULTIAPP_AUTH_METHOD=client_secret_post skips"}},
		{name: "registered for post, the OP lists basic only: nothing to detect", secret: testSecret, method: post, appSecret: testSecret, only: []string{basic, "none"}, status: Fail,
			says: []string{"refuses client_secret_basic for client " + testClient, "another token endpoint auth method"}},
		{name: "registered for post, chosen post", secret: testSecret, method: post, appSecret: testSecret, appMethod: post, status: OK,
			says: []string{"with client_secret_post"}},
		{name: "registered for basic, chosen post", secret: testSecret, appSecret: testSecret, appMethod: post, status: Fail,
			says: []string{"refuses client_secret_post", "accepts the same secret with client_secret_basic", "MULTIAPP_AUTH_METHOD=client_secret_basic"}},
		{name: "wrong secret and another method", secret: testSecret, method: post, appSecret: "rotated", status: Fail,
			says: []string{"refuses the secret of client " + testClient, "registered for client_secret_post", "current secret"}},
		{name: "the other method not offered, the OP names the method", secret: testSecret, method: post, appSecret: testSecret, only: []string{basic, "none"}, status: Fail,
			says: []string{"refuses client_secret_basic for client " + testClient, "method 'client_secret_post'", "token endpoint auth method"}},
		{name: "the other method not offered, the OP names nothing", secret: testSecret, appSecret: "rotated", only: []string{basic, "none"}, status: Fail,
			says: []string{"refuses the secret of client " + testClient, "client authentication failed"}},
		{name: "confidential client without its secret", secret: testSecret, status: Fail,
			says: []string{"refuses client " + testClient + " without a secret", "confidential client", "set MULTIAPP_CLIENT_SECRET"}},
		{name: "public client", status: OK,
			says: []string{"accepts client " + testClient + " as a public client", "unknown client id got invalid_client"}},
		{name: "code first: right secret", secret: testSecret, appSecret: testSecret, codeFirst: true, status: Warn,
			says: []string{"inconclusive", "deliberately wrong secret got invalid_grant too", "checks the code before the client", "sign in once"}},
		{name: "code first: wrong secret", secret: testSecret, appSecret: "rotated", codeFirst: true, status: Warn,
			says: []string{"inconclusive"}},
		{name: "code first: confidential client without its secret", secret: testSecret, codeFirst: true, status: Warn,
			says: []string{"inconclusive", "unknown client id got invalid_grant too", "set MULTIAPP_CLIENT_SECRET"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOP(t)
			f.codeFirst = tc.codeFirst
			if tc.only != nil {
				f.SetMeta("token_endpoint_auth_methods_supported", tc.only)
			}
			app := goodApp(f)
			if tc.secret == "" {
				f.register(testClient, []string{app.RedirectURL}, app.PostLogoutRedirectURL)
			} else {
				f.setSecret(testClient, tc.secret, tc.method)
			}
			app.ClientSecret, app.AuthMethod = tc.appSecret, tc.appMethod
			r := diagnose(t, Options{}, app)
			want(t, r, "web", "client_auth", tc.status, tc.says...)
		})
	}
}

// TestClientAuthAnswers: token endpoint answers other than invalid_grant
// and invalid_client.
func TestClientAuthAnswers(t *testing.T) {
	cases := []struct {
		name   string
		answer func(url.Values) (int, any)
		status Status
		says   []string
	}{
		{"grant not enabled", func(url.Values) (int, any) {
			return 400, map[string]any{"error": "unauthorized_client"}
		}, Fail, []string{"may not use the authorization code grant"}},
		{"token endpoint down", func(url.Values) (int, any) { return 503, "<html>down</html>" }, Fail, []string{"did not answer properly"}},
		{"something else", func(url.Values) (int, any) {
			return 400, map[string]any{"error": "invalid_request", "error_description": "odd"}
		}, Warn, []string{"not confirmed"}},
		{"a made-up code redeemed", func(url.Values) (int, any) {
			return 200, map[string]any{"access_token": "x", "token_type": "Bearer"}
		}, Fail, []string{"redeemed a made-up code"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOP(t)
			var form url.Values
			f.SetTokenHook(func(v url.Values) (int, any) {
				form = v
				return tc.answer(v)
			})
			r := diagnose(t, Options{}, goodApp(f))
			want(t, r, "web", "client_auth", tc.status, tc.says...)
			if form.Get("code") != "multiapp-doctor-made-up-code" {
				t.Errorf("the probe sent code %q", form.Get("code"))
			}
		})
	}
}

// TestAuthMethodLine: the doctor says which method the library uses and
// why.
func TestAuthMethodLine(t *testing.T) {
	cases := []struct {
		name, secret, method, from string
		only                       []string
		says                       []string
	}{
		{"default", testSecret, "", "", nil, []string{"client_secret_basic (the library's default): the OP lists client_secret_basic", "MULTIAPP_AUTH_METHOD chooses another"}},
		{"chosen", testSecret, "client_secret_post", "MULTIAPP_AUTH_METHOD", nil, []string{"client_secret_post, chosen with MULTIAPP_AUTH_METHOD"}},
		{"chosen by the apps file", testSecret, "client_secret_post", `"auth_method" in the apps file`, nil, []string{`chosen with "auth_method" in the apps file`}},
		{"basic not listed", testSecret, "", "", []string{"client_secret_post"}, []string{"client_secret_post (the library's default)", "not client_secret_basic"}},
		{"public", "", "", "", nil, []string{"none (the library's default)", "public client"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOP(t)
			if tc.only != nil {
				f.SetMeta("token_endpoint_auth_methods_supported", tc.only)
			}
			app := goodApp(f)
			app.ClientSecret, app.AuthMethod, app.AuthMethodFrom = tc.secret, tc.method, tc.from
			r := diagnose(t, Options{}, app)
			want(t, r, "web", "auth_method", OK, tc.says...)
		})
	}
}

func TestNeverPrintsSecrets(t *testing.T) {
	f := newFakeOP(t)
	app := goodApp(f)
	app.ClientSecret = "wr0ng-" + testSecret
	f.SetTokenHook(func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} })
	r := diagnose(t, Options{}, app)
	var text, js bytes.Buffer
	_ = r.WriteText(&text)
	_ = r.WriteJSON(&js)
	for _, out := range []string{text.String(), js.String()} {
		if strings.Contains(out, testSecret) {
			t.Fatalf("the secret was printed:\n%s", out)
		}
	}
}

// jsonShape is what --json prints.
type jsonShape struct {
	OK      bool
	Summary map[string]int
	Checks  []Check
}

// written returns the report as text and as decoded JSON.
func written(t *testing.T, r *Report) (string, jsonShape) {
	t.Helper()
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got jsonShape
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	return text.String(), got
}

func TestReportFormats(t *testing.T) {
	r := &Report{Checks: []Check{
		{App: "a", Name: "discovery", Status: OK, Message: "fine"},
		{App: "a", Name: "authorize", Status: Fail, Message: "bad\nnews", Fix: "do this"},
		{App: "b", Name: "clock", Status: Warn, Message: "drifting", Fix: "ntp"},
		{Name: "shared_issuer", Status: OK, Message: "one issuer"},
	}}
	text, got := written(t, r)
	wantText := `== a
OK    discovery      fine
FAIL  authorize      bad news
                     fix: do this
== b
WARN  clock          drifting
                     fix: ntp
== across apps
OK    shared_issuer  one issuer
1 FAIL, 1 WARN, 2 OK
`
	if text != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", text, wantText)
	}
	if got.OK || got.Summary["FAIL"] != 1 || got.Summary["OK"] != 2 || len(got.Checks) != 4 || got.Checks[1].Fix != "do this" {
		t.Errorf("json: %+v", got)
	}
	if !r.Failed() {
		t.Error("not failed")
	}
}

func TestProblemsOnly(t *testing.T) {
	r := &Report{Checks: []Check{
		{App: "a", Name: "discovery", Status: OK, Message: "fine"},
		{App: "a", Name: "authorize", Status: Fail, Message: "bad", Fix: "do this"},
		{App: "b", Name: "clock", Status: OK, Message: "fine"},
		{App: "b", Name: "jwks", Status: Skip, Message: "not run"},
		{Name: "client_ids", Status: Warn, Message: "shared", Fix: "register each"},
	}}
	p := r.Problems()
	text, got := written(t, p)
	wantText := `== a
FAIL  authorize   bad
                  fix: do this
== across apps
WARN  client_ids  shared
                  fix: register each
1 FAIL, 1 WARN, 2 OK, 1 SKIP
`
	if text != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", text, wantText)
	}
	if got.OK || got.Summary["OK"] != 2 || got.Summary["SKIP"] != 1 || len(got.Checks) != 2 {
		t.Errorf("json: %+v", got)
	}
	if !p.Failed() || len(r.Checks) != 5 {
		t.Error("Problems changed the report or lost the failure")
	}
	if text, _ := written(t, (&Report{Checks: r.Checks[:1]}).Problems()); text != "0 FAIL, 1 OK\n" {
		t.Errorf("no problems: %q", text)
	}
}

func TestPartialConfigurations(t *testing.T) {
	f := newFakeOP(t)
	t.Run("an API without redirect URL", func(t *testing.T) {
		r := diagnose(t, Options{}, App{Name: "api", Issuer: f.Issuer, ClientID: "api_orders"})
		noFailures(t, r)
		want(t, r, "api", "redirect_url", Skip)
		want(t, r, "api", "authorize", Skip, "no redirect URL")
		want(t, r, "api", "client_auth", Skip, "redeems no codes")
		want(t, r, "api", "jwks", OK)
	})
	t.Run("no client id: the OP only", func(t *testing.T) {
		r := diagnose(t, Options{}, App{Issuer: f.Issuer, RedirectURL: appURL + "/auth/callback"})
		want(t, r, "app", "config", Fail, "no client id", "MULTIAPP_CLIENT_ID")
		want(t, r, "app", "discovery", OK)
		want(t, r, "app", "library", Skip)
		want(t, r, "app", "authorize", Skip, "no client id")
	})
	t.Run("the back-channel endpoint is checked even when discovery fails", func(t *testing.T) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
		defer app.Close()
		r := diagnose(t, Options{}, App{Name: "web", Issuer: f.Issuer + "/nothing", ClientID: testClient, RedirectURL: app.URL + "/auth/callback", CheckBackchannel: true})
		want(t, r, "web", "discovery", Fail)
		want(t, r, "web", "backchannel_url", Fail, "ACCEPTED")
	})
}

func TestPageText(t *testing.T) {
	cases := []struct{ body, want string }{
		{`<html><head><title>Error</title><script>var secret=1</script></head><body><h1>Error</h1><p>Bad &amp; sad</p></body></html>`, "Error Bad & sad"},
		{`<dl><dt>error</dt><dd>invalid_client</dd><dt>error_description</dt><dd>client is invalid</dd><dt>state</dt><dd>ST4TE</dd></dl>`, "invalid_client: client is invalid"},
		{`<p>state ST4TE was refused</p>`, "state … was refused"},
		{strings.Repeat("word ", 100), strings.Repeat("word ", 1)[:4]},
	}
	var long []string
	for i := range 100 {
		long = append(long, fmt.Sprintf("word%03d", i))
	}
	text := strings.Join(long, " ")
	cases = append(cases, struct{ body, want string }{text, text[:240] + "…"})
	for _, tc := range cases {
		if got := pageText([]byte(tc.body), "ST4TE"); got != tc.want {
			t.Errorf("pageText(%.40q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestHopsOnTheOPsOrigin: an OP may answer an authorization request through
// its own pages first (the dev OP, on zitadel/oidc, sends every request to
// its /login page, which alone answers prompt=none). The doctor follows
// those hops, never a redirect elsewhere, and never forever.
func TestHopsOnTheOPsOrigin(t *testing.T) {
	t.Run("a correct app is OK", func(t *testing.T) {
		f := newFakeOP(t)
		f.loginHop = true
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "authorize", OK, "are registered", "login_required")
	})
	t.Run("a trailing slash: the fix names the registered URL", func(t *testing.T) {
		f := newFakeOP(t)
		f.loginHop = true
		app := goodApp(f)
		app.RedirectURL += "/"
		r := diagnose(t, Options{}, app)
		c := want(t, r, "web", "authorize", Fail, "but it accepts "+appURL+"/auth/callback", "only a trailing slash differs")
		if !strings.HasPrefix(c.Fix, "set MULTIAPP_REDIRECT_URL to "+appURL+"/auth/callback,") {
			t.Errorf("fix %q does not name the registered URL first", c.Fix)
		}
	})
	t.Run("a redirect loop on the OP is bounded", func(t *testing.T) {
		f := newFakeOP(t)
		f.setAuthorize(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		})
		r := diagnose(t, Options{}, goodApp(f))
		want(t, r, "web", "authorize", Warn, "cannot be confirmed")
		if n := f.authorizeRequests(); n > 3*(maxHops+1) {
			t.Errorf("%d authorization requests", n)
		}
	})
}
