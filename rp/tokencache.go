package rp

import (
	"hash/maphash"
	"strings"
	"sync"
)

// cacheShards splits the verified-token cache so that concurrent requests
// rarely touch the same lock.
const cacheShards = 32

// tokenCache remembers verified access tokens until their exp. It is
// bounded; when a shard is full, expired entries go first, then random
// ones (Go's map order). Entries are keyed by a seeded 64-bit hash of the
// raw token and hold the token itself, so a hash collision is a miss, never
// a wrong hit.
type tokenCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]*cacheEntry
	_  [40]byte // keep shards' locks on separate cache lines
}

type cacheEntry struct {
	token   string
	claims  *Claims
	expires int64 // unix seconds: the token's exp; dead from then on
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*cacheEntry)
	}
	return c
}

// cacheSeed is shared by every cache, so a MultiIssuerVerifier hashes a
// token once to probe the caches of all its issuers.
var cacheSeed = maphash.MakeSeed()

// tokenHash is the cache key of a raw token.
func tokenHash(raw string) uint64 { return maphash.String(cacheSeed, raw) }

func (c *tokenCache) shard(h uint64) *cacheShard { return &c.shards[h>>59] } // top 5 bits: 32 shards

// get returns the claims of raw when it is cached and not expired at now
// (unix seconds).
func (c *tokenCache) get(h uint64, raw string, now int64) *Claims {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || e.token != raw || now >= e.expires {
		return nil
	}
	return e.claims
}

// put caches raw's claims until expires (unix seconds), unless it is
// already past.
func (c *tokenCache) put(h uint64, raw string, cl *Claims, expires, now int64) {
	if now >= expires {
		return
	}
	e := &cacheEntry{token: strings.Clone(raw), claims: cl, expires: expires}
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

// remove forgets raw (its session was revoked).
func (c *tokenCache) remove(h uint64, raw string) {
	s := c.shard(h)
	s.mu.Lock()
	if e := s.m[h]; e != nil && e.token == raw {
		delete(s.m, h)
	}
	s.mu.Unlock()
}

// len counts the entries (tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
