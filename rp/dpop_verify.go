package rp

import "context"

// VerifyBound validates an access token presented with the DPoP scheme
// and a proof (RFC 9449 §7.1): every check of Verify, except that a token
// bound to a DPoP key is accepted. Claims.Confirmation.JKT then names the
// key the proof must be signed with: checking the proof itself is the
// caller's job (package bearer does both). A token bound by another method
// (a cnf without jkt, e.g. mTLS) is refused with CodeType. A token that is
// not bound (no cnf) is accepted as Verify would accept it: RFC 9449 does
// not forbid sending a bearer token with a proof.
//
// Bound tokens are cached apart from the tokens Verify accepted, so that a
// bound token never reaches Verify's cache: presented as a bearer token it
// is refused however often it was accepted with a proof (RFC 9449 §7.2).
func (v *AccessTokenVerifier) VerifyBound(ctx context.Context, raw string) (*Claims, error) {
	key := boundKey(raw)
	var h uint64
	if v.cache != nil {
		h = tokenHash(key)
		if cl, ok := v.cache.Get(h, key, v.p.now().Unix()); ok {
			return v.hit(ctx, h, key, cl)
		}
	}
	return v.verifyUncached(ctx, h, raw, key, true)
}

// VerifyBound validates a token of any of the issuers presented with a
// DPoP proof; see AccessTokenVerifier.VerifyBound.
func (m *MultiIssuerVerifier) VerifyBound(ctx context.Context, raw string) (*Claims, error) {
	return m.verify(ctx, raw, boundKey(raw), true)
}

// boundKey is the cache key of a token verified by VerifyBound: never
// equal to a token Verify looks up (a token has no NUL byte).
func boundKey(raw string) string { return "\x00dpop\x00" + raw }

// checkBinding applies the cnf rule: a bearer token (bound false) must not
// be sender-constrained (RFC 9449 §7.2); a token presented with a proof
// may be bound, by a DPoP key only.
func checkBinding(cl *Claims, bound bool) error {
	switch {
	case cl.Confirmation == nil:
		return nil
	case !bound:
		return invalid(whatAccessToken, CodeType, hintSenderConstrained)
	case cl.Confirmation.JKT == "":
		return invalid(whatAccessToken, CodeType, "the token is sender-constrained by a method other than DPoP (its cnf has no jkt), which this API does not check")
	}
	return nil
}
