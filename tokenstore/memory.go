package tokenstore

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"runtime"
	"sync"
	"time"
)

// Defaults used by NewMemory for zero MemoryOptions fields.
const (
	DefaultMaxSessions        = 100_000
	DefaultMaxOneTimeKeys     = 100_000
	DefaultMaxRevokedSIDs     = 100_000
	DefaultMaxRevokedSubjects = 100_000
	DefaultSweepInterval      = time.Minute
)

// sweepBatch bounds how many expired entries one sweep step frees while
// holding the store's mutex, so a sweep never stalls requests for long.
const sweepBatch = 1024

// MemoryOptions configures a Memory store. The zero value is ready to use.
type MemoryOptions struct {
	// MaxSessions bounds how many sessions are kept. Zero or less means
	// DefaultMaxSessions. See Memory for what is evicted when it is reached.
	MaxSessions int
	// MaxOneTimeKeys bounds how many one-time keys (UseOnce: logout token
	// ids, login states) are kept. Zero or less means DefaultMaxOneTimeKeys.
	MaxOneTimeKeys int
	// MaxRevokedSIDs bounds how many revoked OP sessions RevokeSID keeps.
	// Zero or less means DefaultMaxRevokedSIDs.
	MaxRevokedSIDs int
	// MaxRevokedSubjects bounds how many logged-out subjects RevokeSubject
	// keeps. Zero or less means DefaultMaxRevokedSubjects.
	MaxRevokedSubjects int
	// SweepInterval is how often a background goroutine frees expired
	// entries. Zero means DefaultSweepInterval; a negative value disables the
	// sweep, and expired entries are then freed only when they are looked up
	// or when a bound is reached.
	SweepInterval time.Duration
	// Now returns the current time. Nil means time.Now. Tests set it to
	// control expiry.
	Now func() time.Time
}

// Memory is the default Store: everything lives in this process, so it
// serves one instance of each app (use a shared store such as
// tokenstore/redisstore when apps run on several instances). It is safe for
// concurrent use and bounded in memory. Create one with NewMemory.
//
// Expired entries are never returned. They are freed when looked up, when a
// bound is reached, and by a background sweep every SweepInterval. A
// session over its IdleTimeout is kept until its ExpiresAt, and Get reports
// it with an *ExpiredError, unless it is deleted or evicted first. The sweep
// goroutine starts with the first write and stops on Close, or when the
// Memory becomes unreachable; nothing runs before the first write.
//
// Eviction, when a bound is reached:
//
//   - Sessions (MaxSessions): Create first frees every expired session; if
//     the store is still full it evicts the least recently used session, the
//     one whose last Get, Create or Update is the oldest. Its user has to
//     sign in again; no other record is touched.
//   - One-time keys (MaxOneTimeKeys): UseOnce first frees expired keys,
//     then forgets the key closest to its expiry. A forgotten key could be
//     replayed for the rest of its ttl: a logout token can only end sessions
//     again, never start one; a login state still needs its browser's
//     transaction cookie and an unused authorization code. The key evicted
//     is the one with the least time left to be replayed.
//   - Revoked OP sessions (MaxRevokedSIDs) and subjects
//     (MaxRevokedSubjects): RevokeSID and RevokeSubject first free expired
//     entries, then forget the revocation closest to its expiry. Until that
//     revocation would have expired anyway, a login that was in flight for
//     that OP session or subject could then still be stored. Choose the
//     bounds above the number of back-channel logouts expected within the
//     revocation ttl.
//
// A session with a zero ExpiresAt has no absolute expiry: it stays until it
// is deleted or evicted.
//
// The memory store never blocks except in Lock, so only Lock uses its
// context. A refresh lock is held until its unlock function is called: a
// holder that forgets to call it blocks the session's refreshes.
type Memory struct {
	s *memState
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store configured by opts.
func NewMemory(opts MemoryOptions) *Memory {
	st := &memState{
		now:         opts.Now,
		maxSessions: positiveOr(opts.MaxSessions, DefaultMaxSessions),
		interval:    opts.SweepInterval,
		sessions:    make(map[idKey]*memEntry),
		bySID:       make(map[pairKey]entrySet),
		bySubject:   make(map[pairKey]entrySet),
		once:        newTTLSet[onceKey](positiveOr(opts.MaxOneTimeKeys, DefaultMaxOneTimeKeys)),
		revoked:     newTTLSet[pairKey](positiveOr(opts.MaxRevokedSIDs, DefaultMaxRevokedSIDs)),
		subjects:    newTTLSet[pairKey](positiveOr(opts.MaxRevokedSubjects, DefaultMaxRevokedSubjects)),
		locks:       make(map[idKey]*lockEntry),
	}
	if st.now == nil {
		st.now = time.Now
	}
	if st.interval == 0 {
		st.interval = DefaultSweepInterval
	}
	st.lru.prev, st.lru.next = &st.lru, &st.lru
	m := &Memory{s: st}
	// A Memory that is dropped without Close must not leave its sweep
	// goroutine behind. The goroutine only references st, never m.
	runtime.AddCleanup(m, func(st *memState) { st.stopSweep(false) }, st)
	return m
}

func positiveOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Close stops the background sweep and waits for it to end. The store stays
// usable afterwards, without the sweep. Close always returns nil; calling it
// more than once is harmless.
func (m *Memory) Close() error {
	m.s.stopSweep(true)
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, id string) (*Session, error) { return m.s.get(id) }

// Touch implements Store.
func (m *Memory) Touch(_ context.Context, id string, at time.Time) error { return m.s.touch(id, at) }

// Create implements Store.
func (m *Memory) Create(_ context.Context, s *Session) error { return m.s.create(s) }

// Update implements Store.
func (m *Memory) Update(_ context.Context, s *Session) error { return m.s.update(s) }

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, id string) error {
	m.s.delete(id)
	return nil
}

