package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// The near cache (Options.NearCache) keeps decoded sessions in the process,
// so that a warm Get costs about what the memory store's does instead of a
// round trip to Redis, and stays right because Redis tells it what changed:
// a tracker (tracker.go) holds a connection on which Redis reports every
// write to the keys a cached Get depends on (server-assisted client-side
// caching, CLIENT TRACKING in broadcasting mode):
//
//	s:<member>  the session itself (Create, Update, Touch, Delete, its
//	            deletion by a logout, its expiry)
//	r:<sidh>    its OP session revoked (a back-channel logout with a sid)
//	e:<subh>    its subject logged out (a back-channel logout without sid)
//
// A Get is refused by a revocation marker as well as by the session's
// deletion, so the cache drops a session when either changes: by key for
// s:, through the sid and subject indexes below for r: and e:.
//
// Staleness is bounded by a lease, whatever the network does: the tracker
// pings Redis on its connection every MaxStale/3, and the cache serves
// entries only while the pong of a ping sent less than MaxStale ago has
// been received. Redis answers a ping after sending every invalidation of
// the writes it applied before, on the same connection, and the tracker
// applies what it reads in order; so once a write has returned to its
// writer (on any instance), no Get anywhere is served a value it changed
// MaxStale later: either a later ping's pong shows the invalidation was
// applied, or the lease has run out and the cache is not used. Normally
// the invalidation arrives within a round trip (BENCHMARKS.md).
//
// When the tracking connection is lost (a reconnect, a Redis restart, a
// failover: anything the tracker cannot prove it saw every invalidation
// across), the cache is emptied and stays unused until tracking is back,
// and is emptied again then.
//
// A Get that misses reads Redis and fills the cache unless something that
// could have changed its answer happened during the read (a ticket marked
// dirty by an invalidation of its key, or of any marker, or by a flush):
// an invalidation that overtakes the reply can never leave a stale entry.
// Writes made through this Store drop what they change from the cache
// before returning, so one instance never reads its own writes stale; and
// a session whose refresh lock this Store holds is never served from the
// cache (the holder must see the tokens another instance's refresh just
// stored, or it would spend a rotated refresh token).

// cacheKey is a session's place in the near cache: the SHA-256 that
// tokenstore.HashID encodes.
type cacheKey = [sha256.Size]byte

type nearEntry struct {
	sess       *tokenstore.Session // never mutated; ID empty
	sidh, subh string              // index hashes; sidh "" when it has no sid
}

// ticket is a Get that missed, reading Redis.
type ticket struct {
	key   cacheKey
	epoch uint64
	dirty bool
}

type nearCache struct {
	max      int
	maxStale time.Duration
	base     time.Time    // origin of freshUntil (monotonic)
	fresh    atomic.Int64 // entries are served while time.Since(base) is below it (ns)

	mu      sync.RWMutex
	entries map[cacheKey]*nearEntry
	bySID   map[string]map[cacheKey]struct{}
	bySub   map[string]map[cacheKey]struct{}
	tickets map[*ticket]struct{}
	locked  map[cacheKey]int // refresh locks this Store holds
	epoch   uint64           // incremented by every flush

	hits, misses atomic.Int64
}

func newNearCache(max int, maxStale time.Duration) *nearCache {
	return &nearCache{
		max: max, maxStale: maxStale, base: time.Now(),
		entries: make(map[cacheKey]*nearEntry),
		bySID:   make(map[string]map[cacheKey]struct{}),
		bySub:   make(map[string]map[cacheKey]struct{}),
		tickets: make(map[*ticket]struct{}),
		locked:  make(map[cacheKey]int),
	}
}

// serving reports whether the lease allows serving entries now.
func (c *nearCache) serving() bool {
	return int64(time.Since(c.base)) < c.fresh.Load()
}

// extend moves the lease to sent+maxStale: the pong of a ping sent at sent
// was received, so every write Redis applied before sent has been
// invalidated here.
func (c *nearCache) extend(sent time.Time) {
	until := int64(sent.Sub(c.base) + c.maxStale)
	for {
		cur := c.fresh.Load()
		if until <= cur || c.fresh.CompareAndSwap(cur, until) {
			return
		}
	}
}

