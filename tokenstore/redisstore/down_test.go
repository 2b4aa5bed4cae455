package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// TestRedisDownAndBack: with Redis stopped every method fails fast with an
// error wrapping tokenstore.ErrUnavailable (no panic, no ErrNotFound that
// would sign users out), and the same Store works again, with every session
// Redis kept, once Redis is back.
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	st := newStore(t, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}, LockLease: lease})
	ctx := context.Background()
	kept := []*tokenstore.Session{session("sid-1", "alice"), session("", "bob")}
	mustCreate(t, st, kept...)
	unlock, err := st.Lock(ctx, kept[0].ID) // held across the outage
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	s := session("sid-2", "carol")
	ops := map[string]func() error{
		"Get":    func() error { _, err := st.Get(ctx, kept[0].ID); return err },
		"Create": func() error { return st.Create(ctx, s) },
		"Update": func() error { return st.Update(ctx, kept[0]) },
		"Delete": func() error { return st.Delete(ctx, s.ID) },
		"DeleteBySID": func() error {
			_, err := st.DeleteBySID(ctx, iss, "sid-1", "alice")
			return err
		},
		"DeleteBySubject": func() error { _, err := st.DeleteBySubject(ctx, iss, "bob"); return err },
		"UseOnce": func() error {
			_, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-1", time.Minute)
			return err
		},
		"RevokeSID":  func() error { return st.RevokeSID(ctx, iss, "sid-1", time.Minute) },
		"SIDRevoked": func() error { _, err := st.SIDRevoked(ctx, iss, "sid-1"); return err },
		"Lock": func() error {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			u, err := st.Lock(lctx, kept[1].ID)
			if err == nil {
				u()
			}
			return err
		},
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokenstore.ErrNotFound) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		t.Logf("%s: %v", name, time.Since(start))
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s with Redis down took %v", name, d)
		}
	}
	unlock() // Redis is down: the lock ends with its lease instead
	if _, err := redisstore.New(ctx, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}}); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Errorf("New with Redis down: %v", err)
	}

	srv.Restart()
	back := time.Now()
	defer func() { t.Logf("recovered %v after the restart", time.Since(back)) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := st.Get(ctx, kept[0].ID)
		if err == nil {
			break
		}
		if !errors.Is(err, tokenstore.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Get after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range kept {
		if got, err := st.Get(ctx, s.ID); err != nil || got.RefreshToken != s.RefreshToken {
			t.Errorf("session kept by Redis, after the restart: %v", err)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 5*lease)
	defer cancel()
	u, err := st.Lock(lctx, kept[0].ID) // the lease of the lock held across the outage ran out
	if err != nil {
		t.Fatalf("Lock after the restart: %v", err)
	}
	u()
	if n, err := st.DeleteBySID(ctx, iss, "sid-1", "bob"); err != nil || n != 2 {
		t.Errorf("DeleteBySID after the restart = %d, %v; want 2 (indexes kept)", n, err)
	}
}
