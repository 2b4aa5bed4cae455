package rp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/loopback"
	"github.com/multiapp-go/multiapp/internal/urldiff"
)

// Metadata is the part of the OP's discovery document (OpenID Connect
// Discovery 1.0, RFC 8414) this module reads.
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
	// TokenEndpointAuthSigningAlgs are the algorithms the OP accepts for
	// private_key_jwt assertions.
	TokenEndpointAuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	// PushedAuthorizationRequestEndpoint and
	// RequirePushedAuthorizationRequests: RFC 9126 §5.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`
	// RevocationEndpointAuthMethods and IntrospectionEndpointAuthMethods
	// are the client authentication methods of those endpoints (RFC 8414
	// §2); empty when the OP does not say.
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs               []string `json:"id_token_signing_alg_values_supported"`
	GrantTypesSupported              []string `json:"grant_types_supported"`
	// AuthorizationResponseIssParameterSupported (RFC 9207): when true, every
	// authorization response must carry iss.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogoutSupported                 bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool `json:"backchannel_logout_session_supported"`

	// DPoPSigningAlgs are the DPoP proof algorithms the OP accepts (RFC
	// 9449 §5.1); empty when it does not support DPoP.
	DPoPSigningAlgs []string `json:"dpop_signing_alg_values_supported"`
}

// ProviderOptions tune a Provider. nil, like the zero value, is the safe
// default; an option that loosens a check says so in its name.
type ProviderOptions struct {
	// HTTPClient makes every call to the OP: discovery, JWKS, token,
	// userinfo, revocation, introspection. Nil: a client with
	// a 10 s timeout. Either way, a response body larger than 1 MiB is an
	// error and redirects are not followed (the OP's answers are read,
	// never followed).
	HTTPClient *http.Client
	// SigningAlgs is the allow-list of JWS algorithms for every token of
	// the OP (ID, logout and access tokens). Empty: the asymmetric
	// algorithms the OP advertises for ID tokens, or RS256 when it
	// advertises none. "none" and HMAC are never accepted.
	SigningAlgs []string
	// ClockSkew tolerated on exp, nbf, iat and auth_time. Zero:
	// DefaultClockSkew.
	ClockSkew time.Duration
	// JWKSCooldown is the least time between two JWKS fetches caused by
	// key ids the cached set lacks: a flood of tokens with random kids
	// costs at most one fetch per window. Zero: 30 seconds.
	JWKSCooldown time.Duration
	// InsecureAllowHTTPIssuer allows a plain-http issuer that is not a
	// loopback address. Never use it in production: tokens and codes would
	// cross the network in clear text.
	InsecureAllowHTTPIssuer bool
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
	// Observer gets the events of everything built from the Provider
	// (package event): JWKS fetches (timed) and cooldown hits, the
	// Clients' client-authentication checks (with OnClientAuth), and the
	// AccessTokenVerifiers' checks with their duration, cache hit and
	// reason. Nil: none (rp logs nothing by itself).
	Observer event.Observer
}

// Provider is one OP, as discovered: its metadata, its key set (one JWKS
// cache), the algorithm allow-list, the clock and the hardened HTTP client.
// The apps' Clients and the APIs' AccessTokenVerifiers are built from it,
// and share all of it: several apps of one OP in one process use one
// Provider. It is safe for concurrent use.
type Provider struct {
	meta Metadata
	http *http.Client
	keys *KeySet
	algs []string
	skew time.Duration
	now  func() time.Time
	obs  event.Observer
}

// Discover fetches the OP's discovery document at
// issuer/.well-known/openid-configuration and returns the Provider. The
// document must name exactly issuer (the string tokens carry in iss);
// anything else, and any option that cannot work, is an error wrapping
// ErrConfig that says what to fix. An OP out of reach is ErrTemporary. ctx
// bounds the discovery request only; nothing else is fetched until needed.
func Discover(ctx context.Context, issuer string, opts *ProviderOptions) (*Provider, error) {
	var o ProviderOptions
	if opts != nil {
		o = *opts
	}
	if err := o.check(issuer); err != nil {
		return nil, err
	}
	p := &Provider{http: httpClient(o.HTTPClient), skew: o.ClockSkew, now: o.Now, obs: o.Observer}
	if p.skew == 0 {
		p.skew = DefaultClockSkew
	}
	if p.now == nil {
		p.now = time.Now
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.http), issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, configError(hintIssuerMismatch, mismatch.Discovered, mismatch.Provided, urldiff.Explain(mismatch.Provided, mismatch.Discovered), mismatch.Discovered)
		}
		var netErr *url.Error
		if errors.As(err, &netErr) {
			return nil, temporary(fmt.Errorf("discovery at %s: %w", issuer, err))
		}
		return nil, configError("no usable discovery document at %s/.well-known/openid-configuration (%v): check the issuer URL", strings.TrimSuffix(issuer, "/"), err)
	}
	if err := op.Claims(&p.meta); err != nil {
		return nil, temporary(fmt.Errorf("discovery document: %w", err))
	}
	if p.meta.JWKSURI == "" {
		return nil, configError("the OP's discovery document has no jwks_uri: no token of it can be verified")
	}
	p.algs = o.SigningAlgs
	if len(p.algs) == 0 {
		p.algs = jws.Choose(p.meta.IDTokenSigningAlgs)
	}
	p.keys = newKeySet(p.meta.JWKSURI, p.http, o.JWKSCooldown, p.now)
	p.keys.obs = p.obs
	return p, nil
}

