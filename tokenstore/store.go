// Package tokenstore keeps relying-party sessions on the server.
//
// A browser only ever holds an opaque session id (in a sealed cookie); the
// tokens live in a [Store]. Stores are keyed by a hash of that id ([HashID]),
// so a dump of the store cannot be replayed as cookies.
//
// The package holds the session record and its codec
// ([Session.MarshalBinary]), the [Sealer] that encrypts records at rest, the
// [Store] interface and its roles ([Sessions], [Logouts], [Revocations],
// [OneTimeKeys]: each consumer names the one it uses), and the default
// in-memory store ([Memory]). Other stores live in their own modules (for
// example tokenstore/redisstore) and prove themselves with the conformance
// suite in tokenstore/storetest.
package tokenstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Errors returned by every Store. Stores may wrap them; test with errors.Is.
var (
	// ErrNotFound: no live session has that id (never created, deleted,
	// logged out or expired).
	ErrNotFound = errors.New("tokenstore: session not found")
	// ErrRevoked: Create or Update refused a session that a back-channel
	// logout ended while the login or refresh was in flight: its OP session
	// (issuer, sid) was revoked (RevokeSID), or its subject was logged out
	// after the session's ID token was issued (RevokeSubject).
	ErrRevoked = errors.New("tokenstore: OP session was logged out")
	// ErrExists: Create was given an id that is already in use.
	ErrExists = errors.New("tokenstore: session id already exists")
	// ErrUnavailable: the store's backend cannot be reached. Callers should
	// answer 503 and keep the session: it is not lost, only out of reach.
	ErrUnavailable = errors.New("tokenstore: store unavailable")
)

// Session is the server-side record of one signed-in browser at one app.
type Session struct {
	// ID is the opaque handle the browser holds (see NewID). Stores never
	// persist it: they key the record by HashID(ID) and set ID from the
	// caller's argument on Get.
	ID string

	Issuer   string // OP issuer URL
	Subject  string // "sub" of the ID token
	SID      string // OP session id ("sid" of the ID token); may be empty
	ClientID string // the app's client id at the OP

	// Tokens is the token set of the login or of the last refresh.
	Tokens
	// RefreshedAt is when the current tokens were requested (the login's
	// code exchange or the last refresh); with Tokens.Expiry it gives their
	// lifetime.
	RefreshedAt time.Time

	// IssuedAt is when the OP issued the ID token the session was signed
	// in with (its iat, by the OP's clock). It is set at login and kept by
	// refreshes: a logout of the subject (RevokeSubject) ends the sessions
	// issued at or before its logout token's iat, and both times come from
	// the OP's clock. When zero, CreatedAt stands in for it.
	IssuedAt time.Time

	CreatedAt time.Time
	// LastSeen is when the session was last used: set at login and at
	// every refresh, and moved later by Store.Touch (the web layer records
	// a request's activity at most once per its activity interval).
	LastSeen time.Time
	// ExpiresAt is the absolute end of the session: stores forget it then.
	ExpiresAt time.Time
	// IdleTimeout, when above zero, ends the session once it has not been
	// used for that long: from LastSeen + IdleTimeout on, Get and Touch
	// refuse it (with an *ExpiredError), although the store may hold the
	// record until ExpiresAt.
	IdleTimeout time.Duration

	// DPoPKey, when not empty, is the private key the session's tokens
	// are bound to (RFC 9449), as its owner encoded it (the web layer
	// keeps a private JWK, dpop.Signer.MarshalPrivateJWK). It is set at
	// login and kept by refreshes, which must prove possession of it. It
	// is a secret like the refresh token: it is sealed with the record,
	// never sent to the browser, never logged.
	DPoPKey []byte
}

// Reasons of an ExpiredError: which of its lifetimes ended a session.
const (
	// ExpiredIdle: unused for IdleTimeout since LastSeen.
	ExpiredIdle = "idle"
	// ExpiredLifetime: past ExpiresAt, its absolute end.
	ExpiredLifetime = "lifetime"
)

// ErrExpired: the session's own lifetime is over (see ExpiredError). It
// always comes together with ErrNotFound.
var ErrExpired = errors.New("tokenstore: session lifetime over")

