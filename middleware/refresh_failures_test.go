package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// refreshAnswer is a successful refresh response on the app's clock.
func refreshAnswer(op *oidctest.OP, clk *clock, key *oidctest.Key, at, rt string) map[string]any {
	claims := op.IDClaims("webc_a", "usr_1", "")
	lifetime := int((time.Until(clk.now()) + 5*time.Minute).Seconds())
	return map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": lifetime, "refresh_token": rt,
		"id_token": key.Sign(claims, nil)}
}

// TestRefreshWhileKeysUnreachableKeepsSession is the attack of issue 12.1:
// the OP rotates its signing key and its JWKS is briefly unreachable when
// a refresh brings an ID token signed with the new key. The refresh itself
// succeeded at the OP (which rotated the refresh token), so signing the
// user out and dropping the new refresh token, as the middleware did, lost
// the session for nothing. It must keep the session and the newest refresh
// token.
func TestRefreshWhileKeysUnreachableKeepsSession(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) {
		c.Now = clk.now
		provider, err := rp.Discover(context.Background(), op.Issuer, &rp.ProviderOptions{JWKSCooldown: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		client, err := provider.Client(rp.Config{ClientID: "webc_a", ClientSecret: "secret",
			RedirectURL: c.Client.RedirectURL()})
		if err != nil {
			t.Fatal(err)
		}
		c.Client = client
	})
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	_, me := a.me(b)
	rotated := oidctest.NewKey("k2", "RS256")
	op.AddKey(rotated, true)
	op.JWKSDown.Store(true)
	var presented []string
	op.SetTokenHook(func(form url.Values) (int, any) {
		presented = append(presented, form.Get("refresh_token"))
		return 200, refreshAnswer(op, clk, rotated, "at-"+form.Get("refresh_token"), "rt-rotated")
	})
	clk.advance(270 * time.Second) // inside the refresh leeway, not expired
	time.Sleep(5 * time.Millisecond)
	code, got := a.me(b)
	if code != http.StatusOK || got["at"] != me["at"] {
		t.Fatalf("refresh with the OP's keys out of reach: %d %v, want 200 with the current access token", code, got)
	}
	if logs := a.logs.String(); !strings.Contains(logs, `"msg":"multiapp.refresh.temporary"`) || !strings.Contains(logs, "JWKS") || !strings.Contains(logs, `"refresh_token_kept":true`) {
		t.Errorf("no temporary refresh event naming the JWKS, with the refresh token kept: %s", logs)
	}
	// The keys are back: the next refresh presents the rotated token.
	op.JWKSDown.Store(false)
	clk.advance(time.Minute)
	code, got = a.me(b)
	if code != http.StatusOK || got["at"] != "at-rt-rotated" {
		t.Fatalf("after the keys came back: %d %v (refresh tokens presented %v), want the token refreshed with the rotated refresh token", code, got, presented)
	}
}

// TestRefreshFailuresSayWhatHappened (issue 12.3): an OP that refuses the
// client during a refresh, or answers with something that is not a token
// response, was logged as "store unavailable" and shown as a generic 503.
// Each failure has its own event and reason, the session is kept, and
// once the access token has expired the 503 page says what happened.
func TestRefreshFailuresSayWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       int
		body         any
		event        string
		reason, page string
	}{
		{"invalid_client", 401, map[string]any{"error": "invalid_client"}, "multiapp.refresh.misconfigured", "client_rejected", "refused this site"},
		{"unauthorized_client", 400, map[string]any{"error": "unauthorized_client"}, "multiapp.refresh.misconfigured", "client_not_allowed", "refused this site"},
		{"malformed body", 403, "<html>Forbidden by the firewall</html>", "multiapp.refresh.temporary", "op_malformed_answer", "could not use"},
		{"OP down", 503, "<html>maintenance</html>", "multiapp.refresh.temporary", "op_unavailable", "not answering"},
		{"rate limited", 429, map[string]any{"error": "slow_down"}, "multiapp.refresh.temporary", "op_rate_limited", "slow down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, clk, at := refreshApp(t)
			a.op.SetTokenHook(func(url.Values) (int, any) { return tc.status, tc.body })
			clk.advance(270 * time.Second)
			if code, me := a.me(b); code != 200 || me["at"] != at {
				t.Fatalf("before expiry: %d %v, want the current token", code, me)
			}
			logs := a.logs.String()
			if !strings.Contains(logs, `"msg":"`+tc.event+`"`) || !strings.Contains(logs, `"reason":"`+tc.reason+`"`) || strings.Contains(logs, "store.unavailable") {
				t.Fatalf("want event %s with reason %s (and no store event): %s", tc.event, tc.reason, logs)
			}
			clk.advance(10 * time.Minute)
			resp := b.get(a.srv.URL + "/me")
			page := body(resp)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, tc.page) || !strings.Contains(page, tc.reason) {
				t.Fatalf("after expiry: %d Retry-After %q %q, want 503 saying %q with the reason %s (plain-http development)", resp.StatusCode, resp.Header.Get("Retry-After"), page, tc.page, tc.reason)
			}
			if strings.Contains(a.logs.String(), "store.unavailable") {
				t.Fatal("a refresh failure was reported as a store outage")
			}
			a.op.SetTokenHook(nil)
		})
	}
}

