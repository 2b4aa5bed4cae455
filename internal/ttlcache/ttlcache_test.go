package ttlcache

import (
	"fmt"
	"sync"
	"testing"
)

func TestBounded(t *testing.T) {
	c := New[string](64)
	now := int64(1000)
	for i := range 5000 {
		k := fmt.Sprintf("token-%d", i)
		c.Put(Hash(k), k, k, now+int64(i%7)+1, now)
	}
	if n := c.Len(); n > 64 {
		t.Fatalf("%d entries, cap 64", n)
	}
	// Expired entries make room first.
	c = New[string](shards) // one entry per shard
	old, fresh := "old", "fresh"
	c.Put(Hash(old), old, old, now+1, now)
	c.Put(Hash(fresh), fresh, fresh, now+100, now+50)
	if v, ok := c.Get(Hash(fresh), fresh, now+50); !ok || v != fresh {
		t.Fatal("fresh entry missing")
	}
	if _, ok := c.Get(Hash(old), old, now+1); ok {
		t.Fatal("an entry is alive at its expiry")
	}
	// Already expired: not stored.
	c.Put(Hash("late"), "late", "late", now, now)
	if _, ok := c.Get(Hash("late"), "late", now-1); ok {
		t.Fatal("stored an expired entry")
	}
}

func TestCollisionIsAMiss(t *testing.T) {
	c := New[string](16)
	c.Put(42, "a", "A", 100, 0)
	if _, ok := c.Get(42, "b", 1); ok {
		t.Fatal("a different key with the same hash hit")
	}
	c.Remove(42, "b")
	if _, ok := c.Get(42, "a", 1); !ok {
		t.Fatal("Remove of another key evicted the entry")
	}
	c.Remove(42, "a")
	if _, ok := c.Get(42, "a", 1); ok {
		t.Fatal("not removed")
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint(i % 300)
				h := Hash(k)
				if v, ok := c.Get(h, k, 1); ok && v != i%300 {
					t.Errorf("%s holds %d", k, v)
					return
				}
				switch (i + g) % 3 {
				case 0:
					c.Put(h, k, i%300, 10, 1)
				case 1:
					c.Remove(h, k)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 128 {
		t.Fatalf("%d entries, cap 100 (128 with the shards' rounding)", n)
	}
}
