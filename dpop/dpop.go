// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession
// (DPoP, RFC 9449): a Signer that makes the proofs a client sends with its
// token and resource requests, a Transport that sends DPoP-bound tokens to
// APIs with them, and a Verifier that checks the proofs a server receives.
//
// A DPoP-bound token is useless without the private key it is bound to: a
// token copied from a log, a proxy or a browser extension cannot be
// replayed by anyone who does not hold the key. The authorization server
// binds the token to the key of the proof sent with the token request
// (cnf.jkt, the key's RFC 7638 thumbprint); a resource server then requires
// a fresh proof by that key with every request (package bearer does it for
// API services; package rp's Config.DPoP for clients).
//
// The Verifier checks every rule of RFC 9449 §4.3: one well-formed JWT of
// at most MaxProofSize bytes, typ dpop+jwt, an asymmetric alg from an
// allow-list (never none or HMAC), a jwk header that is a public key and
// verifies the signature, htm and htu equal to the request's method and
// URI (htu normalised), iat within a window, a jti never seen before for
// that URI (through a tokenstore.OneTimeKeys, across every instance), ath
// equal to the hash of the access token, and optionally a nonce the server
// issued (VerifierConfig.NonceSecret). Every failure is an *Error with a stable Code, of the
// invalid class (errors.Is(err, ErrInvalidProof)); a replay store that
// cannot answer is ErrReplayCheckUnavailable, of the temporary class.
package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/multiapp-go/multiapp/internal/errclass"
)

// Errors of the package, with their class (see rp.ClassOf).
var (
	// ErrInvalidProof is what every *Error matches: the proof is refused
	// (class invalid). Answer 401 with error="invalid_dpop_proof" (or
	// use_dpop_nonce for CodeUseNonce).
	ErrInvalidProof error = errclass.New("dpop: invalid proof", errclass.Invalid)
	// ErrReplayCheckUnavailable: the replay store could not record the
	// proof's jti (class temporary). The proof may be fine: answer 503 and
	// let the client retry with a new proof.
	ErrReplayCheckUnavailable error = errclass.New("dpop: the replay store is unavailable", errclass.Temporary)
)

// Code says which rule a proof broke.
type Code string

// Codes of Error.
const (
	CodeMalformed Code = "malformed"      // not one compact JWS of the right size and shape, or a claim missing or of the wrong type
	CodeType      Code = "typ"            // typ is not dpop+jwt
	CodeAlgorithm Code = "alg"            // alg not allowed (none, HMAC, or not in the allow-list)
	CodeKey       Code = "jwk"            // jwk missing, not a public key, private members, or unfit for alg
	CodeSignature Code = "signature"      // the signature does not verify with jwk
	CodeMethod    Code = "htm"            // htm is not the request's method
	CodeURI       Code = "htu"            // htu is not the request's URI
	CodeTime      Code = "iat"            // iat too old or too far in the future
	CodeTokenHash Code = "ath"            // ath missing or not the hash of the access token
	CodeUseNonce  Code = "use_dpop_nonce" // the server requires a (fresh) nonce it issued
	CodeReplay    Code = "replay"         // the jti was used before for this URI
	CodeBinding   Code = "binding"        // the proof's key is not the key the token is bound to
)

// Error is a refused proof. Detail is a fixed text of this package
// (never a value from the proof), safe to return to the client.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string { return "dpop: invalid proof (" + string(e.Code) + "): " + e.Detail }

// Is matches ErrInvalidProof and the invalid class sentinel.
func (e *Error) Is(target error) bool {
	return target == ErrInvalidProof || errclass.Matches(e, target)
}

// ErrorClass is the invalid class.
func (e *Error) ErrorClass() errclass.Class { return errclass.Invalid }

func refuse(c Code, format string, args ...any) *Error {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	return &Error{Code: c, Detail: format}
}

// TokenHash is the ath claim of a proof sent with accessToken:
// base64url(SHA-256(accessToken)) (RFC 9449 §4.2).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
