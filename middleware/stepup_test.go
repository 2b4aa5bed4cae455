package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

const (
	acrLow  = "urn:example:low"
	acrHigh = "urn:example:high"
)

// loginVia drives a sign-in that starts at loginPath (a login route URL
// with its query, as a redirect gives it): the OP answers with an ID token
// of claims (nil: defaults) and the callback's response is returned.
func (a *testApp) loginVia(b *browser, loginPath, sub string, claims func(map[string]any)) (*http.Response, url.Values) {
	a.t.Helper()
	resp := b.get(a.srv.URL + loginPath)
	if resp.StatusCode != http.StatusFound {
		a.t.Fatalf("login %s: %d %s", loginPath, resp.StatusCode, body(resp))
	}
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	q := authURL.Query()
	cl := a.op.IDClaims(a.id, sub, q.Get("nonce"))
	if claims != nil {
		claims(cl)
	}
	code := "code-" + q.Get("state")[:10]
	a.op.AddGrant(code, oidctest.Grant{Claims: cl, Challenge: q.Get("code_challenge"), RefreshToken: "rt-" + code})
	return b.get(a.srv.URL + "/auth/callback?code=" + code + "&state=" + q.Get("state")), q
}

func withClaims(kv ...any) func(map[string]any) {
	return func(c map[string]any) {
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
	}
}

var served = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.SessionFrom(r.Context())
	io.WriteString(w, "served "+s.Claims().ACR)
})

