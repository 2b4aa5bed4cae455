// Package pkce is Proof Key for Code Exchange (RFC 7636, S256 only) and the
// login transaction: the state, nonce, code verifier and return path of one
// sign-in, created at the login redirect and consumed at the callback.
//
// The verifier and challenge are x/oauth2's (GenerateVerifier,
// S256ChallengeFromVerifier). Where a transaction is kept between the two
// requests is the caller's choice: the web layer (package middleware) seals
// it in a cookie; this package holds no cookie code.
package pkce

import (
	"crypto/rand"
	"encoding/base64"

	"golang.org/x/oauth2"
)

// Method is the only code_challenge_method this package produces. "plain"
// is never sent: it offers no protection against a stolen authorization
// request.
const Method = "S256"

// NewVerifier returns a code verifier made of 32 random bytes: 43 base64url
// characters (RFC 7636 §4.1).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// Challenge returns the S256 code challenge of verifier:
// BASE64URL(SHA256(verifier)).
func Challenge(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }

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