// get returns the cached session (shared: clone it), or nil.
func (c *nearCache) get(key cacheKey) *tokenstore.Session {
	if c == nil {
		return nil
	}
	if !c.serving() {
		c.misses.Add(1)
		return nil
	}
	c.mu.RLock()
	e := c.entries[key]
	locked := c.locked[key] > 0
	c.mu.RUnlock()
	if e == nil || locked {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return e.sess
}

// begin registers a Get that missed and is about to read Redis.
func (c *nearCache) begin(key cacheKey) *ticket {
	if c == nil {
		return nil
	}
	t := &ticket{key: key}
	c.mu.Lock()
	t.epoch = c.epoch
	c.tickets[t] = struct{}{}
	c.mu.Unlock()
	return t
}

// finish ends a ticket and caches what its read found (v is the value
// in Redis, whose head holds the index hashes), unless the ticket was
// dirtied, a flush happened, or the session is locked here.
func (c *nearCache) finish(t *ticket, sess *tokenstore.Session, v []byte) {
	if t == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tickets, t)
	if sess == nil || t.dirty || t.epoch != c.epoch || c.locked[t.key] > 0 || len(v) < headsLen {
		return
	}
	c.removeLocked(t.key)
	for len(c.entries) >= c.max {
		for k := range c.entries { // a random victim
			c.removeLocked(k)
			break
		}
	}
	kept := sess.Clone()
	kept.ID = ""
	e := &nearEntry{sess: kept, sidh: string(v[:pairHashLen]), subh: string(v[pairHashLen : 2*pairHashLen])}
	if e.sidh == noSID {
		e.sidh = ""
	} else {
		addKey(c.bySID, e.sidh, t.key)
	}
	addKey(c.bySub, e.subh, t.key)
	c.entries[t.key] = e
}

func addKey(idx map[string]map[cacheKey]struct{}, h string, key cacheKey) {
	set := idx[h]
	if set == nil {
		set = make(map[cacheKey]struct{}, 1)
		idx[h] = set
	}
	set[key] = struct{}{}
}

func (c *nearCache) removeLocked(key cacheKey) {
	e := c.entries[key]
	if e == nil {
		return
	}
	delete(c.entries, key)
	for _, x := range []struct {
		idx map[string]map[cacheKey]struct{}
		h   string
	}{{c.bySID, e.sidh}, {c.bySub, e.subh}} {
		if set := x.idx[x.h]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(x.idx, x.h)
			}
		}
	}
}

// dropSessionLocked drops a session and dirties the reads of it in flight.
func (c *nearCache) dropSessionLocked(key cacheKey) {
	c.removeLocked(key)
	for t := range c.tickets {
		if t.key == key {
			t.dirty = true
		}
	}
}

// dropIndexLocked drops the sessions of an OP session or subject whose
// marker changed, and dirties every read in flight (which session it reads
// is known only once it returns).
func (c *nearCache) dropIndexLocked(idx map[string]map[cacheKey]struct{}, h string) {
	for key := range idx[h] {
		c.removeLocked(key)
	}
	for t := range c.tickets {
		t.dirty = true
	}
}

// invalidateSession, invalidateSID and invalidateSubject apply this
// Store's own writes.
func (c *nearCache) invalidateSession(key cacheKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.dropSessionLocked(key)
	c.mu.Unlock()
}

func (c *nearCache) invalidateSID(sidh string) {
	if c == nil || sidh == "" {
		return
	}
	c.mu.Lock()
	c.dropIndexLocked(c.bySID, sidh)
	c.mu.Unlock()
}

func (c *nearCache) invalidateSubject(subh string) {
	if c == nil || subh == "" {
		return
	}
	c.mu.Lock()
	c.dropIndexLocked(c.bySub, subh)
	c.mu.Unlock()
}

// invalidate applies an invalidation message from Redis: the names of
// keys that changed. base is "{Prefix}:"; keys of other prefixes (another
// store sharing the tracked prefixes' text in another database) are
// applied too: dropping an entry is always safe.
func (c *nearCache) invalidate(base string, keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, base)
		if !ok || len(rest) < 2 || rest[1] != ':' {
			continue
		}
		h := rest[2:]
		switch rest[0] {
		case 's':
			var key cacheKey
			if n, err := base64.RawURLEncoding.Decode(key[:], []byte(h)); err == nil && n == len(key) {
				c.dropSessionLocked(key)
			}
		case 'r':
			c.dropIndexLocked(c.bySID, h)
		case 'e':
			c.dropIndexLocked(c.bySub, h)
		}
	}
}

// flush empties the cache and dirties every read in flight: the tracker
// cannot vouch for what it holds.
func (c *nearCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	clear(c.bySID)
	clear(c.bySub)
}

// lost stops serving, then flushes: tracking was lost.
func (c *nearCache) lost() {
	c.fresh.Store(0)
	c.flush()
}

// lock and unlock mark a session whose refresh lock this Store holds: it is
// read from Redis, never from the cache, until unlocked.
func (c *nearCache) lock(key cacheKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.locked[key]++
	c.dropSessionLocked(key)
	c.mu.Unlock()
}

func (c *nearCache) unlock(key cacheKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.locked[key]--; c.locked[key] <= 0 {
		delete(c.locked, key)
	}
	c.mu.Unlock()
}

func (c *nearCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
