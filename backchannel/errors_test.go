package backchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/rp"
)

// stubVerifier fails every token with err.
type stubVerifier struct{ err error }

func (s stubVerifier) VerifyLogoutToken(context.Context, string) (*rp.LogoutToken, error) {
	return nil, s.err
}

// internalText stands for whatever an error carries from inside the
// library (URLs, key ids, claim values): never for the OP's eyes.
const internalText = "https://jwks.internal.example/keys kid=k-secret dial tcp 10.0.0.7:443"

// Each class of verification failure gets its own answer: temporary ones
// 503 with Retry-After (the OP retries and the logout is not lost), invalid
// tokens 400 with a fixed description per code, anything else 500; no body
// ever echoes the error's text.
func TestVerifierErrorClasses(t *testing.T) {
	temp := fmt.Errorf("%w: fetching JWKS: %s", rp.ErrTemporary, internalText)
	cases := []struct {
		name       string
		err        error
		status     int
		code, desc string
	}{
		{"temporary (JWKS unreachable)", temp, 503, "temporarily_unavailable", "the logout token cannot be checked right now; retry later"},
		// Until the error classes are disjoint (rp/errors.go), a JWKS
		// outage arrives as an unknown_key ValidationError wrapping a
		// temporary error: temporary wins.
		{"unknown key wrapping a temporary error", &rp.ValidationError{What: "logout_token", Code: rp.CodeUnknownKey, Detail: internalText, Err: temp}, 503, "temporarily_unavailable", "the logout token cannot be checked right now; retry later"},
		{"deadline", fmt.Errorf("jwks: %w", context.DeadlineExceeded), 503, "temporarily_unavailable", "the logout token cannot be checked right now; retry later"},
		{"signature", &rp.ValidationError{What: "logout_token", Code: rp.CodeSignature, Detail: internalText}, 400, "invalid_request", "the logout token's signature does not verify"},
		{"unknown key", &rp.ValidationError{What: "logout_token", Code: rp.CodeUnknownKey, Detail: internalText}, 400, "invalid_request", "the logout token is signed with a key the OP does not publish"},
		{"issuer", &rp.ValidationError{What: "logout_token", Code: rp.CodeIssuer, Detail: internalText}, 400, "invalid_request", "the logout token's iss is not this app's OP"},
		{"audience", &rp.ValidationError{What: "logout_token", Code: rp.CodeAudience, Detail: internalText}, 400, "invalid_request", "the logout token's aud is not this app's client id"},
		{"events", &rp.ValidationError{What: "logout_token", Code: rp.CodeEvents, Detail: internalText, Err: errors.New(internalText)}, 400, "invalid_request", "the logout token lacks the back-channel logout event"},
		{"a code without its own text", &rp.ValidationError{What: "logout_token", Code: rp.Code("new_code"), Detail: internalText}, 400, "invalid_request", "the logout token is invalid"},
		{"ErrInvalidToken alone", fmt.Errorf("%w: %s", rp.ErrInvalidToken, internalText), 400, "invalid_request", "the logout token is invalid"},
		{"misconfigured", fmt.Errorf("%w: %s", rp.ErrConfig, internalText), 500, "server_error", "the logout token could not be checked"},
		{"unclassified", errors.New(internalText), 500, "server_error", "the logout token could not be checked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.session(t, "usr_1", "ses_1")
			f.h.Verifier = stubVerifier{tc.err}
			w := post(f.h, "logout_token="+f.token(nil))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != tc.code || body["error_description"] != tc.desc {
				t.Fatalf("body %s, want error %q, description %q", w.Body, tc.code, tc.desc)
			}
			if strings.Contains(w.Body.String(), "internal.example") || strings.Contains(w.Body.String(), "k-secret") {
				t.Fatalf("the body echoes internal error text: %s", w.Body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
			if got := w.Header().Get("Retry-After"); (tc.status == 503) != (got != "") {
				t.Fatalf("Retry-After %q with status %d", got, tc.status)
			}
			if !f.alive(s) {
				t.Fatal("a token that failed verification ended a session")
			}
		})
	}
}

// A valid logout token during a JWKS outage (the OP rotated its key, and
// its JWKS endpoint is down when the token arrives) is answered 503, so an
// OP that retries delivers it later; a 400 would tell it never to retry.
// This runs against the real key set of rp (no stub).
func TestJWKSOutageIs503(t *testing.T) {
	f := newFixture(t)
	const cooldown = 50 * time.Millisecond
	provider, err := rp.Discover(context.Background(), f.op.Issuer, &rp.ProviderOptions{JWKSCooldown: cooldown})
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: clientID, ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	f.h.Verifier = c
	s := f.session(t, "usr_1", "ses_1")
	f.op.JWKSDown.Store(true)
	w := post(f.h, "logout_token="+f.token(nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if !f.alive(s) {
		t.Fatal("session ended without a verified token")
	}
	// The OP retries once its JWKS is back (and the key set's refetch
	// cooldown is over): the logout goes through.
	f.op.JWKSDown.Store(false)
	time.Sleep(2 * cooldown)
	if w := post(f.h, "logout_token="+f.token(nil)); w.Code != 200 {
		t.Fatalf("retry after the outage: %d %s", w.Code, w.Body)
	}
	if f.alive(s) {
		t.Fatal("session survived the retried logout")
	}
}

var _ backchannel.Verifier = stubVerifier{}