// DeleteBySID implements Store.
func (m *Memory) DeleteBySID(_ context.Context, issuer, sid, subject string) (int, error) {
	return m.s.deleteBySID(issuer, sid, subject), nil
}

// DeleteBySubject implements Store.
func (m *Memory) DeleteBySubject(_ context.Context, issuer, subject string) (int, error) {
	return m.s.deleteBySubject(issuer, subject), nil
}

// UseOnce implements Store.
func (m *Memory) UseOnce(_ context.Context, namespace, scope, key string, ttl time.Duration) (bool, error) {
	return m.s.useOnce(onceKey{namespace, scope, key}, ttl), nil
}

// RevokeSID implements Store. A ttl of zero or less, or an empty sid, records
// nothing. Revoking an OP session again keeps the later of the two expiries.
func (m *Memory) RevokeSID(_ context.Context, issuer, sid string, ttl time.Duration) error {
	m.s.revokeSID(issuer, sid, ttl)
	return nil
}

// SIDRevoked implements Store.
func (m *Memory) SIDRevoked(_ context.Context, issuer, sid string) (bool, error) {
	return m.s.sidRevoked(issuer, sid), nil
}

// RevokeSubject implements Store. A ttl of zero or less, or an empty
// subject, records nothing. Revoking a subject again keeps the later time
// and the later expiry.
func (m *Memory) RevokeSubject(_ context.Context, issuer, subject string, at time.Time, ttl time.Duration) error {
	m.s.revokeSubject(issuer, subject, at, ttl)
	return nil
}

// Lock implements Store. It fails with ctx.Err() when ctx is done before the
// lock is taken, including when ctx is already done on entry.
func (m *Memory) Lock(ctx context.Context, id string) (func(), error) { return m.s.lock(ctx, id) }

// idKey is the key a session (and its lock) is filed under: the SHA-256 that
// HashID encodes, kept as an array so lookups need no allocation.
type idKey [sha256.Size]byte

func keyOf(id string) idKey {
	var buf [64]byte // on the stack: a session id is 43 bytes, too long for []byte(id)'s own 32-byte buffer
	if len(id) <= len(buf) {
		return sha256.Sum256(append(buf[:0], id...))
	}
	return sha256.Sum256([]byte(id))
}

// pairKey names a record by issuer and one value (sid or subject), and
// onceKey a one-time key. A struct key cannot collide the way a
// concatenated string could.
type (
	pairKey struct{ issuer, value string }
	onceKey struct{ namespace, scope, key string }
)

// memEntry is one stored session.
type memEntry struct {
	key idKey    // hash of the session id
	s   *Session // never mutated once stored; s.ID is empty

	prev, next *memEntry // LRU list; most recently used first
	heapIdx    int       // index in memState.expiry; -1 when not in it
}

func (e *memEntry) expiry() time.Time { return e.s.ExpiresAt }
func (e *memEntry) setIndex(i int)    { e.heapIdx = i }