// check validates what can be validated before discovery.
func (o *ProviderOptions) check(issuer string) error {
	if issuer == "" {
		return configError("the issuer is empty: give rp.Discover the OP's issuer URL (for Scalekit, the environment URL)")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return configError("issuer %q is not an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return configError("issuer %q must not have a query or fragment (OpenID Connect Discovery §3)", issuer)
	}
	if u.Scheme == "http" && !loopback.Host(u.Host) && !o.InsecureAllowHTTPIssuer {
		return configError("issuer %q uses plain http outside localhost: use https (or ProviderOptions.InsecureAllowHTTPIssuer for a test network)", issuer)
	}
	for _, a := range o.SigningAlgs {
		if !jws.Supported(a) {
			return configError("ProviderOptions.SigningAlgs has %q: only asymmetric algorithms %v are accepted", a, jws.Algorithms())
		}
	}
	if o.ClockSkew < 0 || o.ClockSkew > 10*time.Minute {
		return configError("ProviderOptions.ClockSkew %v is out of range (0 to 10m)", o.ClockSkew)
	}
	return nil
}

// Metadata returns the OP's discovery metadata.
func (p *Provider) Metadata() Metadata { return p.meta }

// ClockSkew returns the tolerance on exp, nbf, iat and auth_time
// (ProviderOptions.ClockSkew, or DefaultClockSkew): what a check of its
// own on the same claims (a step-up's auth_time) should tolerate too.
func (p *Provider) ClockSkew() time.Duration { return p.skew }

// KeySet returns the OP's key set, shared by every Client and verifier of
// this Provider. It also serves go-oidc's oidc.KeySet.
func (p *Provider) KeySet() *KeySet { return p.keys }

// verifySigned applies the rules every token of this OP shares whatever its
// kind: a signature by a key of the OP's JWKS with an allowed algorithm,
// claims that decode, and iss exactly the issuer.
func (p *Provider) verifySigned(ctx context.Context, what, raw string) (*jws.Token, *Claims, error) {
	tok, err := p.keys.verify(ctx, what, raw, p.algs)
	if err != nil {
		return nil, nil, err
	}
	payload, err := tok.Payload()
	if err != nil {
		return nil, nil, &ValidationError{What: what, Code: CodeMalformed, Err: err}
	}
	claims, err := ParseClaims(payload)
	if err != nil {
		return nil, nil, &ValidationError{What: what, Code: CodeMalformed, Detail: "claims are not a valid JSON object", Err: err}
	}
	if claims.Issuer != p.meta.Issuer {
		return nil, nil, issuerMismatch(what, claims.Issuer, p.meta.Issuer)
	}
	return tok, claims, nil
}

// issuerMismatch explains a token whose iss is not the configured issuer.
func issuerMismatch(what, got, want string) *ValidationError {
	if got == "" {
		return invalid(what, CodeIssuer, "iss is missing, expected %q", want)
	}
	return invalid(what, CodeIssuer, hintTokenIssuer, got, want, urldiff.Explain(want, got))
}

// Time rules for checkTimes.
type timeRule uint8

const (
	requireExp timeRule = 1 << iota
	requireIat
)

// checkTimes applies exp, nbf and iat with the clock skew. A zero
// NumericDate is an absent claim; a claim present as 0 decodes as 1 (1970)
// and is checked as a date: "exp": 0 is expired, never "no expiry". The
// messages say how far off the times are and what that means for this
// server's clock: a token the OP has just issued can only look expired, or
// issued in the future, when the clocks disagree.
func (p *Provider) checkTimes(what string, cl *Claims, now time.Time, rule timeRule) error {
	skew := p.skew
	switch {
	case cl.Expiry == 0 && rule&requireExp != 0:
		return invalid(what, CodeExpired, "exp is missing")
	case cl.Expiry != 0 && !now.Before(cl.Expiry.Time().Add(skew)):
		exp := cl.Expiry.Time()
		ago := now.Sub(exp).Round(time.Second)
		return invalid(what, CodeExpired, "expired at %s, %v ago (now %s, tolerance %v); "+hintClockAhead, stamp(exp), ago, stamp(now), skew, ago)
	}
	if cl.NotBefore != 0 && now.Add(skew).Before(cl.NotBefore.Time()) {
		nbf := cl.NotBefore.Time()
		ahead := nbf.Sub(now).Round(time.Second)
		return invalid(what, CodeNotYetValid, "nbf %s is %v in the future (now %s, tolerance %v): "+hintClockBehind, stamp(nbf), ahead, stamp(now), skew, ahead)
	}
	if cl.IssuedAt == 0 {
		if rule&requireIat != 0 {
			return invalid(what, CodeIssuedAt, "iat is missing")
		}
		return nil
	}
	if iat := cl.IssuedAt.Time(); now.Add(skew).Before(iat) {
		ahead := iat.Sub(now).Round(time.Second)
		return invalid(what, CodeIssuedAt, "iat %s is %v in the future (now %s, tolerance %v): "+hintClockBehind, stamp(iat), ahead, stamp(now), skew, ahead)
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
