package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/multiapp-go/multiapp/internal/errclass"
)

// DefaultAlgorithm is the algorithm of keys GenerateSigner makes when none
// is named: ES256, the one every DPoP server supports in practice.
const DefaultAlgorithm = "ES256"

// signingAlgs are the algorithms a Signer signs with, and the key each
// needs.
var signingAlgs = map[string]jwa.SignatureAlgorithm{
	"ES256": jwa.ES256, "ES384": jwa.ES384, "ES512": jwa.ES512,
	"EdDSA": jwa.EdDSA,
	"PS256": jwa.PS256, "PS384": jwa.PS384, "PS512": jwa.PS512,
	"RS256": jwa.RS256, "RS384": jwa.RS384, "RS512": jwa.RS512,
}

// Signer holds a client's DPoP key and makes proofs with it. It is safe for
// concurrent use.
type Signer struct {
	key        crypto.Signer
	alg        jwa.SignatureAlgorithm
	public     jwk.Key
	thumbprint string
	now        func() time.Time
}

// NewSigner returns a Signer for key, signing with alg. An empty alg picks
// the key's natural one: ES256/ES384/ES512 for P-256/P-384/P-521 keys, EdDSA
// for Ed25519, PS256 for RSA (at least 2048 bits). key may be any
// crypto.Signer (e.g. a key in an HSM) whose Public() is one of those.
// Errors are of the misconfigured class.
func NewSigner(key crypto.Signer, alg string) (*Signer, error) {
	if key == nil {
		return nil, configError("NewSigner: key is nil")
	}
	natural, err := naturalAlg(key.Public())
	if err != nil {
		return nil, err
	}
	if alg == "" {
		alg = natural
	}
	a, ok := signingAlgs[alg]
	if !ok {
		return nil, configError("algorithm %q cannot sign DPoP proofs: use an asymmetric one (ES256, EdDSA, PS256, RS256...)", alg)
	}
	if !fits(alg, key.Public()) {
		return nil, configError("a %s key cannot sign %s", keyKind(key.Public()), alg)
	}
	pub, err := jwk.FromRaw(key.Public())
	if err != nil {
		return nil, configError("the public key cannot be expressed as a JWK: %v", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, configError("the key's thumbprint cannot be computed: %v", err)
	}
	return &Signer{key: key, alg: a, public: pub, thumbprint: base64.RawURLEncoding.EncodeToString(tp), now: time.Now}, nil
}

// GenerateSigner makes a new key for alg (empty: DefaultAlgorithm) and
// returns its Signer: a P-256/P-384/P-521 key for ES*, Ed25519 for EdDSA,
// RSA 2048 bits for PS* and RS*.
func GenerateSigner(alg string) (*Signer, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	var key crypto.Signer
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "PS256", "PS384", "PS512", "RS256", "RS384", "RS512":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, configError("algorithm %q cannot sign DPoP proofs: use an asymmetric one (ES256, EdDSA, PS256, RS256...)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("dpop: generating a %s key: %w", alg, err)
	}
	return NewSigner(key, alg)
}

// Algorithm is the JWS alg of the proofs.
func (s *Signer) Algorithm() string { return string(s.alg) }

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638), base64url:
// the jkt a token bound to this key carries in cnf, and the dpop_jkt of an
// authorization request (RFC 9449 §10).
func (s *Signer) Thumbprint() string { return s.thumbprint }

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a new proof for a request: method (htm) and uri (htu; its
// query and fragment are left out), with a fresh jti and iat. accessToken,
// when not empty, is the token sent with the request (its hash becomes
// ath); nonce, when not empty, is the server's latest DPoP-Nonce. A proof
// is for one request: make a new one for every request, retries included.
func (s *Signer) Proof(method, uri, accessToken, nonce string) (string, error) {
	htu, err := targetURI(uri)
	if err != nil {
		return "", err
	}
	if method == "" {
		return "", configError("Proof: the HTTP method is empty")
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	c := proofClaims{JTI: base64.RawURLEncoding.EncodeToString(jti[:]), HTM: method, HTU: htu, IAT: s.now().Unix(), Nonce: nonce}
	if accessToken != "" {
		c.ATH = TokenHash(accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "dpop+jwt")
	_ = h.Set(jws.JWKKey, s.public)
	out, err := jws.Sign(payload, jws.WithKey(s.alg, s.key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", fmt.Errorf("dpop: signing a proof: %w", err)
	}
	return string(out), nil
}

// targetURI is uri without its query and fragment; it must be an absolute
// http(s) URL.
func targetURI(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", configError("Proof: %q is not an absolute http(s) URL", uri)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String(), nil
}

func naturalAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", configError("an RSA key of %d bits is too small: use at least 2048", k.N.BitLen())
		}
		return "PS256", nil
	}
	return "", configError("a %s key cannot sign DPoP proofs: use an EC (P-256), Ed25519 or RSA key", keyKind(pub))
}

func keyKind(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// fits reports whether alg signs with pub's kind of key.
func fits(alg string, pub crypto.PublicKey) bool {
	n, err := naturalAlg(pub)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(alg, "ES"), alg == "EdDSA":
		return n == alg
	default: // PS*, RS*
		return n == "PS256"
	}
}

var errConfig = errclass.ErrMisconfigured

func configError(format string, args ...any) error {
	return fmt.Errorf("dpop: %w: %s", errConfig, fmt.Sprintf(format, args...))
}

// MarshalPrivateJWK returns the Signer's private key as a JWK (RFC 7517)
// with its alg, for a client that keeps its key with its tokens (a file
// only its user can read, a sealed session record). It fails for keys
// that cannot be exported (a crypto.Signer other than the standard
// library's EC, Ed25519 and RSA private keys). Treat the result as a
// secret.
func (s *Signer) MarshalPrivateJWK() ([]byte, error) {
	switch s.key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, configError("a %T cannot be exported", s.key)
	}
	k, err := jwk.FromRaw(s.key)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	if err := k.Set(jwk.AlgorithmKey, s.alg); err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return json.Marshal(k)
}

// ParseSigner returns the Signer of a private JWK made by
// MarshalPrivateJWK (or any EC, OKP or RSA private JWK; without alg, the
// key's natural algorithm).
func ParseSigner(privateJWK []byte) (*Signer, error) {
	k, err := jwk.ParseKey(privateJWK)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w: the key is not a valid JWK", errConfig)
	}
	if private, err := jwk.IsPrivateKey(k); err != nil || !private {
		return nil, configError("the JWK is not a private key")
	}
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, fmt.Errorf("dpop: %w: %v", errConfig, err)
	}
	key, ok := raw.(crypto.Signer)
	if !ok {
		return nil, configError("a %T cannot sign", raw)
	}
	alg := ""
	if a, ok := k.Get(jwk.AlgorithmKey); ok {
		alg = fmt.Sprint(a)
	}
	return NewSigner(key, alg)
}
