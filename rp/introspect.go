package rp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiapp-go/multiapp/internal/jsonread"
	"github.com/multiapp-go/multiapp/internal/jws"
	"golang.org/x/sync/singleflight"
)

// Introspection defaults.
const (
	// introspectionCacheTTL is the longest an active introspection answer
	// is reused when IntrospectionConfig.CacheTTL is zero.
	introspectionCacheTTL = time.Minute
	// introspectionCacheSize bounds the cached answers when
	// IntrospectionConfig.CacheSize is zero.
	introspectionCacheSize = 4096
)

// introspectionRefusalTTL is how long a refused token (not active, or
// failing a claim rule) is refused without asking the OP again (at most
// IntrospectionConfig.CacheTTL).
const introspectionRefusalTTL = 10 * time.Second

// IntrospectionConfig enables RFC 7662 introspection of opaque access
// tokens at the OP's introspection_endpoint (from discovery).
type IntrospectionConfig struct {
	// ClientID and ClientSecret, or ClientID and Key (private_key_jwt),
	// authenticate this API at the endpoint. Required.
	ClientID     string
	ClientSecret string
	Key          *ClientKey
	// AuthMethod is AuthClientSecretBasic, AuthClientSecretPost or
	// AuthPrivateKeyJWT (the default with a Key). Empty, with a secret:
	// picked from the OP's introspection_endpoint_auth_methods_supported
	// (basic first), basic when it advertises none; when it lists both, a
	// check before the first introspection (a made-up token) keeps the one
	// the OP accepts, as Config.AuthMethod does for the token endpoint.
	AuthMethod string
	// OnClientAuth: see Config.OnClientAuth.
	OnClientAuth func(ClientAuth, error)
	// CacheSize bounds the cache of active answers, keyed by the SHA-256 of
	// the token (tokens themselves are not kept), and, separately, the
	// cache of refusals (10 seconds, at most CacheTTL). Zero: 4096;
	// negative: no cache.
	CacheSize int
	// CacheTTL is the longest an answer is reused: a token revoked at the
	// OP is still accepted that long. Zero: one minute. An entry never
	// outlives the token's exp; an answer without exp is not cached.
	CacheTTL time.Duration
	// InsecureAllowNoAudience accepts active tokens whose answer has no aud
	// (many OPs omit it for opaque tokens). Any access token of the OP is
	// then accepted by this API, whichever API it was issued for.
	InsecureAllowNoAudience bool
}

// introspector validates opaque access tokens at the OP's
// introspection_endpoint (RFC 7662) with the API's own credentials, and
// applies the API's claim rules to the answers it caches.
type introspector struct {
	p          *Provider
	rules      *accessRules
	auth       *clientAuth
	allowNoAud bool
	ttl        time.Duration
	cache      *tokenCache
	refused    *refusals
	group      singleflight.Group
	calls      atomic.Int64
}

func newIntrospector(cfg IntrospectionConfig, p *Provider, rules *accessRules) (*introspector, error) {
	endpoint := p.meta.IntrospectionEndpoint
	if endpoint == "" {
		return nil, configError("the OP advertises no introspection_endpoint, so opaque access tokens cannot be validated: leave AccessTokenConfig.Introspection nil, or have the OP issue JWT access tokens")
	}
	if cfg.ClientID == "" || (cfg.ClientSecret == "") == (cfg.Key == nil) {
		return nil, configError("IntrospectionConfig needs ClientID and one of ClientSecret or Key: the API's own credentials at the OP")
	}
	var key *signingKey
	switch {
	case cfg.Key != nil && (cfg.AuthMethod == "" || cfg.AuthMethod == AuthPrivateKeyJWT):
		var err error
		if key, err = cfg.Key.prepare(nil, p.meta.TokenEndpointAuthSigningAlgs); err != nil {
			return nil, err
		}
		cfg.AuthMethod = AuthPrivateKeyJWT
	case cfg.Key == nil && (cfg.AuthMethod == "" || cfg.AuthMethod == AuthClientSecretBasic || cfg.AuthMethod == AuthClientSecretPost):
	default:
		return nil, configError("IntrospectionConfig.AuthMethod %q is not supported with these credentials: use %q or %q with ClientSecret, %q with Key", cfg.AuthMethod, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT)
	}
	if err := checkTransport("introspection_endpoint", endpoint, AuthClientSecretBasic); err != nil {
		return nil, err
	}
	in := &introspector{
		p:          p,
		rules:      rules,
		allowNoAud: cfg.InsecureAllowNoAudience,
		ttl:        cfg.CacheTTL,
	}
	in.auth = newClientAuth(p, authSetup{
		id: cfg.ClientID, secret: cfg.ClientSecret, method: cfg.AuthMethod, key: key,
		listed: p.meta.IntrospectionEndpointAuthMethods, endpoint: "introspection", checkURL: endpoint,
		observe: clientAuthHook(cfg.OnClientAuth, p.obs, cfg.ClientID, p.meta.Issuer),
		checkForm: func() url.Values {
			return url.Values{"token": {madeUp("multiapp-client-auth-check-")}, "token_type_hint": {"access_token"}}
		},
	})
	if in.ttl <= 0 {
		in.ttl = introspectionCacheTTL
	}
	size := cfg.CacheSize
	if size == 0 {
		size = introspectionCacheSize
	}
	if size > 0 {
		in.cache = newTokenCache(size)
		in.refused = &refusals{max: size, ttl: min(in.ttl, introspectionRefusalTTL), m: map[string]refusal{}}
	}
	return in, nil
}

