package middleware_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// TestRequireStepUpUsesProviderClockSkew: with ProviderOptions.ClockSkew
// above the default, Exchange accepts an auth_time that much older than
// max_age; RequireStepUp must accept the same sign-in, or the user goes
// page → OP → page → OP, forever. Its auth_time tolerance is the
// Provider's, in both directions.
func TestRequireStepUpUsesProviderClockSkew(t *testing.T) {
	now := time.Now().Unix()
	recent := middleware.StepUp{MaxAge: 5 * time.Minute}
	cases := []struct {
		name     string
		skew     time.Duration
		authTime int64 // of the step-up's ID token
		served   bool  // the route serves the new session
	}{
		{"10m skew: 8m over max_age accepted by both", 10 * time.Minute, now - 300 - 8*60, true},
		{"10m skew: 12m over max_age refused at the callback", 10 * time.Minute, now - 300 - 12*60, false},
		{"default skew: 30s over", 0, now - 300 - 30, true},
		{"default skew: 2m over refused at the callback", 0, now - 300 - 120, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := oidctest.New(t)
			a := newTestApp(t, op, "webc_a", func(cfg *middleware.WebConfig) {
				p, err := rp.Discover(context.Background(), op.Issuer, &rp.ProviderOptions{ClockSkew: c.skew})
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Client, err = p.Client(rp.Config{ClientID: "webc_a", ClientSecret: "secret", RedirectURL: cfg.Client.RedirectURL()}); err != nil {
					t.Fatal(err)
				}
			})
			route := a.web.RequireStepUp(recent)(served)
			b := newBrowser(t)
			a.login(b, "/", "usr_1", withClaims("auth_time", now-3600))
			w := a.serve(b, route, "/secure")
			if w.Code != http.StatusFound {
				t.Fatalf("%d", w.Code)
			}
			resp, _ := a.loginVia(b, w.Header().Get("Location"), "usr_1", withClaims("auth_time", c.authTime))
			if !c.served {
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("callback %d, want 403", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback %d: %s", resp.StatusCode, body(resp))
			}
			if w := a.serve(b, route, "/secure"); w.Code != http.StatusOK {
				t.Fatalf("after the step-up the callback accepted: %d %q (a loop)", w.Code, w.Header().Get("Location"))
			}
		})
	}
}
