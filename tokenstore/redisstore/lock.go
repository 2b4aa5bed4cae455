package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// firstPoll is the first pause of a Lock that waits; pauses double up to
// Options.LockPoll.
const firstPoll = 2 * time.Millisecond

// MaxLockHold bounds how long a lock outlives a crashed holder because of
// its context's deadline (see Lock).
const MaxLockHold = 5 * time.Minute

// Lock implements tokenstore.Store with a lease in Redis, shared by every
// Store with the same Prefix.
//
// The lock is the key "l:<HashID(id)>" set with SET NX PX to a random token
// for LockLease (by a script that also recognises the token, should the
// client retry a SET whose reply was lost). While it is held a goroutine extends the lease every
// LockLease/3, only while the key still holds this holder's token, so a
// refresh that takes longer than the lease keeps the lock; the unlock
// function stops it and deletes the key, again only if it still holds the
// token, so a late unlock never releases another holder's lock. A holder
// that dies stops renewing, and its lock ends LockLease later, or at ctx's
// deadline when that is later (at most MaxLockHold after it was set): the
// work a lock protects may outlive its holder. A refresh holder that dies
// after sending the refresh token leaves a request the OP may still answer
// (and rotate the token) until that request's deadline, which is the
// deadline of the ctx the lock was taken with; until then no other
// instance may present the same token.
//
// A Lock that finds the lock taken tries again after a pause that starts at
// a few milliseconds and doubles up to LockPoll (with jitter), until it gets
// the lock or ctx ends (it then returns ctx.Err()). When Redis cannot be
// reached it returns at once with an error wrapping
// tokenstore.ErrUnavailable.
//
// The lease is only as safe as Redis: if Redis loses the key (a restart
// without persistence, a failover to a replica that had not received it),
// a second holder can get the lock while the first still works. The
// store's other guarantees hold regardless: Update only replaces a session
// that exists and is not revoked.
//
// While a Store holds a session's lock, its Get of that session reads
// Redis, never the near cache: the holder sees what another instance's
// refresh stored just before it released the lock.
func (s *Store) Lock(ctx context.Context, id string) (func(), error) {
	l, err := s.acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.near == nil {
		return l.unlock, nil
	}
	key := sha256.Sum256([]byte(id))
	s.near.lock(key)
	var once sync.Once
	return func() {
		l.unlock()
		once.Do(func() { s.near.unlock(key) })
	}, nil
}

// heldLock is one holder's lock and its renewal goroutine.
type heldLock struct {
	s          *Store
	key, token string
	deadline   time.Time // the holder's deadline; zero: none
	stop, done chan struct{}
	once       sync.Once
}

// leaseMillis is the lease to set now: LockLease, or the time left until
// the holder's deadline when that is longer (at most MaxLockHold).
func (l *heldLock) leaseMillis() int64 {
	d := l.s.lease
	if !l.deadline.IsZero() {
		d = max(d, min(time.Until(l.deadline), MaxLockHold))
	}
	return d.Milliseconds()
}

func (s *Store) acquire(ctx context.Context, id string) (*heldLock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &heldLock{s: s, key: s.lockKey(id), token: rand.Text()}
	l.deadline, _ = ctx.Deadline()
	pause := firstPoll
	for {
		ok, err := l.try(ctx)
		if err != nil {
			// Redis may have applied the SET whose answer was lost (a read
			// timeout on a loaded machine, retries used up): release what
			// may be this holder's lock, or it would block every other
			// instance until the lease or the holder's deadline ends. In
			// the background: a request facing an outage answers at once.
			go l.release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.unavailable("lock", err)
		}
		if ok {
			l.stop, l.done = make(chan struct{}), make(chan struct{})
			go l.renew(l.stop, l.done)
			return l, nil
		}
		// Jitter in [pause/2, pause): waiters of several instances spread out.
		t := time.NewTimer(pause/2 + mrand.N(pause/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, s.poll)
	}
}

// try sets the lock key if it is free. The SET runs without ctx's
// cancellation: a SET cut off after Redis applied it would leave a lock
// nobody releases until the lease ends. If ctx ended meanwhile, a lock just
// taken is released again.
func (l *heldLock) try(ctx context.Context) (bool, error) {
	setCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.s.lease)
	defer cancel()
	n, err := setOnceScript.Run(setCtx, l.s.c, []string{l.key}, l.token, l.leaseMillis()).Int()
	if err != nil {
		return false, err
	}
	ok := n == 1
	if ok && ctx.Err() != nil {
		l.release()
		return false, ctx.Err()
	}
	return ok, nil
}

// renew extends the lease every lease/3 until stop is closed or the lock is
// found to be no longer this holder's. A renewal that fails (Redis out of
// reach) is tried again at the next tick: the lease survives two of them.
func (l *heldLock) renew(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := l.s.lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := renewScript.Run(ctx, l.s.c, []string{l.key}, l.token, l.leaseMillis()).Int()
		cancel()
		if err == nil && n == 0 {
			return // lost: the key expired or belongs to another holder
		}
	}
}

// stopRenewal ends the renewal goroutine and waits for it.
func (l *heldLock) stopRenewal() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// unlock is the function Lock returns: idempotent, and a no-op for a lock
// that has passed to another holder.
func (l *heldLock) unlock() {
	l.once.Do(func() {
		l.stopRenewal()
		l.release()
	})
}

// release deletes the lock key if it still holds this holder's token. When
// Redis cannot be reached the lock ends with its lease instead.
func (l *heldLock) release() {
	ctx, cancel := context.WithTimeout(context.Background(), l.s.lease)
	defer cancel()
	_ = unlockScript.Run(ctx, l.s.c, []string{l.key}, l.token).Err()
}
