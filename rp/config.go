package rp

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/loopback"
)

// Client authentication methods (RFC 7591 names).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthNone              = "none" // public client: SPA, mobile, desktop, CLI
	// AuthPrivateKeyJWT: the client signs a short-lived assertion with its
	// private key (Config.Key) on every request; no secret exists (RFC 7523
	// §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT = "private_key_jwt"
)

// Defaults.
const (
	// DefaultClockSkew is the tolerance on exp, nbf, iat and auth_time
	// (ProviderOptions.ClockSkew).
	DefaultClockSkew = time.Minute
	// maxLogoutTokenAge bounds how old a logout token's iat may be (some
	// OPs send no exp) when Config.MaxLogoutTokenAge is zero.
	maxLogoutTokenAge = 5 * time.Minute
)

// DefaultScopes are requested when Config.Scopes is empty. offline_access
// asks for a refresh token (Scalekit, Hydra and others issue one only then).
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Config describes one app (one OAuth client) at the OP of a Provider.
// Zero values are safe defaults; options that loosen a check say so in
// their name. What all apps of the OP share (HTTP client, algorithms, clock
// skew) is in ProviderOptions.
type Config struct {
	// ClientID is this app's client id at the OP. Required.
	ClientID string
	// ClientSecret authenticates a confidential client (web app on a
	// server). Leave empty for a public client (SPA, mobile, desktop, CLI):
	// PKCE S256 then is what protects the code.
	ClientSecret string
	// RedirectURL is the absolute callback URL registered at the OP.
	// Required for the login flow; may be empty for a client that only
	// verifies tokens (an ID token's or a logout token's audience).
	RedirectURL string
	// PostLogoutRedirectURL is where the OP sends the browser after logout;
	// absolute and registered at the OP. Optional.
	PostLogoutRedirectURL string
	// Scopes requested at login. Empty: DefaultScopes. "openid" is added
	// when missing.
	Scopes []string
	// Key is the client's private key for private_key_jwt (see ClientKey):
	// set it instead of ClientSecret, and register the public key at the OP
	// (JWKS, JWKSHandler). With Key set, AuthMethod may stay empty.
	Key *ClientKey
	// AuthMethod is the client authentication at the token, revocation and
	// PAR endpoints: AuthClientSecretBasic, AuthClientSecretPost,
	// AuthPrivateKeyJWT or AuthNone. It must be the method the client
	// is registered with: some OPs (Ory Hydra) refuse any other with
	// invalid_client, the answer to a wrong secret. Empty: AuthNone without
	// a secret; otherwise client_secret_basic when the OP lists it or lists
	// nothing (RFC 6749 §2.3.1: every OP must support it, and it is the RFC
	// 7591 registration default), client_secret_post when only that is
	// listed. When the OP lists both, a check before the first token
	// request keeps the one the OP accepts (see Client.CheckClientAuth).
	AuthMethod string
	// PAR pushes every authorization request to the OP first (Pushed
	// Authorization Requests, RFC 9126): the browser then carries only
	// client_id and a request_uri, so the request's parameters cannot be
	// read or changed on the way, and no length limit applies. PAR is used
	// anyway when the OP's discovery says
	// require_pushed_authorization_requests; set it for an OP that requires
	// PAR of this client only (node-oidc-provider, Keycloak and others can
	// require it per client).
	PAR bool
	// Profile makes the client follow a security profile: FAPI2 (the FAPI
	// 2.0 Security Profile) turns on PAR, requires private_key_jwt (Key),
	// the iss authorization response parameter and PS256/ES256/EdDSA
	// signatures, and refuses a configuration that breaks it. Empty: the
	// library's defaults.
	Profile Profile
	// OnClientAuth, when set, is told the outcome of every client
	// authentication check (Client.CheckClientAuth, or the automatic one):
	// the method in use and why, and nil, or the *ClientAuthError the OP's
	// refusal produced. Log it as an audit event; it must not block.
	OnClientAuth func(ClientAuth, error)
	// TrustedAudiences are audiences besides ClientID that may appear in an
	// ID or logout token's aud. Any other extra audience is refused.
	TrustedAudiences []string
	// MaxLogoutTokenAge bounds a logout token's age by its iat (some OPs
	// send no exp). Zero: 5 minutes.
	MaxLogoutTokenAge time.Duration
	// DPoP, when set, is the key the client proves possession of on every
	// token request (RFC 9449 §5): the OP binds the access tokens (and a
	// public client's refresh tokens) to it, and answers token_type DPoP,
	// which is then required. Send such tokens with a proof by the same
	// key (dpop.Transport). The OP must advertise DPoP
	// (dpop_signing_alg_values_supported) with the key's algorithm. A
	// key given with a request's context (WithDPoPKey) takes its place for
	// that request: a client that keeps a key per user session (a web
	// app, middleware.WebConfig.DPoP) leaves DPoP nil.
	DPoP *dpop.Signer
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// check validates the configuration on its own; Provider.Client then
// checks it against the OP's metadata.
func (c *Config) check() error {
	if c.ClientID == "" {
		return configError("ClientID is empty: set it to this app's client id at the OP")
	}
	if c.RedirectURL != "" {
		if err := checkAbsolute("RedirectURL", c.RedirectURL); err != nil {
			return err
		}
	}
	if c.PostLogoutRedirectURL != "" {
		if err := checkAbsolute("PostLogoutRedirectURL", c.PostLogoutRedirectURL); err != nil {
			return err
		}
	}
	if c.Key != nil && c.ClientSecret != "" {
		return configError("both Key and ClientSecret are set: a client authenticates one way; keep Key for private_key_jwt, or ClientSecret for a secret method")
	}
	switch c.AuthMethod {
	case "":
	case AuthPrivateKeyJWT:
		if c.Key == nil {
			return configError("AuthMethod is %q but Key is empty: set Config.Key (rp.LoadClientKey reads PEM or JWK)", AuthPrivateKeyJWT)
		}
	case AuthNone:
		if c.ClientSecret != "" {
			return configError("AuthMethod is %q but ClientSecret is set: a public client has no secret", AuthNone)
		}
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.ClientSecret == "" {
			return configError("AuthMethod is %q but ClientSecret is empty", c.AuthMethod)
		}
	default:
		return configError("AuthMethod %q is not supported: use %q, %q, %q or %q", c.AuthMethod, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	if c.Key != nil && c.AuthMethod != "" && c.AuthMethod != AuthPrivateKeyJWT {
		return configError("Key is set but AuthMethod is %q: a key authenticates with %q", c.AuthMethod, AuthPrivateKeyJWT)
	}
	return c.checkProfile()
}

func checkAbsolute(field, raw string) error {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "http" && u.Scheme != "https" && strings.Contains(u.Scheme, ".") && u.Fragment == "" {
		return nil // RFC 8252 §7.1 private-use scheme of a native app, e.g. com.example.app:/callback
	}
	if err != nil || !u.IsAbs() || u.Host == "" {
		return configError("%s %q must be an absolute URL, exactly as registered at the OP (e.g. https://app.example.com/auth/callback)", field, raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return configError("%s %q must not contain a fragment", field, raw)
	}
	if u.Scheme == "http" && !loopback.Host(u.Host) {
		return configError("%s %q uses plain http outside localhost: use https", field, raw)
	}
	return nil
}
