package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// TestLostRepliesAreRetriedSafely: go-redis retries a command whose
// connection dropped before the reply came, although Redis may have applied
// it. Every store operation must give the same answer on that retry as the
// first run would have: a logout token is not reported as replayed (its
// logout would be refused), a lock is not found taken by its own holder (a
// whole lease lost), a login is not refused as a duplicate id.
func TestLostRepliesAreRetriedSafely(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	proxy := redistest.NewProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: 2})
	t.Cleanup(func() { rdb.Close() })
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, LockLease: time.Second})
	ctx := context.Background()
	base := st.Base()
	// Warm up: Redis caches the scripts, so the armed drops hit the
	// EVALSHA that applies the command, not a NOSCRIPT answer.
	if _, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-0", time.Minute); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, st, session("sid-0", "zoe"))

	proxy.DropReplyOnce(base + "j:")
	first, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-1", time.Minute)
	if err != nil || !first {
		t.Errorf("UseOnce with a lost reply = %v, %v; want first", first, err)
	}
	if first, _ := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-1", time.Minute); first {
		t.Error("UseOnce again: first, want a replay")
	}

	id := tokenstore.NewID()
	proxy.DropReplyOnce(base + "l:")
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	unlock, err := st.Lock(lctx, id)
	if err != nil {
		t.Fatalf("Lock with a lost reply: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Lock with a lost reply took %v: it waited for its own lease", d)
	}
	unlock()

	s := session("sid-1", "alice")
	proxy.DropReplyOnce(base + "s:")
	if err := st.Create(ctx, s); err != nil {
		t.Errorf("Create with a lost reply: %v", err)
	}
	dup := session("sid-2", "bob")
	dup.ID = s.ID
	if err := st.Create(ctx, dup); !errors.Is(err, tokenstore.ErrExists) {
		t.Errorf("Create of a taken id: %v, want ErrExists", err)
	}
	if proxy.Pending() != 0 {
		t.Fatalf("%d armed drops never happened: the test did not test", proxy.Pending())
	}
}

// TestLockWhoseReplyIsLostIsReleased: when the lock's SET reaches Redis but
// its answer never comes back and the client gives up (retries used up, a
// read timeout on a loaded machine), Lock reports the store unavailable,
// and the lock it may have taken must not stay behind until its lease (or
// the holder's deadline, 10 s for a refresh) ends: every other instance's
// refresh of that session would wait for it.
func TestLockWhoseReplyIsLostIsReleased(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	proxy := redistest.NewProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, LockLease: 30 * time.Second})
	ctx := context.Background()
	id := tokenstore.NewID()
	// Warm up: Redis caches the scripts.
	unlock, err := st.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	unlock()

	proxy.DropReplyOnce(st.Base() + "l:")
	if _, err := st.Lock(ctx, id); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("Lock with its reply lost and no retry: %v, want ErrUnavailable", err)
	}
	if proxy.Pending() != 0 {
		t.Fatal("the armed drop never happened: the test did not test")
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	unlock, err = st.Lock(lctx, id)
	if err != nil {
		t.Fatalf("Lock after a lost reply: %v (the lost lock was left behind)", err)
	}
	unlock()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock after a lost reply waited %v: the lost lock was left behind", d)
	}
}
