package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// checkInvariants fails the test unless every internal structure of st agrees
// with the others: the LRU list, the expiry heap and both indexes hold
// exactly the stored sessions, no index keeps an empty set, no record keeps
// its raw id, and the ttl sets and their heaps agree.
func checkInvariants(t *testing.T, st *memState) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()

	n := 0
	for e := st.lru.next; e != &st.lru; e = e.next {
		n++
		if st.sessions[e.key] != e {
			t.Fatalf("LRU list holds an entry not in the map")
		}
		if e.next.prev != e {
			t.Fatalf("LRU list links broken")
		}
		if n > len(st.sessions) {
			t.Fatalf("LRU list longer than the map")
		}
	}
	if n != len(st.sessions) {
		t.Fatalf("LRU list has %d entries, map %d", n, len(st.sessions))
	}
	if len(st.sessions) > st.maxSessions {
		t.Fatalf("%d sessions stored, bound %d", len(st.sessions), st.maxSessions)
	}

	inHeap := 0
	for key, e := range st.sessions {
		if e.key != key {
			t.Fatalf("entry filed under the wrong key")
		}
		if e.s.ID != "" {
			t.Fatalf("a stored session keeps its raw id")
		}
		if e.s.ExpiresAt.IsZero() {
			if e.heapIdx != -1 {
				t.Fatalf("session without expiry is in the expiry heap")
			}
		} else {
			inHeap++
			if e.heapIdx < 0 || e.heapIdx >= len(st.expiry) || st.expiry[e.heapIdx] != e {
				t.Fatalf("expiry heap index wrong")
			}
		}
		if e.s.SID != "" {
			if _, ok := st.bySID[pairKey{e.s.Issuer, e.s.SID}][e]; !ok {
				t.Fatalf("session missing from the sid index")
			}
		}
		if _, ok := st.bySubject[pairKey{e.s.Issuer, e.s.Subject}][e]; !ok {
			t.Fatalf("session missing from the subject index")
		}
	}
	if inHeap != len(st.expiry) {
		t.Fatalf("expiry heap has %d entries, want %d", len(st.expiry), inHeap)
	}
	checkHeap(t, st.expiry)

	for k, set := range st.bySID {
		if len(set) == 0 {
			t.Fatalf("empty set left in the sid index")
		}
		for e := range set {
			if st.sessions[e.key] != e || e.s.Issuer != k.issuer || e.s.SID != k.value {
				t.Fatalf("sid index holds a stale entry")
			}
		}
	}
	for k, set := range st.bySubject {
		if len(set) == 0 {
			t.Fatalf("empty set left in the subject index")
		}
		for e := range set {
			if st.sessions[e.key] != e || e.s.Issuer != k.issuer || e.s.Subject != k.value {
				t.Fatalf("subject index holds a stale entry")
			}
		}
	}

	checkTTLSet(t, st.once)
	checkTTLSet(t, st.revoked)
	checkTTLSet(t, st.subjects)
}

func checkTTLSet[K comparable](t *testing.T, ts *ttlSet[K]) {
	t.Helper()
	if len(ts.items) != len(ts.heap) {
		t.Fatalf("ttl set: %d items, %d in heap", len(ts.items), len(ts.heap))
	}
	if len(ts.items) > ts.max {
		t.Fatalf("ttl set holds %d, bound %d", len(ts.items), ts.max)
	}
	for i, it := range ts.heap {
		if it.idx != i || ts.items[it.key] != it {
			t.Fatalf("ttl heap index wrong")
		}
	}
	checkHeap(t, ts.heap)
}

