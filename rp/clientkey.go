package rp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// assertionLifetime is how long a private_key_jwt assertion is valid: a
// fresh one is signed for every request, so it only has to outlive the
// request (RFC 7523 §3, FAPI 2.0 and RFC 7523bis want it short).
const assertionLifetime = 60 * time.Second

// assertionType is client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientKey is an app's private key for private_key_jwt client
// authentication (RFC 7523 §2.2, OpenID Connect Core §9): with it, the app
// proves who it is by signing a short-lived assertion on every request to
// the OP, and no shared secret exists. Register the public half at the OP
// (its jwks, or a jwks_uri served by JWKSHandler). Load one with
// LoadClientKey or ParseClientKey, or build it around any crypto.Signer (a
// KMS or HSM key).
type ClientKey struct {
	// Signer is the private key: an RSA key of 2048 bits or more, an ECDSA
	// P-256 key or an Ed25519 key, or a crypto.Signer over one.
	Signer crypto.Signer
	// KeyID is the kid the assertions carry and the JWKS publishes. Empty:
	// the key's RFC 7638 thumbprint.
	KeyID string
	// Alg is the signing algorithm: RS256 or PS256 (RSA), ES256 (P-256),
	// EdDSA (Ed25519). Empty: chosen from the key and the OP's
	// token_endpoint_auth_signing_alg_values_supported (PS256 before RS256);
	// RS256 for an RSA key when the OP lists nothing.
	Alg string
}

// keyAlgs are the algorithms a key of each kind signs with, preferred
// first.
func keyAlgs(pub crypto.PublicKey) ([]string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits; at least 2048 are needed", k.N.BitLen())
		}
		return []string{"PS256", "RS256"}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("the ECDSA key is on %s; use P-256 (ES256)", k.Curve.Params().Name)
		}
		return []string{"ES256"}, nil
	case ed25519.PublicKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign client assertions: use RSA (2048+ bits), ECDSA P-256 or Ed25519", pub)
}

// signingKey is a ClientKey checked and ready: its kid and the algorithm
// chosen for the OP.
type signingKey struct {
	signer crypto.Signer
	kid    string
	alg    string
}

// prepare checks k and chooses its algorithm among allowed (nil: any the
// key supports) and listed (the OP's
// token_endpoint_auth_signing_alg_values_supported; empty: the OP says
// nothing).
func (k *ClientKey) prepare(allowed, listed []string) (*signingKey, error) {
	if k == nil || k.Signer == nil {
		return nil, configError("the client key is empty: set Config.Key to a key from rp.LoadClientKey, or to a crypto.Signer")
	}
	algs, err := keyAlgs(k.Signer.Public())
	if err != nil {
		return nil, configError("client key: %v", err)
	}
	if allowed != nil {
		algs = slices.DeleteFunc(algs, func(a string) bool { return !slices.Contains(allowed, a) })
		if len(algs) == 0 {
			return nil, configError("the client key cannot sign with the algorithms this profile allows (%v): use an ECDSA P-256, Ed25519 or RSA (PS256) key", allowed)
		}
	}
	if k.Alg != "" {
		if !slices.Contains(algs, k.Alg) {
			return nil, configError("ClientKey.Alg %q does not fit this key (it can sign with %v)", k.Alg, algs)
		}
		algs = []string{k.Alg}
	}
	alg := ""
	for _, a := range algs {
		if len(listed) == 0 || slices.Contains(listed, a) || (a == "EdDSA" && slices.Contains(listed, "Ed25519")) {
			alg = a
			break
		}
	}
	switch {
	case alg == "":
		return nil, configError("the OP accepts client assertions signed with %v (token_endpoint_auth_signing_alg_values_supported), and this key signs with %v: use another key", listed, algs)
	case len(listed) == 0 && k.Alg == "" && slices.Contains(algs, "RS256"):
		alg = "RS256" // every OP that takes RSA assertions takes RS256
	}
	kid := k.KeyID
	if kid == "" {
		if kid, err = thumbprint(k.Signer.Public()); err != nil {
			return nil, configError("client key: %v", err)
		}
	}
	return &signingKey{signer: k.Signer, kid: kid, alg: alg}, nil
}

// thumbprint is the RFC 7638 thumbprint of a public key, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := jwk.FromRaw(pub)
	if err != nil {
		return "", err
	}
	sum, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// sign returns a compact JWS of claims with the key's kid and alg and the
// header typ (empty: none).
func (s *signingKey) sign(claims map[string]any, typ string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, s.kid)
	if typ != "" {
		_ = hdr.Set(jws.TypeKey, typ)
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(s.alg), s.signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("%w: signing the client assertion with key %q (%s): %v", ErrConfig, s.kid, s.alg, err)
	}
	return string(out), nil
}

