package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/cookie"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// serve runs h on a GET of path carrying b's session cookie for a.
func (a *testApp) serve(b *browser, h http.Handler, path string) *httptest.ResponseRecorder {
	a.t.Helper()
	r := httptest.NewRequest("GET", a.srv.URL+path, nil)
	if c := a.sessionCookie(b); c != nil {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestClaimsFreshAfterRefreshInRequest: a handler whose session is
// refreshed while it runs (Token) then reads the refreshed ID token's
// claims, not the ones of the token set it replaced.
func TestClaimsFreshAfterRefreshInRequest(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", func(m map[string]any) { m["email"] = "before@example.com" })
	a.op.SetTokenHook(func(form url.Values) (int, any) {
		claims := a.op.IDClaims("webc_a", "usr_1", "")
		claims["email"] = "after@example.com"
		return 200, map[string]any{"access_token": "at-refreshed", "token_type": "Bearer", "expires_in": 300, "id_token": a.op.Signer().Sign(claims, nil)}
	})
	var before, after, token string
	w := a.serve(b, a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		before = s.Claims().Email
		clk.advance(299 * time.Second) // the access token now expires within the leeway
		tok, err := s.TokenContext(r.Context())
		if err != nil {
			t.Errorf("TokenContext: %v", err)
			return
		}
		token, after = tok.AccessToken, s.Claims().Email
	})), "/")
	if w.Code != 200 || token != "at-refreshed" {
		t.Fatalf("%d, token %q: the refresh did not happen in the handler", w.Code, token)
	}
	if before != "before@example.com" || after != "after@example.com" {
		t.Errorf("Claims().Email = %q before the refresh and %q after, want before@ then after@", before, after)
	}
	// The next request reads the refreshed record, parsed once at the refresh.
	if code, me := a.me(b); code != 200 || me["email"] != "after@example.com" {
		t.Errorf("next request: %d %v", code, me)
	}
}

// TestClaimsParsedOncePerTokenSet: requests of one session share the claims
// parsed when rp validated the ID token; a refresh brings new ones.
func TestClaimsParsedOncePerTokenSet(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{}
	a := newTestApp(t, op, "webc_a", func(c *middleware.WebConfig) { c.Now = clk.now })
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	var got *rp.Claims
	h := a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		got = s.Claims()
	}))
	a.serve(b, h, "/")
	first := got
	a.serve(b, h, "/")
	if got != first || got.Subject != "usr_1" {
		t.Fatalf("two requests: claims %p and %p (sub %q), want the same parsed claims", first, got, got.Subject)
	}
	a.op.SetTokenHook(func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
			"id_token": a.op.Signer().Sign(a.op.IDClaims("webc_a", "usr_1", ""), nil)}
	})
	clk.advance(299 * time.Second)
	a.serve(b, h, "/")
	refreshed := got
	a.serve(b, h, "/")
	if refreshed == first || got != refreshed {
		t.Errorf("after a refresh: claims %p then %p (before it %p), want new claims, then the same", refreshed, got, first)
	}
}

// TestUnreadableClaimsAreNoSession: a record whose claims do not parse (a
// custom store's, or damaged) is treated as no session, logged, and never
// served with empty claims.
func TestUnreadableClaimsAreNoSession(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	codecs, _ := cookie.Codecs([][]byte{testKey}, time.Hour)
	for name, claims := range map[string]json.RawMessage{
		"none":       nil,
		"not json":   json.RawMessage(`{"sub":`),
		"array":      json.RawMessage(`["usr_1"]`),
		"wrong type": json.RawMessage(`{"sub":"usr_1","email":7}`),
	} {
		t.Run(name, func(t *testing.T) {
			rec := typicalRecord(op.Issuer, "webc_a")
			rec.Claims = claims
			if err := a.store.Create(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			value, err := securecookie.EncodeMulti("ma-webc_a", rec.ID, codecs...)
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range map[string]string{"/me": "302 /auth/login?return_to=%2Fme", "/public": "200 hello anonymous"} {
				r, _ := http.NewRequest("GET", a.srv.URL+path, nil)
				r.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: value})
				resp, err := http.DefaultTransport.RoundTrip(r)
				if err != nil {
					t.Fatal(err)
				}
				got := strconv.Itoa(resp.StatusCode) + " " + body(resp)
				if loc := resp.Header.Get("Location"); loc != "" {
					got = strconv.Itoa(resp.StatusCode) + " " + loc
				}
				if got != want {
					t.Errorf("%s: %q, want %q", path, got, want)
				}
				resp.Body.Close()
			}
			if !strings.Contains(a.logs.String(), `"msg":"multiapp.session.invalid"`) {
				t.Error("no multiapp.session.invalid event")
			}
		})
	}
}
