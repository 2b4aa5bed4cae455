// Package redisstore is a [tokenstore.Store] in Redis, for apps that run as
// several instances behind a load balancer: every instance sees the same
// sessions, a back-channel logout received by one instance ends the session
// on all of them, and a rotating refresh token is used once across all of
// them.
//
//	store, err := redisstore.NewFromURL(ctx, "redis://redis:6379/0", redisstore.Options{
//		Keys: [][]byte{key}, // 32 random bytes, the same on every instance
//	})
//	if err != nil {
//		log.Fatal(err) // Redis unreachable (errors.Is tokenstore.ErrUnavailable), or ErrWrongKey
//	}
//	defer store.Close()
//	stop, err := store.CheckCookieKeys(ctx, cookieKeys) // refuse a fleet whose cookie keys disagree
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer stop()
//	web, err := middleware.NewWeb(middleware.WebConfig{Client: client, Store: store, CookieKeys: cookieKeys})
//
// NewFromURL's client fails fast while Redis is down (a request gets its
// 503 in milliseconds; go-redis's own defaults take 1.7 s); New takes a
// client you build.
//
// What it guarantees:
//
//   - Encrypted at rest. Session records hold refresh tokens, which are
//     credentials: each (encoded by [tokenstore.Session.MarshalBinary]) is
//     sealed with AES-256-GCM under the first of Options.Keys, bound to the
//     key it is stored under ([tokenstore.Sealer]). Every key of
//     Options.Keys opens records, so keys rotate without signing anyone out.
//     Redis never sees a raw session id: records and locks are keyed by
//     [tokenstore.HashID]; indexes, logout markers and one-time keys by
//     keyed hashes (HMAC-SHA256) of (issuer, sid), (issuer, subject) and
//     (scope, namespace, key),
//     whose key is random, shared by the Stores of a prefix and kept in
//     Redis sealed with Options.Keys, so a reader of a dump or backup cannot
//     tell who has a session by hashing guessed subjects.
//   - Atomic logout. Get, Create, Update, Delete, DeleteBySID and
//     DeleteBySubject each run as one Lua script that checks the revoked-sid
//     and logged-out-subject markers, the session's existence and both of
//     its indexes together, so a back-channel logout racing a login or a
//     refresh on another instance never leaves a session alive.
//   - Expiry by Redis. Sessions, logout token ids and revocations carry Redis
//     TTLs; indexes drop expired members on every write and expire with their
//     last member. Nothing needs sweeping.
//   - A refresh lock across instances (Lock): a lease that its holder renews
//     while the refresh runs, so a slow OP never lets a second instance in
//     with the same rotating refresh token, and that ends after a crashed
//     holder's deadline (at most MaxLockHold) or LockLease, whichever is later.
//   - Errors, never guesses: when Redis cannot be reached every method returns
//     an error wrapping [tokenstore.ErrUnavailable] (the middleware answers
//     503 with Retry-After and keeps the session), and the same Store works
//     again as soon as Redis is back. A session is reported missing only when
//     Redis holds no record of it that Keys open.
//
// Redis 5 or later (tested with 7.0), as a single server, with Sentinel, or
// as a cluster (tested with three masters and a failover): all keys of one
// Store share the hash tag {Prefix}, so on a cluster they live in one slot
// (one shard serves a Store; give apps distinct prefixes to spread them).
// Replication is asynchronous: set Options.WaitReplicas so that a failover
// cannot lose an acknowledged session or revocation. Configure Redis with persistence (a Redis that
// restarts empty signs everyone out) and maxmemory-policy noeviction (an
// evicted revocation or lock would undo a guarantee). The Store does not own
// the client: close it yourself.
//
// The keys, each "{Prefix}:" and a letter: s:<HashID(id)> a session (its sid
// and subject hashes and its issue time, then the sealed record); x:<hash of
// issuer and sid>, u: and n:<hash of issuer and subject> sorted-set indexes
// of the sessions of an OP session, of a subject, and of a subject's
// sessions without a sid; r: revoked sids, e: logged-out subjects (with the
// logout time), j: one-time keys (UseOnce: logout token ids, login states),
// l: refresh locks,
// all with TTLs; k the key check, h the sealed index hash key, m the layout
// marker; c the running instances' cookie key fingerprints (CheckCookieKeys).
// Nothing else is stored.
//
// Upgrading from a version of this package whose index keys were unkeyed
// hashes: New migrates the data in place, once per prefix (sessions keep
// their tokens and TTL, and a sid revoked under the old names stays
// revoked), and Get migrates a session written in the old layout later.
// One-time keys (logout token ids, login states) are not carried over by
// any upgrade: they are short-lived, and what a replay of one of them
// could do is bounded (see the migration's comment in migrate.go).
// Stop the instances of the previous version before starting this one: the
// previous version cannot read sessions written in the new layout (its users
// are asked to sign in again), and its logouts are not seen by this one.
package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Defaults for zero Options fields.
const (
	DefaultPrefix    = "multiapp"
	DefaultLockLease = 10 * time.Second
	DefaultLockPoll  = 50 * time.Millisecond
	// MinLockLease is the shortest LockLease New accepts: the lease is
	// renewed every third of it, and a renewal is a network round trip.
	MinLockLease = 30 * time.Millisecond
)