// TestRequireStepUp: a route that needs an acr and/or a recent sign-in
// sends a session that lacks it through the OP again with acr_values and
// max_age, checks the new ID token, and serves the route with the new
// session; a step-up the OP could not do ends on an error page, with the
// old session kept and no redirect loop.
func TestRequireStepUp(t *testing.T) {
	now := time.Now().Unix()
	high := middleware.StepUp{ACR: []string{acrHigh}}
	recent := middleware.StepUp{MaxAge: 5 * time.Minute}
	both := middleware.StepUp{ACR: []string{acrHigh, "urn:example:mfa"}, MaxAge: 5 * time.Minute}
	cases := []struct {
		name       string
		su         middleware.StepUp
		session    func(map[string]any) // the first sign-in's ID token
		wantLogin  string               // the step-up's login route query ("": served at once)
		stepUp     func(map[string]any) // the step-up's ID token
		wantStatus int                  // of the callback: 302 back, or an error page
		wantPage   string
	}{
		{"acr met", high, withClaims("acr", acrHigh), "", nil, 0, ""},
		{"acr weaker, stepped up", high, withClaims("acr", acrLow), "acr_values=urn%3Aexample%3Ahigh&return_to=%2Fsecure", withClaims("acr", acrHigh), 302, ""},
		{"acr missing, stepped up", high, nil, "acr_values=urn%3Aexample%3Ahigh&return_to=%2Fsecure", withClaims("acr", acrHigh), 302, ""},
		{"step-up answered with the weaker acr", high, withClaims("acr", acrLow), "acr_values=urn%3Aexample%3Ahigh&return_to=%2Fsecure", withClaims("acr", acrLow), 403, "needs a stronger sign-in"},
		{"step-up answered without acr", high, withClaims("acr", acrLow), "acr_values=urn%3Aexample%3Ahigh&return_to=%2Fsecure", nil, 403, "needs a stronger sign-in"},
		{"step-up answered with acr a number (hostile)", high, withClaims("acr", acrLow), "acr_values=urn%3Aexample%3Ahigh&return_to=%2Fsecure", withClaims("acr", 3), 400, "could not be completed"},

		{"recent", recent, withClaims("auth_time", now-60), "", nil, 0, ""},
		{"too old, stepped up", recent, withClaims("auth_time", now-3600), "max_age=300&return_to=%2Fsecure", withClaims("auth_time", now), 302, ""},
		{"auth_time missing, stepped up", recent, nil, "max_age=300&return_to=%2Fsecure", withClaims("auth_time", now), 302, ""},
		{"auth_time in the future (hostile), stepped up", recent, withClaims("auth_time", now+3600), "max_age=300&return_to=%2Fsecure", withClaims("auth_time", now), 302, ""},
		{"step-up not re-authenticated", recent, withClaims("auth_time", now-3600), "max_age=300&return_to=%2Fsecure", withClaims("auth_time", now-3600), 403, "needs a recent sign-in"},
		{"step-up answered with auth_time in the future", recent, nil, "max_age=300&return_to=%2Fsecure", withClaims("auth_time", now+3600), 403, "needs a recent sign-in"},

		{"both met", both, withClaims("acr", "urn:example:mfa", "auth_time", now-10), "", nil, 0, ""},
		{"both: acr met, too old: both asked", both, withClaims("acr", acrHigh, "auth_time", now-3600), "acr_values=urn%3Aexample%3Ahigh+urn%3Aexample%3Amfa&max_age=300&return_to=%2Fsecure", withClaims("acr", acrHigh, "auth_time", now), 302, ""},
		{"both: step-up recent but weaker", both, withClaims("acr", acrLow), "acr_values=urn%3Aexample%3Ahigh+urn%3Aexample%3Amfa&max_age=300&return_to=%2Fsecure", withClaims("acr", acrLow, "auth_time", now), 403, "needs a stronger sign-in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			a := newTestApp(t, oidctest.New(t), "webc_a", func(cfg *middleware.WebConfig) { cfg.Observer = rec })
			route := a.web.RequireStepUp(c.su)(served)
			b := newBrowser(t)
			a.login(b, "/", "usr_1", c.session)
			first := a.sessionCookie(b).Value

			w := a.serve(b, route, "/secure")
			if c.wantLogin == "" {
				if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "served") {
					t.Fatalf("%d %s %s", w.Code, w.Header().Get("Location"), w.Body)
				}
				return
			}
			loc := w.Header().Get("Location")
			if w.Code != http.StatusFound || loc != "/auth/login?"+c.wantLogin {
				t.Fatalf("step-up: %d %q, want /auth/login?%s", w.Code, loc, c.wantLogin)
			}
			if e, ok := find(rec.take(), event.StepUp); !ok || e.Subject != "usr_1" || e.Session == "" {
				t.Fatalf("no StepUp event with the session: %+v", e)
			}
			resp, authQ := a.loginVia(b, loc, "usr_1", c.stepUp)
			lq, _ := url.ParseQuery(c.wantLogin)
			if authQ.Get("acr_values") != lq.Get("acr_values") || authQ.Get("max_age") != lq.Get("max_age") || authQ.Get("prompt") != "" {
				t.Fatalf("authorization request %v, want the step-up's acr_values and max_age", authQ)
			}
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("callback %d, want %d: %s", resp.StatusCode, c.wantStatus, body(resp))
			}
			events := rec.take()
			if c.wantStatus == 302 {
				if resp.Header.Get("Location") != "/secure" {
					t.Fatalf("back to %q", resp.Header.Get("Location"))
				}
				if a.sessionCookie(b).Value == first {
					t.Fatal("the step-up kept the session id")
				}
				if w := a.serve(b, route, "/secure"); w.Code != 200 {
					t.Fatalf("after the step-up: %d %s", w.Code, w.Header().Get("Location"))
				}
				if e, ok := find(events, event.Login); !ok || !hasAttr(e, "step_up") {
					t.Fatalf("login event %+v", e)
				}
				return
			}
			// Refused: a clear page, the old session still there and
			// usable, and the route asks again only when visited again.
			if !strings.Contains(body(resp), c.wantPage) || resp.Header.Get("Location") != "" {
				t.Fatalf("page %q, want %q", body(resp), c.wantPage)
			}
			if a.sessionCookie(b).Value != first || a.serve(b, a.web.Require(served), "/me").Code != 200 {
				t.Fatal("the failed step-up lost the session")
			}
			if e, ok := find(events, event.LoginFailed); !ok || (c.wantStatus == 403) != (e.Reason == "acr_not_met" || e.Reason == "auth_time_not_met") {
				t.Fatalf("LoginFailed %+v", e)
			}
		})
	}
}

