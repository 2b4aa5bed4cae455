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

const lease = 300 * time.Millisecond

// twoInstances returns two stores on one Redis database with separate
// clients, as two instances of an app have.
func twoInstances(t *testing.T) (*redistest.Server, *redisstore.Store, *redisstore.Store) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	opts := func() redisstore.Options {
		return redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}, LockLease: lease}
	}
	return srv, newStore(t, opts()), newStore(t, opts())
}

// TestLockCrashedHolderExpires: a holder that dies (stops renewing without
// unlocking) blocks the others for one lease, no longer.
func TestLockCrashedHolderExpires(t *testing.T) {
	_, a, b := twoInstances(t)
	ctx := context.Background()
	id := tokenstore.NewID()
	_, crash, err := a.LockForTest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	crash()
	crashed := time.Now()

	short, cancel := context.WithTimeout(ctx, lease/3)
	_, err = b.Lock(short, id)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while the crashed holder's lease runs: %v, want DeadlineExceeded", err)
	}
	wait, cancel := context.WithTimeout(ctx, 5*lease)
	defer cancel()
	unlock, err := b.Lock(wait, id)
	if err != nil {
		t.Fatalf("Lock after the crashed holder's lease: %v", err)
	}
	defer unlock()
	if d := time.Since(crashed); d < lease*2/3 || d > 3*lease {
		t.Errorf("waited %v for a crashed holder with a lease of %v", d, lease)
	}
}

// TestLockOutlivesItsLease: a refresh that takes several leases keeps the
// lock while its holder is alive, and the next holder gets it at once
// after the unlock.
func TestLockOutlivesItsLease(t *testing.T) {
	srv, a, b := twoInstances(t)
	ctx := context.Background()
	id := tokenstore.NewID()
	unlock, err := a.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 4*lease)
	_, err = b.Lock(wait, id)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while a live holder runs past its lease: %v, want DeadlineExceeded", err)
	}
	rdb := srv.NewClient(t, 0)
	if ttl, _ := rdb.PTTL(ctx, a.Base()+"l:"+tokenstore.HashID(id)).Result(); ttl <= 0 || ttl > lease {
		t.Errorf("lock TTL %v, want within the lease %v", ttl, lease)
	}
	unlock()
	start := time.Now()
	wait, cancel = context.WithTimeout(ctx, lease)
	defer cancel()
	unlock2, err := b.Lock(wait, id)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if d := time.Since(start); d > lease/2 {
		t.Errorf("Lock after unlock took %v", d)
	}
	unlock() // stale: must not free b's lock
	wait2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := a.Lock(wait2, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stale unlock released another holder's lock: %v", err)
	}
	unlock2()
	if n, _ := rdb.Exists(ctx, a.Base()+"l:"+tokenstore.HashID(id)).Result(); n != 0 {
		t.Error("lock key left after unlock")
	}
}

// TestLockWaitersPickOneAtATime: waiters on several instances all get the
// lock in turn, each after the previous holder's unlock.
func TestLockWaitersPickOneAtATime(t *testing.T) {
	_, a, b := twoInstances(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := tokenstore.NewID()
	held := make(chan struct{}, 1)
	done := make(chan error, 8)
	for i := range 8 {
		st := a
		if i%2 == 1 {
			st = b
		}
		go func() {
			unlock, err := st.Lock(ctx, id)
			if err != nil {
				done <- err
				return
			}
			select {
			case held <- struct{}{}:
			default:
				done <- errors.New("two holders at once")
			}
			time.Sleep(20 * time.Millisecond)
			<-held
			unlock()
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