func (e *memEntry) live(now time.Time) bool {
	return e.s.ExpiresAt.IsZero() || now.Before(e.s.ExpiresAt)
}

type entrySet map[*memEntry]struct{}

type lockEntry struct {
	held chan struct{} // holds one token while the lock is held
	refs int           // holders and waiters; the entry is freed at zero
}

type memState struct {
	now         func() time.Time
	maxSessions int
	interval    time.Duration

	mu        sync.Mutex
	sessions  map[idKey]*memEntry
	lru       memEntry // sentinel of the LRU list
	expiry    expHeap[*memEntry]
	bySID     map[pairKey]entrySet // sessions with a non-empty SID
	bySubject map[pairKey]entrySet
	once      *ttlSet[onceKey]
	revoked   *ttlSet[pairKey] // OP sessions (issuer, sid)
	subjects  *ttlSet[pairKey] // subjects (issuer, subject), each with its logout time

	sweepStarted bool
	closed       bool
	stop, done   chan struct{}

	lockMu sync.Mutex
	locks  map[idKey]*lockEntry
}

// Sessions.

func (st *memState) get(id string) (*Session, error) {
	key := keyOf(id)
	now := st.now()
	st.mu.Lock()
	e := st.sessions[key]
	if e == nil {
		st.mu.Unlock()
		return nil, ErrNotFound
	}
	if st.revokedLocked(e.s, now) {
		st.mu.Unlock()
		return nil, ErrNotFound // logged out; DeleteBySID or DeleteBySubject removes it
	}
	if err := e.s.CheckLifetime(now); err != nil {
		if !e.live(now) {
			st.removeLocked(e)
		} // an idle session is kept until ExpiresAt, and reported so
		st.mu.Unlock()
		err.(*ExpiredError).Session.ID = id
		return nil, err
	}
	st.useLocked(e)
	s := e.s
	st.mu.Unlock()
	c := s.Clone()
	c.ID = id
	return c, nil
}

func (st *memState) touch(id string, at time.Time) error {
	key := keyOf(id)
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.sessions[key]
	if e == nil || st.revokedLocked(e.s, now) {
		return ErrNotFound
	}
	if err := e.s.CheckLifetime(now); err != nil {
		err.(*ExpiredError).Session.ID = id
		return err
	}
	if at.After(e.s.LastSeen) {
		c := *e.s // records are never mutated once stored: replace it
		c.LastSeen = at
		e.s = &c
	}
	st.useLocked(e)
	return nil
}

func (st *memState) create(s *Session) error {
	key := keyOf(s.ID)
	c := s.Clone()
	c.ID = ""
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.revokedLocked(s, now) {
		return ErrRevoked
	}
	if e := st.sessions[key]; e != nil {
		if e.live(now) {
			return ErrExists
		}
		st.removeLocked(e)
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return nil // already over: nothing to keep
	}
	if len(st.sessions) >= st.maxSessions {
		st.expireSessionsLocked(now, -1)
		for len(st.sessions) >= st.maxSessions {
			st.removeLocked(st.lru.prev)
		}
	}
	st.insertLocked(key, c)
	st.startSweepLocked()
	return nil
}

func (st *memState) update(s *Session) error {
	key := keyOf(s.ID)
	c := s.Clone()
	c.ID = ""
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.sessions[key]
	if e == nil {
		return ErrNotFound
	}
	if !e.live(now) {
		st.removeLocked(e)
		return ErrNotFound
	}
	if st.revokedLocked(e.s, now) || st.revokedLocked(s, now) {
		return ErrRevoked
	}
	st.removeLocked(e)
	if c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt) {
		st.insertLocked(key, c)
	}
	return nil
}

func (st *memState) delete(id string) {
	key := keyOf(id)
	st.mu.Lock()
	if e := st.sessions[key]; e != nil {
		st.removeLocked(e)
	}
	st.mu.Unlock()
}

func (st *memState) deleteBySID(issuer, sid, subject string) int {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	if sid != "" {
		for e := range st.bySID[pairKey{issuer, sid}] {
			if e.live(now) {
				n++
			}
			st.removeLocked(e)
		}
	}
	if subject != "" {
		for e := range st.bySubject[pairKey{issuer, subject}] {
			if e.s.SID != "" {
				continue
			}
			if e.live(now) {
				n++
			}
			st.removeLocked(e)
		}
	}
	return n
}

