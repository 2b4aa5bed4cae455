package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/multiapp-go/multiapp/internal/jsonread"
	"github.com/multiapp-go/multiapp/internal/jws"
)

// ReplayStore records the jti of accepted proofs. It is the OneTimeKeys
// role of the session stores: every tokenstore.Store (memory, Redis) is
// one, and so is any tokenstore.OneTimeKeys. (Named here so that the
// packages that check proofs, rp and bearer, need no store code.)
type ReplayStore interface {
	// UseOnce is tokenstore.OneTimeKeys.UseOnce: first is false when key
	// was recorded in namespace and scope before and has not expired.
	UseOnce(ctx context.Context, namespace, scope, key string, ttl time.Duration) (first bool, err error)
}

// replayNamespace is the namespace of the jti keys:
// tokenstore.DPoPProofIDs.
const replayNamespace = "dpop-jti"

// Limits and defaults of a Verifier.
const (
	// MaxProofSize bounds a proof (the DPoP header value): larger ones are
	// refused before any decoding. A proof with an RSA 4096 key is about
	// 2.5 KB.
	MaxProofSize = 8 << 10
	// DefaultMaxAge is how long after its iat a proof is accepted when
	// VerifierConfig.MaxAge is zero.
	DefaultMaxAge = 60 * time.Second
	// DefaultLeeway is how far in the future a proof's iat may be (the
	// client's clock ahead of the server's) when VerifierConfig.Leeway is
	// zero.
	DefaultLeeway = 5 * time.Second
	// DefaultNonceLifetime is how long a server nonce is accepted when
	// VerifierConfig.NonceLifetime is zero.
	DefaultNonceLifetime = 5 * time.Minute
	// maxJTI bounds the jti (RFC 9449 §11.1: refuse needlessly large ones).
	maxJTI = 256
	// maxKeys bounds the cache of proof headers (one per client key).
	maxKeys = 1024
)

// DefaultAlgorithms are the proof algorithms a Verifier accepts when
// VerifierConfig.Algorithms is empty: every asymmetric JWS algorithm it
// can verify. "none" and the HMAC algorithms are never accepted.
func DefaultAlgorithms() []string { return jws.Algorithms() }

