package rp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// TestIDTokenRules has, for every ID token rule of shared/DESIGN.md, a case
// that must pass and a case that must fail.
func TestIDTokenRules(t *testing.T) {
	op := oidctest.New(t)
	es := oidctest.NewKey("k-es", "ES256")
	ed := oidctest.NewKey("k-ed", "EdDSA")
	ps := oidctest.NewKey("k-ps", "PS256")
	op.AddKey(es, false)
	op.AddKey(ed, false)
	op.AddKey(ps, false)
	stranger := oidctest.NewKey("k1", "RS256") // same kid as the OP's key, other key
	c := newClient(t, op, func(c *setup) { c.TrustedAudiences = []string{"api://trusted"} })
	const nonce = "n-123"
	now := time.Now().Unix()

	claims := func(mut func(map[string]any)) map[string]any {
		m := op.IDClaims(clientID, "usr_1", nonce)
		if mut != nil {
			mut(m)
		}
		return m
	}
	rs := op.Signer()
	cases := []struct {
		name  string
		token string
		nonce string
		want  rp.Code
	}{
		{"valid RS256", rs.Sign(claims(nil), nil), nonce, ""},
		{"valid ES256", es.Sign(claims(nil), nil), nonce, ""},
		{"valid EdDSA", ed.Sign(claims(nil), nil), nonce, ""},
		{"valid PS256", ps.Sign(claims(nil), nil), nonce, ""},
		{"bad signature", tamper(rs.Sign(claims(nil), nil)), nonce, rp.CodeSignature},
		{"signed by a stranger with the OP's kid", stranger.Sign(claims(nil), nil), nonce, rp.CodeSignature},
		{"alg none", oidctest.Unsigned(claims(nil)), nonce, rp.CodeAlgorithm},
		{"HMAC keyed with the public key", rs.SignHMACWithPublicKey(claims(nil)), nonce, rp.CodeAlgorithm},
		{"alg header lies (ES256 key, RS256 header)", es.Sign(claims(nil), oidctest.Header{"alg": "RS256"}), nonce, rp.CodeUnknownKey},
		{"unknown kid", rs.Sign(claims(nil), oidctest.Header{"kid": "nope"}), nonce, rp.CodeUnknownKey},
		{"no kid, key found by alg", rs.Sign(claims(nil), oidctest.Header{"kid": nil}), nonce, ""},
		{"crit header", rs.Sign(claims(nil), oidctest.Header{"crit": []string{"exp"}}), nonce, rp.CodeMalformed},
		{"not a JWS", "abc.def", nonce, rp.CodeMalformed},
		{"claims not JSON", rs.Sign("string", nil), nonce, rp.CodeMalformed},
		{"typ at+jwt", rs.Sign(claims(nil), oidctest.Header{"typ": "at+jwt"}), nonce, rp.CodeType},
		{"typ logout+jwt", rs.Sign(claims(nil), oidctest.Header{"typ": "logout+jwt"}), nonce, rp.CodeType},
		{"wrong iss", rs.Sign(claims(func(m map[string]any) { m["iss"] = "https://evil.example.com" }), nil), nonce, rp.CodeIssuer},
		{"iss with trailing slash", rs.Sign(claims(func(m map[string]any) { m["iss"] = op.Issuer + "/" }), nil), nonce, rp.CodeIssuer},
		{"missing iss", rs.Sign(claims(func(m map[string]any) { delete(m, "iss") }), nil), nonce, rp.CodeIssuer},
		{"aud is another app", rs.Sign(claims(func(m map[string]any) { m["aud"] = "webc_other"; m["azp"] = "webc_other" }), nil), nonce, rp.CodeAudience},
		{"missing aud", rs.Sign(claims(func(m map[string]any) { delete(m, "aud") }), nil), nonce, rp.CodeAudience},
		{"aud array with us", rs.Sign(claims(func(m map[string]any) { m["aud"] = []string{clientID} }), nil), nonce, ""},
		{"aud with trusted extra", rs.Sign(claims(func(m map[string]any) { m["aud"] = []string{clientID, "api://trusted"} }), nil), nonce, ""},
		{"aud with untrusted extra", rs.Sign(claims(func(m map[string]any) { m["aud"] = []string{clientID, "api://evil"} }), nil), nonce, rp.CodeAudience},
		{"several aud, no azp", rs.Sign(claims(func(m map[string]any) { m["aud"] = []string{clientID, "api://trusted"}; delete(m, "azp") }), nil), nonce, rp.CodeAuthorizedBy},
		{"no azp, one aud", rs.Sign(claims(func(m map[string]any) { delete(m, "azp") }), nil), nonce, ""},
		{"wrong azp", rs.Sign(claims(func(m map[string]any) { m["azp"] = "webc_other" }), nil), nonce, rp.CodeAuthorizedBy},
		{"expired", rs.Sign(claims(func(m map[string]any) { m["exp"] = now - 120 }), nil), nonce, rp.CodeExpired},
		{"expired within skew", rs.Sign(claims(func(m map[string]any) { m["exp"] = now - 20 }), nil), nonce, ""},
		{"missing exp", rs.Sign(claims(func(m map[string]any) { delete(m, "exp") }), nil), nonce, rp.CodeExpired},
		{"exp not a number", rs.Sign(claims(func(m map[string]any) { m["exp"] = "tomorrow" }), nil), nonce, rp.CodeMalformed},
		{"missing iat", rs.Sign(claims(func(m map[string]any) { delete(m, "iat") }), nil), nonce, rp.CodeIssuedAt},
		{"iat in the future", rs.Sign(claims(func(m map[string]any) { m["iat"] = now + 600 }), nil), nonce, rp.CodeIssuedAt},
		{"iat slightly ahead, within skew", rs.Sign(claims(func(m map[string]any) { m["iat"] = now + 20 }), nil), nonce, ""},
		{"nbf in the future", rs.Sign(claims(func(m map[string]any) { m["nbf"] = now + 600 }), nil), nonce, rp.CodeNotYetValid},
		{"missing sub", rs.Sign(claims(func(m map[string]any) { delete(m, "sub") }), nil), nonce, rp.CodeSubject},
		{"missing nonce", rs.Sign(claims(func(m map[string]any) { delete(m, "nonce") }), nil), nonce, rp.CodeNonce},
		{"wrong nonce", rs.Sign(claims(nil), nil), "n-other", rp.CodeNonce},
		{"no expected nonce", rs.Sign(claims(nil), nil), "", rp.CodeNonce},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := c.VerifyIDToken(context.Background(), tc.token, tc.nonce)
			wantCode(t, err, tc.want)
			if tc.want == "" && (cl.Subject != "usr_1" || cl.SessionID != "ses_1" || cl.Email != "alice@example.com") {
				t.Fatalf("claims not decoded: %+v", cl)
			}
		})
	}
}

func TestIDTokenAllowList(t *testing.T) {
	op := oidctest.New(t)
	es := oidctest.NewKey("k-es", "ES256")
	op.AddKey(es, false)
	c := newClient(t, op, func(c *setup) { c.SigningAlgs = []string{"ES256"} })
	_, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil), "n")
	wantCode(t, err, rp.CodeAlgorithm)
	_, err = c.VerifyIDToken(context.Background(), es.Sign(op.IDClaims(clientID, "u", "n"), nil), "n")
	wantCode(t, err, "")
}

func TestValidationErrorNeverHoldsToken(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	tok := op.Signer().Sign(map[string]any{"iss": "x"}, nil)
	_, err := c.VerifyIDToken(context.Background(), tok, "n")
	if err == nil || strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), strings.Split(tok, ".")[1]) {
		t.Fatalf("error %v leaks the token", err)
	}
}

func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig := []byte(tok[i+1:])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	return tok[:i+1] + string(sig)
}
