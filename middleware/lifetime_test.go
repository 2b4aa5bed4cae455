package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// touchCounter counts the activity a store is asked to record.
type touchCounter struct {
	tokenstore.Store
	n atomic.Int32
}

func (c *touchCounter) Touch(ctx context.Context, id string, at time.Time) error {
	c.n.Add(1)
	return c.Store.Touch(ctx, id, at)
}

// lifetimeApp is a signed-in app whose web layer and memory store share a
// settable clock (the OP's access tokens live 5 minutes: the tests stay
// below, so no refresh records activity for them).
func lifetimeApp(t *testing.T, mutate func(*middleware.WebConfig)) (*testApp, *browser, *clock, *touchCounter) {
	clk := &clock{}
	store := &touchCounter{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{Now: clk.now})}
	a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) {
		c.Now, c.Store = clk.now, store
		mutate(c)
	})
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	return a, b, clk, store
}

// api asks for /me as a script does (401 rather than a redirect when
// signed out).
func (a *testApp) api(b *browser) int {
	resp := b.do(http.MethodGet, a.srv.URL+"/me", map[string]string{"Accept": "application/json"})
	resp.Body.Close()
	return resp.StatusCode
}

func (a *testApp) events(name string) []string {
	var out []string
	for line := range strings.SplitSeq(a.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"`+name+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestIdleTimeout: activity is recorded at most once per ActivityInterval,
// keeps the session past IdleTimeout since sign-in, and a session left
// unused for IdleTimeout ends with one audit event.
func TestIdleTimeout(t *testing.T) {
	a, b, clk, store := lifetimeApp(t, func(c *middleware.WebConfig) {
		c.IdleTimeout, c.ActivityInterval = 2*time.Minute, 20*time.Second
	})
	for range 5 {
		clk.advance(3 * time.Second)
		if code := a.api(b); code != 200 {
			t.Fatalf("active session: %d", code)
		}
	}
	if n := store.n.Load(); n != 0 {
		t.Fatalf("%d touches within the first activity interval, want none", n)
	}
	clk.advance(15 * time.Second) // 30 s after sign-in
	for range 5 {
		if code := a.api(b); code != 200 {
			t.Fatalf("active session: %d", code)
		}
	}
	if n := store.n.Load(); n != 1 {
		t.Fatalf("%d touches after one activity interval, want 1", n)
	}
	clk.advance(100 * time.Second) // past IdleTimeout since sign-in, not since the touch
	if code := a.api(b); code != 200 {
		t.Fatalf("session used 100 s ago: %d, want 200", code)
	}
	if n := store.n.Load(); n != 2 {
		t.Fatalf("%d touches, want 2", n)
	}
	if ev := a.events("multiapp.session.expired"); len(ev) != 0 {
		t.Fatalf("expired events for a live session: %v", ev)
	}

	clk.advance(2*time.Minute + time.Second)
	if code := a.api(b); code != http.StatusUnauthorized {
		t.Fatalf("session unused for IdleTimeout: %d, want 401", code)
	}
	ev := a.events("multiapp.session.expired")
	if len(ev) != 1 || !strings.Contains(ev[0], `"reason":"idle"`) || !strings.Contains(ev[0], `"sub":"usr_1"`) {
		t.Fatalf("expired events: %v, want one with reason idle and the subject", ev)
	}
	for _, secret := range []string{"rt-code", "access_token", "id_token"} {
		if strings.Contains(ev[0], secret) {
			t.Errorf("the event shows %q: %s", secret, ev[0])
		}
	}
	// The record is gone: the next request is a plain "no session".
	if code := a.api(b); code != http.StatusUnauthorized {
		t.Fatalf("after the end: %d, want 401", code)
	}
	if ev := a.events("multiapp.session.expired"); len(ev) != 1 {
		t.Errorf("%d expired events, want one per session", len(ev))
	}
	// Signing in again starts a new session.
	a.login(b, "/", "usr_1", nil)
	if code := a.api(b); code != 200 {
		t.Fatalf("after signing in again: %d", code)
	}
}

// TestSessionLifetime: the absolute lifetime ends a session however active
// it is, with its own audit event, and no activity is recorded for a
// session without an idle timeout.
func TestSessionLifetime(t *testing.T) {
	a, b, clk, store := lifetimeApp(t, func(c *middleware.WebConfig) { c.SessionLifetime = 4 * time.Minute })
	for range 4 {
		clk.advance(time.Minute - time.Second)
		if code := a.api(b); code != 200 {
			t.Fatalf("within SessionLifetime: %d", code)
		}
	}
	clk.advance(10 * time.Second)
	if code := a.api(b); code != http.StatusUnauthorized {
		t.Fatalf("past SessionLifetime: %d, want 401", code)
	}
	ev := a.events("multiapp.session.expired")
	if len(ev) != 1 || !strings.Contains(ev[0], `"reason":"lifetime"`) {
		t.Fatalf("expired events: %v, want one with reason lifetime", ev)
	}
	if n := store.n.Load(); n != 0 {
		t.Errorf("%d touches of a session without an idle timeout", n)
	}
}

// TestIdleTimeoutOPEndStillWins: a back-channel logout ends an active
// session with an idle timeout at once, as any other.
func TestIdleTimeoutOPEndStillWins(t *testing.T) {
	a, b, clk, _ := lifetimeApp(t, func(c *middleware.WebConfig) { c.IdleTimeout = time.Hour })
	clk.advance(2 * time.Minute)
	if code := a.api(b); code != 200 {
		t.Fatalf("active session: %d", code)
	}
	// What a back-channel logout of the subject does to the store.
	if err := a.web.Store().RevokeSubject(context.Background(), a.op.Issuer, "usr_1", clk.now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := a.web.Store().DeleteBySubject(context.Background(), a.op.Issuer, "usr_1"); err != nil || n != 1 {
		t.Fatalf("DeleteBySubject = %d, %v", n, err)
	}
	if code := a.api(b); code != http.StatusUnauthorized {
		t.Fatalf("after the OP ended the session: %d, want 401", code)
	}
	if ev := a.events("multiapp.session.expired"); len(ev) != 0 {
		t.Errorf("an OP logout reported as an expiry: %v", ev)
	}
}

func TestLifetimeConfigErrors(t *testing.T) {
	c := newTestApp(t, oidctest.New(t), "webc_a", nil).client
	for name, mutate := range map[string]func(*middleware.WebConfig){
		"negative idle timeout":      func(c *middleware.WebConfig) { c.IdleTimeout = -time.Second },
		"negative interval":          func(c *middleware.WebConfig) { c.IdleTimeout, c.ActivityInterval = time.Hour, -time.Second },
		"interval as long as idle":   func(c *middleware.WebConfig) { c.IdleTimeout, c.ActivityInterval = time.Minute, time.Minute },
		"interval longer than idle ": func(c *middleware.WebConfig) { c.IdleTimeout, c.ActivityInterval = time.Minute, time.Hour },
	} {
		cfg := middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}}
		mutate(&cfg)
		_, err := middleware.NewWeb(cfg)
		if !errors.Is(err, rp.ErrConfig) {
			t.Errorf("%s: %v, want a configuration error", name, err)
		}
	}
	cfg := middleware.WebConfig{Client: c, CookieKeys: [][]byte{testKey}, IdleTimeout: 15 * time.Minute}
	if _, err := middleware.NewWeb(cfg); err != nil {
		t.Errorf("IdleTimeout alone: %v", err)
	}
}