// VerifierConfig configures a Verifier. Zero values are safe defaults;
// Replay is required (or InsecureSkipReplayCheck, named for what it
// loosens).
type VerifierConfig struct {
	// Algorithms are the proof algorithms accepted (the algs attribute of
	// WWW-Authenticate). Empty: DefaultAlgorithms. Only asymmetric
	// algorithms can be listed.
	Algorithms []string
	// MaxAge is how long after its iat a proof is accepted. Zero:
	// DefaultMaxAge.
	MaxAge time.Duration
	// Leeway is how far in the future a proof's iat may be. Zero:
	// DefaultLeeway.
	Leeway time.Duration
	// Replay records the jti of every accepted proof (namespace
	// tokenstore.DPoPProofIDs, scoped by the normalised htu) for as long as
	// the proof would be accepted, so that a proof is used once across
	// every instance sharing the store (RFC 9449 §11.1). Required: give it
	// the session store (tokenstore.Memory for one instance, the shared
	// Redis store for several).
	Replay ReplayStore
	// InsecureSkipReplayCheck accepts proofs without recording their jti:
	// a captured proof can then be replayed to the same URI within MaxAge.
	InsecureSkipReplayCheck bool
	// NonceSecret, when set (at least 32 bytes, the same on every instance
	// of the server), turns server nonces on (RFC 9449 §9): a proof must
	// carry a nonce this server issued within NonceLifetime, or it is
	// refused with CodeUseNonce and the answer carries a new one
	// (Verifier.Nonce). Nonces are stateless: a timestamp and its HMAC.
	NonceSecret []byte
	// NonceLifetime is how long a nonce is accepted. Zero:
	// DefaultNonceLifetime. A new nonce is offered once half of it is
	// gone (Proof.NextNonce).
	NonceLifetime time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs (RFC 9449 §4.3). It is safe for concurrent
// use.
type Verifier struct {
	algs          []string
	maxAge        time.Duration
	leeway        time.Duration
	replay        ReplayStore
	nonceKey      []byte
	nonceLifetime time.Duration
	now           func() time.Time

	keys  sync.Map // proof header (base64url) -> *proofKey
	nkeys atomic.Int32
}

// proofKey is what a proof header says, once checked: its alg and key.
type proofKey struct {
	alg        string
	pub        crypto.PublicKey
	thumbprint string
}

// NewVerifier checks cfg and returns a Verifier. Errors are of the
// misconfigured class.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{
		algs: cfg.Algorithms, maxAge: cfg.MaxAge, leeway: cfg.Leeway, replay: cfg.Replay,
		nonceLifetime: cfg.NonceLifetime, now: cfg.Now,
	}
	if len(v.algs) == 0 {
		v.algs = DefaultAlgorithms()
	}
	for _, a := range v.algs {
		if !jws.Supported(a) {
			return nil, configError("VerifierConfig.Algorithms has %q: only asymmetric algorithms can sign proofs (%s)", a, strings.Join(DefaultAlgorithms(), " "))
		}
	}
	v.algs = slices.Clone(v.algs)
	if v.maxAge <= 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.leeway <= 0 {
		v.leeway = DefaultLeeway
	}
	if v.replay == nil && !cfg.InsecureSkipReplayCheck {
		return nil, configError("VerifierConfig.Replay is nil: give it the session store (every tokenstore.Store is a OneTimeKeys) so that a proof is used once")
	}
	if cfg.NonceSecret != nil {
		if len(cfg.NonceSecret) < 32 {
			return nil, configError("VerifierConfig.NonceSecret has %d bytes: use at least 32 random bytes, the same on every instance", len(cfg.NonceSecret))
		}
		v.nonceKey = slices.Clone(cfg.NonceSecret)
		if v.nonceLifetime <= 0 {
			v.nonceLifetime = DefaultNonceLifetime
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Algorithms returns the accepted proof algorithms.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// NoncesRequired reports whether proofs must carry a server nonce.
func (v *Verifier) NoncesRequired() bool { return v.nonceKey != nil }

// Request is the request a proof came with, as the server sees it.
type Request struct {
	// Method is the request's HTTP method (htm).
	Method string
	// URI is the absolute URI the client sent the request to (htu):
	// scheme, host and path as the client addresses this server, which
	// behind a proxy is not what the server sees. Query and fragment are
	// ignored.
	URI string
	// AccessToken is the token sent with the proof, if any: the proof must
	// then carry its hash (ath).
	AccessToken string
	// Thumbprint, when set, is the jkt the access token is bound to: the
	// proof's key must have that thumbprint.
	Thumbprint string
}

// Proof is a verified proof.
type Proof struct {
	// Thumbprint is the jkt of the proof's key (RFC 7638, base64url).
	Thumbprint string
	Algorithm  string
	JTI        string
	Method     string
	// URI is the proof's htu, normalised.
	URI      string
	IssuedAt time.Time
	Nonce    string
	// NextNonce, when not empty, is a new server nonce to send in a
	// DPoP-Nonce header: the proof's nonce is past half of its lifetime.
	NextNonce string
}

// Verify checks proof (the DPoP header's value) for req and records its
// jti. Every refusal is an *Error (errors.Is ErrInvalidProof); a replay
// store that does not answer is ErrReplayCheckUnavailable.
//
// The checks run from the cheapest and the ones that need no state to
// the replay check, so that only proofs otherwise valid are recorded.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (*Proof, error) {
	if len(proof) == 0 || len(proof) > MaxProofSize {
		return nil, refuse(CodeMalformed, "the proof is empty or larger than %d bytes", MaxProofSize)
	}
	var tok jws.Token
	if err := jws.ParseTo(&tok, proof); err != nil {
		if errors.Is(err, jws.ErrAlgorithm) {
			return nil, refuse(CodeAlgorithm, "alg is not an asymmetric signature algorithm this server accepts")
		}
		return nil, refuse(CodeMalformed, "the proof is not a compact JWS")
	}
	key, err := v.key(proof[:strings.IndexByte(proof, '.')], &tok.Header)
	if err != nil {
		return nil, err
	}
	// The binding before the signature: a proof by a key other than the
	// token's costs no signature check.
	if req.Thumbprint != "" && subtle.ConstantTimeCompare([]byte(req.Thumbprint), []byte(key.thumbprint)) != 1 {
		return nil, refuse(CodeBinding, "the proof's key is not the key the access token is bound to")
	}
	if jws.Verify(key.alg, key.pub, tok.SigningInput, tok.Signature) != nil {
		return nil, refuse(CodeSignature, "the signature does not verify with the jwk header")
	}
	payload, _ := tok.Payload()
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	p := &Proof{Thumbprint: key.thumbprint, Algorithm: key.alg, JTI: c.jti, Method: c.htm, IssuedAt: time.Unix(c.iat, 0), Nonce: c.nonce}
	if c.htm != req.Method {
		return nil, refuse(CodeMethod, "htm is not the request's method")
	}
	htu, ok := NormalizeURI(c.htu)
	if !ok {
		return nil, refuse(CodeURI, "htu is not an absolute http(s) URI")
	}
	if want, _ := NormalizeURI(req.URI); htu != want {
		return nil, refuse(CodeURI, "htu is not the URI of the request")
	}
	p.URI = htu
	now := v.now()
	switch iat := p.IssuedAt; {
	case iat.After(now.Add(v.leeway)):
		return nil, refuse(CodeTime, "iat is in the future")
	case iat.Before(now.Add(-v.maxAge)):
		return nil, refuse(CodeTime, "iat is too old: make a new proof for every request")
	}
	if req.AccessToken != "" {
		if c.ath == "" {
			return nil, refuse(CodeTokenHash, "ath is missing: a proof sent with an access token must carry its hash")
		}
		if subtle.ConstantTimeCompare([]byte(c.ath), []byte(TokenHash(req.AccessToken))) != 1 {
			return nil, refuse(CodeTokenHash, "ath is not the hash of the access token")
		}
	}
	if v.nonceKey != nil {
		issued, ok := v.checkNonce(c.nonce)
		switch {
		case c.nonce == "":
			return nil, refuse(CodeUseNonce, "this server requires a nonce in DPoP proofs: use the DPoP-Nonce of this answer")
		case !ok || now.Sub(issued) > v.nonceLifetime || issued.After(now.Add(v.leeway)):
			return nil, refuse(CodeUseNonce, "the nonce is not one this server issued recently: use the DPoP-Nonce of this answer")
		case now.Sub(issued) > v.nonceLifetime/2:
			p.NextNonce = v.Nonce()
		}
	}
	if v.replay != nil {
		sum := sha256.Sum256([]byte(c.jti))
		first, err := v.replay.UseOnce(ctx, replayNamespace, htu, base64.RawURLEncoding.EncodeToString(sum[:]), v.maxAge+v.leeway)
		if err != nil {
			return nil, errors.Join(ErrReplayCheckUnavailable, err)
		}
		if !first {
			return nil, refuse(CodeReplay, "the proof was used before: make a new proof for every request")
		}
	}
	return p, nil
}

// key returns the checked alg and key of a proof header (h: its base64url
// form, hd: its alg, typ and crit as package jws decoded them). Headers
// that pass are cached: a client sends the same header with every proof.
// maxRSABits bounds the RSA keys of proofs.
const maxRSABits = 4096

func (v *Verifier) key(h string, hd *jws.Header) (*proofKey, error) {
	if k, ok := v.keys.Load(h); ok {
		return k.(*proofKey), nil
	}
	if t := hd.Typ; !strings.EqualFold(t, "dpop+jwt") && !strings.EqualFold(t, "application/dpop+jwt") {
		return nil, refuse(CodeType, "typ is not dpop+jwt")
	}
	if !slices.Contains(v.algs, hd.Alg) {
		return nil, refuse(CodeAlgorithm, "alg is not one this server accepts")
	}
	doc, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, refuse(CodeMalformed, "the header is not base64url")
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(doc, &members) != nil {
		return nil, refuse(CodeMalformed, "the header is not a JSON object")
	}
	raw, ok := members["jwk"]
	if !ok {
		return nil, refuse(CodeKey, "the jwk header is missing")
	}
	var jm map[string]json.RawMessage
	if json.Unmarshal(raw, &jm) != nil {
		return nil, refuse(CodeKey, "the jwk header is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := jm[m]; ok {
			return nil, refuse(CodeKey, "the jwk header has a private key member: send the public key only (and treat this key as leaked)")
		}
	}
	k, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, refuse(CodeKey, "the jwk header is not a valid JWK")
	}
	if private, err := jwk.IsPrivateKey(k); err != nil || private {
		return nil, refuse(CodeKey, "the jwk header is not an asymmetric public key")
	}
	var pub any
	if k.Raw(&pub) != nil || !jws.Fits(hd.Alg, pub) {
		return nil, refuse(CodeKey, "the jwk header's key does not fit alg (or is an RSA key under 2048 bits)")
	}
	// The sender chooses this key: one far larger than any client needs,
	// or with a huge exponent, would make every check of its proofs cost
	// tens of milliseconds.
	if rk, ok := pub.(*rsa.PublicKey); ok && (rk.N.BitLen() > maxRSABits || rk.E > 65537) {
		return nil, refuse(CodeKey, "the jwk header's RSA key is over 4096 bits or has an exponent over 65537")
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, refuse(CodeKey, "the jwk header's thumbprint cannot be computed")
	}
	pk := &proofKey{alg: hd.Alg, pub: pub, thumbprint: base64.RawURLEncoding.EncodeToString(tp)}
	if v.nkeys.Add(1) > maxKeys {
		v.keys.Clear()
		v.nkeys.Store(1)
	}
	v.keys.Store(strings.Clone(h), pk)
	return pk, nil
}

