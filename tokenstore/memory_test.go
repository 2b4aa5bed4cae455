package tokenstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/storetest"
)

// dumpable adds storetest.Dumper to a Memory, so the suite can check that no
// raw session id is kept.
type dumpable struct{ *tokenstore.Memory }

func (d dumpable) Dump(context.Context) ([]byte, error) { return tokenstore.DumpMemory(d.Memory), nil }

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tokenstore.Store {
		m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
		t.Cleanup(func() { m.Close() })
		return dumpable{m}
	})
}

// TestMemoryConformanceFastSweep runs the suite again with a sweep that
// keeps running during the expiry and concurrency subtests.
func TestMemoryConformanceFastSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tokenstore.Store {
		m := tokenstore.NewMemory(tokenstore.MemoryOptions{SweepInterval: time.Millisecond})
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// clock is a settable clock for MemoryOptions.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const iss = "https://op.example"

func newSession(clk *clock, sid, sub string, life time.Duration) *tokenstore.Session {
	return &tokenstore.Session{ID: tokenstore.NewID(), Issuer: iss, SID: sid, Subject: sub, ExpiresAt: clk.Now().Add(life)}
}

func mustCreate(t *testing.T, m *tokenstore.Memory, ss ...*tokenstore.Session) {
	t.Helper()
	for _, s := range ss {
		if err := m.Create(context.Background(), s); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
}

// present fails the test unless every session in live exists and none in
// gone does. It looks them up in order, which matters to the LRU order.
func present(t *testing.T, m *tokenstore.Memory, live, gone []*tokenstore.Session) {
	t.Helper()
	for _, s := range live {
		if _, err := m.Get(context.Background(), s.ID); err != nil {
			t.Errorf("session (sid %q, sub %q): %v, want it present", s.SID, s.Subject, err)
		}
	}
	for _, s := range gone {
		if _, err := m.Get(context.Background(), s.ID); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Errorf("session (sid %q, sub %q): %v, want ErrNotFound", s.SID, s.Subject, err)
		}
	}
}

type sessions = []*tokenstore.Session

func TestMemoryClock(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	s := newSession(clk, "sid", "alice", time.Hour)
	mustCreate(t, m, s)
	if ok, _ := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti", time.Minute); !ok {
		t.Fatal("first UseOnce not first")
	}
	if err := m.RevokeSID(ctx, iss, "gone", time.Minute); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute - time.Nanosecond)
	if ok, _ := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti", time.Minute); ok {
		t.Error("jti forgotten before its ttl")
	}
	if ok, _ := m.SIDRevoked(ctx, iss, "gone"); !ok {
		t.Error("revocation forgotten before its ttl")
	}
	clk.Advance(time.Nanosecond)
	if ok, _ := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti", time.Minute); !ok {
		t.Error("jti remembered at its ttl")
	}
	if ok, _ := m.SIDRevoked(ctx, iss, "gone"); ok {
		t.Error("revocation remembered at its ttl")
	}

	present(t, m, sessions{s}, nil)
	clk.Advance(time.Hour)
	present(t, m, nil, sessions{s})
}

func TestMemoryZeroExpiresAt(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{Now: clk.Now, SweepInterval: -1})
	s := newSession(clk, "sid", "alice", 0)
	s.ExpiresAt = time.Time{}
	mustCreate(t, m, s)
	clk.Advance(100 * 365 * 24 * time.Hour)
	present(t, m, sessions{s}, nil)
}

