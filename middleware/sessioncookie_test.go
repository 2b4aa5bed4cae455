package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/cookie"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// withCookie asks for /me as a script does, with the session cookie value
// given (a browser that kept it, or an attacker who copied it).
func (a *testApp) withCookie(value string) int {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.srv.URL+"/me", nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: "ma-" + a.id, Value: value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// backchannelLogout posts a logout token for the claims given (sid and/or
// sub) to a's back-channel route.
func (a *testApp) backchannelLogout(claims map[string]any) {
	a.t.Helper()
	tok := map[string]any{"iss": a.op.Issuer, "aud": a.id, "iat": time.Now().Unix(), "jti": tokenstore.NewID(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	for k, v := range claims {
		tok[k] = v
	}
	resp, err := http.Post(a.srv.URL+"/auth/backchannel-logout", "application/x-www-form-urlencoded",
		strings.NewReader("logout_token="+a.op.Signer().Sign(tok, oidctest.Header{"typ": "logout+jwt"})))
	if err != nil || resp.StatusCode != 200 {
		a.t.Fatalf("back-channel logout: %v %v", err, resp)
	}
	resp.Body.Close()
}

// sessionIDOf opens a session cookie value as the web layer does.
func sessionIDOf(t *testing.T, value string) string {
	codecs, _ := cookie.Codecs([][]byte{testKey}, 0)
	var id string
	if err := securecookie.DecodeMulti("ma-webc_a", value, &id, codecs...); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestOpenedCookieCacheServesNoEndedSession: Require remembers which
// session a cookie value opens to, so that a warm session's requests skip
// the cookie's MAC and decryption. Whatever ends a session ends it on the
// very next request that presents the same, already opened, cookie value,
// exactly as without the cache: sign-out (the value replayed after the
// browser dropped it), a back-channel logout by sid or by subject, the
// session deleted by another instance, the idle timeout, the absolute
// lifetime, and the cookie's own age limit (securecookie's MaxAge) even
// while the store would still hold the session.
func TestOpenedCookieCacheServesNoEndedSession(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		config func(*middleware.WebConfig, *clock)
		end    func(t *testing.T, a *testApp, b *browser, id string, clk *clock)
	}{
		{"sign-out", nil, func(t *testing.T, a *testApp, b *browser, _ string, _ *clock) {
			if resp := b.do("POST", a.srv.URL+"/auth/logout", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
		}},
		{"back-channel logout by sid", nil, func(t *testing.T, a *testApp, _ *browser, _ string, _ *clock) {
			a.backchannelLogout(map[string]any{"sid": a.op.IDClaims(a.id, "usr_1", "")["sid"]})
		}},
		{"back-channel logout by subject", nil, func(t *testing.T, a *testApp, _ *browser, _ string, _ *clock) {
			a.backchannelLogout(map[string]any{"sub": "usr_1"})
		}},
		{"deleted by another instance", nil, func(t *testing.T, a *testApp, _ *browser, id string, _ *clock) {
			if err := a.store.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}},
		{"idle timeout", func(c *middleware.WebConfig, clk *clock) {
			c.IdleTimeout = 2 * time.Minute
		}, func(t *testing.T, _ *testApp, _ *browser, _ string, clk *clock) {
			clk.advance(2*time.Minute + time.Second)
		}},
		{"absolute lifetime", func(c *middleware.WebConfig, clk *clock) {
			c.SessionLifetime = time.Hour
		}, func(t *testing.T, _ *testApp, _ *browser, _ string, clk *clock) {
			clk.advance(time.Hour + time.Second)
		}},
		{"cookie age limit", func(c *middleware.WebConfig, clk *clock) {
			c.SessionLifetime = time.Second // securecookie's MaxAge: 1 s
		}, func(t *testing.T, a *testApp, _ *browser, id string, _ *clock) {
			// The store would keep the session for an hour more: only the
			// cookie's age ends it, as securecookie's clock tells.
			rec, err := a.store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			rec.ExpiresAt = time.Now().Add(time.Hour)
			if err := a.store.Update(ctx, rec); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2100 * time.Millisecond)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{}
			a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) {
				c.Now = clk.now
				c.Store = tokenstore.NewMemory(tokenstore.MemoryOptions{Now: clk.now})
				if tc.config != nil {
					tc.config(c, clk)
				}
			})
			a.store = a.web.Store()
			b := newBrowser(t)
			a.login(b, "/", "usr_1", nil)
			value := a.sessionCookie(b).Value
			for range 2 {
				if code := a.withCookie(value); code != http.StatusOK {
					t.Fatalf("live session: %d", code)
				}
			}
			if n := middleware.OpenedCookies(a.web); n != 1 {
				t.Fatalf("%d opened cookies cached, want the session's", n)
			}
			tc.end(t, a, b, sessionIDOf(t, value), clk)
			for range 2 {
				if code := a.withCookie(value); code != http.StatusUnauthorized {
					t.Fatalf("ended session, its opened cookie presented again: %d, want 401", code)
				}
			}
		})
	}
}
