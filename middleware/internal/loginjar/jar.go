// Package loginjar keeps the login transactions of a web app's sign-ins in
// flight (pkce.Transaction) in sealed cookies: a fixed number of slots per
// browser within a byte budget, single use (with an optional replay cache
// shared by the app's instances), with the cookie policy of the app's
// redirect URL (internal/cookie). It is the web layer's (middleware); pkce
// and rp hold no cookie code.
package loginjar

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/cookie"
	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Jar defaults and limits.
const (
	// DefaultTTL is how long a login may take from redirect to callback.
	DefaultTTL = 10 * time.Minute
	// DefaultMaxPending caps the logins a browser may have in flight at once
	// (parallel tabs): each has one of that many cookie slots, and starting
	// one more evicts the oldest.
	DefaultMaxPending = 3
	// maxSlots bounds MaxPending: each slot's cookie must keep a useful share
	// of CookieBudget.
	maxSlots = 4
	// CookieBudget bounds what all of one Jar's cookies add together to every
	// request of the site (their names and values, in bytes): the login
	// cookies have Path=/ (the __Host- prefix requires it), and proxies
	// refuse requests whose headers pass 8 KB. Each slot gets an equal share,
	// so the budget holds even when many logins start at once from a
	// browser whose requests carry none of the others' cookies.
	CookieBudget = 4096
	// MaxReturnTo is the longest return path a transaction is guaranteed to
	// carry (with an issuer URL of up to 100 bytes and up to 3 pending
	// logins). A longer one may make Save fail with ErrTooLarge.
	MaxReturnTo = 256
	// spentTTL is how long a consumed transaction's marker stays, so a
	// reloaded callback still finds its return path.
	spentTTL = 2 * time.Minute
)

// Errors returned by Jar.Take. Each means the login must start over. Like
// every error of this package they have a class (see rp.Class): these are
// ClassInvalid, a Jar without codecs or RedirectURL is ClassMisconfigured,
// and a failure of the Replay cache is ClassTemporary.
var (
	ErrNoTransaction error = errclass.New("middleware: no login transaction for this state in this browser", errclass.Invalid)
	ErrExpired       error = errclass.New("middleware: login transaction expired", errclass.Invalid)
	// ErrReplayed: the transaction was already used. When this browser used
	// it (a reloaded callback), Take returns it too, with only State,
	// Issuer, Prompt and ReturnTo: the login may have completed, and the
	// caller can send a signed-in user on to ReturnTo.
	ErrReplayed error = errclass.New("middleware: login transaction already used", errclass.Invalid)
)

// ErrTooLarge is returned by Save when the sealed transaction does not fit
// its share of CookieBudget, almost always because of a long ReturnTo (see
// MaxReturnTo). Browsers silently drop cookies over 4 KB, so writing it
// anyway would only make the callback fail later without a clue.
var ErrTooLarge error = errclass.New("middleware: login transaction too large for its cookie: shorten the return path", errclass.Invalid)

// Jar keeps login transactions in sealed cookies: a fixed number of slots
// (MaxPending), each holding one login, so parallel logins in several tabs
// do not overwrite each other while all of them together stay within
// CookieBudget, however many logins start at once. The cookies are
// HttpOnly, SameSite=Lax, Path=/, and Secure with the __Host- prefix unless
// RedirectURL is a plain-http loopback URL (local development).
//
// A consumed transaction leaves a small spent marker in its slot for a
// couple of minutes, so a reloaded callback is recognised (ErrReplayed with
// the return path) rather than reported as a missing login.
//
// The zero value is not usable: set Name, Codecs and RedirectURL.
type Jar struct {
	// Name is the cookie base name, e.g. "myapp-login"; each slot adds a
	// suffix ("-0", "-1", ...).
	Name string
	// Codecs seal and open the cookies (encrypted and authenticated). The
	// first encodes; all are tried to decode, so old keys keep working
	// during a key rotation. See securecookie.CodecsFromPairs.
	Codecs []securecookie.Codec
	// RedirectURL is the app's callback URL as registered at the OP
	// (rp.Client.RedirectURL). It decides the cookie attributes: Secure and
	// __Host- unless it is a plain-http loopback URL. Required: Save and
	// Take fail without it rather than guess.
	RedirectURL string
	// TTL: DefaultTTL when zero.
	TTL time.Duration
	// MaxPending is the number of slots: DefaultMaxPending when zero, at
	// most 4 (larger values count as 4).
	MaxPending int
	// Replay, when set, makes Take refuse a state it has already consumed,
	// also across instances sharing the store: Take records each state as
	// a one-time key (namespace tokenstore.LoginStates, scoped by the
	// transaction's issuer).
	Replay tokenstore.OneTimeKeys
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// record is what a slot cookie holds: a pending transaction, or the spent
// marker of a consumed one (State, Issuer, Prompt, ReturnTo only).
type record struct {
	pkce.Transaction
	Spent bool `json:"x,omitempty"`
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

func (j *Jar) slots() int {
	switch {
	case j.MaxPending <= 0:
		return DefaultMaxPending
	case j.MaxPending > maxSlots:
		return maxSlots
	}
	return j.MaxPending
}

func (j *Jar) policy() (cookie.Policy, error) {
	if len(j.Codecs) == 0 {
		return cookie.Policy{}, errclass.Wrap(errors.New("middleware: Jar has no codecs"), errclass.Misconfigured)
	}
	if j.RedirectURL == "" {
		return cookie.Policy{}, errclass.Wrap(errors.New("middleware: Jar.RedirectURL is empty: set it to the app's callback URL (rp.Client.RedirectURL()); it decides whether the cookies are Secure"), errclass.Misconfigured)
	}
	return cookie.PolicyFor(j.RedirectURL), nil
}

// slot is one slot cookie as found in a request.
type slot struct {
	name    string
	rec     *record // nil: free (absent or unreadable)
	expired bool    // rec is past its lifetime: the slot is free too
}

func (s slot) free() bool { return s.rec == nil || s.expired }

// read opens the slot cookies of r. Cookies under the jar's prefix that
// are not slots (an earlier version's, or planted) are cleared.
func (j *Jar) read(w http.ResponseWriter, r *http.Request, p cookie.Policy) []slot {
	prefix := p.Name(j.Name) + "-"
	slots := make([]slot, j.slots())
	for i := range slots {
		slots[i].name = prefix + strconv.Itoa(i)
	}
	now := j.now()
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, prefix) {
			continue
		}
		i, err := strconv.Atoi(c.Name[len(prefix):])
		if err != nil || i < 0 || i >= len(slots) || slots[i].name != c.Name {
			p.Clear(w, c.Name)
			continue
		}
		rec := new(record)
		if securecookie.DecodeMulti(c.Name, c.Value, rec, j.Codecs...) != nil {
			continue
		}
		life := j.ttl()
		if rec.Spent {
			life = spentTTL
		}
		age := now.Sub(rec.Created)
		slots[i].rec, slots[i].expired = rec, age > life || age < -time.Minute
	}
	return slots
}

