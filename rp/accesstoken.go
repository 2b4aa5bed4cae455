package rp

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/jws"
)

// accessTokenCacheSize is the number of verified access tokens an
// AccessTokenVerifier remembers when AccessTokenConfig.CacheSize is zero.
const accessTokenCacheSize = 4096

// AccessTokenConfig configures an AccessTokenVerifier: one API (resource
// server) trusting the access tokens of the OP of a Provider. Zero values
// are safe defaults; options that loosen a check say so in their name. The
// issuer, the algorithm allow-list, the clock skew and the HTTP client are
// the Provider's.
type AccessTokenConfig struct {
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
	// CacheSize bounds the verified-token cache (entries, each the token
	// and its claims, typically 2 to 4 KB). Zero: 4096; negative: no
	// cache. An entry never outlives its token's exp, and a revoked sid
	// evicts it.
	CacheSize int
	// Introspection, when set, validates opaque (non-JWT) access tokens at
	// the OP's introspection_endpoint (RFC 7662). Nil: opaque tokens are
	// refused.
	Introspection *IntrospectionConfig
}

// AccessTokenVerifier validates the access tokens an API receives: JWTs
// with the issuer's keys (signature, alg allow-list, iss, aud, exp, nbf,
// iat, typ, required claims) and, when configured, opaque tokens by
// introspection. Verified tokens are cached until their exp. It is safe for
// concurrent use.
type AccessTokenVerifier struct {
	p           *Provider
	rules       *accessRules
	strict      bool
	revocations RevocationChecker
	failOpen    bool
	acceptID    bool // AccessTokenConfig.InsecureAcceptIDTokens
	cache       *tokenCache
	intro       *introspector
}

// AccessTokenVerifier returns a verifier of this OP's access tokens, for
// the API cfg describes. It shares the Provider's key set (so its JWKS
// cooldown), algorithm allow-list, clock and HTTP client. No request is
// made. Errors wrap ErrConfig and say what to fix.
func (p *Provider) AccessTokenVerifier(cfg AccessTokenConfig) (*AccessTokenVerifier, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	v := &AccessTokenVerifier{
		p:           p,
		rules:       newAccessRules(p, cfg),
		strict:      cfg.StrictRFC9068,
		revocations: cfg.Revocations,
		failOpen:    cfg.InsecureIgnoreRevocationErrors,
		acceptID:    cfg.InsecureAcceptIDTokens,
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		v.cache = newTokenCache(accessTokenCacheSize)
	case size > 0:
		v.cache = newTokenCache(size)
	}
	if cfg.Introspection != nil {
		in, err := newIntrospector(*cfg.Introspection, p, v.rules)
		if err != nil {
			return nil, err
		}
		v.intro = in
	}
	return v, nil
}

func (cfg *AccessTokenConfig) check() error {
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return configError("AccessTokenConfig.Audiences is empty or has an empty entry: set it to this API's identifier at the OP (the access tokens' aud)")
	}
	if slices.Contains(cfg.RequiredClaims, "") {
		return configError("AccessTokenConfig.RequiredClaims has an empty claim name")
	}
	return nil
}

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
	if v.p.obs != nil && event.Enabled(ctx, v.p.obs, event.AccessToken) {
		return v.verifyObserved(ctx, raw)
	}
	h, cl := v.cached(raw)
	if cl != nil {
		return v.hit(ctx, h, raw, cl)
	}
	return v.verifyUncached(ctx, h, raw, raw, false)
}

// cached returns raw's hash (zero without a cache) and its claims when
// the cache has them.
func (v *AccessTokenVerifier) cached(raw string) (uint64, *Claims) {
	if v.cache == nil {
		return 0, nil
	}
	h := tokenHash(raw)
	cl, _ := v.cache.Get(h, raw, v.p.now().Unix())
	return h, cl
}

// verifyUncached verifies raw, which the cache does not have under key
// (h: key's hash); bound: see verifyParsed.
func (v *AccessTokenVerifier) verifyUncached(ctx context.Context, h uint64, raw, key string, bound bool) (*Claims, error) {
	if !looksLikeJWT(raw) {
		return v.opaque(ctx, raw, bound)
	}
	var tok jws.Token
	cl, flags, err := parseAccessToken(raw, &tok, &v.p.keys.headers)
	if err != nil {
		return nil, err
	}
	return v.verifyParsed(ctx, h, key, &tok, cl, flags, bound)
}

// hit finishes a cache hit: only the revocation check is left.
func (v *AccessTokenVerifier) hit(ctx context.Context, h uint64, raw string, cl *Claims) (*Claims, error) {
	if v.revocations == nil {
		return cl, nil
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		if errors.Is(err, ErrInvalidToken) {
			v.cache.Remove(h, raw)
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
// caches it under raw (h: its hash). bound: the token came with a DPoP
// proof (VerifyBound), so a cnf claim is allowed.
func (v *AccessTokenVerifier) verifyParsed(ctx context.Context, h uint64, raw string, tok *jws.Token, cl *Claims, flags claimFlags, bound bool) (*Claims, error) {
	if err := v.p.keys.verifyToken(ctx, whatAccessToken, tok, v.p.algs); err != nil {
		return nil, err
	}
	declared, err := v.checkType(tok.Header.Typ)
	if err != nil {
		return nil, err
	}
	if !declared && !v.acceptID && flags.notAccessToken() {
		return nil, invalid(whatAccessToken, CodeType, hintNotAnAccessToken)
	}
	if err := checkBinding(cl, bound); err != nil {
		return nil, err
	}
	if cl.Issuer != v.p.meta.Issuer {
		return nil, invalid(whatAccessToken, CodeIssuer, "iss is %q, expected %q", cl.Issuer, v.p.meta.Issuer)
	}
	now := v.p.now()
	if err := v.rules.check(cl, now, true, false); err != nil {
		return nil, err
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.Put(h, raw, cl, int64(cl.Expiry), now.Unix())
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
