package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// clock is a settable offset from real time.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func refreshApp(t *testing.T) (*testApp, *browser, *clock, string) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	var me map[string]string
	_ = json.Unmarshal([]byte(body(b.get(a.srv.URL+"/me"))), &me)
	return a, b, clk, me["at"]
}

func (a *testApp) me(b *browser) (int, map[string]string) {
	resp := b.get(a.srv.URL + "/me")
	var me map[string]string
	_ = json.Unmarshal([]byte(body(resp)), &me)
	return resp.StatusCode, me
}

func TestRefreshWhenExpiring(t *testing.T) {
	a, b, clk, at1 := refreshApp(t)
	grantFor := func(newRT string) {
		a.op.SetTokenHook(func(form url.Values) (int, any) {
			a.op.SetTokenHook(nil)
			if form.Get("grant_type") != "refresh_token" || !strings.HasPrefix(form.Get("refresh_token"), "rt-") {
				return 400, map[string]any{"error": "invalid_grant"}
			}
			claims := a.op.IDClaims("webc_a", "usr_1", "")
			return 200, map[string]any{"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 300, "refresh_token": newRT, "id_token": a.op.Signer().Sign(claims, nil)}
		})
	}
	grantFor("rt-2")
	clk.advance(299 * time.Second) // inside the one-minute leeway
	code, me := a.me(b)
	if code != 200 || me["at"] != "at-refreshed" || me["at"] == at1 {
		t.Fatalf("%d %v", code, me)
	}
	if !strings.Contains(a.logs.String(), `"msg":"multiapp.refresh"`) {
		t.Fatal("no refresh audit event")
	}
}

func TestRefreshRevokedSignsOut(t *testing.T) {
	a, b, clk, _ := refreshApp(t)
	a.op.SetTokenHook(func(url.Values) (int, any) { return 400, map[string]any{"error": "invalid_grant"} })
	clk.advance(10 * time.Minute)
	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("revoked session still served: %d", resp.StatusCode)
	}
	a.op.SetTokenHook(nil)
	if !strings.Contains(a.logs.String(), "multiapp.refresh.revoked") {
		t.Fatal("no revoked audit event")
	}
	// The local session is gone, not just hidden.
	if resp := b.get(a.srv.URL + "/me"); resp.StatusCode != http.StatusFound {
		t.Fatal("session came back")
	}
}

func TestRefreshTransientKeepsSession(t *testing.T) {
	a, b, clk, at1 := refreshApp(t)
	var calls atomic.Int32
	a.op.SetTokenHook(func(url.Values) (int, any) { calls.Add(1); return 503, "<html>maintenance</html>" })
	// Within the leeway but not expired: served with the current token.
	clk.advance(270 * time.Second)
	code, me := a.me(b)
	if code != 200 || me["at"] != at1 {
		t.Fatalf("transient failure before expiry: %d %v", code, me)
	}
	// Expired: 503 with Retry-After, session kept.
	clk.advance(2 * time.Minute)
	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("transient failure after expiry: %d", resp.StatusCode)
	}
	if !strings.Contains(a.logs.String(), "multiapp.refresh.temporary") {
		t.Fatal("no temporary audit event")
	}
	// The OP is back: after the back-off, the same session refreshes with
	// the kept refresh token.
	clk.advance(middleware.DefaultRefreshBackoff)
	a.op.SetTokenHook(func(form url.Values) (int, any) {
		if !strings.HasPrefix(form.Get("refresh_token"), "rt-code-") {
			return 400, map[string]any{"error": "invalid_grant"}
		}
		return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600}
	})
	code, me = a.me(b)
	if code != 200 || me["at"] != "at-2" || me["sub"] != "usr_1" {
		t.Fatalf("after recovery: %d %v", code, me)
	}
}

func TestConcurrentRefreshIsSingle(t *testing.T) {
	a, b, clk, _ := refreshApp(t)
	var refreshes atomic.Int32
	a.op.SetTokenHook(func(form url.Values) (int, any) {
		refreshes.Add(1)
		time.Sleep(50 * time.Millisecond) // a slow OP widens the race
		return 200, map[string]any{"access_token": "at-new", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-rotated"}
	})
	clk.advance(10 * time.Minute)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, me := a.me(b); code == 200 && me["at"] == "at-new" {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if refreshes.Load() != 1 || ok.Load() != 50 {
		t.Fatalf("%d refreshes at the OP, %d/50 requests served", refreshes.Load(), ok.Load())
	}
}

func TestSessionClientCallsAPIsAsTheUser(t *testing.T) {
	a, b, _, at := refreshApp(t)
	var got string
	api := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	mux := http.NewServeMux()
	mux.Handle("/call", a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Get(api)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		resp.Body.Close()
	})))
	old := a.srv.Config.Handler
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/call" {
			mux.ServeHTTP(w, r)
			return
		}
		old.ServeHTTP(w, r)
	})
	if resp := b.get(a.srv.URL + "/call"); resp.StatusCode != 200 || got != "Bearer "+at {
		t.Fatalf("%d %q", resp.StatusCode, got)
	}
	_ = context.Background()
}

