package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// TestLockOutlivesCrashedHolderUntilItsDeadline: a refresh holder that dies
// after sending the refresh token leaves a request the OP may still answer
// (rotating the token) until the request's deadline, the deadline of the
// context the lock was taken with. Until then no other instance may take
// the lock and present the same, possibly spent, token; after it, the lock
// frees itself.
func TestLockOutlivesCrashedHolderUntilItsDeadline(t *testing.T) {
	_, a, b := twoInstances(t)
	id := tokenstore.NewID()
	hold := 4 * lease
	ctx, cancel := context.WithTimeout(context.Background(), hold)
	defer cancel()
	_, crash, err := a.LockForTest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	crash()
	crashed := time.Now()

	early, cancel2 := context.WithTimeout(context.Background(), 2*lease)
	_, err = b.Lock(early, id)
	cancel2()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock one lease after the crash, before the holder's deadline: %v, want DeadlineExceeded", err)
	}
	wait, cancel3 := context.WithTimeout(context.Background(), 10*lease)
	defer cancel3()
	unlock, err := b.Lock(wait, id)
	if err != nil {
		t.Fatalf("Lock after the crashed holder's deadline: %v", err)
	}
	unlock()
	if d := time.Since(crashed); d < hold*3/4 {
		t.Errorf("the lock freed itself %v after the crash, before the holder's deadline (%v)", d, hold)
	}
}
