// Package rp is the OpenID Connect relying party of multiapp: everything
// that speaks to the OP. It holds no cookies and no sessions: see packages
// middleware and tokenstore for those.
//
// Provider is the root: Discover fetches the OP's discovery document once
// and holds the issuer, the metadata, the key set (one JWKS cache), the
// algorithm allow-list, the clock and the hardened HTTP client. Everything
// else is built from it and shares all of it:
//
//   - Provider.Client: one app (one client_id). It builds authorization
//     URLs with state, nonce and PKCE, validates authorization responses,
//     exchanges codes, validates ID tokens, refreshes, revokes, calls
//     userinfo, builds end-session URLs, and validates the OP's logout
//     tokens (it is backchannel.Handler's Verifier). It authenticates to
//     the OP as Config says (see ClientAuth).
//   - Provider.AccessTokenVerifier: one API (resource server). It validates
//     JWT access tokens, and opaque ones by introspection; several issuers
//     combine in a MultiIssuerVerifier.
//
// Several apps and APIs of one OP in one process use one Provider:
//
//	provider, err := rp.Discover(ctx, "https://acme.scalekit.com", nil)
//	web, err := provider.Client(rp.Config{ClientID: "web", ClientSecret: secret, RedirectURL: ...})
//	spa, err := provider.Client(rp.Config{ClientID: "spa", RedirectURL: ...})
//	api, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}})
//
// Every error belongs to one Class (see ClassOf); refusals are
// *ValidationError with a stable Code.
package rp

import (
	"context"
	"net/url"
	"slices"

	"golang.org/x/oauth2"
)

// Client is one app (one OAuth client, one client_id) at one OP, built
// with Provider.Client. It is safe for concurrent use.
type Client struct {
	p     *Provider
	cfg   Config
	oauth oauth2.Config
	auth  *clientAuth
	// par: authorization requests are pushed (RFC 9126).
	par bool
	// algs narrows the Provider's algorithm allow-list for this client's
	// tokens (a profile's); nil: the Provider's.
	algs []string
	// requireIss: the authorization response must carry iss (RFC 9207),
	// whatever the OP advertises.
	requireIss bool
}

// Client returns the Client of the app cfg describes at this OP. It checks
// cfg against the OP's metadata and refuses, with an error wrapping
// ErrConfig that says what to fix, any configuration that cannot work. No
// request is made.
func (p *Provider) Client(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	m := &p.meta
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" {
		return nil, configError("the OP's discovery document lacks authorization_endpoint or token_endpoint")
	}
	if len(m.CodeChallengeMethods) > 0 && !slices.Contains(m.CodeChallengeMethods, "S256") {
		return nil, configError("the OP advertises PKCE methods %v without S256; multiapp never sends plain: enable S256 at the OP", m.CodeChallengeMethods)
	}
	c := &Client{p: p, cfg: cfg}
	var err error
	if c.algs, err = cfg.profileAlgs(p.algs); err != nil {
		return nil, err
	}
	var keyAlgs []string
	if cfg.Profile == FAPI2 {
		keyAlgs = fapiAlgs
		cfg.PAR, c.requireIss = true, true
	}
	var key *signingKey
	if cfg.Key != nil {
		if key, err = cfg.Key.prepare(keyAlgs, m.TokenEndpointAuthSigningAlgs); err != nil {
			return nil, err
		}
		cfg.AuthMethod = AuthPrivateKeyJWT
	}
	c.cfg = cfg
	c.auth = newClientAuth(p, authSetup{
		id: cfg.ClientID, secret: cfg.ClientSecret, method: cfg.AuthMethod, key: key,
		listed: m.TokenEndpointAuthMethods, endpoint: "token", checkURL: m.TokenEndpoint,
		checkForm: c.madeUpExchange, observe: clientAuthHook(cfg.OnClientAuth, p.obs, cfg.ClientID, m.Issuer),
	})
	if err := c.useDPoP(); err != nil {
		return nil, err
	}
	method := c.auth.current().Method
	if len(m.TokenEndpointAuthMethods) > 0 && !slices.Contains(m.TokenEndpointAuthMethods, method) {
		return nil, configError("the OP does not accept token endpoint auth method %q (it supports %v)", method, m.TokenEndpointAuthMethods)
	}
	if err := checkTransport("token_endpoint", m.TokenEndpoint, method); err != nil {
		return nil, err
	}
	if c.par = cfg.PAR || m.RequirePushedAuthorizationRequests; c.par {
		if m.PushedAuthorizationRequestEndpoint == "" {
			return nil, configError("Config.PAR is set (or the FAPI 2.0 profile, which requires it) but the OP advertises no pushed_authorization_request_endpoint: enable pushed authorization requests (RFC 9126) at the OP")
		}
		if err := checkTransport("pushed_authorization_request_endpoint", m.PushedAuthorizationRequestEndpoint, method); err != nil {
			return nil, err
		}
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	// x/oauth2 builds the authorization URL only: token requests carry the
	// client authentication of c.auth (see redeem).
	c.oauth = oauth2.Config{
		ClientID:    cfg.ClientID,
		RedirectURL: cfg.RedirectURL,
		Scopes:      slices.Clone(scopes),
		Endpoint:    oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint, TokenURL: m.TokenEndpoint},
	}
	return c, nil
}

// Provider returns the OP this Client belongs to.
func (c *Client) Provider() *Provider { return c.p }

// Issuer returns the OP's issuer URL.
func (c *Client) Issuer() string { return c.p.meta.Issuer }

// ClientID returns this app's client id.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// RedirectURL returns the configured callback URL.
func (c *Client) RedirectURL() string { return c.cfg.RedirectURL }

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
	return c.auth.check(ctx, c.p.http, false)
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