// Save seals t into a slot cookie: a free slot if there is one (picked by
// t's state, so logins started at once spread over the free slots), else
// the slot of a spent transaction, else the oldest pending login's, which
// is evicted. ErrTooLarge when t does not fit the slot's share of
// CookieBudget.
func (j *Jar) Save(w http.ResponseWriter, r *http.Request, t *pkce.Transaction) error {
	p, err := j.policy()
	if err != nil {
		return err
	}
	slots := j.read(w, r, p)
	var free, spent []int
	oldest := -1
	for i, s := range slots {
		switch {
		case s.free():
			free = append(free, i)
		case s.rec.Spent:
			spent = append(spent, i)
		case oldest < 0 || s.rec.Created.Before(slots[oldest].rec.Created):
			oldest = i
		}
	}
	h := sha256.Sum256([]byte(t.State))
	pick := oldest
	switch {
	case len(free) > 0:
		pick = free[int(h[0])%len(free)]
	case len(spent) > 0:
		pick = spent[int(h[0])%len(spent)]
	}
	name := slots[pick].name
	limit := CookieBudget / len(slots)
	v, err := securecookie.EncodeMulti(name, &record{Transaction: *t}, j.Codecs...)
	if err != nil {
		// A codec with a length cap of its own refuses it: too large if it
		// takes the transaction without its return path.
		short := *t
		short.ReturnTo = ""
		if _, err2 := securecookie.EncodeMulti(name, &record{Transaction: short}, j.Codecs...); err2 == nil {
			return fmt.Errorf("%w (%v; the return path is %d bytes)", ErrTooLarge, err, len(t.ReturnTo))
		}
		return errclass.Wrap(fmt.Errorf("middleware: sealing the login transaction: %w", err), errclass.Misconfigured)
	}
	if size := len(name) + 1 + len(v); size > limit {
		return fmt.Errorf("%w (the sealed login is %d bytes, the limit %d; the return path is %d bytes)", ErrTooLarge, size, limit, len(t.ReturnTo))
	}
	p.Set(w, name, v, j.ttl())
	return nil
}

// Take finds, checks and consumes the transaction of state. A consumed
// transaction's slot keeps a spent marker, so it is used at most once; a
// spent marker found for state gives ErrReplayed with the return path.
func (j *Jar) Take(ctx context.Context, w http.ResponseWriter, r *http.Request, state string) (*pkce.Transaction, error) {
	p, err := j.policy()
	if err != nil {
		return nil, err
	}
	if state == "" {
		return nil, ErrNoTransaction
	}
	for _, s := range j.read(w, r, p) {
		if s.rec == nil || subtle.ConstantTimeCompare([]byte(s.rec.State), []byte(state)) != 1 {
			continue
		}
		t := s.rec.Transaction
		switch {
		case s.expired:
			p.Clear(w, s.name)
			if s.rec.Spent {
				return nil, ErrNoTransaction
			}
			return nil, ErrExpired
		case s.rec.Spent:
			return &t, ErrReplayed
		}
		if j.Replay != nil {
			first, err := j.Replay.UseOnce(ctx, tokenstore.LoginStates, t.Issuer, state, j.ttl())
			if err != nil {
				return nil, errclass.Wrap(fmt.Errorf("middleware: replay check: %w", err), errclass.Temporary)
			}
			if !first {
				return nil, ErrReplayed
			}
		}
		spent := &record{Transaction: pkce.Transaction{State: t.State, Issuer: t.Issuer, Prompt: t.Prompt, ReturnTo: t.ReturnTo, Created: j.now()}, Spent: true}
		if v, err := securecookie.EncodeMulti(s.name, spent, j.Codecs...); err == nil {
			p.Set(w, s.name, v, spentTTL)
		} else {
			p.Clear(w, s.name)
		}
		return &t, nil
	}
	return nil, ErrNoTransaction
}
