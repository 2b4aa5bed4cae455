package backchannel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Defaults for holding logouts the store could not apply.
const (
	// DefaultRetryInterval is how often held logouts are tried again when
	// Handler.RetryInterval is zero.
	DefaultRetryInterval = time.Second
	// DefaultMaxHeld bounds the held logouts when Handler.MaxHeld is zero.
	DefaultMaxHeld = 10_000
	// retryTimeout bounds one try of a held logout.
	retryTimeout = 10 * time.Second
)

// A verified logout that the store could not apply (it was unreachable) is
// held by the Handler: it answers 503 (an OP that retries delivers the token
// again, possibly to another instance), keeps the logout in memory, applies
// it as soon as the store answers again (at the next read through Guard, or
// every RetryInterval), and meanwhile refuses the sessions it ends on this
// instance (through Guard). Held logouts live in this process only: if it
// stops before the store answers again, they are lost unless the OP
// retries.

// heldLogout is one logout waiting for the store.
type heldLogout struct {
	lt    *rp.LogoutToken
	since time.Time
}

// held is the Handler's list of held logouts and the index Guard reads.
type held struct {
	mu      sync.Mutex
	list    []*heldLogout // oldest first
	running bool          // the retry loop runs
	kick    chan struct{} // wakes the retry loop

	index atomic.Pointer[heldIndex] // nil when nothing is held
}

type pair struct{ issuer, value string }

// heldIndex says which sessions the held logouts end, as the store would
// once they are applied: every session of a logged-out sid, and the
// subject's sessions without sid; for a logout without sid, the subject's
// sessions issued up to its iat.
type heldIndex struct {
	sids     map[pair]struct{}
	sidless  map[pair]struct{}
	subjects map[pair]time.Time
}

func (x *heldIndex) ends(s *tokenstore.Session) bool {
	if s.SID != "" {
		if _, ok := x.sids[pair{s.Issuer, s.SID}]; ok {
			return true
		}
	} else if _, ok := x.sidless[pair{s.Issuer, s.Subject}]; ok {
		return true
	}
	at, ok := x.subjects[pair{s.Issuer, s.Subject}]
	return ok && !s.Issued().After(at)
}

// reindexLocked rebuilds the index after the list changed.
func (hl *held) reindexLocked() {
	if len(hl.list) == 0 {
		hl.index.Store(nil)
		return
	}
	x := &heldIndex{sids: map[pair]struct{}{}, sidless: map[pair]struct{}{}, subjects: map[pair]time.Time{}}
	for _, p := range hl.list {
		lt := p.lt
		if lt.SessionID != "" {
			x.sids[pair{lt.Issuer, lt.SessionID}] = struct{}{}
			if lt.Subject != "" {
				x.sidless[pair{lt.Issuer, lt.Subject}] = struct{}{}
			}
			continue
		}
		k := pair{lt.Issuer, lt.Subject}
		if at := lt.IssuedAt.Time(); at.After(x.subjects[k]) {
			x.subjects[k] = at
		}
	}
	hl.index.Store(x)
}

