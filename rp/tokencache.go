package rp

import "github.com/multiapp-go/multiapp/internal/ttlcache"

// tokenCache remembers verified access tokens and introspection answers
// until they expire: bounded, sharded, keyed by a seeded hash of the raw
// token that a collision turns into a miss (internal/ttlcache, the
// mechanism the web layer's cache of opened session cookies uses too).
type tokenCache = ttlcache.Cache[*Claims]

func newTokenCache(size int) *tokenCache { return ttlcache.New[*Claims](size) }

// tokenHash is the cache key of a raw token. The seed is shared by every
// cache, so a MultiIssuerVerifier hashes a token once to probe the caches
// of all its issuers.
func tokenHash(raw string) uint64 { return ttlcache.Hash(raw) }
