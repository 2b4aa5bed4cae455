package middleware_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
)

// TestLoginQueryCannotLoosenAuthParams: the attack of a user who starts
// the login route with a weaker acr_values, a longer max_age or a silent
// prompt than the app's AuthParams ask for every sign-in. The query may
// only tighten them: acr values a subset of the configured ones (else 400),
// the smaller max_age, prompt values added to the configured ones, and a
// silent sign-in (prompt=none) is not tried when AuthParams set a prompt.
func TestLoginQueryCannotLoosenAuthParams(t *testing.T) {
	high := url.Values{"acr_values": {acrHigh + " urn:example:mfa"}, "max_age": {"600"}}
	cases := []struct {
		name   string
		auth   url.Values
		query  string
		want   url.Values // the authorization request's acr_values, max_age, prompt; nil: refused with 400
		silent bool       // answered as a failed silent sign-in: back to return_to, no OP
	}{
		{"attack: weaker acr and endless max_age", high, "acr_values=" + acrLow + "&max_age=999999999", nil, false},
		{"attack: weaker acr among allowed ones", high, "acr_values=" + acrHigh + "+" + acrLow, nil, false},
		{"attack: endless max_age", high, "max_age=999999999", url.Values{"acr_values": {acrHigh + " urn:example:mfa"}, "max_age": {"600"}}, false},
		{"no query: AuthParams", high, "", url.Values{"acr_values": {acrHigh + " urn:example:mfa"}, "max_age": {"600"}}, false},
		{"narrower acr, shorter max_age", high, "acr_values=urn%3Aexample%3Amfa&max_age=60", url.Values{"acr_values": {"urn:example:mfa"}, "max_age": {"60"}}, false},
		{"same acr, reordered", high, "acr_values=urn%3Aexample%3Amfa+" + acrHigh, url.Values{"acr_values": {"urn:example:mfa " + acrHigh}, "max_age": {"600"}}, false},
		{"max_age 0", high, "max_age=0", url.Values{"acr_values": {acrHigh + " urn:example:mfa"}, "max_age": {"0"}}, false},
		{"no acr configured: any", url.Values{}, "acr_values=" + acrLow + "&max_age=999999999", url.Values{"acr_values": {acrLow}, "max_age": {"999999999"}}, false},

		{"attack: prompt=none replaces prompt=login", url.Values{"prompt": {"login"}}, "prompt=none", nil, true},
		{"prompt=login kept", url.Values{"prompt": {"login"}}, "prompt=login", url.Values{"prompt": {"login"}}, false},
		{"prompt added to the configured one", url.Values{"prompt": {"login"}}, "prompt=select_account", url.Values{"prompt": {"login select_account"}}, false},
		{"no query prompt: configured", url.Values{"prompt": {"consent"}}, "", url.Values{"prompt": {"consent"}}, false},
		{"silent sign-in without a configured prompt", url.Values{}, "prompt=none", url.Values{"prompt": {"none"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			a := newTestApp(t, oidctest.New(t), "webc_a", func(cfg *middleware.WebConfig) {
				cfg.AuthParams = c.auth
				cfg.Observer = rec
			})
			b := newBrowser(t)
			resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fhome&" + c.query)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			switch {
			case c.silent:
				if resp.StatusCode != http.StatusFound || loc.String() != "/home" {
					t.Fatalf("%d %q, want back to /home without the OP", resp.StatusCode, loc)
				}
				if e, ok := find(rec.take(), event.LoginSilentFailed); !ok || e.Err == nil || !strings.Contains(e.Err.Error(), "prompt") {
					t.Fatalf("no LoginSilentFailed event saying why: %+v", e)
				}
				// Not tried again: the next visit stays anonymous.
				if resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fhome&prompt=none"); resp.Header.Get("Location") != "/home" {
					t.Fatalf("second try: %q", resp.Header.Get("Location"))
				}
				return
			case c.want == nil:
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body(resp), "authentication levels") {
					t.Fatalf("%d %s, want 400 with a clear page", resp.StatusCode, body(resp))
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("%d %s", resp.StatusCode, body(resp))
			}
			got := loc.Query()
			for _, k := range []string{"acr_values", "max_age", "prompt"} {
				if got.Get(k) != c.want.Get(k) {
					t.Errorf("%s = %q, want %q", k, got.Get(k), c.want.Get(k))
				}
			}
		})
	}
}

// TestLoginQueryDowngradeEndToEnd: the whole attack: a user who starts
// the login with acr_values of a weaker level, and an OP that obliges,
// gets no session.
func TestLoginQueryDowngradeEndToEnd(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", func(cfg *middleware.WebConfig) {
		cfg.AuthParams = url.Values{"acr_values": {acrHigh}}
	})
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/auth/login?return_to=/&acr_values=" + acrLow + "&max_age=999999999")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The plain login asks for the configured level, and an ID token with
	// the weaker one is refused.
	resp, q := a.loginVia(b, "/auth/login?return_to=/", "usr_1", withClaims("acr", acrLow, "auth_time", time.Now().Unix()))
	if q.Get("acr_values") != acrHigh || resp.StatusCode == http.StatusFound {
		t.Fatalf("asked %q, callback %d", q.Get("acr_values"), resp.StatusCode)
	}
	if c := a.sessionCookie(b); c != nil && c.Value != "" {
		t.Fatal("a session was created with the weaker acr")
	}
}

// TestStepUpOutsideAuthParams: a step-up whose acr values the app's
// AuthParams do not allow cannot be followed: RequireStepUp fails at
// start-up, StartStepUp answers 502.
func TestStepUpOutsideAuthParams(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", func(cfg *middleware.WebConfig) {
		cfg.AuthParams = url.Values{"acr_values": {acrHigh + " urn:example:mfa"}}
	})
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "AuthParams") {
				t.Errorf("RequireStepUp with an acr outside AuthParams: %v", r)
			}
		}()
		a.web.RequireStepUp(middleware.StepUp{ACR: []string{acrLow}})
	}()
	a.web.RequireStepUp(middleware.StepUp{ACR: []string{"urn:example:mfa"}}) // a subset: fine
	w := a.serve(newBrowser(t), http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		a.web.StartStepUp(rw, r, middleware.StepUp{ACR: []string{acrLow}})
	}), "/pay")
	if w.Code != http.StatusBadGateway || w.Header().Get("Location") != "" {
		t.Fatalf("StartStepUp outside AuthParams: %d %q", w.Code, w.Header().Get("Location"))
	}
}