// TestRefreshAnsweredUnreadably: a success status with a body that is not
// a token response means the OP probably spent the refresh token (its new
// one is lost in the body). The token is never presented again (a replay
// makes OPs revoke the whole grant): the session lives until its access
// token expires, then the user signs in again.
func TestRefreshAnsweredUnreadably(t *testing.T) {
	a, b, clk, at := refreshApp(t)
	var calls atomic.Int32
	a.op.SetTokenHook(func(url.Values) (int, any) { calls.Add(1); return 200, "<html>Welcome</html>" })
	clk.advance(270 * time.Second)
	if code, me := a.me(b); code != 200 || me["at"] != at {
		t.Fatalf("before expiry: %d %v", code, me)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"reason":"op_malformed_answer"`) || !strings.Contains(logs, `"refresh_token_kept":false`) {
		t.Fatalf("want reason op_malformed_answer with the refresh token dropped: %s", logs)
	}
	clk.advance(10 * time.Minute)
	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") || calls.Load() != 1 {
		t.Fatalf("after expiry: %d %q with %d refresh requests, want a sign-in and no second presentation", resp.StatusCode, resp.Header.Get("Location"), calls.Load())
	}
}

// TestRefreshHonoursRetryAfter (issue 11.3): after a 429 or 503 with
// Retry-After, no refresh of that session is tried before the time given
// (capped at five minutes); meanwhile the still-valid access token is
// used, and once it has expired the answer is 503 with the remaining wait.
func TestRefreshHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		wait   time.Duration
	}{
		{"60", time.Minute},
		{"86400", middleware.MaxRefreshBackoff},
	} {
		t.Run(tc.header, func(t *testing.T) {
			a, b, clk, at := refreshApp(t)
			var calls atomic.Int32
			a.op.SetTokenHook(func(url.Values) (int, any) {
				calls.Add(1)
				return 429, oidctest.Reply{Header: http.Header{"Retry-After": {tc.header}}, Body: map[string]any{"error": "slow_down"}}
			})
			clk.advance(250 * time.Second)
			for range 5 {
				if code, me := a.me(b); code != 200 || me["at"] != at {
					t.Fatalf("inside the leeway: %d %v", code, me)
				}
			}
			clk.advance(tc.wait - 10*time.Second) // still inside the wait; the token has expired
			resp := b.get(a.srv.URL + "/me")
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "10" {
				t.Fatalf("expired token during the wait: %d Retry-After %q, want 503 Retry-After 10", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d refresh requests during the OP's Retry-After, want 1", n)
			}
			a.op.SetTokenHook(func(url.Values) (int, any) {
				calls.Add(1)
				return 200, refreshAnswer(a.op, clk, a.op.Signer(), "at-later", "rt-later")
			})
			clk.advance(11 * time.Second)
			if code, me := a.me(b); code != 200 || me["at"] != "at-later" || calls.Load() != 2 {
				t.Fatalf("after the wait: %d %v (%d calls)", code, me, calls.Load())
			}
		})
	}
}

// TestSlowRefreshDoesNotHoldRequests (issue 12.9): a refresh runs detached
// from the request that started it, with its own deadline; requests wait
// for it at most RefreshWait, then get the still-valid access token, or
// 503 with Retry-After once it has expired. The refresh completes anyway.
func TestSlowRefreshDoesNotHoldRequests(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now; c.RefreshWait = 100 * time.Millisecond })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	_, me := a.me(b)
	release := make(chan struct{})
	var calls atomic.Int32
	op.SetTokenHook(func(url.Values) (int, any) {
		calls.Add(1)
		<-release
		return 200, refreshAnswer(op, clk, op.Signer(), "at-slow", "rt-slow")
	})
	clk.advance(270 * time.Second)
	start := time.Now()
	if code, got := a.me(b); code != 200 || got["at"] != me["at"] {
		t.Fatalf("during a slow refresh, token still valid: %d %v", code, got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the request waited %v for the OP", d)
	}
	clk.advance(time.Minute) // expired now
	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body(resp), "being renewed") {
		t.Fatalf("during a slow refresh, token expired: %d %q", resp.StatusCode, body(resp))
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, got := a.me(b)
		if code == 200 && got["at"] == "at-slow" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the detached refresh never completed: %d %v", code, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d refresh requests, want 1", n)
	}
}

// TestSessionErrorsHaveOneClass: what Session.TokenContext and NewWeb
// return belongs to exactly one class, store errors included.
func TestSessionErrorsHaveOneClass(t *testing.T) {
	// tokenErr is what TokenContext returns in a handler of an app on
	// store (nil: memory) after setup.
	tokenErr := func(t *testing.T, store tokenstore.Store, setup func(a *testApp, clk *clock)) error {
		if store == nil {
			store = tokenstore.NewMemory(tokenstore.MemoryOptions{})
		}
		a, b, clk := storeApp(t, store)
		var err error
		a.srv.Config.Handler = a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := middleware.SessionFrom(r.Context())
			setup(a, clk)
			_, err = s.TokenContext(r.Context())
		}))
		b.get(a.srv.URL + "/")
		return err
	}
	expire := func(a *testApp, clk *clock) { clk.advance(10 * time.Minute) }
	for _, tc := range []struct {
		name  string
		class rp.Class
		err   func(t *testing.T) error
	}{
		{"NewWeb: no client", rp.ClassMisconfigured, func(*testing.T) error { _, err := middleware.NewWeb(middleware.WebConfig{}); return err }},
		{"NewWeb: short key", rp.ClassMisconfigured, func(t *testing.T) error {
			a, _, _, _ := refreshApp(t)
			_, err := middleware.NewWeb(middleware.WebConfig{Client: a.client, CookieKeys: [][]byte{[]byte("short")}})
			return err
		}},
		{"OP refuses the grant", rp.ClassRevoked, func(t *testing.T) error {
			return tokenErr(t, nil, func(a *testApp, clk *clock) {
				expire(a, clk)
				a.op.SetTokenHook(func(url.Values) (int, any) { return 400, map[string]any{"error": "invalid_grant"} })
			})
		}},
		{"OP down", rp.ClassTemporary, func(t *testing.T) error {
			return tokenErr(t, nil, func(a *testApp, clk *clock) {
				expire(a, clk)
				a.op.SetTokenHook(func(url.Values) (int, any) { return 503, "" })
			})
		}},
		{"OP refuses the client", rp.ClassMisconfigured, func(t *testing.T) error {
			return tokenErr(t, nil, func(a *testApp, clk *clock) {
				expire(a, clk)
				a.op.SetTokenHook(func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} })
			})
		}},
		{"store down", rp.ClassTemporary, func(t *testing.T) error {
			store := &downStore{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
			err := tokenErr(t, store, func(a *testApp, clk *clock) { expire(a, clk); store.down.Store(true) })
			if !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Errorf("the store's error is not reachable: %v", err)
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err(t)
			if err == nil {
				t.Fatal("no error")
			}
			if got := rp.ClassOf(err); got != tc.class {
				t.Errorf("class %v, want %v: %v", got, tc.class, err)
			}
			for class, sentinel := range map[rp.Class]error{rp.ClassInvalid: rp.ErrInvalidToken, rp.ClassTemporary: rp.ErrTemporary, rp.ClassRevoked: rp.ErrSessionRevoked, rp.ClassMisconfigured: rp.ErrConfig} {
				if errors.Is(err, sentinel) != (class == tc.class) {
					t.Errorf("errors.Is(%v sentinel) = %v: %v", class, class != tc.class, err)
				}
			}
			if tc.class == rp.ClassRevoked && !errors.Is(err, middleware.ErrSignedOut) {
				t.Errorf("a revoked session is not ErrSignedOut: %v", err)
			}
		})
	}
}

// downStore fails every call with ErrUnavailable while down is set.
type downStore struct {
	tokenstore.Store
	down atomic.Bool
}

func (d *downStore) fail() error {
	return errors.Join(errors.New("dial tcp: connection refused"), tokenstore.ErrUnavailable)
}

func (d *downStore) Get(ctx context.Context, id string) (*tokenstore.Session, error) {
	if d.down.Load() {
		return nil, d.fail()
	}
	return d.Store.Get(ctx, id)
}

func (d *downStore) Lock(ctx context.Context, id string) (func(), error) {
	if d.down.Load() {
		return nil, d.fail()
	}
	return d.Store.Lock(ctx, id)
}