func hasAttr(e event.Event, key string) bool {
	for _, a := range e.Attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestRequireStepUpWithoutSession: a visitor who is not signed in signs
// in once, meeting the route, not twice (a plain sign-in, then a step-up).
// Requests that are not navigations get 401.
func TestRequireStepUpWithoutSession(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", nil)
	route := a.web.RequireStepUp(middleware.StepUp{ACR: []string{acrHigh}, MaxAge: 90 * time.Second})(served)
	b := newBrowser(t)
	w := a.serve(b, route, "/secure?x=1")
	if loc := w.Header().Get("Location"); w.Code != 302 || loc != "/auth/login?acr_values=urn%3Aexample%3Ahigh&max_age=90&return_to=%2Fsecure%3Fx%3D1" {
		t.Fatalf("%d %q", w.Code, loc)
	}
	resp, _ := a.loginVia(b, w.Header().Get("Location"), "usr_1", withClaims("acr", acrHigh, "auth_time", time.Now().Unix()))
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/secure?x=1" {
		t.Fatalf("callback %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if w := a.serve(b, route, "/secure?x=1"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	r := httptest.NewRequest("GET", a.srv.URL+"/secure", nil)
	r.Header.Set("Accept", "application/json")
	rw := httptest.NewRecorder()
	route.ServeHTTP(rw, r)
	if rw.Code != 401 || !strings.Contains(rw.Body.String(), "login_required") {
		t.Fatalf("anonymous JSON: %d %s", rw.Code, rw.Body)
	}
}

// TestStepUpForNonNavigation: fetch/XHR calls are not redirected to the
// OP: they get 401 insufficient_user_authentication with the challenge and
// the login URL to navigate to.
func TestStepUpForNonNavigation(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", nil)
	route := a.web.RequireStepUp(middleware.StepUp{ACR: []string{acrHigh, "urn:example:mfa"}, MaxAge: time.Hour})(served)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", withClaims("acr", acrLow))
	for _, hdr := range []map[string]string{{"Accept": "application/json"}, {"Sec-Fetch-Mode": "cors"}, {"X-Requested-With": "XMLHttpRequest"}} {
		r := httptest.NewRequest("GET", a.srv.URL+"/api/secure", nil)
		r.AddCookie(a.sessionCookie(b))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		route.ServeHTTP(w, r)
		var got struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		want := `Cookie realm="webc_a", error="insufficient_user_authentication", acr_values="urn:example:high urn:example:mfa", max_age=3600`
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != want || got.Error != "insufficient_user_authentication" ||
			!strings.HasSuffix(got.Description, "/auth/login?acr_values=urn%3Aexample%3Ahigh+urn%3Aexample%3Amfa&max_age=3600&return_to=%2Fapi%2Fsecure") {
			t.Fatalf("%v: %d %q %+v", hdr, w.Code, w.Header().Get("WWW-Authenticate"), got)
		}
	}
}

// TestLoginRouteStepUpParams: the login route takes acr_values and max_age
// (what RequireStepUp and StartStepUp send) and refuses malformed ones
// with 400, before anything reaches the OP.
func TestLoginRouteStepUpParams(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) {
		c.AuthParams = url.Values{"acr_values": {acrLow + " " + acrHigh + " a b"}}
	})
	b := newBrowser(t)
	for query, want := range map[string]string{
		"":                                       "acr_values=" + acrLow + " " + acrHigh + " a b",
		"acr_values=" + acrHigh:                  "acr_values=" + acrHigh,
		"acr_values=a++b&max_age=0":              "acr_values=a b&max_age=0",
		"max_age=9223372036854775807":            "acr_values=" + acrLow + " " + acrHigh + " a b&max_age=9223372036854775807",
		"max_age=9223372036854775808":            "400",
		"max_age=-1":                             "400",
		"max_age=%2B5":                           "400",
		"max_age=5s":                             "400",
		"max_age=":                               "400",
		"max_age=1&max_age=2":                    "400",
		"acr_values=":                            "400",
		"acr_values=+":                           "400",
		"acr_values=a%22b":                       "400",
		"acr_values=a%0Ab":                       "400",
		"acr_values=" + strings.Repeat("a", 129): "400",
		"acr_values=a&acr_values=b":              "400",
	} {
		resp := b.get(a.srv.URL + "/auth/login?return_to=%2F&" + query)
		if want == "400" {
			if resp.StatusCode != 400 || !strings.Contains(body(resp), "Invalid sign-in request") {
				t.Errorf("%q: %d", query, resp.StatusCode)
			}
			continue
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		wq, _ := url.ParseQuery(want)
		if resp.StatusCode != 302 || loc.Query().Get("acr_values") != wq.Get("acr_values") || loc.Query().Get("max_age") != wq.Get("max_age") {
			t.Errorf("%q: %d %v, want %v", query, resp.StatusCode, loc.Query(), wq)
		}
	}
}

// TestStepUpCookieBudget: a step-up's acr values and max_age fit in the
// login transaction cookie with the longest return path it guarantees.
func TestStepUpCookieBudget(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", nil)
	b := newBrowser(t)
	su := middleware.StepUp{ACR: []string{strings.Repeat("a", 63), strings.Repeat("b", 64)}, MaxAge: 1 << 62}
	route := a.web.RequireStepUp(su)(served)
	for range 4 { // parallel logins fill every slot
		w := a.serve(b, route, "/"+strings.Repeat("p", 255))
		resp := b.get(a.srv.URL + w.Header().Get("Location"))
		if resp.StatusCode != 302 {
			t.Fatalf("%d %s", resp.StatusCode, body(resp))
		}
	}
}

// TestRequireStepUpPanicsOnBadConfig: a route set up wrong fails at
// start-up.
func TestRequireStepUpPanicsOnBadConfig(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", nil)
	for name, su := range map[string]middleware.StepUp{
		"empty acr":      {ACR: []string{""}},
		"acr with space": {ACR: []string{"a b"}},
		"acr with quote": {ACR: []string{`a"b`}},
		"too many":       {ACR: []string{strings.Repeat("a", 100), strings.Repeat("b", 100)}},
		"negative age":   {MaxAge: -time.Second},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: accepted", name)
				}
			}()
			a.web.RequireStepUp(su)
		}()
	}
}