// Errors of this package. Runtime failures to reach Redis are not among
// them: they wrap tokenstore.ErrUnavailable (and the client's error).
var (
	// ErrConfig: New was given unusable Options.
	ErrConfig = errors.New("redisstore: invalid options")
	// ErrWrongKey: New found data in Redis that none of Options.Keys opens:
	// the keys differ from the ones that wrote the sessions (or Prefix points
	// at another application's data).
	ErrWrongKey = errors.New("redisstore: none of Options.Keys decrypts the data already in Redis")
	// ErrUndecryptable: a session record that none of Options.Keys opens (it
	// was written under a key since removed from Keys, or altered in Redis).
	// Get returns it wrapped together with tokenstore.ErrNotFound, so the
	// user signs in again instead of getting errors until the record expires.
	// It is tokenstore.ErrUndecryptable: the records are sealed with a
	// tokenstore.Sealer of Options.Keys.
	ErrUndecryptable = tokenstore.ErrUndecryptable
)

// Options configures a Store. Client and Keys are required; the other
// fields have safe defaults.
type Options struct {
	// Client reaches Redis: redis.NewClient, redis.NewFailoverClient
	// (Sentinel) or redis.NewClusterClient. Its timeouts and retries are
	// those of every store call. The Store does not close it.
	Client redis.UniversalClient
	// Keys encrypt the session records with AES-256-GCM: 32 random bytes
	// each, the same list on every instance. The first encrypts; all
	// decrypt. To rotate: add the new key second on every instance, then
	// move it first, then drop the old key once the sessions it sealed
	// have expired (SessionLifetime later).
	Keys [][]byte
	// Prefix namespaces this store's keys ("{Prefix}:..."); instances of
	// one app share it, different apps may share it or not. Empty:
	// DefaultPrefix.
	Prefix string
	// LockLease is how long a refresh lock outlives a holder that stopped
	// renewing it (a crashed instance). A live holder renews it every
	// LockLease/3, however long its refresh takes. Zero: DefaultLockLease;
	// at least MinLockLease.
	LockLease time.Duration
	// LockPoll is the longest pause between two tries of a Lock that waits
	// (it starts at a few milliseconds and doubles). Zero: DefaultLockPoll.
	LockPoll time.Duration
	// WaitReplicas, when above zero, makes the writes that must survive a
	// failover (a session written by Create or Update, Delete, RevokeSID,
	// RevokeSubject) return only once that many replicas have them (Redis
	// WAIT), or fail with an error wrapping tokenstore.ErrUnavailable after
	// WaitTimeout (the write is then on the master only; callers retry).
	// Zero: Redis's asynchronous replication, which can lose the last
	// writes a master acknowledged if it crashes (docs/stores.md).
	WaitReplicas int
	// WaitTimeout bounds that wait. Zero: DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// Store is a tokenstore.Store in Redis. Create it with New; it is safe for
// concurrent use, and any number of Stores (in any number of processes)
// with the same Prefix and Keys share the same sessions.
type Store struct {
	c       redis.UniversalClient
	seal    *tokenstore.Sealer
	hashKey []byte    // names the indexes and markers: see pairHash
	hashers sync.Pool // of HMAC-SHA256 under hashKey, reset before use
	base    string    // "{Prefix}:"
	lease   time.Duration
	poll    time.Duration
	owned   redis.UniversalClient // the client NewFromURL made, closed by Close

	waitReplicas int
	waitTimeout  time.Duration
}

var _ tokenstore.Store = (*Store)(nil)

// keyCheckText is sealed under the first key in the key-check record, so New
// can tell whether its keys open the data already in Redis.
const keyCheckText = "multiapp/redisstore key check v1"

// New checks opts, reaches Redis and verifies the keys against the data
// already there. It fails with an error wrapping tokenstore.ErrUnavailable
// when Redis cannot be reached (bounded by ctx and the client's timeouts),
// ErrWrongKey when Keys cannot open what earlier stores wrote under Prefix,
// and ErrConfig for unusable options.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("%w: Client is nil (NewFromURL makes one from a URL)", ErrConfig)
	}
	seal, err := tokenstore.NewSealer(opts.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: Keys: %w", ErrConfig, err)
	}
	s := &Store{c: opts.Client, seal: seal, lease: opts.LockLease, poll: opts.LockPoll,
		waitReplicas: opts.WaitReplicas, waitTimeout: opts.WaitTimeout}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s.base = "{" + prefix + "}:"
	switch {
	case s.lease == 0:
		s.lease = DefaultLockLease
	case s.lease < MinLockLease:
		return nil, fmt.Errorf("%w: LockLease %v is shorter than MinLockLease (%v)", ErrConfig, s.lease, MinLockLease)
	}
	switch {
	case s.poll == 0:
		s.poll = DefaultLockPoll
	case s.poll < 0:
		return nil, fmt.Errorf("%w: LockPoll %v is negative", ErrConfig, s.poll)
	}
	switch {
	case s.waitReplicas < 0 || s.waitTimeout < 0:
		return nil, fmt.Errorf("%w: WaitReplicas %d or WaitTimeout %v is negative", ErrConfig, s.waitReplicas, s.waitTimeout)
	case s.waitTimeout == 0:
		s.waitTimeout = DefaultWaitTimeout
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redisstore: cannot reach Redis%s: %w: %w", s.addrs(), tokenstore.ErrUnavailable, err)
	}
	if err := s.checkKeys(ctx); err != nil {
		return nil, err
	}
	if err := s.loadHashKey(ctx); err != nil {
		return nil, err
	}
	if err := s.migrateAll(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// addrs names the Redis servers of the client, for errors.
func (s *Store) addrs() string {
	switch c := s.c.(type) {
	case *redis.Client:
		return " at " + c.Options().Addr
	case *redis.ClusterClient:
		return fmt.Sprintf(" (cluster %v)", c.Options().Addrs)
	}
	return ""
}

// checkKeys opens the key-check record with Keys, writing it when there is
// none.
func (s *Store) checkKeys(ctx context.Context) error {
	plain, err := s.sealedRecord(ctx, "key check", s.base+"k", []byte(keyCheckText))
	if err != nil {
		return err
	}
	if string(plain) != keyCheckText {
		return s.wrongKey()
	}
	return nil
}

// loadHashKey reads the index hash key (32 random bytes, sealed with Keys),
// creating it when there is none: every Store of the prefix shares it, and
// key rotations keep it.
func (s *Store) loadHashKey(ctx context.Context) error {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh) // never fails (Go 1.24+)
	plain, err := s.sealedRecord(ctx, "index hash key", s.base+"h", fresh)
	if err != nil {
		return err
	}
	if len(plain) != 32 {
		return s.wrongKey()
	}
	s.hashKey = plain
	s.hashers.New = func() any { return hmac.New(sha256.New, s.hashKey) }
	return nil
}

