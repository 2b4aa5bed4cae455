package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// invalidationChannel is where Redis sends the invalidation messages of
// CLIENT TRACKING to a RESP2 connection that redirects them to itself.
const invalidationChannel = "__redis__:invalidate"

// errTrackingLost ends a tracking session whose connection go-redis would
// otherwise replace behind its back: invalidations sent meanwhile are lost.
var errTrackingLost = errors.New("redisstore: near cache: the tracking connection was replaced")

// tracker keeps the near cache in step with Redis (see nearcache.go): one
// connection at a time, on which the store's session and marker prefixes
// are tracked in broadcasting mode with invalidations redirected to the
// connection itself (RESP2 Pub/Sub, so they arrive as soon as Redis sends
// them), pinged every MaxStale/3. Each connection is a session: when it
// fails, or is silent for readTimeout, or (on a cluster) the store's slot
// has moved to another master, the cache is emptied and the tracker
// connects again, with a pause that doubles from 10 ms to a second.
//
// It does not reference the Store, so that a Store dropped without Close
// can be collected (and its tracker stopped by a cleanup).
type tracker struct {
	c        redis.UniversalClient
	base     string
	cache    *nearCache
	interval time.Duration // between pings

	ready  chan error // the first session's outcome
	cancel context.CancelFunc
	done   chan struct{}
}

// readTimeout: a tracking connection on which nothing (not even a pong)
// arrives for this long is dropped and made again.
func (t *tracker) readTimeout() time.Duration { return time.Second + t.cache.maxStale }

// startTracker connects the tracker and waits until the cache may serve
// (the first pong), or until the first connection fails or ctx ends.
func startTracker(ctx context.Context, c redis.UniversalClient, base string, cache *nearCache) (*tracker, error) {
	run, cancel := context.WithCancel(context.Background())
	t := &tracker{c: c, base: base, cache: cache, interval: cache.maxStale / 3,
		ready: make(chan error, 1), cancel: cancel, done: make(chan struct{})}
	go t.run(run)
	select {
	case err := <-t.ready:
		if err != nil {
			t.stop()
			return nil, err
		}
		return t, nil
	case <-ctx.Done():
		t.stop()
		return nil, ctx.Err()
	}
}

// stop ends the tracker and waits for it.
func (t *tracker) stop() {
	t.cancel()
	<-t.done
}

func (t *tracker) run(ctx context.Context) {
	defer close(t.done)
	defer t.cache.lost()
	started := false
	pause := 10 * time.Millisecond
	for ctx.Err() == nil {
		err := t.session(ctx, func() {
			if !started {
				started = true
				t.ready <- nil
			}
			pause = 10 * time.Millisecond
		})
		t.cache.lost()
		if !started {
			t.ready <- err // New fails with it
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// session runs one tracking connection until it fails. up is called at
// every pong.
func (t *tracker) session(ctx context.Context, up func()) error {
	opt, err := t.options(ctx)
	if err != nil {
		return err
	}
	client := redis.NewClient(opt)
	defer client.Close()
	ps := client.Subscribe(ctx, invalidationChannel)
	defer ps.Close()
	msg, err := ps.ReceiveTimeout(ctx, t.readTimeout())
	if err != nil {
		return err
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return fmt.Errorf("redisstore: near cache: %T instead of the subscription's confirmation", msg)
	}
	// Tracking is on and invalidations flow: what the cache held before,
	// or took in meanwhile, cannot be vouched for.
	t.cache.flush()

	var mu sync.Mutex
	sent := map[uint64]time.Time{}
	pinging, stopPings := context.WithCancel(ctx)
	defer stopPings()
	go func() {
		tick := time.NewTicker(t.interval)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			if t.moved(pinging, opt.Addr) {
				_ = ps.Close() // the reader sees it and ends the session
				return
			}
			mu.Lock()
			sent[seq] = time.Now()
			mu.Unlock()
			_ = ps.Ping(pinging, strconv.FormatUint(seq, 10)) // a failure shows as silence
			select {
			case <-pinging.Done():
				_ = ps.Close() // Close: the reader does not watch ctx
				return
			case <-tick.C:
			}
		}
	}()
	for {
		msg, err := ps.ReceiveTimeout(ctx, t.readTimeout())
		if err != nil {
			return err // a FLUSHALL's invalidation (no key list) lands here too: flushed
		}
		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel == invalidationChannel {
				t.cache.invalidate(t.base, m.PayloadSlice)
			}
		case *redis.Pong:
			seq, err := strconv.ParseUint(m.Payload, 10, 64)
			if err != nil {
				continue
			}
			mu.Lock()
			at, ok := sent[seq]
			for k := range sent {
				if k <= seq {
					delete(sent, k)
				}
			}
			mu.Unlock()
			if ok {
				t.cache.extend(at)
				up()
			}
		}
	}
}

// moved reports whether, on a cluster, the store's slot is now served by
// another master than addr (a failover): the tracking connection is then
// on a server that no longer takes the store's writes.
func (t *tracker) moved(ctx context.Context, addr string) bool {
	cc, ok := t.c.(*redis.ClusterClient)
	if !ok {
		return false
	}
	n, err := cc.MasterForKey(ctx, t.base+"s:")
	return err == nil && n.Options().Addr != addr
}

// options returns the tracking connection's client options: those of the
// store's client (its server, credentials, TLS, timeouts; on a cluster,
// those of the master of the store's slot), RESP2, and an OnConnect that
// turns tracking on. The client makes one connection: a second one would
// have missed invalidations, and fails the session instead (until the
// first one tracks, the session has not started: a retry is harmless).
func (t *tracker) options(ctx context.Context) (*redis.Options, error) {
	var o redis.Options
	switch c := t.c.(type) {
	case *redis.Client:
		o = *c.Options()
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, t.base+"s:")
		if err != nil {
			return nil, err
		}
		o = *n.Options()
	default:
		return nil, fmt.Errorf("%w: NearCache needs a redis.Client or a redis.ClusterClient, not %T", ErrConfig, t.c)
	}
	o.Protocol = 2
	o.PoolSize, o.MinIdleConns = 1, 0
	o.ClientSideCacheConfig, o.ClientSideCache = nil, nil
	prev := o.OnConnect
	var used atomic.Bool
	prefixes := []any{"CLIENT", "TRACKING", "ON", "REDIRECT", nil, "BCAST"}
	for _, p := range []string{"s:", "r:", "e:"} {
		prefixes = append(prefixes, "PREFIX", t.base+p)
	}
	o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if used.Load() {
			return errTrackingLost
		}
		if prev != nil {
			if err := prev(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		args := append([]any(nil), prefixes...)
		args[4] = id
		if err := cn.Do(ctx, args...).Err(); err != nil {
			return err
		}
		used.Store(true)
		return nil
	}
	return &o, nil
}
