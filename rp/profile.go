package rp

import (
	"context"
	"slices"
)

// Profile is a security profile a Client follows: a set of rules that
// turn on what the profile requires and refuse configurations that break
// it. The zero value is this library's defaults.
type Profile string

// FAPI2 is the FAPI 2.0 Security Profile (OpenID FAPI 2.0 Final, §5):
//
//   - authorization requests are pushed (PAR, RFC 9126), with PKCE S256
//     (always sent by this library);
//
//   - the client authenticates with private_key_jwt (Config.Key): no
//     client secret, no public client; mTLS client authentication, which
//     FAPI 2.0 also allows, is not implemented by this library;
//
//   - the authorization response must carry iss (RFC 9207);
//
//   - ID tokens, logout tokens and the client's assertions are signed
//     with PS256, ES256 or EdDSA only (an RSA client key signs with PS256).
//
//   - access tokens are sender-constrained with DPoP (Config.DPoP, or a key
//     per web session with middleware.WebConfig.DPoP): a code exchange or
//     refresh without a DPoP key is refused (mTLS-bound tokens are not
//     implemented by this library).
const FAPI2 Profile = "fapi2"

// fapiAlgs are the signing algorithms FAPI 2.0 Security Profile §5.4
// allows, for the OP's ID tokens and for the client's assertions.
var fapiAlgs = []string{"PS256", "ES256", "EdDSA"}

// checkProfile refuses what the profile forbids in the Config alone.
func (c *Config) checkProfile() error {
	switch c.Profile {
	case "":
		return nil
	case FAPI2:
	default:
		return configError("Profile %q is not known: use rp.FAPI2, or leave it empty", c.Profile)
	}
	switch {
	case c.ClientSecret != "" || c.AuthMethod == AuthClientSecretBasic || c.AuthMethod == AuthClientSecretPost:
		return configError("the FAPI 2.0 profile allows no client secret (client_secret_basic, client_secret_post): authenticate with private_key_jwt, Config.Key (mTLS client authentication is not implemented by this library)")
	case c.AuthMethod == AuthNone:
		return configError("the FAPI 2.0 profile is for confidential clients: a public client (AuthMethod none) cannot follow it; set Config.Key for private_key_jwt")
	case c.Key == nil:
		return configError("the FAPI 2.0 profile requires private_key_jwt client authentication: set Config.Key (rp.LoadClientKey reads PEM or JWK) and register its public key at the OP")
	}
	return fapi2SenderConstraint(c)
}

// fapi2SenderConstraint is the FAPI 2.0 rule on sender-constrained access
// tokens (§5.3.2.1: DPoP or mTLS; this library does DPoP) that the Config
// alone can tell: a client DPoP key must use one of the profile's
// algorithms. Whether each token request has a key (Config.DPoP, or one
// per session through WithDPoPKey) is checked at the request
// (senderConstrained).
func fapi2SenderConstraint(c *Config) error {
	if c.DPoP != nil && !slices.Contains(fapiAlgs, c.DPoP.Algorithm()) {
		return configError("the FAPI 2.0 profile allows DPoP keys for %v only, not %s", fapiAlgs, c.DPoP.Algorithm())
	}
	return nil
}

// senderConstrained refuses, under the FAPI 2.0 profile, a token request
// (code exchange, refresh) without a DPoP key or with a key of another
// algorithm than the profile's: its tokens would be bearer tokens.
func (c *Client) senderConstrained(ctx context.Context) error {
	if c.cfg.Profile != FAPI2 {
		return nil
	}
	switch k := c.dpopKey(ctx); {
	case k == nil:
		return configError("the FAPI 2.0 profile requires DPoP-bound tokens: set Config.DPoP (one key for the client, e.g. a CLI) or middleware.WebConfig.DPoP (a key per web session); mTLS-bound tokens are not implemented by this library")
	case !slices.Contains(fapiAlgs, k.Algorithm()):
		return configError("the FAPI 2.0 profile allows DPoP keys for %v only, not %s", fapiAlgs, k.Algorithm())
	}
	return nil
}

// profileAlgs narrows the OP's algorithm allow-list to the profile's: the
// algorithms this Client accepts on the OP's tokens. nil: no narrowing.
func (c *Config) profileAlgs(opAlgs []string) ([]string, error) {
	if c.Profile != FAPI2 {
		return nil, nil
	}
	algs := slices.DeleteFunc(slices.Clone(opAlgs), func(a string) bool { return !slices.Contains(fapiAlgs, a) })
	if len(algs) == 0 {
		return nil, configError("the FAPI 2.0 profile accepts tokens signed with %v only, and the OP signs with %v: have the OP sign this client's ID tokens with PS256 or ES256 (id_token_signed_response_alg)", fapiAlgs, opAlgs)
	}
	return algs, nil
}
