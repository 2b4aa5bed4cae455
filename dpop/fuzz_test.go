package dpop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
)

// FuzzVerify feeds arbitrary proofs to the parser and checks: no panic,
// every refusal an *Error, and an accepted proof's claims consistent with
// the request. Seeds: testdata/fuzz/FuzzVerify (valid proofs of every key
// kind, and hostile ones).
func FuzzVerify(f *testing.F) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		s, err := dpop.GenerateSigner(alg)
		if err != nil {
			f.Fatal(err)
		}
		p, _ := s.Proof("GET", api, token, "")
		f.Add(p)
	}
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.eyJqdGkiOiJ4In0.")
	f.Add("..")
	v, err := dpop.NewVerifier(dpop.VerifierConfig{InsecureSkipReplayCheck: true, MaxAge: 100 * 365 * 24 * time.Hour, Leeway: 100 * 365 * 24 * time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token})
		if err != nil {
			var e *dpop.Error
			if !errors.As(err, &e) {
				t.Fatalf("refusal is not an *Error: %v", err)
			}
			return
		}
		if p.Method != "GET" || p.URI != api || p.Thumbprint == "" {
			t.Fatalf("accepted proof %+v does not match the request", p)
		}
	})
}

// FuzzNormalizeURI: normalising is idempotent, and a normalised URI has no
// query or fragment.
func FuzzNormalizeURI(f *testing.F) {
	for _, s := range []string{api, "HTTPS://Api.Example.COM:443/a/./b/../%7e?q#f", "http://[::1]:80", "http://h/%zz", "ftp://x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := dpop.NormalizeURI(s)
		if !ok {
			return
		}
		again, ok := dpop.NormalizeURI(n)
		if !ok || again != n {
			t.Fatalf("NormalizeURI(%q) = %q, then %q (%v)", s, n, again, ok)
		}
	})
}

// FuzzNonce: a server that issues nonces gets proofs, validly signed, with
// any nonce at all: never a panic (a long nonce once overran a buffer),
// and only nonces it issued are accepted.
func FuzzNonce(f *testing.F) {
	v, err := dpop.NewVerifier(dpop.VerifierConfig{InsecureSkipReplayCheck: true, NonceSecret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		f.Fatal(err)
	}
	s, err := dpop.GenerateSigner("")
	if err != nil {
		f.Fatal(err)
	}
	issued := v.Nonce()
	for _, n := range []string{"", issued, issued + "A", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "====", "\x00"} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, nonce string) {
		proof, err := s.Proof("GET", api, token, nonce)
		if err != nil {
			return
		}
		_, err = v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token})
		if err == nil && nonce != issued {
			t.Fatalf("nonce %q accepted; only %q was issued", nonce, issued)
		}
	})
}
