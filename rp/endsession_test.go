package rp_test

import (
	"net/url"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

// TestEndSessionURLWithoutHint follows OpenID Connect RP-Initiated Logout
// 1.0 §2: client_id identifies the client when there is no id_token_hint,
// and id_token_hint is RECOMMENDED whenever post_logout_redirect_uri is
// sent. OPs refuse post_logout_redirect_uri and state without a hint (Ory
// Hydra answers with an error page), so a hint-less request carries
// client_id alone; a query the OP put in its endpoint stays.
func TestEndSessionURLWithoutHint(t *testing.T) {
	op := oidctest.New(t)
	op.SetMeta("end_session_endpoint", op.Issuer+"/oidc/logout?tenant=acme")
	c := newClient(t, op, nil)
	raw, err := c.EndSessionURL("", "state-is-dropped")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	if len(q) != 2 || q.Get("client_id") != clientID || q.Get("tenant") != "acme" {
		t.Fatalf("end-session URL without a hint: %s, want client_id (and the OP's own query) only", raw)
	}
	raw, _ = c.EndSessionURL("the.id.token", "st")
	q, _ = url.ParseQuery(mustQuery(raw))
	if q.Get("id_token_hint") != "the.id.token" || q.Get("client_id") != clientID || q.Get("post_logout_redirect_uri") == "" || q.Get("state") != "st" || q.Get("tenant") != "acme" {
		t.Fatalf("end-session URL with a hint: %s", raw)
	}
}

func mustQuery(raw string) string {
	u, _ := url.Parse(raw)
	return u.RawQuery
}
