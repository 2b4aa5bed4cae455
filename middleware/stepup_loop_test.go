package middleware_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
)

// TestStartStepUpLoopGuard: an API that keeps asking for what the
// session's sign-in already has (the OP leaves acr or auth_time out of
// access tokens) would send the user page → login → OP (SSO, no form) →
// page → API 401 → login, forever. StartStepUp answers a 502 page
// instead, with an event, and never redirects; a session that lacks what
// is asked is still sent to sign in again.
func TestStartStepUpLoopGuard(t *testing.T) {
	now := time.Now().Unix()
	cases := []struct {
		name     string
		session  func(map[string]any)
		su       middleware.StepUp
		wantLoop bool // the session already meets su: refused
	}{
		{"acr already met", withClaims("acr", acrHigh), middleware.StepUp{ACR: []string{acrHigh}}, true},
		{"max_age already met", withClaims("auth_time", now-10), middleware.StepUp{MaxAge: time.Minute}, true},
		{"both already met", withClaims("acr", acrHigh, "auth_time", now-10), middleware.StepUp{ACR: []string{acrLow, acrHigh}, MaxAge: time.Minute}, true},
		{"fresh sign-in asked right after one", withClaims("auth_time", now), middleware.StepUp{}, true},
		{"acr lacking: stepped up", withClaims("acr", acrLow), middleware.StepUp{ACR: []string{acrHigh}}, false},
		{"too old: stepped up", withClaims("auth_time", now-3600), middleware.StepUp{MaxAge: time.Minute}, false},
		{"fresh sign-in asked of an old one", withClaims("auth_time", now-3600), middleware.StepUp{}, false},
		{"fresh sign-in asked without auth_time", nil, middleware.StepUp{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			a := newTestApp(t, oidctest.New(t), "webc_a", func(cfg *middleware.WebConfig) { cfg.Observer = rec })
			b := newBrowser(t)
			a.login(b, "/", "usr_1", c.session)
			rec.take()
			h := a.web.Require(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				a.web.StartStepUp(rw, r, c.su)
			}))
			for _, accept := range []string{"text/html", "application/json"} {
				r := a.serve(b, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					r.Header.Set("Accept", accept)
					h.ServeHTTP(rw, r)
				}), "/pay")
				e, _ := find(rec.take(), event.StepUp)
				if !c.wantLoop {
					if r.Code == http.StatusBadGateway || e.Reason != "api" {
						t.Fatalf("%s: %d, event %+v: want a step-up", accept, r.Code, e)
					}
					continue
				}
				if r.Code != http.StatusBadGateway || r.Header().Get("Location") != "" || !strings.Contains(r.Body.String(), "signing in again") {
					t.Fatalf("%s: %d %q %s, want a 502 page", accept, r.Code, r.Header().Get("Location"), r.Body)
				}
				if e.Reason != "already_met" || e.Subject != "usr_1" {
					t.Fatalf("%s: event %+v", accept, e)
				}
			}
		})
	}
}
