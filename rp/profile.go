package rp

import (
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
//   - the client authenticates with private_key_jwt (Config.Key): no
//     client secret, no public client; mTLS client authentication, which
//     FAPI 2.0 also allows, is not implemented by this library;
//   - the authorization response must carry iss (RFC 9207);
//   - ID tokens, logout tokens and the client's assertions are signed
//     with PS256, ES256 or EdDSA only (an RSA client key signs with PS256).
//
// FAPI 2.0 also requires sender-constrained access tokens (DPoP or mTLS):
// see fapi2SenderConstraint.
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

// fapi2SenderConstraint is the one place where the FAPI 2.0 profile will
// require sender-constrained access tokens (FAPI 2.0 §5.3.2.1: DPoP or
// mTLS). DPoP (issue 15.3) adds its Config field; this check then refuses
// FAPI2 without it. Until then the profile runs with bearer tokens, which
// node-oidc-provider's FAPI 2.0 profile accepts.
func fapi2SenderConstraint(c *Config) error {
	// TODO(hi-dpop): when Config has DPoP, require it here:
	//   if c.DPoP == nil { return configError("the FAPI 2.0 profile requires DPoP-bound tokens: set Config.DPoP") }
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
