package bearer_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/rp"
)

// TestBearerStepUp (RFC 9470 §3, §6.1): a route that requires an acr
// and/or a maximum authentication age answers a token that does not meet
// it 401 error="insufficient_user_authentication", with acr_values and
// max_age naming everything the route needs, so the client can sign the
// user in again and retry; a token of the wrong shape is invalid, not
// insufficient.
func TestBearerStepUp(t *testing.T) {
	f := newBearerFixture(t)
	now := time.Now().Unix()
	tok := func(claims map[string]any) string {
		return bearerToken(f.op, func(c map[string]any) {
			for k, v := range claims {
				c[k] = v
			}
		})
	}
	const (
		high = "urn:example:high"
		low  = "urn:example:low"
		head = `Bearer realm="api", error="insufficient_user_authentication", error_description=`
	)
	acrDesc := head + `"a different authentication level is required"`
	ageDesc := head + `"more recent authentication is required"`
	noTimeDesc := head + `"the access token does not say when the user authenticated; a recent authentication is required"`
	invalid := `Bearer realm="api", error="invalid_token", error_description="the access token is invalid"`
	needHigh := []bearer.Requirement{bearer.AnyACR(high)}
	recent := []bearer.Requirement{bearer.MaxAuthAge(5 * time.Minute)}
	both := []bearer.Requirement{bearer.AnyACR(high, "urn:example:mfa"), bearer.MaxAuthAge(5 * time.Minute)}
	cases := []struct {
		name      string
		reqs      []bearer.Requirement
		claims    map[string]any
		skew      time.Duration
		status    int
		challenge string
		reason    string
	}{
		{"acr met", needHigh, map[string]any{"acr": high}, 0, 200, "", ""},
		{"acr weaker", needHigh, map[string]any{"acr": low}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr missing", needHigh, nil, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr null", needHigh, map[string]any{"acr": nil}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr empty", needHigh, map[string]any{"acr": ""}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr differs in case", needHigh, map[string]any{"acr": strings.ToUpper(high)}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr is the list", needHigh, map[string]any{"acr": high + " " + low}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr a number (hostile)", needHigh, map[string]any{"acr": 3}, 0, 401, invalid, "malformed"},
		{"acr an array (hostile)", needHigh, map[string]any{"acr": []string{high}}, 0, 401, invalid, "malformed"},
		{"acr an object (hostile)", needHigh, map[string]any{"acr": map[string]any{"values": []string{high}}}, 0, 401, invalid, "malformed"},
		{"acr a number, route without step-up", nil, map[string]any{"acr": 3}, 0, 401, invalid, "malformed"},
		{"acr second of two", both, map[string]any{"acr": "urn:example:mfa", "auth_time": now - 10}, 0, 200, "", ""},

		{"recent", recent, map[string]any{"auth_time": now - 60}, 0, 200, "", ""},
		{"too old", recent, map[string]any{"auth_time": now - 3600}, 0, 401, ageDesc + `, max_age=300`, "auth_time"},
		{"just past max_age and skew", recent, map[string]any{"auth_time": now - 300 - 60 - 2}, 0, 401, ageDesc + `, max_age=300`, "auth_time"},
		{"within the skew", recent, map[string]any{"auth_time": now - 300 - 30}, 0, 200, "", ""},
		{"auth_time missing", recent, nil, 0, 401, noTimeDesc + `, max_age=300`, "auth_time"},
		{"auth_time null", recent, map[string]any{"auth_time": nil}, 0, 401, noTimeDesc + `, max_age=300`, "auth_time"},
		{"auth_time 0 (1970)", recent, map[string]any{"auth_time": 0}, 0, 401, ageDesc + `, max_age=300`, "auth_time"},
		{"auth_time in the future (hostile)", recent, map[string]any{"auth_time": now + 3600}, 0, 401, ageDesc + `, max_age=300`, "auth_time"},
		{"auth_time far in the future (hostile)", recent, map[string]any{"auth_time": 99_999_999_999}, 0, 401, ageDesc + `, max_age=300`, "auth_time"},
		{"auth_time a little ahead, within skew", recent, map[string]any{"auth_time": now + 20}, 0, 200, "", ""},
		{"auth_time a string (hostile)", recent, map[string]any{"auth_time": "yesterday"}, 0, 401, invalid, "malformed"},
		{"auth_time negative (hostile)", recent, map[string]any{"auth_time": -5}, 0, 401, invalid, "malformed"},
		{"auth_time beyond year 5000 (hostile)", recent, map[string]any{"auth_time": 1e12}, 0, 401, invalid, "malformed"},
		{"smaller skew", []bearer.Requirement{bearer.MaxAuthAge(10 * time.Second)}, map[string]any{"auth_time": now - 30}, time.Second, 401, ageDesc + `, max_age=10`, "auth_time"},
		{"default skew", []bearer.Requirement{bearer.MaxAuthAge(10 * time.Second)}, map[string]any{"auth_time": now - 30}, 0, 200, "", ""},
		{"max_age 0, just now", []bearer.Requirement{bearer.MaxAuthAge(0)}, map[string]any{"auth_time": now}, 0, 200, "", ""},
		{"max_age 0, an hour ago", []bearer.Requirement{bearer.MaxAuthAge(0)}, map[string]any{"auth_time": now - 3600}, 0, 401, ageDesc + `, max_age=0`, "auth_time"},
		{"sub-second max_age rounds down", []bearer.Requirement{bearer.MaxAuthAge(1500 * time.Millisecond)}, map[string]any{"auth_time": now - 3600}, 0, 401, ageDesc + `, max_age=1`, "auth_time"},
		{"huge max_age (hostile)", []bearer.Requirement{bearer.MaxAuthAge(math.MaxInt64)}, map[string]any{"auth_time": 1}, 0, 200, "", ""},
		{"huge max_age, auth_time in the future", []bearer.Requirement{bearer.MaxAuthAge(math.MaxInt64)}, map[string]any{"auth_time": now + 3600}, time.Second, 401, ageDesc + `, max_age=9223372036`, "auth_time"},

		// Both: the challenge names both, whichever failed, so one new
		// sign-in meets the route.
		{"both met", both, map[string]any{"acr": high, "auth_time": now - 60}, 0, 200, "", ""},
		{"both: acr weaker", both, map[string]any{"acr": low, "auth_time": now - 60}, 0, 401, acrDesc + `, acr_values="` + high + ` urn:example:mfa", max_age=300`, "acr"},
		{"both: too old", both, map[string]any{"acr": high, "auth_time": now - 3600}, 0, 401, ageDesc + `, acr_values="` + high + ` urn:example:mfa", max_age=300`, "auth_time"},
		{"both: neither", both, nil, 0, 401, acrDesc + `, acr_values="` + high + ` urn:example:mfa", max_age=300`, "acr"},
		{"two max ages: the smaller is asked", []bearer.Requirement{bearer.MaxAuthAge(time.Hour), bearer.MaxAuthAge(time.Minute)}, map[string]any{"auth_time": now - 600}, 0, 401, ageDesc + `, max_age=60`, "auth_time"},

		// Step-up and scopes: the first unmet requirement answers.
		{"scope first, unmet", []bearer.Requirement{bearer.AnyScope("orders:write"), bearer.AnyACR(high)}, map[string]any{"acr": low}, 0, 403,
			`Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a required scope, permission or role", scope="orders:write"`, "scope"},
		{"scope met, acr unmet", []bearer.Requirement{bearer.AnyScope("orders:read"), bearer.AnyACR(high)}, map[string]any{"acr": low}, 0, 401, acrDesc + `, acr_values="` + high + `"`, "acr"},
		{"acr met, scope unmet", []bearer.Requirement{bearer.AnyACR(high), bearer.AnyRole("admin")}, map[string]any{"acr": high}, 0, 403,
			`Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a required scope, permission or role", scope="admin"`, "scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var refused []refusal
			b := mustNew(t, bearer.Config{Verifier: f.verifier, ClockSkew: c.skew, Observer: refusals(&refused)})
			r := httptest.NewRequest("GET", "/payments", nil)
			r.Header.Set("Authorization", "Bearer "+tok(c.claims))
			w := httptest.NewRecorder()
			b.Require(c.reqs...)(echo).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s; %s)", w.Code, c.status, w.Header().Get("WWW-Authenticate"), w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Fatalf("WWW-Authenticate\n %s\nwant\n %s", got, c.challenge)
			}
			if c.status == 200 {
				return
			}
			if len(refused) != 1 || refused[0].reason != c.reason || refused[0].status != c.status {
				t.Fatalf("refusals %+v, want reason %q", refused, c.reason)
			}
			if c.status == 401 && c.reason != "malformed" {
				var ve *rp.ValidationError
				if !errors.As(refused[0].err, &ve) || !errors.Is(refused[0].err, rp.ErrInvalidToken) {
					t.Fatalf("error %v", refused[0].err)
				}
				if !strings.Contains(w.Body.String(), `"error":"insufficient_user_authentication"`) {
					t.Fatalf("body %s", w.Body)
				}
			}
		})
	}
}

