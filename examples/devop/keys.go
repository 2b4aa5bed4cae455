package devop

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingKey is the OP's one RSA key. It implements op.SigningKey for the ID
// tokens zitadel/oidc signs, and signs the access and logout tokens this
// package builds itself.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey(key *rsa.PrivateKey) (*signingKey, error) {
	thumb, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb)[:16], key: key}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// sign serialises claims as a compact JWS with the given "typ" header.
func (k *signingKey) sign(claims any, typ string) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// publicKey is the JWKS entry of the signing key (op.Key).
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// tokenCrypto replaces zitadel/oidc's AES crypto (op.WithCrypto). zitadel/oidc
// calls Encrypt for two things only: to make an authorization code from an
// auth request id, and to make a "bearer" access token from "tokenID:subject".
// Taking over the second lets this package issue its own JWT access tokens,
// whose `aud`, `sid`, `roles`, `permissions` and `scope` zitadel's built-in JWT
// access tokens cannot carry without also changing the ID token's audience.
// Decrypt maps a token back to "tokenID:subject" for userinfo, introspection
// and revocation.
type tokenCrypto struct{ o *OP }

var _ op.Crypto = tokenCrypto{}

func (c tokenCrypto) Encrypt(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, accessTokenIDPrefix):
		id, _, _ := strings.Cut(s, ":")
		return c.o.signAccessToken(id)
	case strings.HasPrefix(s, authRequestIDPrefix):
		return newID("cd_"), nil
	}
	return "", errors.New("devop: unexpected value to encrypt")
}

func (c tokenCrypto) Decrypt(s string) (string, error) {
	c.o.mu.Lock()
	defer c.o.mu.Unlock()
	if id, ok := c.o.accessByJWT[s]; ok {
		if at := c.o.access[id]; at != nil {
			return at.id + ":" + at.userID, nil
		}
	}
	return "", errors.New("devop: unknown token")
}