func (st *memState) deleteBySubject(issuer, subject string) int {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for e := range st.bySubject[pairKey{issuer, subject}] {
		if e.live(now) {
			n++
		}
		st.removeLocked(e)
	}
	return n
}

// revokedLocked reports whether s is revoked: its OP session is, or its
// subject was logged out at or after s was issued.
func (st *memState) revokedLocked(s *Session, now time.Time) bool {
	if s.SID != "" && st.revoked.has(pairKey{s.Issuer, s.SID}, now) {
		return true
	}
	if len(st.subjects.items) == 0 {
		return false
	}
	at, ok := st.subjects.get(pairKey{s.Issuer, s.Subject}, now)
	return ok && !s.Issued().After(at)
}

// insertLocked files a new entry for c under key in every index and makes it
// the most recently used.
func (st *memState) insertLocked(key idKey, c *Session) {
	e := &memEntry{key: key, s: c, heapIdx: -1}
	st.sessions[key] = e
	if !c.ExpiresAt.IsZero() {
		heap.Push(&st.expiry, e)
	}
	if c.SID != "" {
		addToIndex(st.bySID, pairKey{c.Issuer, c.SID}, e)
	}
	addToIndex(st.bySubject, pairKey{c.Issuer, c.Subject}, e)
	e.prev, e.next = &st.lru, st.lru.next
	e.prev.next, e.next.prev = e, e
}

// removeLocked removes e from the store and from every index.
func (st *memState) removeLocked(e *memEntry) {
	delete(st.sessions, e.key)
	if e.heapIdx >= 0 {
		heap.Remove(&st.expiry, e.heapIdx)
	}
	if e.s.SID != "" {
		removeFromIndex(st.bySID, pairKey{e.s.Issuer, e.s.SID}, e)
	}
	removeFromIndex(st.bySubject, pairKey{e.s.Issuer, e.s.Subject}, e)
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// useLocked makes e the most recently used session.
func (st *memState) useLocked(e *memEntry) {
	if st.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &st.lru, st.lru.next
	e.prev.next, e.next.prev = e, e
}

// expireSessionsLocked frees up to limit expired sessions (all when limit is
// negative) and reports how many it freed.
func (st *memState) expireSessionsLocked(now time.Time, limit int) int {
	n := 0
	for len(st.expiry) > 0 && n != limit && !st.expiry[0].live(now) {
		st.removeLocked(st.expiry[0])
		n++
	}
	return n
}

func addToIndex(idx map[pairKey]entrySet, k pairKey, e *memEntry) {
	set := idx[k]
	if set == nil {
		set = make(entrySet, 1)
		idx[k] = set
	}
	set[e] = struct{}{}
}

func removeFromIndex(idx map[pairKey]entrySet, k pairKey, e *memEntry) {
	set := idx[k]
	delete(set, e)
	if len(set) == 0 {
		delete(idx, k)
	}
}

// Logout state.

func (st *memState) useOnce(k onceKey, ttl time.Duration) bool {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.once.has(k, now) {
		return false
	}
	if ttl > 0 {
		st.once.put(k, now.Add(ttl), time.Time{}, now)
		st.startSweepLocked()
	}
	return true
}

func (st *memState) revokeSID(issuer, sid string, ttl time.Duration) {
	if sid == "" || ttl <= 0 {
		return
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.revoked.put(pairKey{issuer, sid}, now.Add(ttl), time.Time{}, now)
	st.startSweepLocked()
}

func (st *memState) revokeSubject(issuer, subject string, at time.Time, ttl time.Duration) {
	if subject == "" || ttl <= 0 {
		return
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.subjects.put(pairKey{issuer, subject}, now.Add(ttl), at, now)
	st.startSweepLocked()
}

func (st *memState) sidRevoked(issuer, sid string) bool {
	if sid == "" {
		return false
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.revoked.has(pairKey{issuer, sid}, now)
}

// Sweep.

// startSweepLocked starts the sweep goroutine unless it runs already, is
// disabled, or the store was closed.
func (st *memState) startSweepLocked() {
	if st.sweepStarted || st.closed || st.interval < 0 {
		return
	}
	st.sweepStarted = true
	st.stop = make(chan struct{})
	st.done = make(chan struct{})
	go st.sweepLoop(st.stop, st.done)
}

func (st *memState) sweepLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(st.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			st.sweep()
		}
	}
}

// sweep frees every expired entry, sweepBatch entries per hold of the mutex.
func (st *memState) sweep() {
	for {
		now := st.now()
		st.mu.Lock()
		n := st.expireSessionsLocked(now, sweepBatch)
		n += st.once.expire(now, sweepBatch-n)
		n += st.revoked.expire(now, sweepBatch-n)
		n += st.subjects.expire(now, sweepBatch-n)
		st.mu.Unlock()
		if n < sweepBatch {
			return
		}
	}
}

// stopSweep stops the sweep goroutine for good, waiting for it to end when
// wait is set.
func (st *memState) stopSweep(wait bool) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.closed = true
	stop, done := st.stop, st.done
	st.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	if wait {
		<-done
	}
}

// Locks.

func (st *memState) lock(ctx context.Context, id string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := keyOf(id)
	st.lockMu.Lock()
	l := st.locks[key]
	if l == nil {
		l = &lockEntry{held: make(chan struct{}, 1)}
		st.locks[key] = l
	}
	l.refs++
	st.lockMu.Unlock()

	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		st.releaseLockEntry(key, l)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.held
			st.releaseLockEntry(key, l)
		})
	}, nil
}

