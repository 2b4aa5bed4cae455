package middleware_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

// TestLoginStartThroughPAR: when the OP requires pushed authorization
// requests, the login start pushes the request and redirects the browser
// with client_id and request_uri only; the PAR endpoint out of reach is a
// 503 with Retry-After (nothing is wrong with the app), a refusal of the
// client a 500 that says the login is misconfigured.
func TestLoginStartThroughPAR(t *testing.T) {
	op := oidctest.New(t)
	op.SetMeta("require_pushed_authorization_requests", true)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fme")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || len(loc.Query()) != 2 || loc.Query().Get("request_uri") == "" {
		t.Fatalf("login start: %d %s", resp.StatusCode, loc)
	}
	for _, tc := range []struct {
		name   string
		status int
		body   any
		want   int
		says   string
	}{
		{"PAR endpoint down", 503, oidctest.Reply{Header: http.Header{"Retry-After": {"9"}}, Body: "down"}, http.StatusServiceUnavailable, ""},
		{"client refused", 401, map[string]any{"error": "invalid_client"}, http.StatusInternalServerError, "misconfigured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.SetPARHook(func(url.Values) (int, any) { return tc.status, tc.body })
			resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fme")
			if resp.StatusCode != tc.want || !strings.Contains(body(resp), tc.says) {
				t.Fatalf("%d %s", resp.StatusCode, body(resp))
			}
			if tc.want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "9" {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		})
	}
}