// ExpiredError is how Get and Touch report a session that the store still
// holds but whose lifetime is over: idle for IdleTimeout (Reason
// ExpiredIdle), or past ExpiresAt (ExpiredLifetime). For the caller the
// session is gone: errors.Is(err, ErrNotFound) and errors.Is(err,
// ErrExpired) both hold. The details are for audit: a store forgets a
// record at its ExpiresAt, so an idle session is reported this way until
// then, while the end of the absolute lifetime is usually seen as a plain
// ErrNotFound (the session cookie expires at the same time).
type ExpiredError struct {
	// Reason is ExpiredIdle or ExpiredLifetime.
	Reason string
	// Session is the ended session without its tokens and DPoP key: its
	// ID (the one given to Get), issuer, subject, sid, client and times.
	Session *Session
}

func (e *ExpiredError) Error() string {
	if e.Reason == ExpiredIdle {
		return fmt.Sprintf("tokenstore: session not found: unused since %v, longer than its idle timeout (%v)", e.Session.LastSeen.Round(time.Second), e.Session.IdleTimeout)
	}
	return fmt.Sprintf("tokenstore: session not found: its lifetime ended at %v", e.Session.ExpiresAt.Round(time.Second))
}

// Unwrap makes an ExpiredError both ErrNotFound and ErrExpired.
func (e *ExpiredError) Unwrap() []error { return []error{ErrNotFound, ErrExpired} }

// CheckLifetime returns nil while s is within its lifetimes at now, and an
// *ExpiredError once it is past ExpiresAt (when set) or unused for its
// IdleTimeout (when above zero). Every store applies it to what it reads;
// it is the one definition of a session's lifetimes.
func (s *Session) CheckLifetime(now time.Time) error {
	reason := ""
	switch {
	case !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt):
		reason = ExpiredLifetime
	case s.IdleTimeout > 0 && !now.Before(s.LastSeen.Add(s.IdleTimeout)):
		reason = ExpiredIdle
	default:
		return nil
	}
	ended := *s
	ended.Tokens, ended.DPoPKey = Tokens{}, nil
	return &ExpiredError{Reason: reason, Session: &ended}
}

// Tokens is a token set as a session keeps it: what the OP's token endpoint
// issued, validated by the relying party (rp.Tokens, whose fields it
// mirrors, with the ID token's claims as their JSON payload). A session
// record holds one, and a refresh replaces it whole.
type Tokens struct {
	AccessToken string
	// TokenType is normally "Bearer".
	TokenType string
	// Expiry of the access token; zero when the OP did not say.
	Expiry       time.Time
	RefreshToken string
	IDToken      string
	// Claims is the JSON payload of the validated ID token, byte for byte.
	// ParsedClaims decodes it once per token set.
	Claims json.RawMessage

	parsed *claimsCache // see ParsedClaims; never persisted
}

// claimsCache holds the decoding of a token set's Claims, shared by the
// copies of the token set (Clone, and a store's copies of one record).
type claimsCache struct{ p atomic.Pointer[parsedClaims] }

type parsedClaims struct {
	raw []byte // the Claims v was decoded from: a private copy
	v   any
}

// ParsedClaims returns parse(t.Claims), decoding at most once per token
// set: the result is kept with t, shared by its copies (Session.Clone, and
// every copy a store returns of one record it holds in memory) and never
// persisted, so a session read on every request is decoded once, not on
// every request. It is recomputed when t.Claims no longer holds the bytes
// it was decoded from, or was decoded into another type. An error is
// returned, not kept.
//
// parse is given a private copy of the claims and may keep references into
// it. The result is shared: treat it as read-only. ParsedClaims is safe
// for concurrent use on a token set that came from Clone, UnmarshalBinary
// or a store; on one made by a composite literal its first call writes to
// t, like any setter.
func ParsedClaims[T any](t *Tokens, parse func(claims []byte) (T, error)) (T, error) {
	c := t.cache()
	if p := c.p.Load(); p != nil && bytes.Equal(p.raw, t.Claims) {
		if v, ok := p.v.(T); ok {
			return v, nil
		}
	}
	raw := bytes.Clone(t.Claims)
	v, err := parse(raw)
	if err != nil {
		var zero T
		return zero, err
	}
	c.p.Store(&parsedClaims{raw: raw, v: v})
	return v, nil
}

