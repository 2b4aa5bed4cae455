package pkce

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/cookie"
)

// Transaction defaults.
const (
	// DefaultTTL is how long a login may take from redirect to callback.
	DefaultTTL = 10 * time.Minute
	// DefaultMaxPending caps the logins a browser may have in flight at once
	// (parallel tabs); starting one more drops the oldest.
	DefaultMaxPending = 5
)

// Errors returned by Jar.Take. Each means the login must start over.
var (
	ErrNoTransaction = errors.New("pkce: no login transaction for this state in this browser")
	ErrExpired       = errors.New("pkce: login transaction expired")
	ErrReplayed      = errors.New("pkce: login transaction already used")
)

// Transaction is one login in flight: created at the login redirect,
// consumed once at the callback.
type Transaction struct {
	// State binds the callback to this browser and this login
	// (128 random bits or more).
	State string `json:"s"`
	// Nonce binds the ID token to this login.
	Nonce string `json:"n"`
	// Verifier is the PKCE code verifier.
	Verifier string `json:"v"`
	// ReturnTo is the same-origin path to go back to after login.
	ReturnTo string `json:"r,omitempty"`
	// Issuer is the OP the login was started at.
	Issuer string `json:"i"`
	// Prompt is the prompt value sent, e.g. "none" for a silent SSO check.
	Prompt string `json:"p,omitempty"`
	// MaxAge is the max_age sent, in seconds (rp's AuthCodeURL records it):
	// the ID token must then say, in auth_time, that the user authenticated
	// no longer ago than that. Nil: none was sent.
	MaxAge *int64 `json:"m,omitempty"`
	// Created is when the login started.
	Created time.Time `json:"t"`
}

// NewTransaction starts a login at issuer that returns to returnTo: a
// 256-bit state, a 256-bit nonce and a fresh verifier.
func NewTransaction(issuer, returnTo string) *Transaction {
	return &Transaction{
		State:    random(32),
		Nonce:    random(32),
		Verifier: NewVerifier(),
		ReturnTo: returnTo,
		Issuer:   issuer,
		Created:  time.Now(),
	}
}

// Challenge returns the S256 code challenge for the transaction's verifier.
func (t *Transaction) Challenge() string { return Challenge(t.Verifier) }

// ReplayCache remembers consumed states so a transaction is used at most
// once even if its cookie is replayed. tokenstore.Store satisfies it.
type ReplayCache interface {
	RememberJTI(ctx context.Context, issuer, jti string, ttl time.Duration) (first bool, err error)
}

// Jar keeps login transactions in sealed cookies, one cookie per
// transaction so parallel logins in several tabs do not overwrite each
// other. The zero value is not usable: set Name and Codecs.
type Jar struct {
	// Name is the cookie base name, e.g. "myapp-login"; each transaction
	// adds a suffix derived from its state.
	Name string
	// Codecs seal and open the cookies (encrypted and authenticated). The
	// first encodes; all are tried to decode, so old keys keep working
	// during a key rotation. See securecookie.CodecsFromPairs.
	Codecs []securecookie.Codec
	// Cookie is the attribute policy (Secure, __Host- prefix).
	Cookie cookie.Policy
	// TTL: DefaultTTL when zero.
	TTL time.Duration
	// MaxPending: DefaultMaxPending when zero.
	MaxPending int
	// Replay, when set, makes Take refuse a state it has already consumed,
	// also across instances sharing the cache.
	Replay ReplayCache
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

func (j *Jar) ttl() time.Duration {
	if j.TTL > 0 {
		return j.TTL
	}
	return DefaultTTL
}

func (j *Jar) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Jar) prefix() string { return j.Cookie.Name(j.Name) + "-" }

// cookieName derives the cookie of a state: a short hash, so the cookie
// name reveals nothing and has a bounded length.
func (j *Jar) cookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return j.prefix() + base64.RawURLEncoding.EncodeToString(h[:9])
}

// Save seals t into its own cookie. When the browser already holds
// MaxPending transactions, the oldest (and any unreadable ones) are dropped.
func (j *Jar) Save(w http.ResponseWriter, r *http.Request, t *Transaction) error {
	if len(j.Codecs) == 0 {
		return errors.New("pkce: Jar has no codecs")
	}
	max := j.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	type pending struct {
		name    string
		created time.Time
	}
	var live []pending
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, j.prefix()) {
			continue
		}
		var old Transaction
		if securecookie.DecodeMulti(c.Name, c.Value, &old, j.Codecs...) != nil || j.now().Sub(old.Created) > j.ttl() {
			j.Cookie.Clear(w, c.Name)
			continue
		}
		live = append(live, pending{c.Name, old.Created})
	}
	if len(live) >= max {
		sort.Slice(live, func(a, b int) bool { return live[a].created.Before(live[b].created) })
		for _, p := range live[:len(live)-max+1] {
			j.Cookie.Clear(w, p.name)
		}
	}
	name := j.cookieName(t.State)
	v, err := securecookie.EncodeMulti(name, t, j.Codecs...)
	if err != nil {
		return err
	}
	j.Cookie.Set(w, name, v, j.ttl())
	return nil
}

// Take finds, checks and consumes the transaction of state: its cookie is
// cleared whatever the outcome, so a transaction is used at most once.
func (j *Jar) Take(ctx context.Context, w http.ResponseWriter, r *http.Request, state string) (*Transaction, error) {
	if state == "" {
		return nil, ErrNoTransaction
	}
	name := j.cookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, ErrNoTransaction
	}
	j.Cookie.Clear(w, name)
	var t Transaction
	if err := securecookie.DecodeMulti(name, c.Value, &t, j.Codecs...); err != nil {
		return nil, ErrNoTransaction
	}
	if subtle.ConstantTimeCompare([]byte(t.State), []byte(state)) != 1 {
		return nil, ErrNoTransaction
	}
	if age := j.now().Sub(t.Created); age > j.ttl() || age < -time.Minute {
		return nil, ErrExpired
	}
	if j.Replay != nil {
		first, err := j.Replay.RememberJTI(ctx, t.Issuer, "state:"+state, j.ttl())
		if err != nil {
			return nil, err
		}
		if !first {
			return nil, ErrReplayed
		}
	}
	return &t, nil
}