// poke wakes the retry loop (the store answered).
func (hl *held) poke() {
	hl.mu.Lock()
	kick := hl.kick
	hl.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// Held reports how many verified logouts this Handler holds because the
// store could not apply them yet.
func (h *Handler) Held() int {
	h.held.mu.Lock()
	defer h.held.mu.Unlock()
	return len(h.held.list)
}

// hold keeps lt, which the store could not apply (err), and starts the
// retry loop.
func (h *Handler) hold(ctx context.Context, lt *rp.LogoutToken, err error) {
	hl := &h.held
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if slices.ContainsFunc(hl.list, func(p *heldLogout) bool { return p.lt.Issuer == lt.Issuer && p.lt.TokenID == lt.TokenID }) {
		return // the OP delivered it again
	}
	max := h.MaxHeld
	if max <= 0 {
		max = DefaultMaxHeld
	}
	for len(hl.list) >= max {
		old := hl.list[0].lt
		hl.list = hl.list[1:]
		h.emit(ctx, event.Event{Name: event.BackchannelLogoutDropped, Level: slog.LevelError, Issuer: old.Issuer, Subject: old.Subject, SID: old.SessionID,
			Attrs: []slog.Attr{slog.Int("max_held", max)}})
	}
	hl.list = append(hl.list, &heldLogout{lt: lt, since: h.now()})
	hl.reindexLocked()
	h.emit(ctx, event.Event{Name: event.BackchannelLogoutHeld, Level: slog.LevelError, Issuer: lt.Issuer, Subject: lt.Subject, SID: lt.SessionID,
		Attrs: []slog.Attr{slog.Int("held", len(hl.list))}, Err: err})
	if !hl.running {
		hl.running = true
		hl.kick = make(chan struct{}, 1)
		go h.retryLoop(hl.kick)
	}
}

// retryLoop tries the held logouts every RetryInterval, or when kicked,
// until none is left.
func (h *Handler) retryLoop(kick <-chan struct{}) {
	every := h.RetryInterval
	if every <= 0 {
		every = DefaultRetryInterval
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-kick:
			if !t.Stop() {
				<-t.C
			}
		}
		if h.retryHeld() {
			return
		}
		t.Reset(every)
	}
}

// retryHeld applies the held logouts, oldest first, until the store fails,
// and reports whether none is left (the loop then ends).
func (h *Handler) retryHeld() (done bool) {
	hl := &h.held
	hl.mu.Lock()
	list := slices.Clone(hl.list)
	hl.mu.Unlock()
	for _, p := range list {
		ctx, cancel := context.WithTimeout(context.Background(), retryTimeout)
		start := time.Now()
		n, err := h.end(ctx, p.lt, true)
		cancel()
		if err != nil {
			break // still down: next time
		}
		h.emit(context.Background(), logoutEvent(p.lt, n, time.Since(start), slog.Bool("held", true), slog.Duration("held_for", h.now().Sub(p.since))))
		hl.mu.Lock()
		hl.list = slices.DeleteFunc(hl.list, func(q *heldLogout) bool { return q == p })
		hl.reindexLocked()
		hl.mu.Unlock()
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if len(hl.list) == 0 {
		hl.running = false
		hl.kick = nil
		return true
	}
	return false
}

// Guard returns s, the store h.Store is a slice of, as this instance must
// read it: while logouts are held, sessions they end are missing (Get:
// tokenstore.ErrNotFound), refused (Create, Update: tokenstore.ErrRevoked)
// and their sids revoked (SIDRevoked), and a Get the store answers triggers
// a retry of the held logouts. Read the app's sessions through it
// (middleware.Web does). With nothing held it costs one atomic load per
// call.
func (h *Handler) Guard(s tokenstore.Store) tokenstore.Store { return &guard{Store: s, h: h} }

type guard struct {
	tokenstore.Store
	h *Handler
}

var errHeldLogout = fmt.Errorf("%w: ended by a back-channel logout this instance holds", tokenstore.ErrNotFound)

func (g *guard) Get(ctx context.Context, id string) (*tokenstore.Session, error) {
	s, err := g.Store.Get(ctx, id)
	x := g.h.held.index.Load()
	if err != nil || x == nil {
		return s, err
	}
	g.h.held.poke() // the store answers: apply the held logouts now
	if x.ends(s) {
		return nil, errHeldLogout
	}
	return s, nil
}

func (g *guard) Create(ctx context.Context, s *tokenstore.Session) error {
	if x := g.h.held.index.Load(); x != nil && x.ends(s) {
		return tokenstore.ErrRevoked
	}
	return g.Store.Create(ctx, s)
}

func (g *guard) Update(ctx context.Context, s *tokenstore.Session) error {
	if x := g.h.held.index.Load(); x != nil && x.ends(s) {
		return tokenstore.ErrRevoked
	}
	return g.Store.Update(ctx, s)
}

func (g *guard) SIDRevoked(ctx context.Context, issuer, sid string) (bool, error) {
	if x := g.h.held.index.Load(); x != nil && sid != "" {
		if _, ok := x.sids[pair{issuer, sid}]; ok {
			return true, nil
		}
	}
	return g.Store.SIDRevoked(ctx, issuer, sid)
}
