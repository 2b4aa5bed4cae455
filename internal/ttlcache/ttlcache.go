// Package ttlcache is the bounded cache of values that expire, keyed by a
// secret string (a token, a cookie): the verified access tokens and
// introspection answers of package rp, the opened session cookies of the
// web middleware. One mechanism for every "remember what was verified
// until it expires".
package ttlcache

import (
	"hash/maphash"
	"strings"
	"sync"
)

// shards splits a cache so that concurrent requests rarely touch the same
// lock.
const shards = 32

// Cache remembers values until their expiry. It is bounded; when a shard
// is full, expired entries go first, then random ones (Go's map order).
// Entries are keyed by a seeded 64-bit hash of the key (Hash) and hold the
// key itself, so a hash collision is a miss, never a wrong hit. It is safe
// for concurrent use.
type Cache[V any] struct {
	perShard int
	shards   [shards]shard[V]
}

type shard[V any] struct {
	mu sync.RWMutex
	m  map[uint64]*entry[V]
	_  [40]byte // keep shards' locks on separate cache lines
}

type entry[V any] struct {
	key     string
	v       V
	expires int64 // unix seconds: dead from then on
}

// New returns a cache of about size entries (rounded up to a multiple of
// the shard count; at least one per shard).
func New[V any](size int) *Cache[V] {
	c := &Cache[V]{perShard: max(1, (size+shards-1)/shards)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*entry[V])
	}
	return c
}

// seed is shared by every cache, so a caller that probes several caches
// (rp's MultiIssuerVerifier) hashes a key once.
var seed = maphash.MakeSeed()

// Hash is the hash of key that Get, Put and Remove take.
func Hash(key string) uint64 { return maphash.String(seed, key) }

func (c *Cache[V]) shard(h uint64) *shard[V] { return &c.shards[h>>59] } // top 5 bits: 32 shards

// Get returns the value of key (h = Hash(key)) when it is cached and not
// expired at now (unix seconds).
func (c *Cache[V]) Get(h uint64, key string, now int64) (V, bool) {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || e.key != key || now >= e.expires {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put caches v for key until expires (unix seconds), unless that is
// already past at now.
func (c *Cache[V]) Put(h uint64, key string, v V, expires, now int64) {
	if now >= expires {
		return
	}
	e := &entry[V]{key: strings.Clone(key), v: v, expires: expires}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; !ok && len(s.m) >= c.perShard {
		for k, old := range s.m {
			if now >= old.expires {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[h] = e
}

// Remove forgets key.
func (c *Cache[V]) Remove(h uint64, key string) {
	s := c.shard(h)
	s.mu.Lock()
	if e := s.m[h]; e != nil && e.key == key {
		delete(s.m, h)
	}
	s.mu.Unlock()
}

// Len counts the entries, expired ones included.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
