package middleware_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
)

func silentSSO(c *middleware.WebConfig) { c.SilentSSO = true }

// TestLogoutSticksAtRealOP (issue 12.2) with node-oidc-provider: the user
// signs out of the app but cancels at the OP's confirmation, so the OP
// session survives. The app's public page must not sign them silently
// back in; signing in when they ask needs no password (the OP session).
func TestLogoutSticksAtRealOP(t *testing.T) {
	a := startRealApp(t, "webc_a")
	op := nodeop.Start(t, nodeop.Config{Clients: []nodeop.Client{a.client(true)}})
	a.wire(t, op, silentSSO)
	br := nodeop.NewBrowser(t, "erin", "any")
	if _, resp, err := br.Navigate(a.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in: %v", err)
	}
	atOP := func(u *url.URL) bool { return u.Host != mustHost(a.srv.URL) }
	final, _, err := br.PostForm(a.srv.URL+"/auth/logout", nil, atOP)
	if err != nil || final.Host != mustHost(op.Issuer) {
		t.Fatalf("logout stops at the OP's end-session page: %v %v", err, final)
	}
	authorizations := op.Requests("authorization")
	final, resp, err := br.Navigate(a.srv.URL+"/public", nil)
	if err != nil || final.Path != "/public" || bodyOf(resp) != "hello anonymous" {
		t.Fatalf("public page after logout, OP session alive: %v %v %q, want anonymous", err, final, bodyOf(resp))
	}
	if n := op.Requests("authorization") - authorizations; n != 0 {
		t.Fatalf("%d authorization requests (a silent sign-in) after an explicit logout", n)
	}
	// The user asks to sign in: the OP session signs them in without a form.
	forms := br.LoginForms()
	if final, resp, err := br.Navigate(a.srv.URL+"/auth/login?return_to=%2Fpublic", nil); err != nil || final.Path != "/public" || bodyOf(resp) != "hello erin" {
		t.Fatalf("sign in again: %v %v %q", err, final, bodyOf(resp))
	}
	if br.LoginForms() != forms {
		t.Fatal("signing in again asked for the password although the OP session is alive")
	}
}

// TestLogoutWithoutIDTokenAtRealOP (issue 11.4) with node-oidc-provider,
// one case per RP-Initiated Logout 1.0 situation: the user always lands on
// the app, never on an OP error page.
func TestLogoutWithoutIDTokenAtRealOP(t *testing.T) {
	a, b := startRealApp(t, "webc_a"), startRealApp(t, "webc_b")
	op := nodeop.Start(t, nodeop.Config{
		Clients:    []nodeop.Client{a.client(true), b.client(true)},
		IDTokenTTL: time.Second,
	})
	a.wire(t, op)
	b.wire(t, op)

	t.Run("expired ID token: the OP accepts it as the hint", func(t *testing.T) {
		br := nodeop.NewBrowser(t, "frank", "any")
		if _, resp, err := br.Navigate(a.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("sign in: %v", err)
		}
		time.Sleep(2 * time.Second) // the ID token has expired; the access token has not
		final, resp, err := br.PostForm(a.srv.URL+"/auth/logout", nil, nil)
		if err != nil || final.Host != mustHost(a.srv.URL) || final.Path != "/" || bodyOf(resp) != "home of webc_a" {
			t.Fatalf("logout with an expired ID token: %v %v %q, want the app's page after the OP's confirmation", err, final, bodyOf(resp))
		}
		if br.LogoutForms() != 1 {
			t.Fatalf("%d end-session confirmations, want 1", br.LogoutForms())
		}
	})
	t.Run("session ended by back-channel logout: no OP round trip", func(t *testing.T) {
		br := nodeop.NewBrowser(t, "grace", "any")
		for _, app := range []*realApp{a, b} {
			if _, resp, err := br.Navigate(app.srv.URL+"/me", nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("sign in at %s: %v", app.id, err)
			}
		}
		if _, _, err := br.PostForm(b.srv.URL+"/auth/logout", nil, nil); err != nil {
			t.Fatal(err)
		}
		if code, _ := meJSON(t, br, a); code != http.StatusUnauthorized {
			t.Fatalf("A after the back-channel logout: %d", code)
		}
		ends := op.Requests("end_session")
		final, resp, err := br.PostForm(a.srv.URL+"/auth/logout", nil, nil)
		if err != nil || final.Host != mustHost(a.srv.URL) || bodyOf(resp) != "home of webc_a" {
			t.Fatalf("stale sign-out on A: %v %v %q", err, final, bodyOf(resp))
		}
		if n := op.Requests("end_session") - ends; n != 0 {
			t.Fatalf("%d end-session requests for a session the OP already ended", n)
		}
	})
}

func bodyOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return body(resp)
}
