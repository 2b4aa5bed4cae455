package rp_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func TestDecodeUnverified(t *testing.T) {
	op := oidctest.New(t)
	claims := op.IDClaims(clientID, "usr_1", "n")
	h, cl, err := rp.DecodeUnverified(op.Signer().Sign(claims, nil))
	if err != nil || h.Alg != "RS256" || h.Kid != "k1" || h.Typ != "JWT" || cl.Subject != "usr_1" || cl.Nonce != "n" {
		t.Fatalf("%+v %+v %v", h, cl, err)
	}
	// Decoding shows what a token says even when it could never verify.
	h, cl, err = rp.DecodeUnverified(oidctest.Unsigned(claims))
	if err != nil || h.Alg != "none" || cl.Subject != "usr_1" {
		t.Fatalf("alg none: %+v %v", h, err)
	}
	for raw, says := range map[string]string{
		"":                    "empty",
		"opaque-token-abc123": "opaque token",
		"a.b.c.d.e":           "encrypted token (JWE)",
		"a.b":                 "2 dot-separated parts",
		"!!.e30.x":            "header is not base64url",
		"e30.!!.x":            "payload is not base64url",
		"e30.WzFd.x":          "claims are not a valid JSON object",
	} {
		_, _, err := rp.DecodeUnverified(raw)
		wantCode(t, err, rp.CodeMalformed)
		if !strings.Contains(err.Error(), says) {
			t.Errorf("%q: error %q does not say %q", raw, err, says)
		}
	}
}

func TestInspectIDToken(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()
	sign := func(mut func(map[string]any)) string {
		m := op.IDClaims(clientID, "usr_1", "some-login-nonce")
		if mut != nil {
			mut(m)
		}
		return op.Signer().Sign(m, nil)
	}
	cl, err := c.InspectIDToken(ctx, sign(nil))
	if err != nil || cl.Subject != "usr_1" {
		t.Fatalf("valid token: %v", err)
	}
	if _, err := c.InspectIDToken(ctx, sign(func(m map[string]any) { delete(m, "nonce") })); err != nil {
		t.Fatalf("the nonce is not InspectIDToken's business: %v", err)
	}
	_, err = c.InspectIDToken(ctx, sign(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }))
	wantCode(t, err, rp.CodeExpired)
	_, err = c.InspectIDToken(ctx, sign(func(m map[string]any) { m["aud"] = "webc_other" }))
	wantCode(t, err, rp.CodeAudience)
	_, err = c.InspectIDToken(ctx, sign(func(m map[string]any) { m["azp"] = "webc_other" }))
	wantCode(t, err, rp.CodeAuthorizedBy)
	_, err = c.InspectIDToken(ctx, oidctest.NewKey("k9", "RS256").Sign(op.IDClaims(clientID, "usr_1", "n"), nil))
	wantCode(t, err, rp.CodeUnknownKey)
	// VerifyIDToken still insists on the login's nonce.
	_, err = c.VerifyIDToken(ctx, sign(nil), "another-login")
	wantCode(t, err, rp.CodeNonce)
}

func TestInspectJWT(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()
	const api = "https://api.example.com"
	now := time.Now().Unix()
	at := func(mut func(map[string]any)) string {
		m := map[string]any{"iss": op.Issuer, "sub": "usr_1", "aud": []string{api, "other"}, "iat": now, "nbf": now, "exp": now + 300, "scope": "orders:read", "client_id": clientID}
		if mut != nil {
			mut(m)
		}
		return op.Signer().Sign(m, oidctest.Header{"typ": "at+jwt"})
	}
	cl, err := c.InspectJWT(ctx, at(nil), api)
	if err != nil || !slices.Contains(cl.Scopes, "orders:read") {
		t.Fatalf("access token for the API: %v", err)
	}
	_, err = c.InspectJWT(ctx, at(nil), "")
	wantCode(t, err, rp.CodeAudience) // defaults to the client id
	_, err = c.InspectJWT(ctx, at(func(m map[string]any) { m["iss"] = op.Issuer + "/" }), api)
	wantCode(t, err, rp.CodeIssuer)
	_, err = c.InspectJWT(ctx, at(func(m map[string]any) { m["nbf"] = now + 600 }), api)
	wantCode(t, err, rp.CodeNotYetValid)
	_, err = c.InspectJWT(ctx, at(func(m map[string]any) { delete(m, "exp") }), api)
	wantCode(t, err, rp.CodeExpired)
	_, err = c.InspectJWT(ctx, oidctest.Unsigned(map[string]any{"iss": op.Issuer}), api)
	wantCode(t, err, rp.CodeAlgorithm)
}