// SetParsedClaims records v as the decoding of t.Claims, for ParsedClaims
// to return: the caller decoded them already (the relying party does, to
// validate the ID token). v is shared with t's copies: never modify it.
func SetParsedClaims[T any](t *Tokens, v T) {
	t.cache().p.Store(&parsedClaims{raw: bytes.Clone(t.Claims), v: v})
}

func (t *Tokens) cache() *claimsCache {
	if t.parsed == nil {
		t.parsed = new(claimsCache)
	}
	return t.parsed
}

// Clone returns a copy that shares no mutable memory with s, except the
// cache of its parsed claims (see ParsedClaims), which is safe to share.
func (s *Session) Clone() *Session {
	c := *s
	if s.Claims != nil {
		c.Claims = append(json.RawMessage(nil), s.Claims...)
	}
	if s.DPoPKey != nil {
		c.DPoPKey = append([]byte(nil), s.DPoPKey...)
	}
	if c.parsed == nil {
		c.parsed = new(claimsCache)
	}
	return &c
}

// Store keeps sessions and the back-channel logout state that protects them:
// every role below, in one backend. Implementations are safe for concurrent
// use; tokenstore/storetest checks every promise documented here.
//
// Each consumer names the role it uses: the web layer keeps sessions
// (Sessions), a back-channel logout ends them (Logouts, with OneTimeKeys
// against replayed logout tokens), an API refuses the tokens of ended OP
// sessions (Revocations), and a login is completed once (OneTimeKeys). The
// roles are one backend because a logout racing a login or a refresh
// must never leave a session alive, which only the store can decide
// atomically: a back-channel logout calls RevokeSID and then DeleteBySID (a
// logout token with a sid), or RevokeSubject and then DeleteBySubject (a
// logout token with only a sub); Create and Update refuse a revoked
// session and Update only replaces a session that still exists.
//
// A session is revoked when its OP session (Issuer, SID) is revoked, or when
// its subject (Issuer, Subject) was revoked at a time T and the session was
// issued at or before T (Session.IssuedAt, or CreatedAt when that is zero):
// a login whose ID token the OP issued before the subject's logout cannot be
// stored after it, while the user's next sign-in can.
//
// An empty sid names no OP session: RevokeSID ignores it, SIDRevoked reports
// false for it, and DeleteBySID matches no session by it, so a session stored
// without a sid is never refused by sid, and a logout token without a sid
// cannot wipe every sid-less session of an issuer. Likewise RevokeSubject
// ignores an empty subject.
//
// docs/stores.md ("Writing a store") says what a new backend implements:
// with Session.MarshalBinary and Sealer it is only storage, indexes and a
// lock.
type Store interface {
	Sessions
	Logouts
	Revocations
	OneTimeKeys
}