// introspect validates an opaque token at the OP, through the caches of
// answers and of refusals. Concurrent requests with the same token share
// one call.
func (in *introspector) introspect(ctx context.Context, raw string) (*Claims, error) {
	sum := sha256.Sum256([]byte(raw))
	key := string(sum[:])
	h := binary.LittleEndian.Uint64(sum[:8])
	if in.cache != nil {
		now := in.p.now()
		if cl, ok := in.cache.Get(h, key, now.Unix()); ok {
			return cl, nil
		}
		if err := in.refused.get(key, now); err != nil {
			return nil, err
		}
	}
	ch := in.group.DoChan(key, func() (any, error) {
		// Shared by every waiter: bounded by the HTTP client's timeout,
		// not by the first caller's request.
		cl, err := in.call(context.WithoutCancel(ctx), raw, h, key)
		var ve *ValidationError
		if in.refused != nil && errors.As(err, &ve) {
			in.refused.put(key, ve, in.p.now())
		}
		return cl, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Claims), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (in *introspector) call(ctx context.Context, raw string, h uint64, key string) (*Claims, error) {
	in.calls.Add(1)
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	resp, body, err := in.auth.send(ctx, in.p.http, in.p.meta.IntrospectionEndpoint, nil, form)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError("introspection", resp, body)
	}
	cl, _, err := parseClaimsFlags(body)
	if err != nil {
		return nil, temporary(fmt.Errorf("introspection answer is not a JSON object of claims: %w", err))
	}
	if err := in.check(cl); err != nil {
		return nil, err
	}
	if cl.Issuer == "" {
		cl.Issuer = in.p.meta.Issuer
	}
	now := in.p.now()
	if err := in.rules.check(cl, now, false, in.allowNoAud); err != nil {
		return nil, err
	}
	if in.cache != nil && cl.Expiry != 0 {
		in.cache.Put(h, key, cl, min(int64(cl.Expiry), now.Add(in.ttl).Unix()), now.Unix())
	}
	return cl, nil
}

// check applies the introspection-specific rules: active, an access
// token, not sender-constrained, from this issuer.
func (in *introspector) check(cl *Claims) error {
	var active bool
	var tokenType, tokenUse, typ string
	var r jsonread.Reader
	r.Reset(string(cl.Raw))
	r.BeginObject()
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		switch key {
		case "active":
			if r.Peek() == jsonread.Bool {
				active = r.ReadBool()
			} else { // "true" as a string is not true
				active = false
				r.Skip()
			}
		case "token_type":
			r.StringField(&tokenType)
		case "token_use": // Ory Hydra
			r.StringField(&tokenUse)
		case "typ": // Keycloak
			r.StringField(&typ)
		default:
			r.Skip()
		}
	}
	switch {
	case r.Err() != nil:
		return temporary(fmt.Errorf("introspection answer: %w", r.Err()))
	case !active:
		return invalid(whatAccessToken, CodeInactive, "the OP says the token is not active (expired, revoked or unknown)")
	case tokenUse != "" && tokenUse != "access_token",
		typ != "" && !strings.EqualFold(typ, "bearer"),
		tokenType != "" && !strings.EqualFold(tokenType, "bearer") && !strings.EqualFold(tokenType, "dpop") && tokenType != "access_token":
		return invalid(whatAccessToken, CodeType, "the OP says this is not a bearer access token (token_type %q, token_use %q, typ %q)", tokenType, tokenUse, typ)
	case tokenType == "" && tokenUse == "" && typ == "":
		return invalid(whatAccessToken, CodeType, "the introspection answer does not say the token is an access token (no token_type): a refresh token is not a bearer token")
	case strings.EqualFold(tokenType, "dpop") && cl.Confirmation == nil:
		// RFC 9449 §6.2: a DPoP token, whose key the answer does not give.
		cl.Confirmation = &Confirmation{}
	case cl.Issuer != "" && cl.Issuer != in.p.meta.Issuer:
		return invalid(whatAccessToken, CodeIssuer, "the introspection answer's iss is %q, expected %q", cl.Issuer, in.p.meta.Issuer)
	}
	return nil
}

// refusals remembers briefly the tokens introspection refused, keyed like
// the answer cache (tokens themselves are not kept). Bounded: when full,
// expired entries go first, then arbitrary ones.
type refusals struct {
	mu  sync.Mutex
	m   map[string]refusal
	max int
	ttl time.Duration
}

type refusal struct {
	err   *ValidationError
	until time.Time
}

func (r *refusals) get(key string, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[key]; ok && now.Before(e.until) {
		return e.err
	}
	return nil
}

func (r *refusals) put(key string, err *ValidationError, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= r.max {
		for k, e := range r.m {
			if !now.Before(e.until) {
				delete(r.m, k)
			}
		}
		for k := range r.m {
			if len(r.m) < r.max {
				break
			}
			delete(r.m, k)
		}
	}
	r.m[key] = refusal{err: err, until: now.Add(r.ttl)}
}

// opaque validates a token that is not a JWT by introspection. bound: see
// verifyParsed.
func (v *AccessTokenVerifier) opaque(ctx context.Context, raw string, bound bool) (*Claims, error) {
	if v.intro == nil {
		return nil, invalid(whatAccessToken, CodeMalformed, "not a JWT, and introspection of opaque tokens is not configured")
	}
	if raw == "" || len(raw) > jws.MaxTokenSize {
		return nil, invalid(whatAccessToken, CodeMalformed, "empty, or larger than %d bytes", jws.MaxTokenSize)
	}
	cl, err := v.intro.introspect(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := checkBinding(cl, bound); err != nil {
		return nil, err
	}
	if err := v.checkRevoked(ctx, cl); err != nil {
		return nil, err
	}
	return cl, nil
}
