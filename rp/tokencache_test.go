package rp

import (
	"fmt"
	"testing"
)

func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache(64)
	now := int64(1000)
	for i := range 5000 {
		raw := fmt.Sprintf("token-%d", i)
		c.put(tokenHash(raw), raw, &Claims{Subject: raw}, now+int64(i%7)+1, now)
	}
	if n := c.len(); n > 64 {
		t.Fatalf("%d entries, cap 64", n)
	}
	// Expired entries make room first.
	c = newTokenCache(cacheShards) // one entry per shard
	old, fresh := "old", "fresh"
	c.put(tokenHash(old), old, &Claims{}, now+1, now)
	c.put(tokenHash(fresh), fresh, &Claims{}, now+100, now+50)
	if c.get(tokenHash(fresh), fresh, now+50) == nil {
		t.Fatal("fresh entry missing")
	}
	if c.get(tokenHash(old), old, now+1) != nil {
		t.Fatal("an entry is alive at its exp")
	}
	// Already expired: not stored.
	c.put(tokenHash("late"), "late", &Claims{}, now, now)
	if c.get(tokenHash("late"), "late", now-1) != nil {
		t.Fatal("stored an expired token")
	}
}

func TestTokenCacheCollisionIsAMiss(t *testing.T) {
	c := newTokenCache(16)
	c.put(42, "a", &Claims{Subject: "a"}, 100, 0)
	if c.get(42, "b", 1) != nil {
		t.Fatal("a different token with the same hash hit")
	}
	c.remove(42, "b")
	if c.get(42, "a", 1) == nil {
		t.Fatal("remove of another token evicted the entry")
	}
	c.remove(42, "a")
	if c.get(42, "a", 1) != nil {
		t.Fatal("not removed")
	}
}