// TestBearerStepUpIntrospection (RFC 9470 §6.2): for an opaque token the
// acr and auth_time come from the introspection answer.
func TestBearerStepUpIntrospection(t *testing.T) {
	f := newBearerFixture(t)
	now := time.Now().Unix()
	answers := map[string]map[string]any{}
	for name, extra := range map[string]map[string]any{
		"opaque-high":     {"acr": "urn:example:high", "auth_time": now - 10},
		"opaque-low":      {"acr": "urn:example:low", "auth_time": now - 10},
		"opaque-old-high": {"acr": "urn:example:high", "auth_time": now - 7200},
		"opaque-hostile":  {"acr": true, "auth_time": now - 10},
	} {
		a := map[string]any{
			"active": true, "token_type": "Bearer", "iss": f.op.Issuer, "aud": bearerAud, "sub": "usr_1",
			"client_id": "skc_1", "scope": "orders:read", "exp": now + 300, "iat": now,
		}
		for k, v := range extra {
			a[k] = v
		}
		answers[name] = a
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		a, ok := answers[r.PostForm.Get("token")]
		if !ok {
			a = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}))
	defer srv.Close()
	f.op.SetMeta("introspection_endpoint", srv.URL)
	provider, err := rp.Discover(context.Background(), f.op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences:     []string{bearerAud},
		Introspection: &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	route := mustNew(t, bearer.Config{Verifier: v}).Require(bearer.AnyACR("urn:example:high"), bearer.MaxAuthAge(time.Hour))(echo)
	for token, want := range map[string]string{
		"opaque-high":     "200",
		"opaque-low":      `401 Bearer realm="api", error="insufficient_user_authentication", error_description="a different authentication level is required", acr_values="urn:example:high", max_age=3600`,
		"opaque-old-high": `401 Bearer realm="api", error="insufficient_user_authentication", error_description="more recent authentication is required", acr_values="urn:example:high", max_age=3600`,
		"opaque-hostile":  `401 Bearer realm="api", error="invalid_token", error_description="the access token is invalid"`,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		route.ServeHTTP(w, r)
		got := strconv.Itoa(w.Code)
		if w.Code != 200 {
			got += " " + w.Header().Get("WWW-Authenticate")
		}
		if got != want {
			t.Errorf("%s: %s\nwant %s", token, got, want)
		}
	}
}

