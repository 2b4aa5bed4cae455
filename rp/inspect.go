package rp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Diagnostics: entry points for tools that look at a token outside a login
// (the multiapp doctor command, support scripts, logs). None of them is a
// way to accept a token: sign users in with Exchange or VerifyIDToken, and
// accept logout tokens with VerifyLogoutToken.

// whatJWT labels ValidationErrors of InspectJWT and DecodeUnverified, which
// do not know the token's kind.
const whatJWT = "jwt"

// TokenHeader is the protected header of a compact JWS.
type TokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// DecodeUnverified decodes the header and the claims of a compact JWS
// without verifying anything: not the signature, not the issuer, not the
// times. It is for showing what a token says and choosing which rules to
// check it with; never base a decision on its result. It tells an opaque
// token and an encrypted one (JWE) apart from a malformed JWS in its error.
func DecodeUnverified(raw string) (TokenHeader, *Claims, error) {
	var h TokenHeader
	if len(raw) == 0 || len(raw) > jws.MaxTokenSize {
		return h, nil, invalid(whatJWT, CodeMalformed, "empty, or larger than %d bytes", jws.MaxTokenSize)
	}
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
	case 1:
		return h, nil, invalid(whatJWT, CodeMalformed, "not a JWT but an opaque token: only the OP can tell what it means (token introspection)")
	case 5:
		return h, nil, invalid(whatJWT, CodeMalformed, "an encrypted token (JWE): it cannot be read without the decryption key")
	default:
		return h, nil, invalid(whatJWT, CodeMalformed, "not a compact JWS (%d dot-separated parts instead of 3)", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, nil, &ValidationError{What: whatJWT, Code: CodeMalformed, Detail: "the header is not base64url", Err: err}
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, &ValidationError{What: whatJWT, Code: CodeMalformed, Detail: "the header is not a JSON object", Err: err}
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return h, nil, &ValidationError{What: whatJWT, Code: CodeMalformed, Detail: "the payload is not base64url", Err: err}
	}
	cl, err := ParseClaims(pb)
	if err != nil {
		return h, nil, &ValidationError{What: whatJWT, Code: CodeMalformed, Detail: "the claims are not a valid JSON object", Err: err}
	}
	return h, cl, nil
}

// InspectIDToken applies every ID token rule of VerifyIDToken except those
// that need the login the token came from: the nonce (and at_hash, which
// needs the access token). It returns the claims of a token that passes,
// or the *ValidationError that VerifyIDToken would give first.
//
// A token that passes here may still be a replay from another login: to
// sign a user in, use Exchange or VerifyIDToken.
func (c *Client) InspectIDToken(ctx context.Context, raw string) (*Claims, error) {
	_, cl, err := c.idToken(ctx, raw, "", nonceUnchecked)
	return cl, err
}

// InspectJWT applies the rules every token of this OP shares, whatever its
// kind: a signature by a key of the issuer's JWKS with an allowed
// algorithm, exact iss, aud containing audience (this client's id when
// audience is empty), and exp, nbf and iat within the clock skew (exp and
// iat required). It checks nothing that depends on the kind (typ, azp,
// nonce, scopes, events, jti replay), so it is the common core for
// diagnostics, e.g. of an access token issued for an API's audience; it
// returns the claims of a token that passes, or the first *ValidationError.
func (c *Client) InspectJWT(ctx context.Context, raw, audience string) (*Claims, error) {
	if audience == "" {
		audience = c.cfg.ClientID
	}
	_, cl, err := c.p.verifySigned(ctx, whatJWT, raw)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cl.Audience, audience) {
		return nil, invalid(whatJWT, CodeAudience, "aud %v does not contain %q (is the token meant for another app or API?)", []string(cl.Audience), audience)
	}
	if err := c.p.checkTimes(whatJWT, cl, c.p.now(), requireExp|requireIat); err != nil {
		return nil, err
	}
	return cl, nil
}
