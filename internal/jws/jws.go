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
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/multiapp-go/multiapp/internal/jsonread"
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

	payload []byte // decoded payload
}

// Payload returns the decoded payload. Only use it after Verify
// succeeded. It is the token's own: do not modify it.
func (t *Token) Payload() ([]byte, error) {
	return t.payload, nil
}

// Parse splits and decodes a compact JWS. It checks the shape only; the
// signature is checked by Verify.
func Parse(raw string) (*Token, error) {
	t := new(Token)
	if err := t.parse(raw, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseTo is Parse into *t, for a caller that keeps the token on its
// stack (the bearer hot path). On error *t is undefined.
func ParseTo(t *Token, raw string) error {
	var none *HeaderCache
	return none.ParseTo(t, raw)
}

// ParseTo is the package's ParseTo with the protected header looked up in
// (and added to) c. A nil c caches nothing.
func (c *HeaderCache) ParseTo(t *Token, raw string) error {
	*t = Token{}
	return t.parse(raw, c)
}

func (t *Token) parse(raw string, c *HeaderCache) error {
	if len(raw) == 0 || len(raw) > MaxTokenSize {
		return ErrMalformed
	}
	d1 := strings.IndexByte(raw, '.')
	if d1 <= 0 {
		return ErrMalformed
	}
	d2 := strings.IndexByte(raw[d1+1:], '.')
	if d2 < 0 {
		return ErrMalformed
	}
	d2 += d1 + 1
	h, p, s := raw[:d1], raw[d1+1:d2], raw[d2+1:]
	if strings.IndexByte(s, '.') >= 0 {
		return ErrMalformed
	}
	if err := t.header(h, c); err != nil {
		return err
	}
	if len(s) == 0 {
		return ErrMalformed
	}
	// One allocation for the payload and the signature.
	np := decodedLen(len(p))
	buf := make([]byte, np+decodedLen(len(s)))
	n, ok := decodeB64(buf, p)
	if !ok {
		return ErrMalformed
	}
	t.payload = buf[:n:n]
	n, ok = decodeB64(buf[np:], s)
	if !ok || n == 0 {
		return ErrMalformed
	}
	t.SigningInput, t.Signature = raw[:d2], buf[np:np+n:np+n]
	return nil
}

// HeaderCache remembers decoded protected headers by their base64 form:
// an OP signs every token with one of a few headers, so most tokens skip
// the header's decoding. Only headers that parse are cached, and the cache
// is cleared when it reaches maxHeaders (junk headers can only cost time).
// The zero value is ready; it is safe for concurrent use. A verifier owns
// one (no process-wide state).
type HeaderCache struct {
	headers sync.Map // string -> Header
	n       atomic.Int32
}

const maxHeaders = 256

// header decodes and checks the protected header h (base64url), through c
// when it is not nil.
func (t *Token) header(h string, c *HeaderCache) error {
	if c != nil {
		if v, ok := c.headers.Load(h); ok {
			t.Header = v.(Header)
			return nil
		}
	}
	// The header is small: decode it on the stack.
	var hbuf [512]byte
	var hb []byte
	if n := decodedLen(len(h)); n <= len(hbuf) {
		hb = hbuf[:n]
	} else {
		hb = make([]byte, n)
	}
	n, ok := decodeB64(hb, h)
	if !ok {
		return ErrMalformed
	}
	var hd Header
	if err := parseHeader(string(hb[:n]), &hd); err != nil {
		return err
	}
	if len(hd.Crit) > 0 {
		return ErrCritical
	}
	if _, ok := algs[hd.Alg]; !ok {
		return ErrAlgorithm
	}
	if c != nil {
		if c.n.Add(1) > maxHeaders {
			c.headers.Clear()
			c.n.Store(1)
		}
		c.headers.Store(strings.Clone(h), hd)
	}
	t.Header = hd
	return nil
}

// parseHeader decodes the protected header as encoding/json would into
// Header (exact member names, the last duplicate wins, null leaves a
// string unchanged), without reflection.
func parseHeader(doc string, h *Header) error {
	var r jsonread.Reader
	r.Reset(doc)
	r.BeginObject()
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		switch key {
		case "alg":
			r.StringField(&h.Alg)
		case "kid":
			r.StringField(&h.Kid)
		case "typ":
			r.StringField(&h.Typ)
		case "crit":
			r.StringsField(&h.Crit)
		default:
			r.Skip()
		}
	}
	r.End()
	if r.Err() != nil {
		return ErrMalformed
	}
	return nil
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

// Choose is an OP's default allow-list: the algorithms it advertises
// (id_token_signing_alg_values_supported) that this package verifies, or
// RS256, which OpenID Connect requires every OP to support, when none is.
func Choose(advertised []string) []string {
	var out []string
	for _, a := range advertised {
		if Supported(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{"RS256"}
	}
	return out
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
	msg := bytesOf(signingInput)
	if info.fam == famEd {
		if !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			return ErrSignature
		}
		return nil
	}
	var dbuf [sha512.Size]byte
	digest := sum(&dbuf, info.hash, msg)
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
		// JWS carries R || S (RFC 7518 §3.4); crypto/ecdsa verifies the
		// ASN.1 form. Encoding it directly avoids two big.Int and the
		// re-encoding ecdsa.Verify would do.
		var der [8 + 2*(2+1+66)]byte
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, asn1Signature(der[:0], sig[:info.size], sig[info.size:])) {
			return ErrSignature
		}
	}
	return nil
}

// asn1Signature appends SEQUENCE { INTEGER r, INTEGER s } (DER) to dst.
func asn1Signature(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	ir, is := intLen(r), intLen(s)
	body := 2 + ir + 2 + is
	dst = append(dst, 0x30)
	if body >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body))
	dst = appendInt(dst, r, ir)
	return appendInt(dst, s, is)
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// intLen is the DER content length of the unsigned big-endian b.
func intLen(b []byte) int {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return len(b) + 1
	}
	return len(b)
}

func appendInt(dst, b []byte, n int) []byte {
	dst = append(dst, 0x02, byte(n))
	if n > len(b) {
		dst = append(dst, 0)
	}
	return append(dst, b...)
}

// bytesOf returns the bytes of s without copying. The result must never be
// written to: it is only handed to hash and verify functions, which read.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
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

// sum hashes msg with h into buf.
func sum(buf *[sha512.Size]byte, h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		*(*[sha256.Size]byte)(buf[:sha256.Size]) = sha256.Sum256(msg)
		return buf[:sha256.Size]
	case crypto.SHA384:
		*(*[sha512.Size384]byte)(buf[:sha512.Size384]) = sha512.Sum384(msg)
		return buf[:sha512.Size384]
	default:
		*buf = sha512.Sum512(msg)
		return buf[:]
	}
}
