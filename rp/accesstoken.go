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

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/loopback"
)

// DefaultAccessTokenCacheSize is the number of verified access tokens an
// AccessTokenVerifier remembers when AccessTokenConfig.CacheSize is zero.
// An entry holds the token and its claims, typically 2 to 4 KB.
const DefaultAccessTokenCacheSize = 4096

// ErrRevocationUnavailable: the revocation check could not be made (the
// store behind AccessTokenConfig.Revocations failed). The token may be
// fine; answer 503 and let the client retry. See
// AccessTokenConfig.InsecureIgnoreRevocationErrors. Its class is
// ClassTemporary.
var ErrRevocationUnavailable error = errclass.New("rp: revocation check unavailable", errclass.Temporary)

// RevocationChecker reports whether an OP session was ended by a
// back-channel logout. tokenstore.Store satisfies it.
type RevocationChecker interface {
	SIDRevoked(ctx context.Context, issuer, sid string) (bool, error)
}

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
	// Observer gets an event.AccessToken for every Verify: its duration,
	// whether the cache answered, and the reason of a refusal; and the
	// JWKS fetches of the key set the verifier creates (see
	// KeySetOptions.Observer). Nil: none.
	Observer event.Observer
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
	obs         event.Observer
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
		keys = NewKeySet(meta.JWKSURI, KeySetOptions{HTTPClient: cfg.HTTPClient, Cooldown: cfg.JWKSCooldown, Now: cfg.Now, Observer: cfg.Observer})
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
		obs:         cfg.Observer,
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
	if v.obs != nil && event.Enabled(ctx, v.obs, event.AccessToken) {
		return v.verifyObserved(ctx, raw)
	}
	cl, _, err := v.verify(ctx, raw)
	return cl, err
}