// sealedRecord returns the plain text of the record named key, sealed with
// Keys: the one in Redis, or fresh, which it writes when there is none (the
// first Store of a prefix). It reseals the record under the first key after
// a rotation, and fails with ErrWrongKey when no key opens it.
func (s *Store) sealedRecord(ctx context.Context, what, key string, fresh []byte) ([]byte, error) {
	aad := []byte(key)
	for range 3 {
		box, err := s.c.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			ok, err := s.c.SetNX(ctx, key, s.seal.Seal(fresh, aad), 0).Result()
			if err != nil {
				return nil, s.unavailable(what, err)
			}
			if ok {
				return fresh, nil
			}
			continue // another instance wrote it first: open that one
		case err != nil:
			return nil, s.unavailable(what, err)
		}
		plain, idx, err := s.seal.Open(box, aad)
		if err != nil {
			return nil, s.wrongKey()
		}
		if idx > 0 {
			if err := s.c.Set(ctx, key, s.seal.Seal(plain, aad), 0).Err(); err != nil {
				return nil, s.unavailable(what, err)
			}
		}
		return plain, nil
	}
	return nil, fmt.Errorf("redisstore: the %s record %q keeps disappearing", what, key)
}

func (s *Store) wrongKey() error {
	return fmt.Errorf("%w (prefix %q): give the keys the other instances use, with the one that wrote the data among them", ErrWrongKey, s.base)
}

