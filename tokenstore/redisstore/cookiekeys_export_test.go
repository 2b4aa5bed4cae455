package redisstore

import (
	"context"
	"time"
)

// SetCookieKeysTTL shortens the registrations' lifetime for a test.
func SetCookieKeysTTL(d time.Duration) (restore func()) {
	old := cookieKeysTTL
	cookieKeysTTL = d
	return func() { cookieKeysTTL = old }
}

// CheckCookieKeysThenCrash registers keys, then stops renewing the
// registration without removing it, as a crashed instance would.
func (s *Store) CheckCookieKeysThenCrash(ctx context.Context, keys [][]byte) error {
	r, err := s.checkCookieKeys(ctx, keys)
	if err != nil {
		return err
	}
	r.abandon()
	return nil
}
