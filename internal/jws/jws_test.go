package jws_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/oidctest"
)

func TestVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k := oidctest.NewKey("k", alg)
			raw := k.Sign(map[string]any{"sub": "x"}, nil)
			tok, err := jws.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := jws.Verify(tok.Header.Alg, k.Public(), tok.SigningInput, tok.Signature); err != nil {
				t.Fatal(err)
			}
			other := oidctest.NewKey("k", alg)
			if err := jws.Verify(tok.Header.Alg, other.Public(), tok.SigningInput, tok.Signature); !errors.Is(err, jws.ErrSignature) {
				t.Fatalf("other key: %v", err)
			}
			if err := jws.Verify(tok.Header.Alg, k.Public(), tok.SigningInput+"x", tok.Signature); !errors.Is(err, jws.ErrSignature) {
				t.Fatalf("other input: %v", err)
			}
		})
	}
}

func TestKeyFit(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	big, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		alg string
		key any
		ok  bool
	}{
		{"RS256", &small.PublicKey, false},
		{"RS256", &big.PublicKey, true},
		{"PS256", &big.PublicKey, true},
		{"ES256", &p384.PublicKey, false},
		{"ES384", &p384.PublicKey, true},
		{"EdDSA", pub, true},
		{"EdDSA", &big.PublicKey, false},
		{"RS256", pub, false},
		{"HS256", []byte("secret"), false},
		{"none", nil, false},
	}
	for _, c := range cases {
		if jws.Fits(c.alg, c.key) != c.ok {
			t.Errorf("Fits(%s, %T) != %v", c.alg, c.key, c.ok)
		}
	}
}

func TestParseRejects(t *testing.T) {
	k := oidctest.NewKey("k", "ES256")
	good := k.Sign(map[string]any{}, nil)
	parts := strings.Split(good, ".")
	cases := map[string]error{
		"":                                  jws.ErrMalformed,
		"a":                                 jws.ErrMalformed,
		"a.b":                               jws.ErrMalformed,
		"a.b.c.d":                           jws.ErrMalformed,
		"!!.b.c":                            jws.ErrMalformed,
		parts[0] + "." + parts[1] + ".":     jws.ErrMalformed,
		parts[0] + "." + parts[1] + ".!!":   jws.ErrMalformed,
		oidctest.Unsigned(map[string]any{}): jws.ErrAlgorithm,
		k.Sign(map[string]any{}, oidctest.Header{"alg": "HS256"}):          jws.ErrAlgorithm,
		k.Sign(map[string]any{}, oidctest.Header{"alg": "none"}):           jws.ErrAlgorithm,
		k.Sign(map[string]any{}, oidctest.Header{"crit": []string{"b64"}}): jws.ErrCritical,
		strings.Repeat("a", jws.MaxTokenSize+1):                            jws.ErrMalformed,
	}
	for in, want := range cases {
		if _, err := jws.Parse(in); !errors.Is(err, want) {
			t.Errorf("Parse(%.40q) = %v, want %v", in, err, want)
		}
	}
}

// FuzzParse: any input either parses into a consistent token or fails
// with one of the package's errors; never a panic.
func FuzzParse(f *testing.F) {
	k := oidctest.NewKey("k", "ES256")
	f.Add(k.Sign(map[string]any{"sub": "x", "aud": []string{"a"}}, nil))
	f.Add(oidctest.Unsigned(map[string]any{}))
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := jws.Parse(raw)
		if err != nil {
			if !errors.Is(err, jws.ErrMalformed) && !errors.Is(err, jws.ErrAlgorithm) && !errors.Is(err, jws.ErrCritical) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !strings.HasPrefix(raw, tok.SigningInput+".") || !jws.Supported(tok.Header.Alg) || len(tok.Signature) == 0 {
			t.Fatalf("inconsistent token %+v", tok)
		}
		_, _ = tok.Payload()
		_ = jws.Verify(tok.Header.Alg, k.Public(), tok.SigningInput, tok.Signature)
	})
}
