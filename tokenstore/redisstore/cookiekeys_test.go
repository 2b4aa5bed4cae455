package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// TestCheckCookieKeys: instances sharing a store must seal and open cookies
// with keys that agree, or every user one of them signs in gets 401 from
// the others. The check refuses an instance whose keys disagree with a
// running instance's, in either direction, lets a rotation done the
// documented way through (new key second everywhere, then first), and
// never puts a key in Redis.
func TestCheckCookieKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 7)
	ctx := context.Background()
	open := func() *redisstore.Store { return newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}}) }
	var (
		oldKey = []byte("old cookie key, thirty-two bytes")
		newKey = []byte("new cookie key, thirty-two bytes")
		other  = []byte("a typo'd key, also thirty-two by")
	)
	check := func(keys ...[]byte) (func(), error) { return open().CheckCookieKeys(ctx, keys) }
	mustCheck := func(keys ...[]byte) func() {
		t.Helper()
		stop, err := check(keys...)
		if err != nil {
			t.Fatalf("CheckCookieKeys: %v", err)
		}
		return stop
	}

	a := mustCheck(oldKey)
	b := mustCheck(oldKey) // the same key: fine

	// A different key: its cookies would be 401 at a and b, theirs at it.
	_, err := check(other)
	if !errors.Is(err, redisstore.ErrCookieKeys) {
		t.Fatalf("another key: %v, want ErrCookieKeys", err)
	}
	t.Logf("the message: %v", err)
	for _, want := range []string{"401", "same", "CookieKeys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message does not say %q: %v", want, err)
		}
	}
	// Skipping the first step of a rotation: the running instances cannot
	// open what this one seals.
	if _, err := check(newKey, oldKey); !errors.Is(err, redisstore.ErrCookieKeys) {
		t.Errorf("new key first while the others lack it: %v, want ErrCookieKeys", err)
	}
	// The rotation done right, one instance at a time.
	a()
	a = mustCheck(oldKey, newKey) // step 1, instance a
	b()
	b = mustCheck(oldKey, newKey) // step 1, instance b
	a()
	a = mustCheck(newKey, oldKey) // step 2
	b()
	b = mustCheck(newKey, oldKey)
	// An instance left on the old key alone cannot open the new cookies.
	if _, err := check(oldKey); !errors.Is(err, redisstore.ErrCookieKeys) {
		t.Errorf("the old key alone after the rotation: %v, want ErrCookieKeys", err)
	}
	a()
	a = mustCheck(newKey) // step 3: drop the old key
	b()
	b = mustCheck(newKey)

	// Only fingerprints are stored.
	dump, err := open().Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{oldKey, newKey, other} {
		if strings.Contains(string(dump), string(k)) || strings.Contains(string(dump), string(k[:8])) {
			t.Errorf("a cookie key is in Redis:\n%s", dump)
		}
	}

	// Stopped instances no longer count: a deliberate replacement of the
	// key (every instance restarted with another) goes through.
	a()
	b()
	c := mustCheck(other)
	c()
}

// TestCheckCookieKeysCrashedInstance: an instance that died without
// stopping its registration keeps counting until the registration expires
// (CookieKeysTTL), then no longer.
func TestCheckCookieKeysCrashedInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t, 7)
	ctx := context.Background()
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	restore := redisstore.SetCookieKeysTTL(300 * time.Millisecond)
	defer restore()
	// Renewals stop, the registration stays: what a crash leaves.
	if err := st.CheckCookieKeysThenCrash(ctx, [][]byte{key2}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckCookieKeys(ctx, [][]byte{key3}); !errors.Is(err, redisstore.ErrCookieKeys) {
		t.Fatalf("right after: %v, want ErrCookieKeys", err)
	}
	time.Sleep(400 * time.Millisecond)
	stop, err := st.CheckCookieKeys(ctx, [][]byte{key3})
	if err != nil {
		t.Fatalf("after the crashed instance's registration expired: %v", err)
	}
	stop()
}
