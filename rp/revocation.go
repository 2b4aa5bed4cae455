package rp

import (
	"context"

	"github.com/multiapp-go/multiapp/internal/errclass"
)

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

// checkRevoked consults the revocation checker for the token's OP session.
func (v *AccessTokenVerifier) checkRevoked(ctx context.Context, cl *Claims) error {
	if v.revocations == nil || cl.SessionID == "" {
		return nil
	}
	revoked, err := v.revocations.SIDRevoked(ctx, v.p.meta.Issuer, cl.SessionID)
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
