package middleware_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
)

// TestLogoutSticks (issue 12.2): after POST /auth/logout the OP session
// may survive (no end-session endpoint, the user cancels at the OP, the OP
// ignores it). The next visit to an Optional page with SilentSSO used to
// send the browser to the OP with prompt=none, which signed the user
// straight back in. No silent sign-in happens for that browser until the
// user asks to sign in.
func TestLogoutSticks(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.SilentSSO = true; c.Now = clk.now })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	if resp := b.do("POST", a.srv.URL+"/auth/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	// The OP session survived; the user comes back, again and again, also
	// after the silent-retry interval.
	for _, later := range []time.Duration{0, middleware.DefaultSilentRetry + time.Second} {
		clk.advance(later)
		resp := b.get(a.srv.URL + "/public")
		if resp.StatusCode != http.StatusOK || body(resp) != "hello anonymous" {
			t.Fatalf("public page %v after an explicit logout: %d %q, want it served anonymously without a silent sign-in", later, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, c := range b.c.Jar.Cookies(mustURL(a.srv.URL)) {
		if c.Name == "ma-webc_a-anon" && c.Value != "out" {
			t.Fatalf("marker %q", c.Value)
		}
	}
	// A silent sign-in asked for directly does not go to the OP either.
	resp := b.get(a.srv.URL + "/auth/login?prompt=none&return_to=%2Fpublic")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/public" {
		t.Fatalf("prompt=none after logout: %d %q, want straight back to /public", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The user asks to sign in: that works, and silent SSO is back on after.
	resp = b.get(a.srv.URL + "/auth/login?return_to=%2Fpublic")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authURL.String(), op.Issuer) || authURL.Query().Get("prompt") != "" {
		t.Fatalf("explicit sign-in: %d %s", resp.StatusCode, authURL)
	}
	a.login(b, "/public", "usr_1", nil)
	if got := body(b.get(a.srv.URL + "/public")); got != "hello usr_1" {
		t.Fatalf("after signing in again: %q", got)
	}
}

// TestLogoutWithoutIDToken (issue 11.4), by OpenID Connect RP-Initiated
// Logout 1.0 §2: the end-session request needs id_token_hint for the OP to
// send the browser back (OPs refuse post_logout_redirect_uri without it,
// Hydra with an error page). Without an ID token there is no OP round trip
// at all: the user lands on the app.
func TestLogoutWithoutIDToken(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now })
	endSession := func(resp *http.Response) url.Values {
		t.Helper()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if !strings.HasPrefix(loc.String(), op.Issuer+"/oidc/logout") {
			return nil
		}
		return loc.Query()
	}

	t.Run("live session: id_token_hint, the app's post-logout URL", func(t *testing.T) {
		b := newBrowser(t)
		a.login(b, "/", "usr_1", nil)
		q := endSession(b.do("POST", a.srv.URL+"/auth/logout", nil))
		if q == nil || q.Get("id_token_hint") == "" || q.Get("client_id") != "webc_a" || q.Get("post_logout_redirect_uri") != a.srv.URL+"/" {
			t.Fatalf("end-session query %v", q)
		}
	})
	t.Run("expired ID token: still the hint (§2: OPs accept expired ones)", func(t *testing.T) {
		b := newBrowser(t)
		a.login(b, "/", "usr_1", nil)
		clk.advance(2 * time.Hour) // the ID token (5 minutes) and the access token have expired
		q := endSession(b.do("POST", a.srv.URL+"/auth/logout", nil))
		if q == nil || q.Get("id_token_hint") == "" {
			t.Fatalf("end-session query %v, want the expired ID token as the hint", q)
		}
	})
	t.Run("session ended by a back-channel logout: no OP round trip", func(t *testing.T) {
		b := newBrowser(t)
		a.login(b, "/", "usr_1", nil)
		// The OP ended the shared session and told this app (back-channel).
		if n, err := a.store.DeleteBySID(context.Background(), op.Issuer, "ses_1", "usr_1"); err != nil || n == 0 {
			t.Fatalf("%d %v", n, err)
		}
		resp := b.do("POST", a.srv.URL+"/auth/logout", nil)
		if q := endSession(resp); q != nil || resp.Header.Get("Location") != "/" {
			t.Fatalf("logout after a back-channel logout: %q, want the app's own page", resp.Header.Get("Location"))
		}
	})
	t.Run("stale tab: no OP round trip", func(t *testing.T) {
		b := newBrowser(t)
		a.login(b, "/", "usr_1", nil)
		stale := a.sessionCookie(b)
		b.do("POST", a.srv.URL+"/auth/logout", nil)
		// Another tab still shows "Sign out", with the old cookie.
		req, _ := http.NewRequest("POST", a.srv.URL+"/auth/logout", nil)
		req.AddCookie(stale)
		resp, err := newBrowser(t).c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if q := endSession(resp); q != nil || resp.Header.Get("Location") != "/" {
			t.Fatalf("stale tab: %q, want the app's own page", resp.Header.Get("Location"))
		}
	})
	if !strings.Contains(a.logs.String(), `"msg":"multiapp.logout"`) {
		t.Error("no logout event")
	}
}

// TestFailuresExplainThemselves (issue 13.4): in plain-http development
// the sign-in failure page names the reason and the log event; a failed
// silent sign-in, whatever the error, falls back to anonymous and waits
// SilentRetry before trying again (an error page must never replace a
// public page); a callback loaded again while signed in goes on to the
// return path instead of saying "Sign-in failed".
func TestFailuresExplainThemselves(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.SilentSSO = true; c.Now = clk.now })

	t.Run("failure page names reason and event", func(t *testing.T) {
		b := newBrowser(t)
		resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fme")
		authURL, _ := url.Parse(resp.Header.Get("Location"))
		op.SetTokenHook(func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} })
		defer op.SetTokenHook(nil)
		resp = b.get(a.srv.URL + "/auth/callback?code=c&state=" + authURL.Query().Get("state"))
		page := body(resp)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "client_rejected") || !strings.Contains(page, "multiapp.login.failed") {
			t.Fatalf("%d %s", resp.StatusCode, page)
		}
	})
	for name, fail := range map[string]func(state string) string{
		"login_required":  func(s string) string { return "error=login_required&state=" + s },
		"OP server error": func(s string) string { return "error=server_error&state=" + s },
		"client refused":  func(s string) string { op.SetTokenHook(clientRefused); return "code=c&state=" + s },
		"invalid ID token": func(s string) string {
			op.AddGrant("bad", oidctest.Grant{Claims: op.IDClaims("webc_a", "u", "wrong-nonce")})
			return "code=bad&state=" + s
		},
		"access_denied":    func(s string) string { return "error=access_denied&state=" + s },
		"lost transaction": func(string) string { return "error=login_required&state=unknown" },
	} {
		t.Run("silent sign-in fails: "+name, func(t *testing.T) {
			defer op.SetTokenHook(nil)
			b := newBrowser(t)
			resp := b.get(a.srv.URL + "/public")
			if !strings.Contains(resp.Header.Get("Location"), "prompt=none") {
				t.Fatalf("no silent attempt: %q", resp.Header.Get("Location"))
			}
			resp = b.get(a.srv.URL + resp.Header.Get("Location"))
			authURL, _ := url.Parse(resp.Header.Get("Location"))
			resp = b.get(a.srv.URL + "/auth/callback?" + fail(authURL.Query().Get("state")))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/") || strings.HasPrefix(resp.Header.Get("Location"), "/auth/") {
				t.Fatalf("failed silent sign-in: %d %q %s, want a redirect back to the page", resp.StatusCode, resp.Header.Get("Location"), body(resp))
			}
			if resp := b.get(a.srv.URL + "/public"); resp.StatusCode != 200 || body(resp) != "hello anonymous" {
				t.Fatalf("public page after the failed silent sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			clk.advance(middleware.DefaultSilentRetry + time.Second)
			if resp := b.get(a.srv.URL + "/public"); !strings.Contains(resp.Header.Get("Location"), "prompt=none") {
				t.Fatalf("no new silent attempt after SilentRetry: %d", resp.StatusCode)
			}
		})
	}
	t.Run("reloaded callback while signed in", func(t *testing.T) {
		a := newTestApp(t, op, "webc_a", nil)
		b := newBrowser(t)
		resp := b.get(a.srv.URL + "/auth/login?return_to=%2Freports")
		authURL, _ := url.Parse(resp.Header.Get("Location"))
		q := authURL.Query()
		op.AddGrant("c-reload", oidctest.Grant{Claims: op.IDClaims("webc_a", "usr_1", q.Get("nonce")), Challenge: q.Get("code_challenge")})
		callback := a.srv.URL + "/auth/callback?code=c-reload&state=" + q.Get("state")
		if resp := b.get(callback); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/reports" {
			t.Fatalf("callback: %d", resp.StatusCode)
		}
		resp = b.get(callback)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/reports" {
			t.Fatalf("reloaded callback: %d %q %s, want /reports", resp.StatusCode, resp.Header.Get("Location"), body(resp))
		}
	})
}

func clientRefused(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} }

func mustURL(raw string) *url.URL {
	u, _ := url.Parse(raw)
	return u
}

// TestLogoutPageIsReadable (issue 13.6): the GET /auth/logout confirmation
// fits a phone, breaks no word, and has a way back to the app.
func TestLogoutPageIsReadable(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.AfterLogout = "/home" })
	resp := newBrowser(t).get(a.srv.URL + "/auth/logout")
	page := body(resp)
	for _, want := range []string{`name="viewport"`, `method="post" action="/auth/logout"`, `href="/home"`, "word-break:normal"} {
		if !strings.Contains(page, want) {
			t.Errorf("logout page lacks %s: %s", want, page)
		}
	}
	if strings.Contains(page, "break-all") || strings.Contains(page, "webc_a") {
		t.Errorf("logout page breaks words or shows ids: %s", page)
	}
}