func TestMemoryNonPositiveTTL(t *testing.T) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer m.Close()
	ctx := context.Background()
	for range 2 {
		if ok, _ := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti", 0); !ok {
			t.Error("UseOnce with ttl 0 remembered the jti")
		}
	}
	if err := m.RevokeSID(ctx, iss, "sid", -time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.SIDRevoked(ctx, iss, "sid"); ok {
		t.Error("RevokeSID with a negative ttl revoked")
	}
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxSessions: 3, Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	a, b, c := newSession(clk, "s1", "alice", time.Hour), newSession(clk, "s1", "bob", time.Hour), newSession(clk, "", "carol", time.Hour)
	mustCreate(t, m, a, b, c)
	if _, err := m.Get(ctx, a.ID); err != nil { // a is now used more recently than b
		t.Fatal(err)
	}
	d := newSession(clk, "", "dave", time.Hour)
	mustCreate(t, m, d)
	present(t, m, sessions{a, c, d}, sessions{b}) // LRU order now d, c, a

	// Update counts as a use too: c, d, a.
	c2 := c.Clone()
	c2.AccessToken = "refreshed"
	if err := m.Update(ctx, c2); err != nil {
		t.Fatal(err)
	}
	e := newSession(clk, "", "erin", time.Hour)
	mustCreate(t, m, e) // evicts a, the least recently used
	present(t, m, sessions{c, d, e}, sessions{a})

	// The evicted sessions left no trace in the indexes.
	if n, _ := m.DeleteBySID(ctx, iss, "s1", "bob"); n != 0 {
		t.Errorf("DeleteBySID found %d evicted sessions", n)
	}
	if n, _ := m.DeleteBySubject(ctx, iss, "alice"); n != 0 {
		t.Errorf("DeleteBySubject found %d evicted sessions", n)
	}
	// A refused Create evicts nothing.
	dup := newSession(clk, "", "x", time.Hour)
	dup.ID = d.ID
	if err := m.Create(ctx, dup); !errors.Is(err, tokenstore.ErrExists) {
		t.Fatalf("Create of a taken id: %v", err)
	}
	present(t, m, sessions{c, d, e}, nil)
}

func TestMemoryEvictsExpiredFirst(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxSessions: 3, Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	short := newSession(clk, "", "alice", time.Minute)
	old1, old2 := newSession(clk, "", "bob", time.Hour), newSession(clk, "", "carol", time.Hour)
	mustCreate(t, m, old1, old2, short) // short is the most recently used
	clk.Advance(2 * time.Minute)
	d := newSession(clk, "", "dave", time.Hour)
	mustCreate(t, m, d) // frees short, which expired, rather than old1
	present(t, m, sessions{old1, old2, d}, sessions{short})
	if n, _ := m.DeleteBySubject(ctx, iss, "alice"); n != 0 {
		t.Errorf("expired session counted: %d", n)
	}
}

func TestMemoryOneTimeKeyBound(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxOneTimeKeys: 3, Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	remember := func(jti string, ttl time.Duration, want bool) {
		t.Helper()
		if first, _ := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, jti, ttl); first != want {
			t.Errorf("UseOnce(%s) = %v, want %v", jti, first, want)
		}
	}
	remember("j10", 10*time.Minute, true)
	remember("j5", 5*time.Minute, true)
	remember("j20", 20*time.Minute, true)
	remember("j15", 15*time.Minute, true) // full: forgets j5, closest to expiry
	remember("j10", time.Hour, false)
	remember("j20", time.Hour, false)
	remember("j15", time.Hour, false)
	remember("j5", 5*time.Minute, true) // forgotten, so accepted again; evicts j10
	remember("j20", time.Hour, false)

	// Expired ids go before live ones.
	clk.Advance(12 * time.Minute) // j5 expired
	remember("j30", 30*time.Minute, true)
	remember("j20", time.Hour, false)
	remember("j15", time.Hour, false)
}

func TestMemoryRevokedBound(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxRevokedSIDs: 2, Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	revoked := func(sid string, want bool) {
		t.Helper()
		if got, _ := m.SIDRevoked(ctx, iss, sid); got != want {
			t.Errorf("SIDRevoked(%s) = %v, want %v", sid, got, want)
		}
	}
	_ = m.RevokeSID(ctx, iss, "s10", 10*time.Minute)
	_ = m.RevokeSID(ctx, iss, "s5", 5*time.Minute)
	_ = m.RevokeSID(ctx, iss, "s5", 30*time.Minute) // extended: now the longest
	_ = m.RevokeSID(ctx, iss, "s20", 20*time.Minute)
	revoked("s10", false) // closest to expiry
	revoked("s5", true)
	revoked("s20", true)
}

func TestMemoryRevokedSubjectsBound(t *testing.T) {
	clk := newClock()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxRevokedSubjects: 2, Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	at := clk.Now()
	refused := func(sub string, want bool) {
		t.Helper()
		s := &tokenstore.Session{ID: tokenstore.NewID(), Issuer: iss, Subject: sub, IssuedAt: at.Add(-time.Second)}
		err := m.Create(ctx, s)
		if got := errors.Is(err, tokenstore.ErrRevoked); got != want {
			t.Errorf("Create of %s issued before its logout: %v, want refused %v", sub, err, want)
		}
		_ = m.Delete(ctx, s.ID)
	}
	_ = m.RevokeSubject(ctx, iss, "u10", at, 10*time.Minute)
	_ = m.RevokeSubject(ctx, iss, "u5", at, 5*time.Minute)
	_ = m.RevokeSubject(ctx, iss, "u5", at, 30*time.Minute) // extended: now the longest
	_ = m.RevokeSubject(ctx, iss, "u20", at, 20*time.Minute)
	refused("u10", false) // closest to expiry
	refused("u5", true)
	refused("u20", true)
	clk.Advance(31 * time.Minute)
	refused("u5", false) // expired
}