// TestStepUpRequirementsAtSetUp: a route set up wrong fails at start-up.
func TestStepUpRequirementsAtSetUp(t *testing.T) {
	for name, f := range map[string]func(){
		"no acr":             func() { bearer.AnyACR() },
		"empty acr":          func() { bearer.AnyACR("") },
		"acr with a space":   func() { bearer.AnyACR("urn:a urn:b") },
		"acr with a newline": func() { bearer.AnyACR("a\nb") },
		// What a web app could not follow (middleware.StepUpFromResponse):
		// the same rule, package internal/acr.
		"acr with a quote":     func() { bearer.AnyACR(`a"b`) },
		"acr with a backslash": func() { bearer.AnyACR(`a\b`) },
		"acr not ASCII":        func() { bearer.AnyACR("urn:niveau:élevé") },
		"acr over 128 bytes":   func() { bearer.AnyACR(strings.Repeat("a", 129)) },
		"acrs over 128 bytes":  func() { bearer.AnyACR(strings.Repeat("a", 64), strings.Repeat("b", 64)) },
		"negative max age":     func() { bearer.MaxAuthAge(-time.Second) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	now := rp.NumericDate(time.Now().Unix())
	switch {
	case !bearer.AnyACR("x").Met(&rp.Claims{ACR: "x"}), bearer.AnyACR("x").Met(&rp.Claims{ACR: "y"}), bearer.AnyACR("x").Met(nil):
		t.Fatal("AnyACR.Met")
	case !bearer.MaxAuthAge(time.Minute).Met(&rp.Claims{AuthTime: now}), bearer.MaxAuthAge(time.Minute).Met(&rp.Claims{}):
		t.Fatal("MaxAuthAge.Met")
	}
	if s := bearer.MaxAuthAge(5 * time.Minute).String(); s != "authenticated within 300s" {
		t.Fatal(s)
	}
	if s := bearer.AnyACR("a", "b").String(); s != "any of acrs [a b]" {
		t.Fatal(s)
	}
}