// unavailable wraps a failure to reach Redis.
func (s *Store) unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, tokenstore.ErrUnavailable, err)
}

// Key names.

func (s *Store) sessionKey(member string) string { return s.base + "s:" + member }
func (s *Store) lockKey(id string) string        { return s.base + "l:" + tokenstore.HashID(id) }

// A session's value starts with its sid hash (noSID when it has none), its
// subject hash and when it was issued, so the scripts find its indexes and
// tell whether it is revoked without decrypting it; the sealed record
// follows.
const (
	pairHashLen = 22 // base64url of 16 bytes
	issuedLen   = 13 // unix ms, decimal, zero-padded
	headsLen    = 2*pairHashLen + issuedLen
)

var noSID = strings.Repeat(".", pairHashLen)

// pairHash names (issuer, value) unambiguously and secretly: an HMAC-SHA256
// under the store's index hash key of the length-prefixed issuer and the
// value, 128 bits kept. Keyed, so that a reader of a Redis dump or backup
// cannot tell who has sessions, or who was logged out, by hashing guessed
// subjects or sids: the hash key is in Redis only sealed with Keys.
func (s *Store) pairHash(issuer, value string) string { return s.hashOf(issuer, value) }

// hashOf is pairHash of any number of parts: each but the last
// length-prefixed, so that no two lists of parts hash alike.
func (s *Store) hashOf(parts ...string) string {
	h := s.hashers.Get().(hash.Hash)
	h.Reset()
	out := hashWith(h, parts...)
	s.hashers.Put(h)
	return out
}

func hashWith(h hash.Hash, parts ...string) string {
	var n [binary.MaxVarintLen64]byte
	for i, p := range parts {
		if i < len(parts)-1 {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:16])
}

// issuedMillis is the issue time of s in the head of its value.
func issuedMillis(s *tokenstore.Session) string {
	ms := min(max(s.Issued().UnixMilli(), 0), 9_999_999_999_999)
	return fmt.Sprintf("%0*d", issuedLen, ms)
}

// ttlMillis converts an absolute expiry into the TTL the scripts take: 0 for
// none (zero time), negative when already over.
func ttlMillis(exp time.Time) int64 {
	if exp.IsZero() {
		return 0
	}
	d := time.Until(exp)
	if d < time.Millisecond {
		return -1
	}
	return d.Milliseconds() // rounded down: Redis never keeps it longer
}

