package pkce_test

import (
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/pkce"
)

func TestVerifier(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		v := pkce.NewVerifier()
		if len(v) != 43 || !pkce.ValidVerifier(v) || seen[v] {
			t.Fatalf("bad verifier %q", v)
		}
		seen[v] = true
	}
	// RFC 7636 Appendix B.
	if got := pkce.Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge %q", got)
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "/"} {
		if pkce.ValidVerifier(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if pkce.Method != "S256" {
		t.Fatal("only S256")
	}
}

func TestNewTransaction(t *testing.T) {
	tx := pkce.NewTransaction("https://op", "/back")
	if len(tx.State) < 22 || len(tx.Nonce) < 22 || !pkce.ValidVerifier(tx.Verifier) || tx.Issuer != "https://op" || tx.ReturnTo != "/back" {
		t.Fatalf("%+v", tx)
	}
	if tx.State == tx.Nonce || tx.State == pkce.NewTransaction("x", "/").State {
		t.Fatal("state not random")
	}
}