// sweepers counts the running sweep goroutines of every Memory.
func sweepers() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("tokenstore.(*memState).sweepLoop("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

func waitSweepers(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := sweepers(); got != want; got = sweepers() {
		if time.Now().After(deadline) {
			t.Fatalf("%d sweep goroutines, want %d", got, want)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemoryCloseStopsSweep(t *testing.T) {
	base := sweepers()
	ctx := context.Background()
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	if _, err := m.Get(ctx, "x"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatal(err)
	}
	if got := sweepers(); got != base {
		t.Fatalf("a store that was only read started %d sweep goroutines", got-base)
	}
	if _, err := m.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti", time.Minute); err != nil {
		t.Fatal(err)
	}
	waitSweepers(t, base+1)
	m.Close()
	if got := sweepers(); got != base { // Close waits for the goroutine
		t.Fatalf("%d sweep goroutines after Close, want %d", got, base)
	}
	m.Close()
	mustCreate(t, m, &tokenstore.Session{ID: "a", Issuer: iss, Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)})
	if got := sweepers(); got != base {
		t.Fatalf("a write after Close started a sweep goroutine")
	}

	// Closing a store that never wrote is fine too.
	tokenstore.NewMemory(tokenstore.MemoryOptions{}).Close()
}

func TestMemoryDroppedStoreStopsSweep(t *testing.T) {
	base := sweepers()
	for range 3 {
		m := tokenstore.NewMemory(tokenstore.MemoryOptions{SweepInterval: time.Millisecond})
		if err := m.RevokeSID(context.Background(), iss, "sid", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// The stores are unreachable now; their sweep goroutines must end
	// without Close once the garbage collector has seen that.
	waitSweepers(t, base)
}

// Benchmarks.

func warmStore(b *testing.B, n int) (*tokenstore.Memory, []string) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxSessions: n + 1000})
	b.Cleanup(func() { m.Close() })
	ids := make([]string, n)
	exp := time.Now().Add(time.Hour)
	for i := range ids {
		ids[i] = tokenstore.NewID()
		s := &tokenstore.Session{
			ID: ids[i], Issuer: iss, Subject: "user-" + strconv.Itoa(i/2), SID: "sid-" + strconv.Itoa(i/2),
			Tokens: tokenstore.Tokens{
				IDToken: "header.payload.signature", AccessToken: "access-token", RefreshToken: "refresh-token",
				Claims: []byte(`{"sub":"user","email":"user@example.com"}`),
			},
			ExpiresAt: exp,
		}
		if err := m.Create(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	return m, ids
}

func BenchmarkMemoryGet(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			m, ids := warmStore(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.Get(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	m, ids := warmStore(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

func BenchmarkMemoryCreate(b *testing.B) {
	// Past 100_000 sessions every Create also evicts one.
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	b.Cleanup(func() { m.Close() })
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := &tokenstore.Session{ID: strconv.Itoa(i), Issuer: iss, Subject: "u", SID: "sid-" + strconv.Itoa(i), ExpiresAt: exp}
		if err := m.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryDeleteBySID times DeleteBySID of an OP session shared by
// two apps, in a store holding 100_000 other sessions.
func BenchmarkMemoryDeleteBySID(b *testing.B) {
	m, _ := warmStore(b, 100_000)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sid := fmt.Sprint("bench-", i)
		for app := range 2 {
			s := &tokenstore.Session{ID: sid + strconv.Itoa(app), Issuer: iss, Subject: "u", SID: sid, ExpiresAt: exp}
			if err := m.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if n, err := m.DeleteBySID(ctx, iss, sid, "u"); err != nil || n != 2 {
			b.Fatalf("DeleteBySID = %d, %v", n, err)
		}
	}
}

func BenchmarkMemoryLock(b *testing.B) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	ctx := context.Background()
	id := tokenstore.NewID()
	b.ReportAllocs()
	for b.Loop() {
		unlock, err := m.Lock(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		unlock()
	}
}