// privateMembers are the JWK members of private and symmetric keys (RFC
// 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

type claims struct {
	jti, htm, htu, ath, nonce string
	iat                       int64
}

// parseClaims reads the proof's claims: exact member names, the last
// duplicate wins, required ones present and of their type.
func parseClaims(payload []byte) (claims, error) {
	var c claims
	var r jsonread.Reader
	r.Reset(string(payload))
	hasIat := false
	if r.Peek() != jsonread.Object {
		return c, refuse(CodeMalformed, "the claims are not a JSON object")
	}
	r.BeginObject()
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		switch key {
		case "jti":
			c.jti = readString(&r)
		case "htm":
			c.htm = readString(&r)
		case "htu":
			c.htu = readString(&r)
		case "ath":
			c.ath = readString(&r)
		case "nonce":
			c.nonce = readString(&r)
		case "iat":
			c.iat, hasIat = readTime(&r)
		default:
			r.Skip()
		}
	}
	r.End()
	switch {
	case r.Err() != nil:
		return c, refuse(CodeMalformed, "the claims are not a JSON object of the expected claim types")
	case c.jti == "" || c.htm == "" || c.htu == "" || !hasIat:
		return c, refuse(CodeMalformed, "a required claim (jti, htm, htu, iat) is missing")
	case len(c.jti) > maxJTI:
		return c, refuse(CodeMalformed, "jti is longer than %d bytes", maxJTI)
	}
	return c, nil
}