// verify is Verify, and whether the cache answered.
func (v *AccessTokenVerifier) verify(ctx context.Context, raw string) (cl *Claims, hit bool, err error) {
	var h uint64
	if v.cache != nil {
		h = tokenHash(raw)
		if cl := v.cache.get(h, raw, v.now().Unix()); cl != nil {
			cl, err := v.hit(ctx, h, raw, cl)
			return cl, true, err
		}
	}
	if !looksLikeJWT(raw) {
		cl, err := v.opaque(ctx, raw)
		return cl, false, err
	}
	var tok jws.Token
	cl, flags, err := parseAccessToken(raw, &tok, &v.keys.headers)
	if err != nil {
		return nil, false, err
	}
	cl, err = v.verifyParsed(ctx, h, raw, &tok, cl, flags)
	return cl, false, err
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

// checkClaims applies aud, exp, nbf, iat and the required claims to a JWT
// (jwt: exp and the RFC 9068 claims of strict mode are required) or an
// introspection answer (allowNoAud: an answer without aud passes).
func (v *AccessTokenVerifier) checkClaims(cl *Claims, now time.Time, jwt, allowNoAud bool) error {
	if !v.audienceOK(cl.Audience) && !(allowNoAud && len(cl.Audience) == 0) {
		return invalid(whatAccessToken, CodeAudience, "aud %v contains none of this API's audiences %v (is the token meant for another API?)", []string(cl.Audience), v.audiences)
	}
	switch {
	case cl.Expiry == 0 && jwt:
		return invalid(whatAccessToken, CodeExpired, "exp is missing")
	case cl.Expiry != 0 && !now.Before(cl.Expiry.Time().Add(v.skew)):
		return invalid(whatAccessToken, CodeExpired, "expired at %s, now is %s (if tokens look expired as soon as they arrive, check this server's clock)", cl.Expiry.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if cl.NotBefore != 0 && now.Add(v.skew).Before(cl.NotBefore.Time()) {
		return invalid(whatAccessToken, CodeNotYetValid, "nbf %s is in the future (check this server's clock)", cl.NotBefore.Time().UTC().Format(time.RFC3339))
	}
	if cl.IssuedAt != 0 && now.Add(v.skew).Before(cl.IssuedAt.Time()) {
		return invalid(whatAccessToken, CodeIssuedAt, "iat %s is in the future, now is %s (this server's clock is behind the OP's)", cl.IssuedAt.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	required := v.required
	if jwt {
		required = v.jwtRequired
	}
	for _, name := range required {
		if !hasClaim(cl, name) {
			code := CodeMalformed
			switch name {
			case "iat":
				code = CodeIssuedAt
			case "sub":
				code = CodeSubject
			case "jti":
				code = CodeTokenID
			case "sid":
				code = CodeSessionID
			}
			return invalid(whatAccessToken, code, "required claim %q is missing", name)
		}
	}
	return nil
}

func (v *AccessTokenVerifier) audienceOK(aud Audience) bool {
	for _, a := range aud {
		if slices.Contains(v.audiences, a) {
			return true
		}
	}
	return false
}

// hasClaim reports whether the claim is present and not empty.
func hasClaim(cl *Claims, name string) bool {
	switch name {
	case "iss":
		return cl.Issuer != ""
	case "sub":
		return cl.Subject != ""
	case "aud":
		return len(cl.Audience) > 0
	case "exp":
		return cl.Expiry != 0
	case "nbf":
		return cl.NotBefore != 0
	case "iat":
		return cl.IssuedAt != 0
	case "jti":
		return cl.TokenID != ""
	case "sid":
		return cl.SessionID != ""
	case "oid":
		return cl.OrganizationID != ""
	case "client_id":
		return cl.ClientID != ""
	case "azp":
		return cl.AuthorizedParty != ""
	case "email":
		return cl.Email != ""
	case "name":
		return cl.Name != ""
	case "roles":
		return len(cl.Roles) > 0
	case "permissions":
		return len(cl.Permissions) > 0
	case "scope", "scopes":
		return len(cl.Scopes) > 0
	}
	return rawClaimPresent(cl.Raw, name)
}

// rawClaimPresent reports whether the JSON object raw has member name with
// a value that is not null, "", [] or {}.
func rawClaimPresent(raw []byte, name string) bool {
	var r jws.JSONReader
	r.Reset(string(raw))
	r.BeginObject()
	present := false
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		if key != name {
			r.Skip()
			continue
		}
		switch r.Peek() {
		case jws.JSONNull:
			present = false
			r.Skip()
		case jws.JSONString:
			present = r.ReadString() != ""
		case jws.JSONArray:
			r.BeginArray()
			present = r.NextElem(true)
			if present {
				r.Skip()
				for r.NextElem(false) {
					r.Skip()
				}
			}
		case jws.JSONObject:
			r.BeginObject()
			_, present = r.NextKey(true)
			if present {
				r.Skip()
				for {
					if _, ok := r.NextKey(false); !ok {
						break
					}
					r.Skip()
				}
			}
		default:
			present = true
			r.Skip()
		}
	}
	return present && r.Err() == nil
}

// checkRevoked consults the revocation checker for the token's OP session.
func (v *AccessTokenVerifier) checkRevoked(ctx context.Context, cl *Claims) error {
	if v.revocations == nil || cl.SessionID == "" {
		return nil
	}
	revoked, err := v.revocations.SIDRevoked(ctx, v.issuer, cl.SessionID)
	switch {
	case err != nil && v.failOpen:
		return nil
	case err != nil:
		return &revocationError{err: err}
	case revoked:
		return invalid(whatAccessToken, CodeRevokedSID, "the token's OP session was logged out (back-channel logout)")
	}
	return nil
}

type revocationError struct{ err error }

func (e *revocationError) Error() string {
	return "rp: revocation check unavailable: " + e.err.Error()
}
func (e *revocationError) Unwrap() []error { return []error{ErrRevocationUnavailable, e.err} }

// opaque validates a token that is not a JWT by introspection.
func (v *AccessTokenVerifier) opaque(ctx context.Context, raw string) (*Claims, error) {
	if v.intro == nil {
		return nil, invalid(whatAccessToken, CodeMalformed, "not a JWT, and introspection of opaque tokens is not configured")
	}
	if raw == "" || len(raw) > jws.MaxTokenSize {
		return nil, invalid(whatAccessToken, CodeMalformed, "empty, or larger than %d bytes", jws.MaxTokenSize)
	}
	cl, err := v.intro.introspect(ctx, v, raw)
	if err != nil {
		return nil, err
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// MultiIssuerVerifier accepts the access tokens of several issuers, e.g.
// one OP environment per region. A JWT goes to the verifier of its
// (unverified) iss only, so one issuer's keys never verify another's
// tokens; an opaque token goes to the one verifier with introspection.
type MultiIssuerVerifier struct {
	headers  jws.HeaderCache // tokens are parsed before their issuer is known
	byIssuer map[string]*AccessTokenVerifier
	cached   []*AccessTokenVerifier
	opaque   *AccessTokenVerifier
}

// NewMultiIssuerVerifier combines verifiers of distinct issuers. At most one
// of them may introspect opaque tokens (an opaque token does not say where
// it comes from, and it must not be sent to other OPs).
func NewMultiIssuerVerifier(verifiers ...*AccessTokenVerifier) (*MultiIssuerVerifier, error) {
	if len(verifiers) == 0 {
		return nil, configError("NewMultiIssuerVerifier needs at least one verifier")
	}
	m := &MultiIssuerVerifier{byIssuer: make(map[string]*AccessTokenVerifier, len(verifiers))}
	for _, v := range verifiers {
		if v == nil {
			return nil, configError("NewMultiIssuerVerifier: nil verifier")
		}
		if _, dup := m.byIssuer[v.issuer]; dup {
			return nil, configError("NewMultiIssuerVerifier: issuer %q appears twice", v.issuer)
		}
		m.byIssuer[v.issuer] = v
		if v.cache != nil {
			m.cached = append(m.cached, v)
		}
		if v.intro != nil {
			if m.opaque != nil {
				return nil, configError("NewMultiIssuerVerifier: %q and %q both introspect opaque tokens; enable introspection on one issuer only", m.opaque.issuer, v.issuer)
			}
			m.opaque = v
		}
	}
	return m, nil
}

// Issuers returns the trusted issuers.
func (m *MultiIssuerVerifier) Issuers() []string {
	out := make([]string, 0, len(m.byIssuer))
	for iss := range m.byIssuer {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}

// Verify validates an access token of any of the issuers; see
// AccessTokenVerifier.Verify. A JWT whose iss is not one of them fails
// with CodeIssuer.
func (m *MultiIssuerVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	h := tokenHash(raw)
	for _, v := range m.cached {
		if cl := v.cache.get(h, raw, v.now().Unix()); cl != nil {
			return v.hit(ctx, h, raw, cl)
		}
	}
	if !looksLikeJWT(raw) {
		if m.opaque == nil {
			return nil, invalid(whatAccessToken, CodeMalformed, "not a JWT, and introspection of opaque tokens is not configured")
		}
		return m.opaque.opaque(ctx, raw)
	}
	var tok jws.Token
	cl, flags, err := parseAccessToken(raw, &tok, &m.headers)
	if err != nil {
		return nil, err
	}
	v := m.byIssuer[cl.Issuer]
	if v == nil {
		return nil, invalid(whatAccessToken, CodeIssuer, "iss %q is not one of the trusted issuers", cl.Issuer)
	}
	return v.verifyParsed(ctx, h, raw, &tok, cl, flags)
}
