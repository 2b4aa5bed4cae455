package rp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// FuzzParseAuthResponse: any redirect query is parsed or refused with
// ErrInvalidToken; never a panic; a duplicate never slips through.
func FuzzParseAuthResponse(f *testing.F) {
	for _, s := range []string{
		"code=abc&state=xyz&iss=https%3A%2F%2Fop.example.com",
		"error=access_denied&error_description=no&state=s",
		"code=a&code=b", "state=%zz", "&&&", "code=a;state=b", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r, err := rp.ParseAuthResponse(q)
		if err != nil {
			if !errors.Is(err, rp.ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			return
		}
		if r.Code != "" && strings.Count(q, "code=") < 1 {
			t.Fatalf("code %q from nowhere", r.Code)
		}
	})
}

// FuzzParseClaims: any payload decodes or fails; never a panic.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://op","sub":"usr_1","aud":["a","b"],"exp":1.5e9,"iat":1700000000,"scope":"a b","roles":["r"],"email_verified":"true"}`,
		`{"aud":"a","scopes":["x"],"exp":null}`,
		`{"exp":"soon"}`, `[]`, `null`, `{"aud":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := rp.ParseClaims(b)
		if err == nil && c.Raw == nil {
			t.Fatal("claims without raw payload")
		}
	})
}

// FuzzVerifyIDToken: arbitrary tokens against a real client are refused
// with a ValidationError; never a panic, never an accept.
func FuzzVerifyIDToken(f *testing.F) {
	op := oidctest.New(f)
	c, err := discover(f, op.Issuer, nil).Client(rp.Config{ClientID: clientID})
	if err != nil {
		f.Fatal(err)
	}
	good := op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil)
	f.Add(good[:len(good)-2] + "AA")
	f.Add(oidctest.Unsigned(op.IDClaims(clientID, "u", "n")))
	f.Add(op.Signer().SignHMACWithPublicKey(op.IDClaims(clientID, "u", "n")))
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == good {
			return
		}
		if _, err := c.VerifyIDToken(context.Background(), raw, "n"); !errors.Is(err, rp.ErrInvalidToken) {
			t.Fatalf("accepted or unexpected error: %v", err)
		}
	})
}