// TestRefreshRacingLogoutSignsOut: a back-channel logout (on this or
// another instance) revokes the OP session while a refresh is at the OP.
// The store refuses to save the refreshed tokens (ErrRevoked): the user is
// signed out, not shown a 503, and the session is gone.
func TestRefreshRacingLogoutSignsOut(t *testing.T) {
	a, b, clk, _ := refreshApp(t)
	a.op.SetTokenHook(func(url.Values) (int, any) {
		// The logout's first step lands while the OP answers the refresh.
		if err := a.store.RevokeSID(context.Background(), a.op.Issuer, "ses_1", time.Hour); err != nil {
			t.Error(err)
		}
		claims := a.op.IDClaims("webc_a", "usr_1", "")
		return 200, map[string]any{"access_token": "at-after-logout", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt-2", "id_token": a.op.Signer().Sign(claims, nil)}
	})
	clk.advance(10 * time.Minute)
	resp := b.get(a.srv.URL + "/me")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("refresh refused by a revoked sid: %d, want 302 to sign in", resp.StatusCode)
	}
	a.op.SetTokenHook(nil)
	if n, _ := a.store.DeleteBySID(context.Background(), a.op.Issuer, "ses_1", ""); n != 0 {
		t.Fatalf("the session survived: %d left", n)
	}
}

// storeApp is an app on store with a settable clock, and a browser signed
// in to it.
func storeApp(t *testing.T, store tokenstore.Store) (*testApp, *browser, *clock) {
	clk := &clock{}
	a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now; c.Store = store })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	return a, b, clk
}

// flakyStore fails the next Updates with ErrUnavailable, as a shared store
// does during a short outage.
type flakyStore struct {
	tokenstore.Store
	failUpdates atomic.Int32
}

func (f *flakyStore) Update(ctx context.Context, s *tokenstore.Session) error {
	if f.failUpdates.Add(-1) >= 0 {
		return fmt.Errorf("connection refused: %w", tokenstore.ErrUnavailable)
	}
	return f.Store.Update(ctx, s)
}

// TestRefreshKeepsRotatedTokensThroughStoreOutage: the OP rotated the
// refresh token (the old one is spent) and the store is briefly out of
// reach when the new tokens are saved. They are saved once it is back,
// instead of dropped: dropping them would leave the session with a spent
// refresh token, and the user signed out at the next refresh.
func TestRefreshKeepsRotatedTokensThroughStoreOutage(t *testing.T) {
	flaky := &flakyStore{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	a, b, clk := storeApp(t, flaky)
	op := a.op
	var mu sync.Mutex
	spent := map[string]bool{}
	n := 0
	op.SetTokenHook(func(form url.Values) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		rt := form.Get("refresh_token")
		if spent[rt] {
			return 400, map[string]any{"error": "invalid_grant", "error_description": "refresh token already used"}
		}
		spent[rt] = true
		n++
		claims := op.IDClaims("webc_a", "usr_1", "")
		lifetime := int((time.Until(clk.now()) + 5*time.Minute).Seconds()) // 5 minutes on the app's clock
		return 200, map[string]any{"access_token": fmt.Sprintf("at-%d", n), "token_type": "Bearer", "expires_in": lifetime,
			"refresh_token": fmt.Sprintf("rt-rotated-%d", n), "id_token": op.Signer().Sign(claims, nil)}
	})
	flaky.failUpdates.Store(3)
	clk.advance(10 * time.Minute)
	code, me := a.me(b)
	if code != 200 || me["at"] != "at-1" {
		t.Fatalf("refresh while the store hiccups: %d %v, want 200 with the new token", code, me)
	}
	clk.advance(10 * time.Minute)
	code, me = a.me(b)
	if code != 200 || me["at"] != "at-2" {
		t.Fatalf("next refresh: %d %v, want 200 (the rotated refresh token was kept)", code, me)
	}
}

// TestRefreshDueFromWhenTokensWereRequested: the refresh leeway is capped
// at half the token's lifetime, measured from when the tokens were
// requested. A slow code exchange (a JWKS fetch on a loaded machine) must
// not shorten that lifetime: measured from when the session was stored,
// a 300 s token whose exchange took 100 s looked like a 200 s one, and
// the refresh came 50 s late.
func TestRefreshDueFromWhenTokensWereRequested(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) {
		c.Now = clk.now
		c.RefreshLeeway = time.Hour // the cap decides
	})
	b := newBrowser(t)
	op.SetTokenHook(func(form url.Values) (int, any) {
		if strings.HasPrefix(form.Get("code"), "code-") { // not the start-up check's made-up code
			clk.advance(100 * time.Second) // the exchange takes 100 s (by the app's clock)
		}
		return 0, nil // the OP's usual answer: expires_in 300
	})
	a.login(b, "/", "usr_1", nil)
	op.SetTokenHook(func(form url.Values) (int, any) {
		if form.Get("grant_type") != "refresh_token" {
			return 400, map[string]any{"error": "invalid_grant"}
		}
		return 200, map[string]any{"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 300,
			"refresh_token": "rt-2", "id_token": op.Signer().Sign(op.IDClaims("webc_a", "usr_1", ""), nil)}
	})
	// 120 s left of 300: less than half, so due.
	clk.advance(80 * time.Second)
	if code, me := a.me(b); code != 200 || me["at"] != "at-refreshed" {
		t.Fatalf("120 s left of a 300 s token: %d %v, want a refresh", code, me)
	}
}
