package rp_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func ExampleProvider_AccessTokenVerifier() {
	op, done := exampleOP() // stands in for https://yourenv.scalekit.com
	defer done()

	provider, err := rp.Discover(context.Background(), op.Issuer, nil) // e.g. "https://yourenv.scalekit.com"
	if err != nil {
		fmt.Println(err) // rp.ErrConfig: what to fix; rp.ErrTemporary: the OP is out of reach
		return
	}
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences:      []string{"https://api.example.com"}, // this API's identifier at the OP
		RequiredClaims: []string{"sid"},
		// Revocations: store, // a tokenstore.Store: tokens of logged-out sessions are refused
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now().Unix()
	token := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": []string{"https://api.example.com"}, "sub": "usr_42", "sid": "ses_7",
		"oid": "org_1", "client_id": "skc_1", "iat": now, "exp": now + 300,
		"scope": "orders:read", "permissions": []string{"orders:read", "orders:write"},
	}, oidctest.Header{"typ": "at+jwt"})

	claims, err := verifier.Verify(context.Background(), token)
	var ve *rp.ValidationError
	switch {
	case errors.As(err, &ve):
		fmt.Println("refused:", ve.Code) // 401
		return
	case err != nil:
		fmt.Println("cannot check now:", err) // 503
		return
	}
	fmt.Println(claims.Subject, claims.OrganizationID, slices.Contains(claims.Scopes, "orders:read"), slices.Contains(claims.Permissions, "orders:write"))
	// Output: usr_42 org_1 true true
}

func ExampleNewMultiIssuerVerifier() {
	eu, doneEU := exampleOP()
	defer doneEU()
	us, doneUS := exampleOP()
	defer doneUS()
	ctx := context.Background()
	cfg := rp.AccessTokenConfig{Audiences: []string{"https://api.example.com"}}

	var verifiers []*rp.AccessTokenVerifier
	for _, issuer := range []string{eu.Issuer, us.Issuer} { // e.g. "https://acme-eu.scalekit.com"
		provider, err := rp.Discover(ctx, issuer, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		v, err := provider.AccessTokenVerifier(cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		verifiers = append(verifiers, v)
	}
	verifier, err := rp.NewMultiIssuerVerifier(verifiers...)
	if err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now().Unix()
	claims := map[string]any{"iss": us.Issuer, "aud": "https://api.example.com", "sub": "usr_9", "exp": now + 300}
	cl, err := verifier.Verify(ctx, us.Signer().Sign(claims, nil))
	fmt.Println(cl.Subject, err)

	// A token claiming one region but signed with the other's key.
	claims["iss"] = eu.Issuer
	_, err = verifier.Verify(ctx, us.Signer().Sign(claims, nil))
	var ve *rp.ValidationError
	fmt.Println(errors.As(err, &ve), ve.Code)
	// Output:
	// usr_9 <nil>
	// true signature
}