func (st *memState) releaseLockEntry(key idKey, l *lockEntry) {
	st.lockMu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(st.locks, key)
	}
	st.lockMu.Unlock()
}

// ttlSet is a bounded set of keys that each expire at their own time, each
// with a time value (the logout time of a subject; unused otherwise).
type ttlSet[K comparable] struct {
	max   int
	items map[K]*ttlItem[K]
	heap  expHeap[*ttlItem[K]]
}

type ttlItem[K comparable] struct {
	key K
	exp time.Time
	at  time.Time
	idx int
}

func (it *ttlItem[K]) expiry() time.Time { return it.exp }
func (it *ttlItem[K]) setIndex(i int)    { it.idx = i }

func newTTLSet[K comparable](max int) *ttlSet[K] {
	return &ttlSet[K]{max: max, items: make(map[K]*ttlItem[K])}
}

// has reports whether k is in the set and not expired, freeing it if expired.
func (s *ttlSet[K]) has(k K, now time.Time) bool {
	_, ok := s.get(k, now)
	return ok
}

// get returns the time value of k when k is in the set and not expired,
// freeing it if expired.
func (s *ttlSet[K]) get(k K, now time.Time) (time.Time, bool) {
	it := s.items[k]
	if it == nil {
		return time.Time{}, false
	}
	if !now.Before(it.exp) {
		s.remove(it)
		return time.Time{}, false
	}
	return it.at, true
}

// put adds k with time value at until exp, or moves its expiry and its time
// value to exp and at when they are later. When the set is full it frees
// expired keys, then the keys closest to expiry.
func (s *ttlSet[K]) put(k K, exp, at, now time.Time) {
	if it := s.items[k]; it != nil {
		if at.After(it.at) {
			it.at = at
		}
		if exp.After(it.exp) {
			it.exp = exp
			heap.Fix(&s.heap, it.idx)
		}
		return
	}
	for len(s.items) >= s.max {
		s.remove(s.heap[0]) // expired ones come first
	}
	it := &ttlItem[K]{key: k, exp: exp, at: at}
	s.items[k] = it
	heap.Push(&s.heap, it)
}

func (s *ttlSet[K]) remove(it *ttlItem[K]) {
	heap.Remove(&s.heap, it.idx)
	delete(s.items, it.key)
}

// expire frees up to limit expired keys and reports how many it freed.
func (s *ttlSet[K]) expire(now time.Time, limit int) int {
	n := 0
	for n < limit && len(s.heap) > 0 && !now.Before(s.heap[0].exp) {
		s.remove(s.heap[0])
		n++
	}
	return n
}

// expHeap is a min-heap by expiry for container/heap.
type expHeap[T interface {
	expiry() time.Time
	setIndex(int)
}] []T

func (h expHeap[T]) Len() int           { return len(h) }
func (h expHeap[T]) Less(i, j int) bool { return h[i].expiry().Before(h[j].expiry()) }
func (h expHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setIndex(i)
	h[j].setIndex(j)
}

func (h *expHeap[T]) Push(x any) {
	x.(T).setIndex(len(*h))
	*h = append(*h, x.(T))
}

func (h *expHeap[T]) Pop() any {
	old := *h
	n := len(old) - 1
	x := old[n]
	var zero T
	old[n] = zero
	*h = old[:n]
	x.setIndex(-1)
	return x
}
