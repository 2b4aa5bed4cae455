package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// lowACRVerifier: every token is valid, with the everyday acr.
type lowACRVerifier struct{}

func (lowACRVerifier) Verify(context.Context, string) (*rp.Claims, error) {
	return &rp.Claims{Subject: "usr_1", ACR: acrLow}, nil
}

// TestACRRuleSameOnBothSides: an API's AnyACR accepts exactly the acr
// values a web app can follow: for each candidate, either bearer.AnyACR
// refuses it at start-up and so does RequireStepUp, or the API's challenge
// is read back by StepUpFromResponse with the same values.
func TestACRRuleSameOnBothSides(t *testing.T) {
	a := newTestApp(t, oidctest.New(t), "webc_a", nil)
	api, err := bearer.New(bearer.Config{Verifier: lowACRVerifier{}, Observer: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string][]string{
		"one":                   {"urn:example:mfa"},
		"several":               {"urn:a", "phr", "1"},
		"128 bytes":             {strings.Repeat("a", 64), strings.Repeat("b", 63)},
		"129 bytes":             {strings.Repeat("a", 64), strings.Repeat("b", 64)},
		"one of 129 bytes":      {strings.Repeat("a", 129)},
		"quote":                 {`a"b`},
		"backslash":             {`a\b`},
		"control character":     {"a\x01b"},
		"DEL":                   {"a\x7fb"},
		"tab":                   {"a\tb"},
		"space":                 {"a b"},
		"empty":                 {""},
		"non-ASCII":             {"urn:niveau:élevé"},
		"printable punctuation": {"urn:x-y_z.1~2!#$%&'()*+,/:;<=>?@[]^`{|}"},
	} {
		t.Run(name, func(t *testing.T) {
			apiOK := !panics(func() { bearer.AnyACR(values...) })
			webOK := !panics(func() { a.web.RequireStepUp(middleware.StepUp{ACR: values}) })
			if apiOK != webOK {
				t.Fatalf("bearer.AnyACR accepts: %v, RequireStepUp accepts: %v", apiOK, webOK)
			}
			if !apiOK {
				return
			}
			h := api.Require(bearer.AnyACR(values...))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			r := httptest.NewRequest("GET", "/pay", nil)
			r.Header.Set("Authorization", "Bearer t")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			su, ok := middleware.StepUpFromResponse(w.Result())
			if !ok || !slices.Equal(su.ACR, values) {
				t.Fatalf("%q: the web app reads %+v %v from %q", values, su, ok, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}
