package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// nearValue is a session value's head as Redis holds it: the sid hash
// (dots for none), the subject hash, the issue time; the sealed record
// (not needed here) would follow.
func nearValue(sidh, subh string) []byte {
	if sidh == "" {
		sidh = noSID
	}
	return []byte(sidh + subh + strings.Repeat("0", issuedLen))
}

func hashOf22(s string) string { return (s + strings.Repeat("-", pairHashLen))[:pairHashLen] }

// TestNearCacheTickets: a read that an invalidation, a flush or a lock
// overtook never fills the cache; an invalidation of a marker drops the
// sessions filed under it.
func TestNearCacheTickets(t *testing.T) {
	const base = "{p}:"
	sidA, sidB, subA := hashOf22("sidA"), hashOf22("sidB"), hashOf22("subA")
	key := func(id string) cacheKey { return sha256.Sum256([]byte(id)) }
	member := func(id string) string { k := key(id); return base64.RawURLEncoding.EncodeToString(k[:]) }
	sess := &tokenstore.Session{Subject: "alice", Tokens: tokenstore.Tokens{RefreshToken: "rt"}}
	fresh := func() *nearCache {
		c := newNearCache(100, time.Minute)
		c.extend(time.Now())
		return c
	}
	fill := func(c *nearCache, id, sidh, subh string) {
		t.Helper()
		c.finish(c.begin(key(id)), sess, nearValue(sidh, subh))
		if c.get(key(id)) == nil {
			t.Fatalf("session %s not cached", id)
		}
	}
	for _, tc := range []struct {
		name    string
		between func(c *nearCache)
		cached  bool
	}{
		{"nothing happens", func(*nearCache) {}, true},
		{"another session invalidated", func(c *nearCache) { c.invalidate(base, []string{base + "s:" + member("other")}) }, true},
		{"the session invalidated", func(c *nearCache) { c.invalidate(base, []string{base + "s:" + member("id")}) }, false},
		{"a sid revoked", func(c *nearCache) { c.invalidate(base, []string{base + "r:" + sidB}) }, false},
		{"a subject logged out", func(c *nearCache) { c.invalidate(base, []string{base + "e:" + hashOf22("x")}) }, false},
		{"written here", func(c *nearCache) { c.invalidateSession(key("id")) }, false},
		{"a sid revoked here", func(c *nearCache) { c.invalidateSID(sidB) }, false},
		{"tracking lost and back", func(c *nearCache) { c.lost(); c.extend(time.Now()) }, false},
		{"locked here", func(c *nearCache) { c.lock(key("id")) }, false},
	} {
		c := fresh()
		tk := c.begin(key("id"))
		tc.between(c)
		c.finish(tk, sess, nearValue(sidA, subA))
		if got := c.get(key("id")) != nil; got != tc.cached {
			t.Errorf("%s during the read: cached %v, want %v", tc.name, got, tc.cached)
		}
	}

	c := fresh()
	fill(c, "a1", sidA, subA)
	fill(c, "a2", sidA, hashOf22("subB"))
	fill(c, "b1", sidB, subA)
	fill(c, "none", "", subA)
	c.invalidate(base, []string{base + "r:" + sidA, "{other}:s:" + member("b1"), base + "l:" + member("b1")})
	for id, want := range map[string]bool{"a1": false, "a2": false, "b1": true, "none": true} {
		if got := c.get(key(id)) != nil; got != want {
			t.Errorf("after sid A's revocation: %s cached %v, want %v", id, got, want)
		}
	}
	c.invalidate(base, []string{base + "e:" + subA})
	if c.len() != 0 {
		t.Errorf("after the subject's logout %d sessions stay cached", c.len())
	}
	if len(c.bySID)+len(c.bySub) != 0 {
		t.Errorf("indexes keep %d sids and %d subjects of dropped sessions", len(c.bySID), len(c.bySub))
	}

	c = fresh()
	fill(c, "x", sidA, subA)
	c.lock(key("x"))
	c.lock(key("x"))
	c.unlock(key("x"))
	c.finish(c.begin(key("x")), sess, nearValue(sidA, subA))
	if c.get(key("x")) != nil {
		t.Error("a session locked here is served from the cache")
	}
	c.unlock(key("x"))
	fill(c, "x", sidA, subA)

	c.lost()
	if c.get(key("x")) != nil || c.len() != 0 {
		t.Error("the cache serves, or holds, sessions after tracking was lost")
	}

	c = newNearCache(3, time.Minute)
	c.extend(time.Now())
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		fill(c, id, sidA, subA)
	}
	if c.len() != 3 {
		t.Errorf("a near cache of 3 holds %d", c.len())
	}
}

// TestNearCacheLease: entries are served only until maxStale after the
// last ping answered was sent; a later answer extends it, an earlier one
// never shortens it.
func TestNearCacheLease(t *testing.T) {
	c := newNearCache(10, time.Minute)
	k := sha256.Sum256([]byte("id"))
	c.finish(c.begin(k), &tokenstore.Session{}, nearValue("", hashOf22("s")))
	if c.get(k) != nil {
		t.Fatal("served before any ping was answered")
	}
	c.extend(time.Now().Add(-time.Minute - time.Millisecond))
	if c.get(k) != nil {
		t.Fatal("served although the last ping answered was sent more than maxStale ago")
	}
	c.extend(time.Now())
	if c.get(k) == nil {
		t.Fatal("not served right after a ping was answered")
	}
	c.extend(time.Now().Add(-2 * time.Minute))
	if c.get(k) == nil {
		t.Fatal("an older ping's answer shortened the lease")
	}
}
