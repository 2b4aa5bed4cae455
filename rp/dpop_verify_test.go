package rp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func code(err error) rp.Code {
	var ve *rp.ValidationError
	if errors.As(err, &ve) {
		return ve.Code
	}
	return ""
}

// A DPoP-bound token is accepted by VerifyBound, with its jkt, and refused
// by Verify (RFC 9449 §7.2), also after VerifyBound cached it.
func TestVerifyBound(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	ctx := context.Background()
	for _, cache := range []int{0, -1} {
		v := newVerifier(t, op, clk, func(c *apiSetup) { c.CacheSize = cache })
		claims := atClaims(op, clk.Now())
		claims["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		bound := op.Signer().Sign(claims, atHeader)
		for range 2 {
			cl, err := v.VerifyBound(ctx, bound)
			if err != nil || cl.Confirmation == nil || cl.Confirmation.JKT != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
				t.Fatalf("cache %d: VerifyBound: %v %+v", cache, err, cl)
			}
			if _, err := v.Verify(ctx, bound); code(err) != rp.CodeType {
				t.Fatalf("cache %d: bound token as bearer: %v", cache, err)
			}
		}
		// A bearer token may come with a proof.
		plain := op.Signer().Sign(atClaims(op, clk.Now()), atHeader)
		if cl, err := v.VerifyBound(ctx, plain); err != nil || cl.Confirmation != nil {
			t.Fatalf("unbound token: %v", err)
		}
		// Bound by mTLS: not a DPoP key.
		claims["cnf"] = map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
		if _, err := v.VerifyBound(ctx, op.Signer().Sign(claims, atHeader)); code(err) != rp.CodeType {
			t.Fatalf("mTLS-bound token: %v", err)
		}
		// Every other rule still holds.
		claims["cnf"] = map[string]any{"jkt": "x"}
		claims["aud"] = "https://other"
		if _, err := v.VerifyBound(ctx, op.Signer().Sign(claims, atHeader)); code(err) != rp.CodeAudience {
			t.Fatalf("other audience: %v", err)
		}
	}
}

// Introspection: token_type DPoP (RFC 9449 §6.2) and cnf.jkt.
func TestVerifyBoundIntrospection(t *testing.T) {
	op := oidctest.New(t)
	in := newIntrospectionOP(t, op)
	clk := newClock()
	ctx := context.Background()
	v := newVerifier(t, op, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"}
	})
	a := activeAnswer(op, clk.Now())
	a["token_type"] = "DPoP"
	a["cnf"] = map[string]any{"jkt": "key-1"}
	in.set("dpop", a)
	b := activeAnswer(op, clk.Now())
	b["token_type"] = "DPoP"
	in.set("dpop-no-cnf", b)
	if cl, err := v.VerifyBound(ctx, "dpop"); err != nil || cl.Confirmation.JKT != "key-1" {
		t.Fatalf("VerifyBound: %v", err)
	}
	if _, err := v.Verify(ctx, "dpop"); code(err) != rp.CodeType {
		t.Fatalf("bound token as bearer: %v", err)
	}
	if _, err := v.VerifyBound(ctx, "dpop-no-cnf"); code(err) != rp.CodeType {
		t.Fatalf("DPoP token without its key: %v", err)
	}
	if _, err := v.Verify(ctx, "dpop-no-cnf"); code(err) != rp.CodeType {
		t.Fatalf("DPoP token as bearer: %v", err)
	}
	// Verify's refusal is not remembered against VerifyBound.
	if _, err := v.VerifyBound(ctx, "dpop"); err != nil {
		t.Fatalf("VerifyBound after Verify: %v", err)
	}
}

func TestMultiIssuerVerifyBound(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	m, err := rp.NewMultiIssuerVerifier(newVerifier(t, op, clk, nil))
	if err != nil {
		t.Fatal(err)
	}
	claims := atClaims(op, clk.Now())
	claims["cnf"] = map[string]any{"jkt": "k"}
	bound := op.Signer().Sign(claims, atHeader)
	for range 2 {
		if cl, err := m.VerifyBound(context.Background(), bound); err != nil || cl.Confirmation.JKT != "k" {
			t.Fatalf("VerifyBound: %v", err)
		}
		if _, err := m.Verify(context.Background(), bound); code(err) != rp.CodeType {
			t.Fatalf("Verify: %v", err)
		}
	}
}
