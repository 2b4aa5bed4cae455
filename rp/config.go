package rp

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/loopback"
)

// Token endpoint client authentication methods (RFC 7591 names).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthNone              = "none" // public client: SPA, mobile, desktop, CLI
)

// Defaults.
const (
	// DefaultClockSkew is the tolerance on exp, nbf and iat.
	DefaultClockSkew = time.Minute
	// DefaultMaxLogoutTokenAge bounds how old a logout token's iat may be
	// (some OPs send no exp).
	DefaultMaxLogoutTokenAge = 5 * time.Minute
)

// DefaultScopes are requested when Config.Scopes is empty. offline_access
// asks for a refresh token (Scalekit, Hydra and others issue one only then).
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Config describes one app (one OAuth client) at one OP. Zero values are
// safe defaults; options that loosen a check say so in their name.
type Config struct {
	// Issuer is the OP's issuer URL, exactly as in its discovery document
	// (for Scalekit: the environment URL). Required.
	Issuer string
	// ClientID is this app's client id at the OP. Required.
	ClientID string
	// ClientSecret authenticates a confidential client (web app on a
	// server). Leave empty for a public client (SPA, mobile, desktop, CLI):
	// PKCE S256 then is what protects the code.
	ClientSecret string
	// RedirectURL is the absolute callback URL registered at the OP.
	// Required for the login flow; may be empty for a client that only
	// verifies tokens.
	RedirectURL string
	// PostLogoutRedirectURL is where the OP sends the browser after logout;
	// absolute and registered at the OP. Optional.
	PostLogoutRedirectURL string
	// Scopes requested at login. Empty: DefaultScopes. "openid" is added
	// when missing.
	Scopes []string
	// AuthMethod is the client authentication at the token and revocation
	// endpoints: AuthClientSecretBasic, AuthClientSecretPost or AuthNone. It
	// must be the method the client is registered with: some OPs (Ory Hydra)
	// refuse any other with invalid_client, the answer to a wrong secret.
	// Empty: AuthNone without a secret; otherwise client_secret_basic when
	// the OP lists it or lists nothing (RFC 6749 §2.3.1: every OP must
	// support it, and it is the RFC 7591 registration default),
	// client_secret_post when only that is listed. When the OP lists both,
	// a check before the first token request keeps the one the OP accepts
	// (see Client.CheckClientAuth).
	AuthMethod string
	// OnClientAuth, when set, is told the outcome of every client
	// authentication check (Client.CheckClientAuth, or the automatic one):
	// the method in use and why, and nil, or the *ClientAuthError the OP's
	// refusal produced. Log it as an audit event; it must not block.
	OnClientAuth func(ClientAuth, error)
	// Observer gets the client's events: an event.ClientAuth with every
	// OnClientAuth outcome, and the JWKS fetches of the key set the Client
	// creates (see KeySetOptions.Observer). Nil: none.
	Observer event.Observer
	// SigningAlgs is the allow-list of JWS algorithms for every token.
	// Empty: the asymmetric algorithms the OP advertises for ID tokens, or
	// RS256 when it advertises none. "none" and HMAC are never accepted.
	SigningAlgs []string
	// TrustedAudiences are audiences besides ClientID that may appear in an
	// ID or logout token's aud. Any other extra audience is refused.
	TrustedAudiences []string
	// ClockSkew tolerated on exp, nbf and iat. Zero: DefaultClockSkew.
	ClockSkew time.Duration
	// MaxLogoutTokenAge bounds a logout token's age by its iat. Zero:
	// DefaultMaxLogoutTokenAge.
	MaxLogoutTokenAge time.Duration
	// HTTPClient makes every call to the OP. Nil: a client with
	// DefaultTimeout. Responses are capped at MaxResponseBytes either way.
	HTTPClient *http.Client
	// KeySet shares one issuer's JWKS cache between several Clients (apps
	// of the same OP in one process). Nil: the Client makes its own.
	KeySet *KeySet
	// JWKSCooldown: see DefaultJWKSCooldown.
	JWKSCooldown time.Duration
	// InsecureAllowHTTPIssuer allows a plain-http issuer that is not a
	// loopback address. Never use it in production: tokens and codes would
	// cross the network in clear text.
	InsecureAllowHTTPIssuer bool
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// check validates what can be validated before discovery.
func (c *Config) check() error {
	if c.Issuer == "" {
		return configError("Issuer is empty: set it to the OP's issuer URL (for Scalekit, the environment URL)")
	}
	iu, err := url.Parse(c.Issuer)
	if err != nil || iu.Host == "" || (iu.Scheme != "https" && iu.Scheme != "http") {
		return configError("Issuer %q is not an absolute http(s) URL", c.Issuer)
	}
	if iu.RawQuery != "" || iu.Fragment != "" {
		return configError("Issuer %q must not have a query or fragment (OpenID Connect Discovery §3)", c.Issuer)
	}
	if iu.Scheme == "http" && !loopback.Host(iu.Host) && !c.InsecureAllowHTTPIssuer {
		return configError("Issuer %q uses plain http outside localhost: use https (or InsecureAllowHTTPIssuer for a test network)", c.Issuer)
	}
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
	switch c.AuthMethod {
	case "":
	case AuthNone:
		if c.ClientSecret != "" {
			return configError("AuthMethod is %q but ClientSecret is set: a public client has no secret", AuthNone)
		}
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.ClientSecret == "" {
			return configError("AuthMethod is %q but ClientSecret is empty", c.AuthMethod)
		}
	default:
		return configError("AuthMethod %q is not supported: use %q, %q or %q", c.AuthMethod, AuthClientSecretBasic, AuthClientSecretPost, AuthNone)
	}
	for _, a := range c.SigningAlgs {
		if !jws.Supported(a) {
			return configError("SigningAlgs has %q: only asymmetric algorithms %v are accepted", a, jws.Algorithms())
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
		return configError("ClockSkew %v is out of range (0 to 10m)", c.ClockSkew)
	}
	return nil
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