// acrVerifier stands in for an API's access-token verifier: every token
// is valid, with the acr and auth_time it is told.
type acrVerifier struct {
	mu       sync.Mutex
	acr      string
	authTime int64
}

func (v *acrVerifier) set(acr string, authTime int64) {
	v.mu.Lock()
	v.acr, v.authTime = acr, authTime
	v.mu.Unlock()
}

func (v *acrVerifier) Verify(context.Context, string) (*rp.Claims, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &rp.Claims{Subject: "usr_1", ACR: v.acr, AuthTime: rp.NumericDate(v.authTime)}, nil
}

// TestStartStepUpFromAPIChallenge: a web app calls an API as the user;
// the API (package bearer) answers insufficient_user_authentication; the
// app reads the challenge and starts the step-up, which returns the user
// to the same page, where the call now succeeds.
func TestStartStepUpFromAPIChallenge(t *testing.T) {
	verifier := &acrVerifier{}
	verifier.set(acrLow, time.Now().Unix()-3600)
	api, err := bearer.New(bearer.Config{Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api.Require(bearer.AnyACR(acrHigh), bearer.MaxAuthAge(10*time.Minute))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "paid")
	})))
	defer apiSrv.Close()

	rec := &recorder{}
	a := newTestApp(t, oidctest.New(t), "webc_a", func(c *middleware.WebConfig) { c.Observer = rec })
	pay := a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Get(apiSrv.URL + "/payments")
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		if su, ok := middleware.StepUpFromResponse(resp); ok {
			a.web.StartStepUp(w, r, su)
			return
		}
		io.Copy(w, resp.Body)
	}))
	b := newBrowser(t)
	a.login(b, "/", "usr_1", withClaims("acr", acrLow))

	w := a.serve(b, pay, "/pay?amount=12000")
	want := "/auth/login?acr_values=urn%3Aexample%3Ahigh&max_age=600&return_to=%2Fpay%3Famount%3D12000"
	if w.Code != 302 || w.Header().Get("Location") != want {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if e, ok := find(rec.take(), event.StepUp); !ok || e.Reason != "api" || e.Subject != "usr_1" {
		t.Fatalf("StepUp event %+v", e)
	}
	resp, _ := a.loginVia(b, want, "usr_1", withClaims("acr", acrHigh, "auth_time", time.Now().Unix()))
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/pay?amount=12000" {
		t.Fatalf("callback %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	verifier.set(acrHigh, time.Now().Unix()) // the new access token's
	if w := a.serve(b, pay, "/pay?amount=12000"); w.Code != 200 || w.Body.String() != "paid" {
		t.Fatalf("after the step-up: %d %s", w.Code, w.Body)
	}

	// A challenge the app cannot follow is an error page, not a redirect.
	w = httptest.NewRecorder()
	a.web.StartStepUp(w, httptest.NewRequest("GET", "/pay", nil), middleware.StepUp{ACR: []string{"a b"}})
	if w.Code != http.StatusBadGateway || w.Header().Get("Location") != "" {
		t.Fatalf("invalid step-up: %d", w.Code)
	}
	// A challenge that names nothing asks for a fresh sign-in.
	w = httptest.NewRecorder()
	a.web.StartStepUp(w, httptest.NewRequest("GET", "/pay", nil), middleware.StepUp{})
	if w.Header().Get("Location") != "/auth/login?prompt=login&return_to=%2Fpay" {
		t.Fatalf("zero step-up: %q", w.Header().Get("Location"))
	}
}
