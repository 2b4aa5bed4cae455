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

	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/loopback"
)

// DefaultAccessTokenCacheSize is the number of verified access tokens an
// AccessTokenVerifier remembers when AccessTokenConfig.CacheSize is zero.
// An entry holds the token and its claims, typically 2 to 4 KB.
const DefaultAccessTokenCacheSize = 4096

// AccessTokenConfig configures an AccessTokenVerifier: one API (resource
// server) trusting the access tokens of one issuer. Zero values are safe
// defaults; options that loosen a check say so in their name.
type AccessTokenConfig struct {
	// Issuer is the OP's issuer URL, exactly as in its discovery document
	// and in the tokens' iss (for Scalekit: the environment URL). Required
	// for NewAccessTokenVerifier; Client.AccessTokenVerifier fills it in.
	Issuer string
	// Audiences identify this API: a token's aud (a string or an array)
	// must contain at least one of them. Required.
	Audiences []string
	// StrictRFC9068 requires JWT access tokens as RFC 9068 defines them:
	// header typ "at+jwt" or "application/at+jwt" (case-insensitive), which
	// refuses ID and logout tokens outright, and the claims iss, exp, aud,
	// sub, client_id, iat and jti. Without it, typ may also be absent,
	// "JWT" or "application/jwt", only exp is required besides iss and
	// aud, and such a token is refused when its claims mark it as an ID or
	// logout token (see InsecureAcceptIDTokens).
	StrictRFC9068 bool
	// RequiredClaims names claims that must be present and not empty,
	// e.g. "sub", "sid", "oid", or a custom claim.
	RequiredClaims []string
	// SigningAlgs is the JWS algorithm allow-list. Empty: the asymmetric
	// algorithms the OP advertises for ID tokens, or RS256 when it
	// advertises none. "none" and HMAC are never accepted.
	SigningAlgs []string
	// ClockSkew tolerated on exp, nbf and iat. Zero: DefaultClockSkew.
	ClockSkew time.Duration
	// Revocations, when set, is asked on every request (cached or not)
	// whether the token's OP session (iss, sid) was ended by a back-channel
	// logout; such tokens are refused with CodeRevokedSID before their exp.
	// Tokens without sid cannot be checked: add "sid" to RequiredClaims to
	// refuse them. When the check itself fails (store unreachable) the token
	// is refused with ErrRevocationUnavailable (fail closed).
	Revocations RevocationChecker
	// InsecureAcceptIDTokens accepts, without StrictRFC9068, tokens that
	// carry the marks of an ID token (a nonce, at_hash, c_hash or s_hash
	// claim, or Keycloak's "typ": "ID" claim) or of a logout token (an
	// "events" claim). By default they are refused with CodeType: an ID
	// token proves to a client who signed in; it does not authorize API
	// calls, and it is accepted by mistake as soon as Audiences contain a
	// client id. A token whose header typ is at+jwt is an access token
	// whatever its claims, and Keycloak's access tokens ("typ": "Bearer"
	// claim, with a nonce before Keycloak 25) are recognised: turn this on
	// only for an OP whose access tokens carry a nonce with neither.
	InsecureAcceptIDTokens bool
	// InsecureIgnoreRevocationErrors accepts tokens whose revocation check
	// failed (fail open): a store outage then lets tokens of logged-out
	// sessions through until they expire.
	InsecureIgnoreRevocationErrors bool
	// CacheSize bounds the verified-token cache (entries). Zero:
	// DefaultAccessTokenCacheSize; negative: no cache. An entry never
	// outlives its token's exp, and a revoked sid evicts it.
	CacheSize int
	// Introspection, when set, validates opaque (non-JWT) access tokens at
	// the OP's introspection_endpoint (RFC 7662). Nil: opaque tokens are
	// refused.
	Introspection *IntrospectionConfig
	// KeySet shares one issuer's JWKS cache with other verifiers (an
	// rp.Client of the same OP). Nil: a new one from discovery.
	KeySet *KeySet
	// HTTPClient makes the calls to the OP (discovery, JWKS,
	// introspection). Nil: a client with DefaultTimeout.
	HTTPClient *http.Client
	// JWKSCooldown: see DefaultJWKSCooldown.
	JWKSCooldown time.Duration
	// InsecureAllowHTTPIssuer allows a plain-http issuer that is not a
	// loopback address. Never in production.
	InsecureAllowHTTPIssuer bool
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// AccessTokenVerifier validates the access tokens an API receives: JWTs
// with the issuer's keys (signature, alg allow-list, iss, aud, exp, nbf,
// iat, typ, required claims) and, when configured, opaque tokens by
// introspection. Verified tokens are cached until their exp. It is safe for
// concurrent use.
type AccessTokenVerifier struct {
	issuer      string
	audiences   []string
	algs        []string
	keys        *KeySet
	skew        time.Duration
	now         func() time.Time
	strict      bool
	required    []string // AccessTokenConfig.RequiredClaims
	jwtRequired []string // and, in strict mode, RFC 9068's
	revocations RevocationChecker
	failOpen    bool
	acceptID    bool // AccessTokenConfig.InsecureAcceptIDTokens
	cache       *tokenCache
	intro       *introspector
}

// NewAccessTokenVerifier discovers the OP at cfg.Issuer and returns a
// verifier of its access tokens. ctx bounds the discovery request only.
// Errors wrap ErrConfig (what to fix) or ErrTemporary (OP unreachable).
func NewAccessTokenVerifier(ctx context.Context, cfg AccessTokenConfig) (*AccessTokenVerifier, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := checkIssuerURL(cfg.Issuer, cfg.InsecureAllowHTTPIssuer); err != nil {
		return nil, err
	}
	hc := httpClient(cfg.HTTPClient)
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, configError("the OP's discovery document names issuer %q but AccessTokenConfig.Issuer is %q: they must be identical (check the trailing slash and the environment URL)", mismatch.Discovered, mismatch.Provided)
		}
		var netErr *url.Error
		if errors.As(err, &netErr) {
			return nil, temporary(fmt.Errorf("discovery at %s: %w", cfg.Issuer, err))
		}
		return nil, configError("no usable discovery document at %s/.well-known/openid-configuration (%v): check AccessTokenConfig.Issuer", strings.TrimSuffix(cfg.Issuer, "/"), err)
	}
	var meta Metadata
	if err := p.Claims(&meta); err != nil {
		return nil, temporary(fmt.Errorf("discovery document: %w", err))
	}
	if meta.JWKSURI == "" {
		return nil, configError("the OP's discovery document has no jwks_uri")
	}
	keys := cfg.KeySet
	if keys == nil {
		keys = NewKeySet(meta.JWKSURI, KeySetOptions{HTTPClient: cfg.HTTPClient, Cooldown: cfg.JWKSCooldown, Now: cfg.Now})
	} else if keys.URL() != meta.JWKSURI {
		return nil, configError("AccessTokenConfig.KeySet fetches %q but this OP's jwks_uri is %q: share a KeySet only between verifiers of the same issuer", keys.URL(), meta.JWKSURI)
	}
	algs := cfg.SigningAlgs
	if len(algs) == 0 {
		algs = advertisedAlgs(meta.IDTokenSigningAlgs)
	}
	return newAccessTokenVerifier(cfg, meta.Issuer, keys, algs, hc, p)
}

