// Package rp is the OpenID Connect relying party of multiapp: everything
// that speaks to the OP. It discovers the OP, builds authorization URLs with
// state, nonce and PKCE, validates authorization responses, exchanges codes,
// validates ID, logout and access tokens, refreshes, and builds end-session
// URLs. It holds no cookies and no sessions: see packages middleware and
// tokenstore for those.
//
// One Client is one app (one client_id) at one OP. Several apps of one
// process that trust the same OP can share one JWKS cache through
// Config.KeySet.
package rp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Metadata is the part of the OP's discovery document this package uses.
type Metadata struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint"`
	TokenEndpoint            string   `json:"token_endpoint"`
	UserinfoEndpoint         string   `json:"userinfo_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	EndSessionEndpoint       string   `json:"end_session_endpoint"`
	RevocationEndpoint       string   `json:"revocation_endpoint"`
	IntrospectionEndpoint    string   `json:"introspection_endpoint"`
	ScopesSupported          []string `json:"scopes_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	GrantTypesSupported      []string `json:"grant_types_supported"`
	// AuthorizationResponseIssParameterSupported (RFC 9207): when true, every
	// authorization response must carry iss.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogoutSupported                 bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported                bool `json:"frontchannel_logout_supported"`
}

// Client is one app registered at one OP. It is safe for concurrent use.
type Client struct {
	cfg        Config
	meta       Metadata
	provider   *oidc.Provider
	http       *http.Client
	keys       *KeySet
	oauth      oauth2.Config
	authMethod string
	algs       []string
	skew       time.Duration
	now        func() time.Time
}

// New discovers the OP at cfg.Issuer and returns a Client for cfg.ClientID.
// It refuses a discovery document whose issuer differs from cfg.Issuer, and
// any configuration that cannot work, with an error (wrapping ErrConfig)
// that says what to fix. ctx bounds the discovery request only.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, http: httpClient(cfg.HTTPClient), skew: cfg.ClockSkew, now: cfg.Now}
	if c.skew == 0 {
		c.skew = DefaultClockSkew
	}
	if c.now == nil {
		c.now = time.Now
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.http), cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, configError("the OP's discovery document names issuer %q but Config.Issuer is %q (%s): the two must be identical, so set Config.Issuer to exactly %q (tokens carry that string in iss, and every app sharing the sign-in must use it)", mismatch.Discovered, mismatch.Provided, ExplainURLMismatch(mismatch.Provided, mismatch.Discovered), mismatch.Discovered)
		}
		var netErr *url.Error
		if errors.As(err, &netErr) {
			return nil, temporary(fmt.Errorf("discovery at %s: %w", cfg.Issuer, err))
		}
		return nil, configError("no usable discovery document at %s/.well-known/openid-configuration (%v): check Config.Issuer", strings.TrimSuffix(cfg.Issuer, "/"), err)
	}
	if err := p.Claims(&c.meta); err != nil {
		return nil, temporary(fmt.Errorf("discovery document: %w", err))
	}
	c.provider = p
	if err := c.settle(); err != nil {
		return nil, err
	}
	c.keys = cfg.KeySet
	if c.keys == nil {
		c.keys = NewKeySet(c.meta.JWKSURI, KeySetOptions{HTTPClient: cfg.HTTPClient, Cooldown: cfg.JWKSCooldown, Now: cfg.Now})
	} else if c.keys.URL() != c.meta.JWKSURI {
		return nil, configError("Config.KeySet fetches %q but this OP's jwks_uri is %q: share a KeySet only between apps of the same issuer", c.keys.URL(), c.meta.JWKSURI)
	}
	return c, nil
}

// settle checks the configuration against the OP's metadata and fills in
// the choices left to discovery.
func (c *Client) settle() error {
	m := &c.meta
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" || m.JWKSURI == "" {
		return configError("the OP's discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
	}
	if len(m.CodeChallengeMethods) > 0 && !slices.Contains(m.CodeChallengeMethods, "S256") {
		return configError("the OP advertises PKCE methods %v without S256; multiapp never sends plain: enable S256 at the OP", m.CodeChallengeMethods)
	}
	c.authMethod = c.cfg.AuthMethod
	if c.authMethod == "" {
		c.authMethod = pickAuthMethod(c.cfg.ClientSecret, m.TokenEndpointAuthMethods)
	}
	if len(m.TokenEndpointAuthMethods) > 0 && !slices.Contains(m.TokenEndpointAuthMethods, c.authMethod) {
		return configError("the OP does not accept token endpoint auth method %q (it supports %v)", c.authMethod, m.TokenEndpointAuthMethods)
	}
	c.algs = c.cfg.SigningAlgs
	if len(c.algs) == 0 {
		for _, a := range m.IDTokenSigningAlgs {
			if jws.Supported(a) {
				c.algs = append(c.algs, a)
			}
		}
		if len(c.algs) == 0 {
			c.algs = []string{"RS256"}
		}
	}
	scopes := c.cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	style := oauth2.AuthStyleInParams
	if c.authMethod == AuthClientSecretBasic {
		style = oauth2.AuthStyleInHeader
	}
	c.oauth = oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  c.cfg.RedirectURL,
		Scopes:       slices.Clone(scopes),
		Endpoint: oauth2.Endpoint{
			AuthURL:   m.AuthorizationEndpoint,
			TokenURL:  m.TokenEndpoint,
			AuthStyle: style,
		},
	}
	return nil
}

func pickAuthMethod(secret string, supported []string) string {
	if secret == "" {
		return AuthNone
	}
	if len(supported) == 0 {
		return AuthClientSecretBasic // the RFC 6749 §2.3.1 default every OP must support
	}
	for _, m := range []string{AuthClientSecretBasic, AuthClientSecretPost} {
		if slices.Contains(supported, m) {
			return m
		}
	}
	return AuthClientSecretBasic
}

// Issuer returns the OP's issuer URL.
func (c *Client) Issuer() string { return c.meta.Issuer }

// ClientID returns this app's client id.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// WithRedirectURL returns a copy of c that sends and redeems codes with
// redirectURL, sharing c's discovery metadata, key set and HTTP client. It
// is for native apps (RFC 8252 §7.3), whose loopback redirect port is
// chosen anew for every login.
func (c *Client) WithRedirectURL(redirectURL string) (*Client, error) {
	if err := checkAbsolute("RedirectURL", redirectURL); err != nil {
		return nil, err
	}
	cp := *c
	cp.cfg.RedirectURL = redirectURL
	cp.oauth.RedirectURL = redirectURL
	cp.oauth.Scopes = slices.Clone(c.oauth.Scopes)
	return &cp, nil
}

// RedirectURL returns the configured callback URL.
func (c *Client) RedirectURL() string { return c.cfg.RedirectURL }

// Public reports whether this is a public client (no secret).
func (c *Client) Public() bool { return c.authMethod == AuthNone }

// AuthMethod returns the token endpoint authentication method in use.
func (c *Client) AuthMethod() string { return c.authMethod }

// Metadata returns the OP's discovery metadata.
func (c *Client) Metadata() Metadata { return c.meta }

// KeySet returns the OP's key set, to share with other verifiers.
func (c *Client) KeySet() *KeySet { return c.keys }

// SigningAlgs returns the JWS algorithm allow-list in use.
func (c *Client) SigningAlgs() []string { return slices.Clone(c.algs) }

// ctx attaches this client's HTTP client for x/oauth2 and go-oidc.
func (c *Client) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.http)
}
