// Package pkce implements Proof Key for Code Exchange (RFC 7636, S256 only)
// and the short-lived login transaction that carries state, nonce, code
// verifier and return path from the login redirect to the callback, sealed in
// a cookie.
package pkce

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Method is the only code_challenge_method this package produces. "plain"
// is never sent: it offers no protection against a stolen authorization
// request.
const Method = "S256"

// NewVerifier returns a code verifier made of 32 random bytes: 43 base64url
// characters (RFC 7636 §4.1).
func NewVerifier() string { return random(32) }

// Challenge returns the S256 code challenge of verifier:
// BASE64URL(SHA256(verifier)).
func Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// ValidVerifier reports whether v has the form RFC 7636 §4.1 requires:
// 43 to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// random returns n random bytes, base64url without padding.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