// AccessTokenVerifier returns a verifier of this OP's access tokens that
// shares the Client's key set (so its JWKS cooldown), HTTP client, clock
// and algorithm allow-list (unless cfg sets its own HTTPClient, Now or
// SigningAlgs). cfg.Issuer may be empty; cfg.KeySet must be nil or this
// Client's. No request is made.
func (c *Client) AccessTokenVerifier(cfg AccessTokenConfig) (*AccessTokenVerifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = c.meta.Issuer
	}
	if cfg.Issuer != c.meta.Issuer {
		return nil, configError("AccessTokenConfig.Issuer %q is not this Client's issuer %q", cfg.Issuer, c.meta.Issuer)
	}
	if cfg.KeySet != nil && cfg.KeySet != c.keys {
		return nil, configError("AccessTokenConfig.KeySet is not this Client's: leave it nil")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	hc := c.http
	if cfg.HTTPClient != nil {
		hc = httpClient(cfg.HTTPClient)
	}
	if cfg.Now == nil {
		cfg.Now = c.now
	}
	algs := cfg.SigningAlgs
	if len(algs) == 0 {
		algs = c.algs
	}
	return newAccessTokenVerifier(cfg, c.meta.Issuer, c.keys, algs, hc, c.provider)
}

func newAccessTokenVerifier(cfg AccessTokenConfig, issuer string, keys *KeySet, algs []string, hc *http.Client, p *oidc.Provider) (*AccessTokenVerifier, error) {
	v := &AccessTokenVerifier{
		issuer:      issuer,
		audiences:   slices.Clone(cfg.Audiences),
		algs:        slices.Clone(algs),
		keys:        keys,
		skew:        cfg.ClockSkew,
		now:         cfg.Now,
		strict:      cfg.StrictRFC9068,
		required:    slices.Clone(cfg.RequiredClaims),
		revocations: cfg.Revocations,
		failOpen:    cfg.InsecureIgnoreRevocationErrors,
		acceptID:    cfg.InsecureAcceptIDTokens,
	}
	if v.skew == 0 {
		v.skew = DefaultClockSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.jwtRequired = v.required
	if v.strict {
		v.jwtRequired = slices.Clone(v.required)
		for _, name := range []string{"sub", "client_id", "iat", "jti"} {
			if !slices.Contains(v.jwtRequired, name) {
				v.jwtRequired = append(v.jwtRequired, name)
			}
		}
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		v.cache = newTokenCache(DefaultAccessTokenCacheSize)
	case size > 0:
		v.cache = newTokenCache(size)
	}
	if cfg.Introspection != nil {
		in, err := newIntrospector(*cfg.Introspection, hc, p)
		if err != nil {
			return nil, err
		}
		v.intro = in
	}
	return v, nil
}

func (cfg *AccessTokenConfig) check() error {
	if cfg.Issuer == "" {
		return configError("AccessTokenConfig.Issuer is empty: set it to the OP's issuer URL (for Scalekit, the environment URL)")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return configError("AccessTokenConfig.Audiences is empty or has an empty entry: set it to this API's identifier at the OP (the access tokens' aud)")
	}
	for _, a := range cfg.SigningAlgs {
		if !jws.Supported(a) {
			return configError("AccessTokenConfig.SigningAlgs has %q: only asymmetric algorithms %v are accepted", a, jws.Algorithms())
		}
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > 10*time.Minute {
		return configError("AccessTokenConfig.ClockSkew %v is out of range (0 to 10m)", cfg.ClockSkew)
	}
	if slices.Contains(cfg.RequiredClaims, "") {
		return configError("AccessTokenConfig.RequiredClaims has an empty claim name")
	}
	return nil
}

// checkIssuerURL applies Config's rules for the issuer URL.
func checkIssuerURL(issuer string, insecureHTTP bool) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return configError("issuer %q is not an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return configError("issuer %q must not have a query or fragment (OpenID Connect Discovery §3)", issuer)
	}
	if u.Scheme == "http" && !loopback.Host(u.Host) && !insecureHTTP {
		return configError("issuer %q uses plain http outside localhost: use https (or InsecureAllowHTTPIssuer for a test network)", issuer)
	}
	return nil
}

func advertisedAlgs(advertised []string) []string {
	var algs []string
	for _, a := range advertised {
		if jws.Supported(a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	return algs
}

// Issuer returns the issuer whose tokens this verifier accepts.
func (v *AccessTokenVerifier) Issuer() string { return v.issuer }

// Verify validates an access token (the value after "Bearer ") and returns
// its claims. Every failure is a *ValidationError (errors.Is(err,
// ErrInvalidToken)) with a stable Code, except: ErrRevocationUnavailable
// when the revocation check failed, ErrTemporary when the OP was needed
// (new signing key, introspection) and could not answer, and *OPError when
// the OP refused this API's introspection credentials.
//
// The returned Claims may be shared with other calls for the same token
// (the cache): treat them as read-only.
func (v *AccessTokenVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	var h uint64
	if v.cache != nil {
		h = tokenHash(raw)
		if cl := v.cache.get(h, raw, v.now().Unix()); cl != nil {
			return v.hit(ctx, h, raw, cl)
		}
	}
	if !looksLikeJWT(raw) {
		return v.opaque(ctx, raw)
	}
	var tok jws.Token
	cl, flags, err := parseAccessToken(raw, &tok, &v.keys.headers)
	if err != nil {
		return nil, err
	}
	return v.verifyParsed(ctx, h, raw, &tok, cl, flags)
}

// hit finishes a cache hit: only the revocation check is left.
func (v *AccessTokenVerifier) hit(ctx context.Context, h uint64, raw string, cl *Claims) (*Claims, error) {
	if v.revocations == nil {
		return cl, nil
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		if errors.Is(err, ErrInvalidToken) {
			v.cache.remove(h, raw)
		}
		return nil, err
	}
	return cl, nil
}

func looksLikeJWT(raw string) bool {
	i := strings.IndexByte(raw, '.')
	return i >= 0 && strings.IndexByte(raw[i+1:], '.') >= 0
}

// parseAccessToken parses a JWT access token into *tok and its claims,
// unverified, looking its header up in headers.
func parseAccessToken(raw string, tok *jws.Token, headers *jws.HeaderCache) (*Claims, claimFlags, error) {
	if err := parseJWSTo(whatAccessToken, raw, tok, headers); err != nil {
		return nil, 0, err
	}
	payload, err := tok.Payload()
	if err != nil {
		return nil, 0, &ValidationError{What: whatAccessToken, Code: CodeMalformed, Err: err}
	}
	cl, flags, err := parseClaimsFlags(payload)
	if err != nil {
		return nil, 0, &ValidationError{What: whatAccessToken, Code: CodeMalformed, Detail: "claims are not a valid JSON object", Err: err}
	}
	return cl, flags, nil
}

// verifyParsed validates a parsed JWT access token, checks revocation and
// caches it.
func (v *AccessTokenVerifier) verifyParsed(ctx context.Context, h uint64, raw string, tok *jws.Token, cl *Claims, flags claimFlags) (*Claims, error) {
	if err := v.keys.verifyToken(ctx, whatAccessToken, tok, v.algs); err != nil {
		return nil, err
	}
	declared, err := v.checkType(tok.Header.Typ)
	if err != nil {
		return nil, err
	}
	if !declared && !v.acceptID && flags.notAccessToken() {
		return nil, invalid(whatAccessToken, CodeType, "the token carries the claims of an ID token (nonce, at_hash, c_hash, s_hash, or typ ID) or of a logout token (events): an ID token tells a client who signed in, it does not authorize API calls; send the access token instead (AccessTokenConfig.InsecureAcceptIDTokens accepts such tokens, for an OP that puts a nonce in its access tokens)")
	}
	if flags&flagCnf != 0 {
		return nil, invalid(whatAccessToken, CodeType, "the token is sender-constrained (cnf): it needs a DPoP or mTLS proof, which a bearer API does not check")
	}
	if cl.Issuer != v.issuer {
		return nil, invalid(whatAccessToken, CodeIssuer, "iss is %q, expected %q", cl.Issuer, v.issuer)
	}
	now := v.now()
	if err := v.checkClaims(cl, now, true, false); err != nil {
		return nil, err
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(h, raw, cl, int64(cl.Expiry), now.Unix())
	}
	return cl, nil
}

// checkType applies the typ header rules and reports whether typ declares
// an access token (RFC 9068's at+jwt).
func (v *AccessTokenVerifier) checkType(typ string) (declared bool, err error) {
	switch {
	case strings.EqualFold(typ, "at+jwt"), strings.EqualFold(typ, "application/at+jwt"):
		return true, nil
	case v.strict:
		return false, invalid(whatAccessToken, CodeType, "typ %q is not at+jwt (RFC 9068): an ID, logout or other token is not an access token", typ)
	case typ == "", strings.EqualFold(typ, "jwt"), strings.EqualFold(typ, "application/jwt"):
		return false, nil
	}
	return false, invalid(whatAccessToken, CodeType, "typ %q is not an access token type", typ)
}
