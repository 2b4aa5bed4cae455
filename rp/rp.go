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
	cfg      Config
	meta     Metadata
	provider *oidc.Provider
	http     *http.Client
	keys     *KeySet
	oauth    oauth2.Config
	auth     *clientAuth
	algs     []string
	skew     time.Duration
	now      func() time.Time
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
		c.keys = NewKeySet(c.meta.JWKSURI, KeySetOptions{HTTPClient: cfg.HTTPClient, Cooldown: cfg.JWKSCooldown, Now: cfg.Now, Observer: cfg.Observer})
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
	c.auth = newClientAuth(authSetup{
		id: c.cfg.ClientID, secret: c.cfg.ClientSecret, method: c.cfg.AuthMethod,
		listed: m.TokenEndpointAuthMethods, endpoint: "token", checkURL: m.TokenEndpoint,
		checkForm: c.madeUpExchange, observe: clientAuthHook(c.cfg.OnClientAuth, c.cfg.Observer, c.cfg.ClientID, m.Issuer), now: c.now,
	})
	method := c.auth.current().Method
	if len(m.TokenEndpointAuthMethods) > 0 && !slices.Contains(m.TokenEndpointAuthMethods, method) {
		return configError("the OP does not accept token endpoint auth method %q (it supports %v)", method, m.TokenEndpointAuthMethods)
	}
	if err := checkTransport("token_endpoint", m.TokenEndpoint, method); err != nil {
		return err
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
	// x/oauth2 builds the authorization URL only: token requests carry the
	// client authentication of c.auth (see redeem).
	c.oauth = oauth2.Config{
		ClientID:    c.cfg.ClientID,
		RedirectURL: c.cfg.RedirectURL,
		Scopes:      slices.Clone(scopes),
		Endpoint:    oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint, TokenURL: m.TokenEndpoint},
	}
	return nil
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
func (c *Client) Public() bool { return c.cfg.ClientSecret == "" }

// AuthMethod returns the client authentication method in use at the token
// and revocation endpoints. It may change once, from the discovery default
// to the method the OP accepts (see CheckClientAuth).
func (c *Client) AuthMethod() string { return c.auth.current().Method }

// ClientAuth returns the client authentication method in use and how it was
// chosen.
func (c *Client) ClientAuth() ClientAuth { return c.auth.current() }

// CheckClientAuth asks the OP whether it accepts this client's credentials,
// with one token request that carries a made-up authorization code (the OP
// can only refuse it). invalid_grant (or any OAuth error other than
// invalid_client) means the OP authenticated the client: RFC 6749 §5.2
// reserves invalid_client for failed client authentication. When the OP
// answers invalid_client, the other secret method is tried the same way, so
// a method the OP rejects (it enforces the one the client is registered
// with, as Ory Hydra does) is told apart from credentials it rejects.
//
// It returns nil when the OP accepts the credentials, a *ClientAuthError
// (errors.Is ErrConfig) when it refuses them, and ErrTemporary when it did
// not answer properly. When Config.AuthMethod is empty, the method the OP
// accepts is kept for the client's lifetime (ClientAuth says so, Source
// AuthDetected) and Config.OnClientAuth is told.
//
// Apps may call it at start, to warn about a client the OP rejects before a
// user signs in. Otherwise, when the method was not configured and the OP
// lists both secret methods, the same check runs once by itself before the
// first request that needs the method. A check, not a retry, decides
// because the first token request of a web app is nearly always a code
// exchange: a code is single-use (RFC 6749 §4.1.2) and an OP may consume it
// even when the request fails, so it is never sent twice, and retrying
// later requests would leave every login failing until some request without
// a code came along. A made-up code costs one request and risks nothing.
// An OP that judged the code before the client would make the check
// conclude "accepted": the method then stays the default.
func (c *Client) CheckClientAuth(ctx context.Context) error {
	return c.auth.check(ctx, c.http, false)
}

// madeUpExchange is the check's token request: a code no OP issued.
func (c *Client) madeUpExchange() url.Values {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {madeUp("multiapp-client-auth-check-")},
		"code_verifier": {madeUp("")},
	}
	if c.cfg.RedirectURL != "" {
		form.Set("redirect_uri", c.cfg.RedirectURL)
	}
	return form
}

// Metadata returns the OP's discovery metadata.
func (c *Client) Metadata() Metadata { return c.meta }

// KeySet returns the OP's key set, to share with other verifiers.
func (c *Client) KeySet() *KeySet { return c.keys }

// SigningAlgs returns the JWS algorithm allow-list in use.
func (c *Client) SigningAlgs() []string { return slices.Clone(c.algs) }