func readString(r *jsonread.Reader) string {
	if r.Peek() != jsonread.String {
		r.Fail()
		return ""
	}
	return r.ReadString()
}

// readTime reads a NumericDate (a fraction is truncated).
func readTime(r *jsonread.Reader) (int64, bool) {
	if r.Peek() != jsonread.Number {
		r.Fail()
		return 0, false
	}
	f, err := strconv.ParseFloat(r.ReadNumber(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		r.Fail()
		return 0, false
	}
	return int64(f), true
}

// Nonce returns a new server nonce for a DPoP-Nonce header, or "" when
// nonces are off.
func (v *Verifier) Nonce() string {
	if v.nonceKey == nil {
		return ""
	}
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(v.now().Unix()))
	m := hmac.New(sha256.New, v.nonceKey)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce returns when nonce was issued, and whether this server
// issued it.
func (v *Verifier) checkNonce(nonce string) (time.Time, bool) {
	// 24 bytes are always 32 characters: check before decoding into the
	// fixed buffer (a longer nonce would not fit).
	var b [8 + 16]byte
	if len(nonce) != base64.RawURLEncoding.EncodedLen(len(b)) {
		return time.Time{}, false
	}
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || n != len(b) {
		return time.Time{}, false
	}
	m := hmac.New(sha256.New, v.nonceKey)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:24]) {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0), true
}
