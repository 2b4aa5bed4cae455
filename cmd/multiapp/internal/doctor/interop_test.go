package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
)

// TestInteropNodeOIDCProvider runs the doctor against node-oidc-provider
// 9.13.3 with correctly and incorrectly configured apps: what it reports
// must be what a real, spec-faithful OP does.
func TestInteropNodeOIDCProvider(t *testing.T) {
	// The web app's back-channel endpoint, validating with the library.
	var verifier atomic.Pointer[rp.Client]
	var delivered atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != DefaultBackchannelPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if _, err := verifier.Load().VerifyLogoutToken(r.Context(), r.PostFormValue("logout_token")); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		delivered.Add(1)
	}))
	t.Cleanup(app.Close)
	web := App{
		Name: "web", ClientID: "webc_web", ClientSecret: "web-secret",
		RedirectURL: app.URL + "/auth/callback", PostLogoutRedirectURL: app.URL + "/",
		CheckBackchannel: true,
	}
	spa := App{Name: "spa", ClientID: "spac_spa", RedirectURL: "http://localhost:8082/auth/callback"}
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{
			{ID: web.ClientID, Secret: web.ClientSecret, AuthMethod: "client_secret_basic",
				RedirectURIs: []string{web.RedirectURL}, PostLogoutRedirectURIs: []string{web.PostLogoutRedirectURL},
				BackchannelLogoutURI: app.URL + DefaultBackchannelPath},
			{ID: spa.ClientID, AuthMethod: "none", RedirectURIs: []string{spa.RedirectURL}},
		},
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
	})
	web.Issuer, spa.Issuer = op.Issuer, op.Issuer
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: web.ClientID, ClientSecret: web.ClientSecret, RedirectURL: web.RedirectURL, PostLogoutRedirectURL: web.PostLogoutRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	verifier.Store(c)

	t.Run("correctly registered apps", func(t *testing.T) {
		r := diagnose(t, Options{}, web, spa)
		noFailures(t, r)
		for _, name := range []string{"discovery", "clock", "issuer", "end_session", "backchannel_logout", "pkce", "iss_parameter", "revocation", "refresh", "jwks", "library"} {
			want(t, r, "web", name, OK)
		}
		want(t, r, "web", "authorize", OK, "are registered", "login_required")
		want(t, r, "web", "post_logout_url", OK)
		want(t, r, "web", "auth_method", OK, "client_secret_basic (the library's default)")
		want(t, r, "web", "client_auth", OK, "client_secret_basic", "deliberately wrong secret got invalid_client")
		want(t, r, "web", "backchannel_url", OK, "HTTP 400")
		want(t, r, "spa", "authorize", OK)
		want(t, r, "spa", "client_auth", OK, "public client", "unknown client id got invalid_client")
		want(t, r, "", "shared_issuer", OK)
	})

	t.Run("redirect URL with a trailing slash", func(t *testing.T) {
		a := web
		a.RedirectURL += "/"
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "authorize", Fail, "invalid_redirect_uri", "but it accepts "+web.RedirectURL, "only a trailing slash differs", "set MULTIAPP_REDIRECT_URL to "+web.RedirectURL)
	})

	t.Run("redirect URL on 127.0.0.1 instead of localhost", func(t *testing.T) {
		a := spa
		a.RedirectURL = strings.Replace(spa.RedirectURL, "localhost", "127.0.0.1", 1)
		r := diagnose(t, Options{}, a)
		want(t, r, "spa", "authorize", Fail, "but it accepts "+spa.RedirectURL, "the host differs (localhost vs 127.0.0.1")
	})

	t.Run("redirect URL registered nowhere", func(t *testing.T) {
		a := spa
		a.RedirectURL = "http://localhost:8082/callback"
		r := diagnose(t, Options{}, a)
		want(t, r, "spa", "authorize", Fail, "invalid_redirect_uri", "none of its near variants")
	})

	t.Run("client of another environment", func(t *testing.T) {
		a := spa
		a.ClientID = "spac_from_staging"
		r := diagnose(t, Options{}, a)
		want(t, r, "spa", "authorize", Fail, "does not know client spac_from_staging", "invalid_client")
	})

	t.Run("wrong issuer", func(t *testing.T) {
		for _, tc := range []struct{ issuer, says string }{
			{op.Issuer + "/", "only a trailing slash differs"},
			{strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1), "the host differs (localhost vs 127.0.0.1"},
		} {
			a := web
			a.Issuer = tc.issuer
			r := diagnose(t, Options{}, a)
			want(t, r, "web", "issuer", Fail, tc.says, `set MULTIAPP_ISSUER to exactly "`+op.Issuer+`"`)
			want(t, r, "web", "authorize", OK) // the rest is checked with the OP's issuer
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		a := web
		a.ClientSecret = "rotated"
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "client_auth", Fail, "refuses the secret of client webc_web", "invalid_client")
	})

	t.Run("a method the client is not registered for", func(t *testing.T) {
		// The fixture enforces the registered method, as Hydra does.
		a := web
		a.AuthMethod = "client_secret_post"
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "auth_method", OK, "client_secret_post, chosen with MULTIAPP_AUTH_METHOD")
		want(t, r, "web", "client_auth", Fail, "refuses client_secret_post for client webc_web", "accepts the same secret with client_secret_basic", "MULTIAPP_AUTH_METHOD=client_secret_basic")
	})

	t.Run("a client registered for client_secret_post, the library's default", func(t *testing.T) {
		a := App{Name: "post", Issuer: op.Issuer, ClientID: "webc_post", ClientSecret: "post-secret", RedirectURL: "http://localhost:8086/auth/callback"}
		if err := op.AddClient(nodeop.Client{ID: a.ClientID, Secret: a.ClientSecret, AuthMethod: "client_secret_post", RedirectURIs: []string{a.RedirectURL}}); err != nil {
			t.Fatal(err)
		}
		r := diagnose(t, Options{}, a)
		want(t, r, "post", "client_auth", OK, "registered for client_secret_post", "the library detects it")
		a.ClientSecret = "rotated"
		r = diagnose(t, Options{}, a)
		want(t, r, "post", "client_auth", Fail, "refuses the secret of client webc_post with both secret methods")
	})

	t.Run("confidential client without its secret", func(t *testing.T) {
		a := web
		a.ClientSecret = ""
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "client_auth", Fail, "without a secret", "confidential")
	})

	t.Run("post-logout URL not registered", func(t *testing.T) {
		a := web
		a.PostLogoutRedirectURL = app.URL
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "post_logout_url", Fail, "post_logout_redirect_uri not registered", "but accepts "+web.PostLogoutRedirectURL)
	})

	t.Run("skewed clock", func(t *testing.T) {
		for _, tc := range []struct {
			offset time.Duration
			status Status
			says   string
		}{
			{-3 * time.Minute, Fail, "3m0s behind the OP's"},
			{3 * time.Minute, Fail, "3m0s ahead of the OP's"},
			{20 * time.Second, Warn, "20s ahead of the OP's"},
		} {
			now := func() time.Time { return time.Now().Add(tc.offset) }
			r := diagnose(t, Options{Now: now}, web)
			want(t, r, "web", "clock", tc.status, tc.says, "NTP")
		}
	})

	t.Run("an app at another OP", func(t *testing.T) {
		other := nodeop.Start(t, nodeop.Config{Clients: []nodeop.Client{{ID: "webc_admin", AuthMethod: "none", RedirectURIs: []string{"http://localhost:8083/auth/callback"}}}})
		admin := App{Name: "admin", Issuer: other.Issuer, ClientID: "webc_admin", RedirectURL: "http://localhost:8083/auth/callback"}
		r := diagnose(t, Options{}, web, spa, admin)
		want(t, r, "", "shared_issuer", Fail, "2 issuers", "(web, spa)", "(admin)", "cannot share a sign-in session")
		want(t, r, "admin", "authorize", OK)
	})

	t.Run("token decode of a real ID token", func(t *testing.T) {
		b := nodeop.NewBrowser(t, "alice@example.test", "pw")
		tokens := b.SignIn(t, c, "/auth/callback")
		opts := TokenOptions{Issuer: op.Issuer, ClientID: web.ClientID}
		rep := decode(t, tokens.IDToken, opts)
		if rep.Kind != KindID {
			t.Errorf("kind %q", rep.Kind)
		}
		wantToken(t, rep, "verify", OK, "accepts this ID token")

		behind := opts
		behind.Now = func() time.Time { return time.Now().Add(-5 * time.Minute) }
		wantToken(t, decode(t, tokens.IDToken, behind), "verify", Fail, "in the future", "clock is behind the OP's")

		spaOpts := opts
		spaOpts.ClientID = spa.ClientID
		wantToken(t, decode(t, tokens.IDToken, spaOpts), "verify", Fail, "another app than client spac_spa")

		// The endpoint that refused the doctor's forged token takes the
		// OP's real one.
		endURL, err := c.EndSessionURL(tokens.IDToken, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Navigate(endURL, func(u *url.URL) bool { return strings.HasPrefix(u.String(), app.URL) }); err != nil {
			t.Fatal(err)
		}
		if ev := op.BackchannelLogouts(); len(ev) != 1 || !ev[0].OK || delivered.Load() != 1 {
			t.Fatalf("back-channel deliveries %+v, accepted %d", ev, delivered.Load())
		}
	})
}