// Sessions is the role of a Store that keeps the session records and their
// refresh lock: what the web layer (middleware.Web) reads and writes.
type Sessions interface {
	// Get returns the live session with that id, or ErrNotFound. A revoked
	// session is not live: once RevokeSID or RevokeSubject returns, no Get
	// anywhere returns the sessions it revokes, even before DeleteBySID or
	// DeleteBySubject has removed them. Nor is a session over its
	// lifetimes (Session.CheckLifetime): Get reports one it still holds
	// with an *ExpiredError.
	Get(ctx context.Context, id string) (*Session, error)
	// Create stores a new session. It fails with ErrRevoked when s is
	// revoked, and ErrExists when the id is taken.
	Create(ctx context.Context, s *Session) error
	// Update replaces an existing session (after a refresh) and fails with
	// ErrNotFound when it no longer exists: a deleted session is never
	// brought back. It fails with ErrRevoked when the stored session or s
	// is revoked, so a refresh can neither revive a logged-out session nor
	// move one into an OP session that was logged out; the stored session
	// is then unchanged. Update does not apply the idle timeout of the
	// stored session: a refresh that started while it was live is
	// activity, and the record Update writes carries its own LastSeen.
	Update(ctx context.Context, s *Session) error
	// Touch records that session id was used at at: it moves LastSeen to
	// at when that is later, and changes nothing else, so a touch never
	// undoes a refresh that raced it. It fails with ErrNotFound when Get
	// would not return the session (missing, revoked, or over its
	// lifetime: then with the *ExpiredError), so a touch never revives an
	// idle session. Nothing else moves LastSeen but Create and Update.
	Touch(ctx context.Context, id string, at time.Time) error
	// Delete removes one session. Deleting a missing session is not an error.
	Delete(ctx context.Context, id string) error
	// Lock takes the refresh lock of session id, waiting until it is free or
	// ctx ends. At most one holder exists at a time (across every process
	// sharing the store). The returned unlock releases it; a holder that
	// never calls it (a crash) loses the lock after a bounded time.
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// Logouts is the role of a Store that ends sessions: what a back-channel
// logout (backchannel.Handler) writes. Revoking comes first, so that a login
// or refresh in flight cannot store a session the logout ends.
type Logouts interface {
	// RevokeSID records for ttl that the OP session (issuer, sid) has ended.
	// Revoking it again never ends the revocation sooner.
	RevokeSID(ctx context.Context, issuer, sid string, ttl time.Duration) error
	// RevokeSubject records for ttl that the sessions of (issuer, subject)
	// issued at or before at have ended: the subject was logged out by a
	// logout token without sid, at being its iat. Revoking the subject
	// again keeps the later of the two times and the later expiry.
	RevokeSubject(ctx context.Context, issuer, subject string, at time.Time, ttl time.Duration) error
	// DeleteBySID removes every session of the OP session (issuer, sid) and,
	// when subject is not empty, every session of (issuer, subject) that was
	// stored without a sid. It returns how many sessions it removed.
	DeleteBySID(ctx context.Context, issuer, sid, subject string) (int, error)
	// DeleteBySubject removes every session of (issuer, subject).
	DeleteBySubject(ctx context.Context, issuer, subject string) (int, error)
}

// Revocations is the role of a Store that an API reads to refuse the access
// tokens of OP sessions a back-channel logout ended (the same method set as
// rp.RevocationChecker, which the access-token verifier takes).
type Revocations interface {
	// SIDRevoked reports whether (issuer, sid) was revoked and not yet forgotten.
	SIDRevoked(ctx context.Context, issuer, sid string) (bool, error)
}

// OneTimeKeys is the role of a Store that makes replay checks: a logout
// token, a login state or a DPoP proof is accepted once, across every
// process sharing the store.
type OneTimeKeys interface {
	// UseOnce records key in namespace and scope for ttl and reports
	// whether this is its first use; false means it was recorded before
	// and has not expired: a replay. Of concurrent calls with one key,
	// across every process sharing the store, exactly one reports first.
	// Keys of different namespaces or scopes never collide, whatever their
	// strings. A replay does not extend the ttl; a ttl of zero or less
	// records nothing and reports first unless the key is recorded. See
	// LogoutTokenIDs for the namespaces the library uses.
	UseOnce(ctx context.Context, namespace, scope, key string, ttl time.Duration) (first bool, err error)
}

// Namespaces of one-time keys (Store.UseOnce): what a key is, and what
// its scope is. A namespace keeps one kind of key apart from the others;
// the scope says within what a key must be unique. Applications may use
// namespaces of their own: any string other than these.
const (
	// LogoutTokenIDs: the jti of back-channel logout tokens, scoped by
	// issuer. A logout token is accepted once (OpenID Connect Back-Channel
	// Logout 1.0 §2.6); the key lives as long as the token is valid.
	LogoutTokenIDs = "logout-jti"
	// LoginStates: the state of login transactions, scoped by issuer. A
	// login completes once, even when its transaction cookie is replayed;
	// the key lives as long as the transaction.
	LoginStates = "login-state"
	// DPoPProofIDs: the jti of DPoP proofs a server receives, scoped by
	// the proof's htu (RFC 9449 §11.1: a proof is used once per target
	// URI); the key lives as long as the proof is accepted.
	DPoPProofIDs = "dpop-jti"
)

// NewID returns a new session id: 256 random bits, base64url without padding.
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashID returns the key a store files session id under: the base64url
// SHA-256 of id. It is also what audit logs show instead of the id.
func HashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Issued is when the session was issued for RevokeSubject: IssuedAt, or
// CreatedAt when IssuedAt is zero.
func (s *Session) Issued() time.Time {
	if s.IssuedAt.IsZero() {
		return s.CreatedAt
	}
	return s.IssuedAt
}
