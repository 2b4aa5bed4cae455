package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// The previous layout of this package (before v2 of the value head) named
// indexes and markers by an unkeyed SHA-256 of (issuer, value), which lets a
// reader of a Redis dump confirm guessed subjects and sids, and had no issue
// time in the value head. A value of that layout has the sealed record's
// version byte where the current layout has the first digit of the issue
// time, so the two are told apart value by value.
//
// New migrates every session of the previous layout once per prefix
// (marker key "m"); Get migrates, on read, any session of that layout
// written later by an instance of the previous version still running. A
// migrated session keeps its sealed record (its tokens) and its remaining
// TTL; it moves from the old indexes to the keyed ones; when its OP session
// was revoked under the old layout, the revocation is carried over to the
// keyed marker and the session ends. Old logout-token ids and login states,
// and revocations of OP sessions that no longer have a session, are not
// carried over: they expire with their TTL (at most the back-channel
// handler's RevokedSIDTTL, 24 hours by default).
//
// One-time keys changed names once more since (UseOnce, keyed by scope,
// namespace and key, where RememberJTI keyed (issuer, jti)): those of the
// previous version are not carried over either. Until they expire (a
// logout token's validity, a login's lifetime), a logout token delivered
// before the upgrade could be accepted once more, which can only end
// sessions its first delivery already ended; a login state still needs
// its browser's transaction cookie and an authorization code the OP has
// not redeemed yet.
const (
	legacyHeadsLen = 2 * pairHashLen
	layoutMarker   = "m"
	layoutVersion  = "2"
)

// legacyPairHash is the previous layout's pairHash.
func legacyPairHash(issuer, value string) string {
	return hashWith(sha256.New(), issuer, value)
}

// legacySealVersion is the first byte of a box sealed by tokenstore.Sealer
// (and, before it, by this package): version 1 of the sealed layout.
const legacySealVersion = 1

// legacyValue reports whether v is a session value of the previous layout.
func legacyValue(v []byte) bool {
	return len(v) > legacyHeadsLen && v[legacyHeadsLen] == legacySealVersion
}

// migrateAll migrates the sessions of the previous layout, unless a Store
// of this prefix has done it already.
func (s *Store) migrateAll(ctx context.Context) error {
	n, err := s.c.Exists(ctx, s.base+layoutMarker).Result()
	if err != nil {
		return s.unavailable("migration", err)
	}
	if n == 1 {
		return nil
	}
	err = s.scanSessions(ctx, func(key string) error {
		v, err := s.c.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			return nil
		case err != nil:
			return err
		case !legacyValue(v):
			return nil
		}
		err = s.migrate(ctx, key[len(s.sessionKey("")):], v)
		if errors.Is(err, ErrUndecryptable) || errors.Is(err, tokenstore.ErrMalformed) {
			return nil // left as is: Get reports it, and it expires
		}
		return err
	})
	if err != nil {
		return s.unavailable("migration", err)
	}
	if err := s.c.Set(ctx, s.base+layoutMarker, layoutVersion, 0).Err(); err != nil {
		return s.unavailable("migration", err)
	}
	return nil
}

// scanSessions calls fn with the key of every session of the prefix.
func (s *Store) scanSessions(ctx context.Context, fn func(key string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.sessionKey("*"), 1000).Iterator()
		for iter.Next(ctx) {
			if err := fn(iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.c)
}

// migrate rewrites session member, whose value v has the previous layout,
// in the current one.
func (s *Store) migrate(ctx context.Context, member string, v []byte) error {
	sess, err := s.open(member, v[legacyHeadsLen:])
	if err != nil {
		return err
	}
	head, sidh, subh, issued := s.heads(sess)
	next := append(head, v[legacyHeadsLen:]...)
	oldRevoked, newRevoked := "", ""
	if sess.SID != "" {
		oldRevoked = s.base + "r:" + legacyPairHash(sess.Issuer, sess.SID)
		newRevoked = s.base + "r:" + sidh
	}
	err = migrateScript.Run(ctx, s.c, []string{s.sessionKey(member)}, s.base, member, next, 0, sidh, subh, issued, v, oldRevoked, newRevoked).Err()
	if err != nil {
		return s.unavailable("migration", err)
	}
	return nil // migrated, ended, or changed meanwhile: the caller reads it again
}