// Get implements tokenstore.Store. A session of the previous layout
// (written by an earlier version of this package) is migrated first.
func (s *Store) Get(ctx context.Context, id string) (*tokenstore.Session, error) {
	member := tokenstore.HashID(id)
	for range 3 {
		str, err := getScript.Run(ctx, s.c, []string{s.sessionKey(member)}, s.base).Text()
		v := []byte(str)
		switch {
		case errors.Is(err, redis.Nil):
			return nil, tokenstore.ErrNotFound
		case err != nil:
			return nil, s.unavailable("get", err)
		case legacyValue(v):
			if err := s.migrate(ctx, member, v); err != nil {
				return nil, err
			}
			continue // read it again, revocations checked
		case len(v) < headsLen:
			return nil, fmt.Errorf("%w: %w", tokenstore.ErrNotFound, tokenstore.ErrMalformed)
		}
		sess, err := s.open(member, v[headsLen:])
		if err != nil {
			return nil, err
		}
		if !sess.ExpiresAt.IsZero() && !time.Now().Before(sess.ExpiresAt) {
			return nil, tokenstore.ErrNotFound
		}
		sess.ID = id
		return sess, nil
	}
	// An instance of the previous version keeps rewriting it.
	return nil, fmt.Errorf("%w: %w", tokenstore.ErrNotFound, tokenstore.ErrMalformed)
}

// open decrypts and decodes the sealed record of session member. A record
// that Keys cannot open or that does not decode is reported missing
// (tokenstore.ErrNotFound, wrapping why): its user signs in again.
func (s *Store) open(member string, box []byte) (*tokenstore.Session, error) {
	plain, _, err := s.seal.Open(box, []byte(member))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", tokenstore.ErrNotFound, err)
	}
	sess := &tokenstore.Session{}
	if err := sess.UnmarshalBinary(plain); err != nil {
		return nil, fmt.Errorf("%w: %w", tokenstore.ErrNotFound, err)
	}
	return sess, nil
}

// heads returns the head of the value of sess (see headsLen) and its parts.
func (s *Store) heads(sess *tokenstore.Session) (head []byte, sidh, subh, issued string) {
	subh = s.pairHash(sess.Issuer, sess.Subject)
	sidHead := noSID
	if sess.SID != "" {
		sidh = s.pairHash(sess.Issuer, sess.SID)
		sidHead = sidh
	}
	issued = issuedMillis(sess)
	head = make([]byte, 0, headsLen)
	return append(append(append(head, sidHead...), subh...), issued...), sidh, subh, issued
}

// write runs the create or update script for sess.
func (s *Store) write(ctx context.Context, op string, script *redis.Script, sess *tokenstore.Session) error {
	plain, err := sess.MarshalBinary() // without the ID
	if err != nil {
		return err
	}
	member := tokenstore.HashID(sess.ID)
	head, sidh, subh, issued := s.heads(sess)
	v := append(head, s.seal.Seal(plain, []byte(member))...)
	res, err := s.durable(ctx, script, []string{s.sessionKey(member)}, s.base, member, v, ttlMillis(sess.ExpiresAt), sidh, subh, issued).Text()
	if err != nil {
		return s.unavailable(op, err)
	}
	switch res {
	case "ok":
		return nil
	case "revoked":
		return tokenstore.ErrRevoked
	case "exists":
		return tokenstore.ErrExists
	case "notfound":
		return tokenstore.ErrNotFound
	}
	return fmt.Errorf("redisstore: %s: unexpected script result %q", op, res)
}

// Create implements tokenstore.Store. A session whose ExpiresAt has passed
// is not stored (and Create returns nil, as the memory store does).
func (s *Store) Create(ctx context.Context, sess *tokenstore.Session) error {
	return s.write(ctx, "create", createScript, sess)
}

// Update implements tokenstore.Store. An ExpiresAt that has passed deletes
// the session.
func (s *Store) Update(ctx context.Context, sess *tokenstore.Session) error {
	return s.write(ctx, "update", updateScript, sess)
}

