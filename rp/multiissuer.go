package rp

import (
	"context"

	"github.com/multiapp-go/multiapp/internal/jws"
)

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
		if _, dup := m.byIssuer[v.p.meta.Issuer]; dup {
			return nil, configError("NewMultiIssuerVerifier: issuer %q appears twice", v.p.meta.Issuer)
		}
		m.byIssuer[v.p.meta.Issuer] = v
		if v.cache != nil {
			m.cached = append(m.cached, v)
		}
		if v.intro != nil {
			if m.opaque != nil {
				return nil, configError("NewMultiIssuerVerifier: %q and %q both introspect opaque tokens; enable introspection on one issuer only", m.opaque.p.meta.Issuer, v.p.meta.Issuer)
			}
			m.opaque = v
		}
	}
	return m, nil
}

// Verify validates an access token of any of the issuers; see
// AccessTokenVerifier.Verify. A JWT whose iss is not one of them fails
// with CodeIssuer.
func (m *MultiIssuerVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	return m.verify(ctx, raw, raw, false)
}

// verify validates raw, cached under key; bound: see
// AccessTokenVerifier.verifyParsed.
func (m *MultiIssuerVerifier) verify(ctx context.Context, raw, key string, bound bool) (*Claims, error) {
	h := tokenHash(key)
	for _, v := range m.cached {
		if cl, ok := v.cache.Get(h, key, v.p.now().Unix()); ok {
			return v.hit(ctx, h, key, cl)
		}
	}
	if !looksLikeJWT(raw) {
		if m.opaque == nil {
			return nil, invalid(whatAccessToken, CodeMalformed, "not a JWT, and introspection of opaque tokens is not configured")
		}
		return m.opaque.opaque(ctx, raw, bound)
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
	return v.verifyParsed(ctx, h, key, &tok, cl, flags, bound)
}
