package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
)

// recorder is an Observer that keeps every event, as a metrics observer
// would receive them.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Observe(_ context.Context, e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events recorded since the last take.
func (r *recorder) take() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func find(events []event.Event, n event.Name) (event.Event, bool) {
	for _, e := range events {
		if e.Name == n {
			return e, true
		}
	}
	return event.Event{}, false
}

// observedApp is a web app whose events go to a recorder, with a user
// signed in.
func observedApp(t *testing.T) (*testApp, *browser, *clock, *recorder) {
	clk, rec := &clock{}, &recorder{}
	a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) { c.Now, c.Observer = clk.now, rec })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	return a, b, clk, rec
}

// TestObserverSeesTheSessionsLife: an Observer (here, what a metrics
// module would be) gets a typed event for every step of a session: the
// login (not silent, timed), the store call of each request (timed), the
// refresh (timed), the back-channel logout; it never gets a token, and the
// audit Logger is not written to when an Observer replaces it.
func TestObserverSeesTheSessionsLife(t *testing.T) {
	a, b, clk, rec := observedApp(t)
	op := a.op
	evs := rec.take()
	login, ok := find(evs, event.Login)
	if !ok || login.Silent || login.Duration <= 0 || login.Subject != "usr_1" || login.ClientID != "webc_a" || len(login.Session) != 16 {
		t.Fatalf("login event %+v (found %v)", login, ok)
	}
	if e, ok := find(evs, event.StoreCreate); !ok || e.Duration <= 0 || e.Err != nil {
		t.Errorf("no timed StoreCreate: %+v", evs)
	}

	if code, _ := a.me(b); code != 200 {
		t.Fatal(code)
	}
	if e, ok := find(rec.take(), event.StoreGet); !ok || e.Duration <= 0 || e.Level.String() != "DEBUG" {
		t.Errorf("request: StoreGet %+v (found %v)", e, ok)
	}

	op.SetTokenHook(func(form url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt-2",
			"id_token": op.Signer().Sign(op.IDClaims("webc_a", "usr_1", ""), nil)}
	})
	clk.advance(299 * time.Second)
	if code, me := a.me(b); code != 200 || me["at"] != "at-refreshed" {
		t.Fatal(code, me)
	}
	evs = rec.take()
	if e, ok := find(evs, event.Refresh); !ok || e.Duration <= 0 || e.Class != "" || e.Subject != "usr_1" {
		t.Errorf("refresh event %+v (found %v)", e, ok)
	}
	if _, ok := find(evs, event.StoreLock); !ok {
		t.Error("no StoreLock event for the refresh")
	}

	token := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": a.id, "iat": time.Now().Unix(), "jti": "jti-obs-1", "sid": op.IDClaims("webc_a", "usr_1", "")["sid"],
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}, oidctest.Header{"typ": "logout+jwt"})
	lr, err := http.Post(a.srv.URL+"/auth/backchannel-logout", "application/x-www-form-urlencoded", strings.NewReader("logout_token="+token))
	if err != nil || lr.StatusCode != 200 {
		t.Fatalf("back-channel logout: %v %v", err, lr)
	}
	if e, ok := find(rec.take(), event.BackchannelLogout); !ok || e.Issuer != op.Issuer {
		t.Errorf("back-channel logout event %+v (found %v)", e, ok)
	}
	if code, _ := a.me(b); code == 200 {
		t.Error("session alive after the back-channel logout")
	}

	rec.mu.Lock()
	for _, e := range rec.events {
		if s := fmt.Sprintf("%+v", e); strings.Contains(s, "at-refreshed") || strings.Contains(s, "rt-") || strings.Contains(s, "eyJ") {
			t.Errorf("an event carries a token: %s", s)
		}
	}
	rec.mu.Unlock()
	if a.logs.Len() != 0 {
		t.Errorf("the Logger was written to although an Observer replaces the audit log: %s", a.logs)
	}
}

// TestObserverSeesFailures: outcomes are in the event's name and class,
// not in a log line to parse: a refresh the OP refuses is RefreshRevoked,
// a silent sign-in that finds no OP session is LoginSilentFailed.
func TestObserverSeesFailures(t *testing.T) {
	a, b, clk, rec := observedApp(t)
	op := a.op
	rec.take()
	op.SetTokenHook(func(url.Values) (int, any) { return 400, map[string]any{"error": "invalid_grant"} })
	clk.advance(10 * time.Minute)
	if code, _ := a.me(b); code == 200 {
		t.Fatal("signed in after invalid_grant")
	}
	if e, ok := find(rec.take(), event.RefreshRevoked); !ok || e.Class != "revoked" || e.Reason != "grant_refused" {
		t.Errorf("RefreshRevoked %+v (found %v)", e, ok)
	}

	resp := b.get(a.srv.URL + "/auth/login?return_to=%2F&prompt=none")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	b.get(a.srv.URL + "/auth/callback?error=login_required&state=" + authURL.Query().Get("state"))
	if e, ok := find(rec.take(), event.LoginSilentFailed); !ok || !e.Silent || e.Reason != "login_required" {
		t.Errorf("LoginSilentFailed %+v (found %v)", e, ok)
	}
}