// Delete implements tokenstore.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	member := tokenstore.HashID(id)
	if err := s.durable(ctx, deleteScript, []string{s.sessionKey(member)}, s.base, member).Err(); err != nil {
		return s.unavailable("delete", err)
	}
	return nil
}

// DeleteBySID implements tokenstore.Store.
func (s *Store) DeleteBySID(ctx context.Context, issuer, sid, subject string) (int, error) {
	if sid == "" && subject == "" {
		return 0, nil
	}
	sidh, subh := "", ""
	if sid != "" {
		sidh = s.pairHash(issuer, sid)
	}
	if subject != "" {
		subh = s.pairHash(issuer, subject)
	}
	keys := []string{s.base + "x:" + sidh, s.base + "n:" + subh}
	n, err := deleteBySIDScript.Run(ctx, s.c, keys, s.base, sidh, subh).Int()
	if err != nil {
		return 0, s.unavailable("delete by sid", err)
	}
	return n, nil
}

// DeleteBySubject implements tokenstore.Store.
func (s *Store) DeleteBySubject(ctx context.Context, issuer, subject string) (int, error) {
	subh := s.pairHash(issuer, subject)
	n, err := deleteBySubjectScript.Run(ctx, s.c, []string{s.base + "u:" + subh}, s.base, subh).Int()
	if err != nil {
		return 0, s.unavailable("delete by subject", err)
	}
	return n, nil
}

// ttlArg rounds a positive ttl up to whole milliseconds.
func ttlArg(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// UseOnce implements tokenstore.Store (SET NX with the ttl, to a random
// value so that a retried call still reports first). The key is named by
// the keyed hash of (scope, namespace, key), like the indexes.
func (s *Store) UseOnce(ctx context.Context, namespace, scope, key string, ttl time.Duration) (bool, error) {
	name := s.base + "j:" + s.hashOf(scope, namespace, key)
	if ttl <= 0 {
		n, err := s.c.Exists(ctx, name).Result()
		if err != nil {
			return false, s.unavailable("use once", err)
		}
		return n == 0, nil
	}
	n, err := setOnceScript.Run(ctx, s.c, []string{name}, rand.Text()[:16], ttlArg(ttl)).Int()
	if err != nil {
		return false, s.unavailable("use once", err)
	}
	return n == 1, nil
}

// RevokeSID implements tokenstore.Store. A ttl of zero or less, or an empty
// sid, records nothing. Revoking an OP session again keeps the later of the
// two expiries.
func (s *Store) RevokeSID(ctx context.Context, issuer, sid string, ttl time.Duration) error {
	if sid == "" || ttl <= 0 {
		return nil
	}
	if err := s.durable(ctx, revokeScript, []string{s.base + "r:" + s.pairHash(issuer, sid)}, ttlArg(ttl)).Err(); err != nil {
		return s.unavailable("revoke sid", err)
	}
	return nil
}

// RevokeSubject implements tokenstore.Store. A ttl of zero or less, or an
// empty subject, records nothing. Revoking a subject again keeps the later
// time and the later expiry.
func (s *Store) RevokeSubject(ctx context.Context, issuer, subject string, at time.Time, ttl time.Duration) error {
	if subject == "" || ttl <= 0 {
		return nil
	}
	key := s.base + "e:" + s.pairHash(issuer, subject)
	if err := s.durable(ctx, revokeSubjectScript, []string{key}, max(at.UnixMilli(), 0), ttlArg(ttl)).Err(); err != nil {
		return s.unavailable("revoke subject", err)
	}
	return nil
}

// SIDRevoked implements tokenstore.Store.
func (s *Store) SIDRevoked(ctx context.Context, issuer, sid string) (bool, error) {
	if sid == "" {
		return false, nil
	}
	n, err := s.c.Exists(ctx, s.base+"r:"+s.pairHash(issuer, sid)).Result()
	if err != nil {
		return false, s.unavailable("sid revoked", err)
	}
	return n == 1, nil
}
