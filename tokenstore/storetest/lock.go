package storetest

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// tryLock calls Lock and fails the test, rather than hang, when Lock does
// not return within patience after ctx ends.
func (h *harness) tryLock(ctx context.Context, id string) (func(), error) {
	h.t.Helper()
	type result struct {
		unlock func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, err := h.st.Lock(ctx, id)
		done <- result{u, err}
	}()
	var late <-chan time.Time
	for {
		select {
		case r := <-done:
			return r.unlock, r.err
		case <-ctx.Done():
			if late == nil {
				late = time.After(patience)
			}
		case <-late:
			h.t.Fatalf("Lock still waiting %v after its context ended", patience)
		}
	}
}

func (h *harness) lock(id string) func() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, patience)
	defer cancel()
	unlock, err := h.tryLock(ctx, id)
	if err != nil {
		h.t.Fatalf("Lock: %v", err)
	}
	if unlock == nil {
		h.t.Fatal("Lock returned a nil unlock func")
	}
	return unlock
}

// blocked fails the test unless Lock(id) is still waiting after blockedFor.
func (h *harness) blocked(what, id string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, blockedFor)
	defer cancel()
	unlock, err := h.tryLock(ctx, id)
	if err == nil {
		unlock()
		h.t.Errorf("%s: Lock succeeded, want it to wait for the holder", what)
		return
	}
	h.wantErr(what, err, context.DeadlineExceeded)
}

func testLockMutualExclusion(h *harness) {
	const workers, rounds = 16, 50
	id := tokenstore.NewID()
	// counter is read and written apart, with a yield between, so two
	// holders at once lose increments. It is atomic only so that stores whose
	// lock the race detector cannot see through (a network round trip) are
	// not reported as racy.
	var (
		counter atomic.Int64
		inside  atomic.Int32
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
				unlock, err := h.st.Lock(ctx, id)
				cancel()
				if err != nil {
					h.t.Errorf("Lock: %v", err)
					return
				}
				if n := inside.Add(1); n != 1 {
					h.t.Errorf("%d holders of one lock", n)
				}
				v := counter.Load()
				runtime.Gosched()
				counter.Store(v + 1)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if n := counter.Load(); n != workers*rounds {
		h.t.Errorf("counter = %d, want %d", n, workers*rounds)
	}
	h.lock(id)() // free again
}

func testLockWaits(h *harness) {
	id := tokenstore.NewID()
	unlock := h.lock(id)
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(h.ctx, patience)
		defer cancel()
		u, err := h.st.Lock(ctx, id)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		h.t.Fatalf("Lock returned (%v) while another holder had the lock", err)
	case <-time.After(blockedFor):
	}
	unlock()
	if err := <-got; err != nil {
		h.t.Errorf("Lock after the holder unlocked: %v", err)
	}
	h.lock(id)()
}

func testLockContext(h *harness) {
	id := tokenstore.NewID()
	unlock := h.lock(id)

	start := time.Now()
	h.blocked("Lock with a deadline while held", id)
	if d := time.Since(start); d < blockedFor/2 {
		h.t.Errorf("Lock gave up after %v, before its deadline of %v", d, blockedFor)
	}

	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	_, err := h.tryLock(ctx, id)
	h.wantErr("Lock with a cancelled context while held", err, context.Canceled)

	ctx, cancel = context.WithCancel(h.ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = h.tryLock(ctx, id)
	h.wantErr("Lock cancelled while waiting", err, context.Canceled)

	unlock()
	h.lock(id)() // the waiters that gave up left the lock free
}

func testLockIndependent(h *harness) {
	a, b := tokenstore.NewID(), tokenstore.NewID()
	unlockA := h.lock(a)
	start := time.Now()
	unlockB := h.lock(b)
	if d := time.Since(start); d > time.Second {
		h.t.Errorf("Lock of another session took %v", d)
	}
	h.blocked("Lock of a held session while another is held", a)
	unlockA()
	h.blocked("Lock of a held session after another was unlocked", b)
	unlockB()
	h.lock(a)()
	h.lock(b)()
}

func testUnlockIdempotent(h *harness) {
	id := tokenstore.NewID()
	first := h.lock(id)
	first()
	first() // no effect
	second := h.lock(id)
	first() // still no effect: must not release the second holder's lock
	h.blocked("Lock after a stale unlock was called again", id)
	second()
	h.lock(id)()
}
