package rp_test

import (
	"context"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// TestLogoutTokenRules covers OpenID Connect Back-Channel Logout 1.0 §2.6
// with the shapes real OPs send (shared/INTEROP.md).
func TestLogoutTokenRules(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	now := time.Now().Unix()
	k := op.Signer()
	base := func(mut func(map[string]any)) map[string]any {
		m := map[string]any{
			"iss": op.Issuer, "aud": clientID, "iat": now, "exp": now + 120, "jti": "jti-1",
			"sub": "usr_1", "sid": "ses_1", "events": map[string]any{backchannelEvent: map[string]any{}},
		}
		if mut != nil {
			mut(m)
		}
		return m
	}
	logoutTyp := oidctest.Header{"typ": "logout+jwt"}
	cases := []struct {
		name  string
		token string
		want  rp.Code
	}{
		{"node-oidc-provider shape", k.Sign(base(nil), logoutTyp), ""},
		{"Hydra shape: typ JWT, no sub, no exp, aud array", k.Sign(base(func(m map[string]any) {
			delete(m, "sub")
			delete(m, "exp")
			m["aud"] = []string{clientID}
		}), oidctest.Header{"typ": "JWT"}), ""},
		{"typ application/logout+jwt", k.Sign(base(nil), oidctest.Header{"typ": "application/logout+jwt"}), ""},
		{"typ absent", k.Sign(base(nil), oidctest.Header{"typ": nil}), ""},
		{"typ at+jwt", k.Sign(base(nil), oidctest.Header{"typ": "at+jwt"}), rp.CodeType},
		{"typ something else", k.Sign(base(nil), oidctest.Header{"typ": "secevent+jwt"}), rp.CodeType},
		{"only sub", k.Sign(base(func(m map[string]any) { delete(m, "sid") }), logoutTyp), ""},
		{"neither sub nor sid", k.Sign(base(func(m map[string]any) { delete(m, "sid"); delete(m, "sub") }), logoutTyp), rp.CodeSessionID},
		{"bad signature", tamper(k.Sign(base(nil), logoutTyp)), rp.CodeSignature},
		{"alg none", oidctest.Unsigned(base(nil)), rp.CodeAlgorithm},
		{"wrong iss", k.Sign(base(func(m map[string]any) { m["iss"] = "https://evil" }), logoutTyp), rp.CodeIssuer},
		{"wrong aud", k.Sign(base(func(m map[string]any) { m["aud"] = "webc_other" }), logoutTyp), rp.CodeAudience},
		{"missing iat", k.Sign(base(func(m map[string]any) { delete(m, "iat") }), logoutTyp), rp.CodeIssuedAt},
		{"iat in the future", k.Sign(base(func(m map[string]any) { m["iat"] = now + 600 }), logoutTyp), rp.CodeIssuedAt},
		{"too old by iat (no exp)", k.Sign(base(func(m map[string]any) { m["iat"] = now - 3600; delete(m, "exp") }), logoutTyp), rp.CodeIssuedAt},
		{"expired", k.Sign(base(func(m map[string]any) { m["iat"] = now - 200; m["exp"] = now - 100 }), logoutTyp), rp.CodeExpired},
		// exp 0 is a date (1970), not an absent exp: an expired token.
		{"exp 0", k.Sign(base(func(m map[string]any) { m["exp"] = 0 }), logoutTyp), rp.CodeExpired},
		{"exp 0.5", k.Sign(base(func(m map[string]any) { m["exp"] = 0.5 }), logoutTyp), rp.CodeExpired},
		{"iat 0", k.Sign(base(func(m map[string]any) { m["iat"] = 0 }), logoutTyp), rp.CodeIssuedAt},
		{"exp null is absent", k.Sign(base(func(m map[string]any) { m["exp"] = nil }), logoutTyp), ""},
		{"missing jti", k.Sign(base(func(m map[string]any) { delete(m, "jti") }), logoutTyp), rp.CodeTokenID},
		{"missing events", k.Sign(base(func(m map[string]any) { delete(m, "events") }), logoutTyp), rp.CodeEvents},
		{"wrong event", k.Sign(base(func(m map[string]any) { m["events"] = map[string]any{"urn:other": map[string]any{}} }), logoutTyp), rp.CodeEvents},
		{"event not an object", k.Sign(base(func(m map[string]any) { m["events"] = map[string]any{backchannelEvent: true} }), logoutTyp), rp.CodeEvents},
		{"events not an object", k.Sign(base(func(m map[string]any) { m["events"] = "x" }), logoutTyp), rp.CodeEvents},
		{"has nonce (an ID token?)", k.Sign(base(func(m map[string]any) { m["nonce"] = "n" }), logoutTyp), rp.CodeNonce},
		{"has empty nonce", k.Sign(base(func(m map[string]any) { m["nonce"] = "" }), logoutTyp), rp.CodeNonce},
		{"an ID token", k.Sign(op.IDClaims(clientID, "usr_1", "n"), nil), rp.CodeTokenID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lt, err := c.VerifyLogoutToken(context.Background(), tc.token)
			wantCode(t, err, tc.want)
			if tc.want == "" {
				if lt.TokenID != "jti-1" || lt.ValidUntil.Before(time.Now()) || lt.ValidUntil.After(time.Now().Add(10*time.Minute)) {
					t.Fatalf("logout token %+v", lt)
				}
			}
		})
	}
}