// assertion is a private_key_jwt client assertion (RFC 7523 §3): the
// client is iss and sub, the audience is the OP's issuer identifier (FAPI
// 2.0 §5.3.2.1 and RFC 7523bis require exactly that string; OPs that also
// take the token endpoint URL take the issuer too), a unique jti and a
// lifetime of 60 seconds.
func (s *signingKey) assertion(clientID, audience string, now time.Time) (string, error) {
	return s.sign(map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience,
		"jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}, "")
}

// publicJWK is the public half of the key as a JWK with kid, use and,
// when given, alg.
func (s *signingKey) publicJWK(alg string) (jwk.Key, error) {
	j, err := jwk.FromRaw(s.signer.Public())
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{jwk.KeyIDKey: s.kid, jwk.KeyUsageKey: "sig"}
	if alg != "" {
		attrs[jwk.AlgorithmKey] = alg
	}
	for k, v := range attrs {
		if err := j.Set(k, v); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// JWKS returns the public JSON Web Key Set of keys ({"keys": [...]}), to
// register at the OP as the client's jwks or to serve at its jwks_uri.
// List the old and the new key while rotating. A key's JWK carries its
// kid, "use": "sig" and, only when ClientKey.Alg is set, alg: the
// algorithm chosen for an OP (see ClientKey.Alg) then always verifies.
func JWKS(keys ...*ClientKey) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		s, err := k.prepare(nil, nil)
		if err != nil {
			return nil, err
		}
		j, err := s.publicJWK(k.Alg)
		if err != nil {
			return nil, configError("client key %q: %v", s.kid, err)
		}
		_ = set.AddKey(j)
	}
	return json.Marshal(set)
}

// JWKSHandler serves JWKS(keys...) at the client's jwks_uri, with a short
// cache lifetime so a rotation reaches the OP soon. It errs as JWKS does.
func JWKSHandler(keys ...*ClientKey) (http.Handler, error) {
	body, err := JWKS(keys...)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}), nil
}

// ParseClientKey parses a private key: PEM (PKCS #8, PKCS #1 RSA or SEC 1
// EC) or a private JWK (its kid, when present, becomes KeyID, and its alg
// Alg). It never includes key material in its errors.
func ParseClientKey(data []byte) (*ClientKey, error) {
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("{")) {
		j, err := jwk.ParseKey(data)
		if err != nil {
			return nil, errBadJWK
		}
		var raw any
		if err := j.Raw(&raw); err != nil {
			return nil, errBadJWK
		}
		signer, ok := raw.(crypto.Signer)
		if !ok {
			return nil, configError("the client key JWK is a public key: the private key (with d) is needed to sign; publish the public one at the OP")
		}
		k := &ClientKey{Signer: signer, KeyID: j.KeyID()}
		if a := j.Algorithm().String(); a != "" {
			k.Alg = a
		}
		return k, nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, configError("the client key is neither PEM (-----BEGIN PRIVATE KEY-----) nor a JWK ({...})")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, configError("the client key PEM block is %q: a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) is needed", block.Type)
	}
	if err != nil {
		return nil, configError("the client key PEM does not parse as %s", block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, configError("the client key is a %T, which cannot sign", key)
	}
	return &ClientKey{Signer: signer}, nil
}

// errBadJWK says nothing of the parser's reason: jwx quotes some of the
// values it refuses, and a JWK's values are key material.
var errBadJWK = configError("the client key is not a valid private JWK: check kty, crv (P-256 or Ed25519), d and, for RSA, n, e, p and q")

// maxKeyFile bounds a client key file: a PEM or JWK private key is a few KB.
const maxKeyFile = 64 << 10

// LoadClientKey reads a client key from the value of an environment
// variable or a flag: the PEM or JWK text itself, or the path of a file
// holding one (see ParseClientKey).
func LoadClientKey(value string) (*ClientKey, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil, configError("no client key given: set it to a PEM or JWK private key, or to a file holding one")
	}
	if strings.HasPrefix(v, "-----BEGIN") || strings.HasPrefix(v, "{") {
		return ParseClientKey([]byte(v))
	}
	data, err := readKeyFile(v)
	if err != nil {
		// The value is not shown: it may be key material in a format this
		// function does not read.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, configError("the client key is neither PEM, nor a JWK, nor a readable file (%v)", err)
	}
	return ParseClientKey(data)
}

// readKeyFile reads a regular file of at most maxKeyFile bytes: never a
// device, a pipe or a directory (a start-up that hangs or fills memory).
func readKeyFile(path string) ([]byte, error) {
	// Stat before opening: opening a named pipe blocks until a writer comes.
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if st.Size() > maxKeyFile {
		return nil, fmt.Errorf("a file of %d bytes, more than a key's %d", st.Size(), maxKeyFile)
	}
	return io.ReadAll(io.LimitReader(f, maxKeyFile+1))
}
