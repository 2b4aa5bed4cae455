// Package jws parses compact JSON Web Signatures (RFC 7515) and verifies them
// with standard-library public keys. It is the one signature mechanism behind
// every token multiapp accepts (ID, logout and access tokens): no embedded
// keys (jwk, jku, x5u) are ever trusted, "none" and HMAC algorithms do not
// exist here, and a critical header parameter is always refused.
package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"math/big"
	"strings"
)

// Errors. Callers map them to their own typed validation errors.
var (
	ErrMalformed   = errors.New("jws: malformed compact serialization")
	ErrAlgorithm   = errors.New("jws: algorithm not supported")
	ErrKeyMismatch = errors.New("jws: key type does not fit the algorithm")
	ErrSignature   = errors.New("jws: signature does not verify")
	ErrCritical    = errors.New("jws: critical header parameter not understood")
)

// MaxTokenSize bounds the compact token accepted by Parse (64 KiB): larger
// inputs are refused before any decoding.
const MaxTokenSize = 64 << 10

// Header holds the protected header parameters multiapp looks at.
type Header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// Token is a parsed, not yet verified, compact JWS.
type Token struct {
	Header Header
	// SigningInput is "BASE64URL(header).BASE64URL(payload)", a substring of
	// the raw token.
	SigningInput string
	// Signature is the decoded signature.
	Signature []byte

	payload string // base64url payload, a substring of the raw token
}

// Payload decodes the payload. Only call it after Verify succeeded.
func (t *Token) Payload() ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(t.payload)
	if err != nil {
		return nil, ErrMalformed
	}
	return b, nil
}

// Parse splits and decodes a compact JWS. It checks the shape only; the
// signature is checked by Verify.
func Parse(raw string) (*Token, error) {
	if len(raw) == 0 || len(raw) > MaxTokenSize {
		return nil, ErrMalformed
	}
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, ErrMalformed
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 || h == "" {
		return nil, ErrMalformed
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, ErrMalformed
	}
	t := &Token{SigningInput: raw[:len(h)+1+len(p)], payload: p}
	if err := json.Unmarshal(hb, &t.Header); err != nil {
		return nil, ErrMalformed
	}
	if len(t.Header.Crit) > 0 {
		return nil, ErrCritical
	}
	if _, ok := algs[t.Header.Alg]; !ok {
		return nil, ErrAlgorithm
	}
	if t.Signature, err = base64.RawURLEncoding.DecodeString(s); err != nil || len(t.Signature) == 0 {
		return nil, ErrMalformed
	}
	return t, nil
}

type family int

const (
	famRSA family = iota + 1
	famPSS
	famEC
	famEd
)

type algInfo struct {
	fam   family
	hash  crypto.Hash
	curve elliptic.Curve // famEC only
	size  int            // famEC: byte length of r and s
}

var algs = map[string]algInfo{
	"RS256": {famRSA, crypto.SHA256, nil, 0},
	"RS384": {famRSA, crypto.SHA384, nil, 0},
	"RS512": {famRSA, crypto.SHA512, nil, 0},
	"PS256": {famPSS, crypto.SHA256, nil, 0},
	"PS384": {famPSS, crypto.SHA384, nil, 0},
	"PS512": {famPSS, crypto.SHA512, nil, 0},
	"ES256": {famEC, crypto.SHA256, elliptic.P256(), 32},
	"ES384": {famEC, crypto.SHA384, elliptic.P384(), 48},
	"ES512": {famEC, crypto.SHA512, elliptic.P521(), 66},
	"EdDSA": {famEd, 0, nil, 0},
}

// Algorithms lists every algorithm this package verifies, strongest
// families first. "none" and the HMAC algorithms are deliberately absent.
func Algorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// Supported reports whether alg is one of Algorithms.
func Supported(alg string) bool {
	_, ok := algs[alg]
	return ok
}

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const MinRSABits = 2048

// Fits reports whether pub is a key alg can be verified with: RSA keys of at
// least MinRSABits for RS*/PS*, the matching curve for ES*, Ed25519 for EdDSA.
func Fits(alg string, pub crypto.PublicKey) bool {
	info, ok := algs[alg]
	if !ok {
		return false
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return (info.fam == famRSA || info.fam == famPSS) && k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return info.fam == famEC && k.Curve == info.curve
	case ed25519.PublicKey:
		return info.fam == famEd && len(k) == ed25519.PublicKeySize
	}
	return false
}

// Verify checks sig over signingInput with pub under alg.
func Verify(alg string, pub crypto.PublicKey, signingInput string, sig []byte) error {
	info, ok := algs[alg]
	if !ok {
		return ErrAlgorithm
	}
	if !Fits(alg, pub) {
		return ErrKeyMismatch
	}
	if info.fam == famEd {
		if !ed25519.Verify(pub.(ed25519.PublicKey), []byte(signingInput), sig) {
			return ErrSignature
		}
		return nil
	}
	digest := sum(info.hash, signingInput)
	switch info.fam {
	case famRSA:
		if rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), info.hash, digest, sig) != nil {
			return ErrSignature
		}
	case famPSS:
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: info.hash}
		if rsa.VerifyPSS(pub.(*rsa.PublicKey), info.hash, digest, sig, opts) != nil {
			return ErrSignature
		}
	case famEC:
		if len(sig) != 2*info.size {
			return ErrSignature
		}
		r := new(big.Int).SetBytes(sig[:info.size])
		s := new(big.Int).SetBytes(sig[info.size:])
		if !ecdsa.Verify(pub.(*ecdsa.PublicKey), digest, r, s) {
			return ErrSignature
		}
	}
	return nil
}

// HashFor returns the hash function of alg, as used by at_hash and c_hash
// (OpenID Connect Core 3.1.3.6): SHA-512 for EdDSA with Ed25519.
func HashFor(alg string) (crypto.Hash, bool) {
	info, ok := algs[alg]
	if !ok {
		return 0, false
	}
	if info.fam == famEd {
		return crypto.SHA512, true
	}
	return info.hash, true
}

func sum(h crypto.Hash, s string) []byte {
	var hh hash.Hash
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(s))
		return d[:]
	case crypto.SHA384:
		hh = sha512.New384()
	default:
		hh = sha512.New()
	}
	hh.Write([]byte(s))
	return hh.Sum(nil)
}