func checkHeap[T interface {
	expiry() time.Time
	setIndex(int)
}](t *testing.T, h expHeap[T]) {
	t.Helper()
	for i := 1; i < len(h); i++ {
		if h[i].expiry().Before(h[(i-1)/2].expiry()) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time          { return c.now }
func (c *testClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// TestMemoryRandomOps runs random operations on a small, tightly bounded
// store with a fake clock and checks every internal invariant after each.
func TestMemoryRandomOps(t *testing.T) {
	clk := &testClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(MemoryOptions{MaxSessions: 16, MaxOneTimeKeys: 8, MaxRevokedSIDs: 8, Now: clk.Now, SweepInterval: -1})
	st := m.s
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = NewID()
	}
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	for i := range 10_000 {
		s := &Session{
			ID:      ids[r.IntN(len(ids))],
			Issuer:  pick("https://a", "https://b"),
			SID:     pick("", "s1", "s2", "s3"),
			Subject: pick("u1", "u2"),
		}
		switch r.IntN(3) {
		case 0:
			s.ExpiresAt = clk.now.Add(time.Duration(r.IntN(120)) * time.Second)
		case 1:
			s.ExpiresAt = clk.now.Add(-time.Second)
		}
		var err error
		switch op := r.IntN(12); op {
		case 0, 1:
			err = m.Create(ctx, s)
		case 2:
			err = m.Update(ctx, s)
		case 3, 4:
			_, err = m.Get(ctx, s.ID)
		case 5:
			err = m.Delete(ctx, s.ID)
		case 6:
			_, err = m.DeleteBySID(ctx, s.Issuer, s.SID, pick("", s.Subject))
		case 7:
			_, err = m.DeleteBySubject(ctx, s.Issuer, s.Subject)
		case 8:
			_, err = m.UseOnce(ctx, LogoutTokenIDs, s.Issuer, fmt.Sprint(r.IntN(20)), time.Duration(r.IntN(60)-5)*time.Second)
		case 9:
			err = m.RevokeSID(ctx, s.Issuer, s.SID, time.Duration(r.IntN(60)-5)*time.Second)
		case 10:
			clk.Advance(time.Duration(r.IntN(10)) * time.Second)
		case 11:
			st.sweep()
		}
		switch {
		case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrRevoked):
		default:
			t.Fatalf("op %d: %v", i, err)
		}
		checkInvariants(t, st)
	}
}

// TestMemorySweep checks that the background sweep frees every kind of
// expired entry without anyone touching them. It runs in a synctest bubble,
// so its minutes pass instantly.
func TestMemorySweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := NewMemory(MemoryOptions{SweepInterval: time.Minute})
		defer m.Close()
		if m.s.sweepStarted {
			t.Fatal("sweep started before the first write")
		}
		for i := range 3000 { // more than one sweep batch
			s := &Session{ID: NewID(), Issuer: "https://op", SID: fmt.Sprint("sid-", i%7), Subject: "u", ExpiresAt: time.Now().Add(30 * time.Second)}
			if err := m.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := m.UseOnce(ctx, LogoutTokenIDs, "https://op", fmt.Sprint(i), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := m.RevokeSID(ctx, "https://op", fmt.Sprint("r-", i), 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		keep := &Session{ID: NewID(), Issuer: "https://op", SID: "sid-0", Subject: "u", ExpiresAt: time.Now().Add(time.Hour)}
		if err := m.Create(ctx, keep); err != nil {
			t.Fatal(err)
		}
		if !m.s.sweepStarted {
			t.Fatal("sweep not started by a write")
		}

		time.Sleep(90 * time.Second) // one sweep past the expiry
		synctest.Wait()
		checkInvariants(t, m.s)
		m.s.mu.Lock()
		sessions, jtis, revoked, sids := len(m.s.sessions), len(m.s.once.items), len(m.s.revoked.items), len(m.s.bySID)
		m.s.mu.Unlock()
		if sessions != 1 || jtis != 0 || revoked != 0 || sids != 1 {
			t.Errorf("after the sweep: %d sessions, %d jtis, %d revoked sids, %d sid index keys; want 1, 0, 0, 1", sessions, jtis, revoked, sids)
		}
	})
}

// TestMemoryCloseInBubble checks that Close ends the sweep goroutine: a
// synctest bubble does not return while any of its goroutines is left.
func TestMemoryCloseInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(MemoryOptions{SweepInterval: time.Second})
		if err := m.RevokeSID(context.Background(), "https://op", "sid", time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		m.Close()
		m.Close()
		// The store still works after Close, without starting a new sweep.
		if err := m.RevokeSID(context.Background(), "https://op", "sid-2", time.Minute); err != nil {
			t.Fatal(err)
		}
		if ok, _ := m.SIDRevoked(context.Background(), "https://op", "sid-2"); !ok {
			t.Error("store unusable after Close")
		}
	})
}

// TestMemoryLockEntriesFreed checks that lock entries, including those of
// waiters that gave up, are freed once nobody holds or waits for them.
func TestMemoryLockEntriesFreed(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	for range 100 {
		unlock, err := m.Lock(ctx, NewID())
		if err != nil {
			t.Fatal(err)
		}
		unlock()
		unlock()
	}
	id := NewID()
	unlock, err := m.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		if _, err := m.Lock(wctx, id); err == nil {
			t.Fatal("second holder of a lock")
		}
		cancel()
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Lock(cctx, NewID()); err == nil {
		t.Fatal("Lock with a cancelled context succeeded")
	}
	m.s.lockMu.Lock()
	held := len(m.s.locks)
	m.s.lockMu.Unlock()
	if held != 1 {
		t.Errorf("%d lock entries while one lock is held, want 1", held)
	}
	unlock()
	m.s.lockMu.Lock()
	left := len(m.s.locks)
	m.s.lockMu.Unlock()
	if left != 0 {
		t.Errorf("%d lock entries left after every lock was released", left)
	}
}

// TestMemoryNoRawID checks that the raw id appears in no key and no stored
// field.
func TestMemoryNoRawID(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	id := NewID()
	s := &Session{ID: id, Issuer: "https://op", SID: "sid", Subject: "u", ExpiresAt: time.Now().Add(time.Hour)}
	if err := m.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for k, e := range m.s.sessions {
		if k != keyOf(id) || strings.Contains(fmt.Sprintf("%+v", *e.s), id) {
			t.Fatal("raw id stored")
		}
	}
	checkInvariants(t, m.s)
}
