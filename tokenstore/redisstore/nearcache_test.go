package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// nearPair is two instances of an app sharing one Redis, each with its own
// client and near cache: a writes, b reads.
func nearPair(t *testing.T, srv *redistest.Server, db int, opts redisstore.Options) (a, b *redisstore.Store) {
	t.Helper()
	srv.Client(t, db) // flush
	opts.Keys = [][]byte{key1}
	if opts.NearCache == 0 {
		opts.NearCache = 1000
	}
	ao, bo := opts, opts
	ao.Client, bo.Client = srv.NewClient(t, db), srv.NewClient(t, db)
	return newStore(t, ao), newStore(t, bo)
}

// warm reads s on st until the near cache serves it.
func warm(t *testing.T, st *redisstore.Store, s *tokenstore.Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !st.NearCached(s.ID) {
		if _, err := st.Get(context.Background(), s.ID); err != nil {
			t.Fatalf("warming: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the near cache does not keep the session")
		}
	}
}

// watch polls st.Get(id) after a write that returned at t0 until stale
// says the answer no longer is the one from before the write, and returns
// how long that took (from t0 to the start of the first Get that saw the
// change). It fails the test when a Get that started bound or more after
// t0 still got the old answer: the near cache's promise.
func watch(t *testing.T, st *redisstore.Store, id string, t0 time.Time, bound time.Duration, stale func(*tokenstore.Session, error) bool) time.Duration {
	t.Helper()
	for {
		start := time.Now()
		s, err := st.Get(context.Background(), id)
		if !stale(s, err) {
			return start.Sub(t0)
		}
		if late := start.Sub(t0); late >= bound {
			t.Fatalf("a Get started %v after the write was served what the write changed (bound %v)", late, bound)
		}
		if start.Sub(t0) > 5*time.Second {
			t.Fatal("the change never arrived")
		}
	}
}

// still is watch's stale for a write that ends the session.
func still(s *tokenstore.Session, err error) bool { return err == nil }

// TestNearCacheServesWarmSessions: a warm Get is served from the near
// cache, as a copy; the cache is bounded.
func TestNearCacheServesWarmSessions(t *testing.T) {
	srv := redistest.Start(t)
	_, st := nearPair(t, srv, 4, redisstore.Options{NearCache: 10})
	ctx := context.Background()
	s := session("sid-1", "alice")
	mustCreate(t, st, s)
	warm(t, st, s)
	hits, _ := st.NearCacheHits()
	got, err := st.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := st.NearCacheHits(); h != hits+1 {
		t.Errorf("a warm Get was not a near-cache hit")
	}
	if got.ID != s.ID || got.RefreshToken != s.RefreshToken || string(got.Claims) != string(s.Claims) {
		t.Errorf("cached Get = %+v", got)
	}
	got.RefreshToken, got.Claims[0] = "changed by the caller", 'X'
	if again, _ := st.Get(ctx, s.ID); again.RefreshToken != s.RefreshToken || again.Claims[0] == 'X' {
		t.Error("a caller's change to a Get's session reached the cache")
	}
	for i := range 50 {
		o := session(fmt.Sprintf("sid-%d", i+2), "bob")
		mustCreate(t, st, o)
		if _, err := st.Get(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.NearCacheLen(); n > 10 {
		t.Errorf("the near cache holds %d sessions, NearCache is 10", n)
	}
}

// TestNearCacheInvalidationAcrossInstances: whatever another instance does
// to a session a near cache holds (a back-channel logout, in either step,
// a logout, a refresh, a touch, the end of its lifetime), a Get that starts
// NearCacheMaxStale after the write returned sees it; normally within a
// round trip (logged).
func TestNearCacheInvalidationAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	a, b := nearPair(t, srv, 4, redisstore.Options{})
	ctx := context.Background()
	bound := redisstore.DefaultNearCacheMaxStale
	changed := func(old *tokenstore.Session, field func(*tokenstore.Session) any) func(*tokenstore.Session, error) bool {
		return func(s *tokenstore.Session, err error) bool {
			return err == nil && field(s) == field(old)
		}
	}
	type step struct {
		name  string
		sid   string
		write func(s *tokenstore.Session) error
		stale func(s *tokenstore.Session) func(*tokenstore.Session, error) bool
	}
	ends := func(*tokenstore.Session) func(*tokenstore.Session, error) bool { return still }
	steps := []step{
		{"back-channel logout by sid: the revocation alone", "sid-r", func(s *tokenstore.Session) error {
			return a.RevokeSID(ctx, iss, s.SID, time.Hour)
		}, ends},
		{"back-channel logout by sid: revocation and delete", "sid-rd", func(s *tokenstore.Session) error {
			if err := a.RevokeSID(ctx, iss, s.SID, time.Hour); err != nil {
				return err
			}
			_, err := a.DeleteBySID(ctx, iss, s.SID, s.Subject)
			return err
		}, ends},
		{"back-channel logout of the subject: the revocation alone", "", func(s *tokenstore.Session) error {
			return a.RevokeSubject(ctx, iss, s.Subject, time.Now().Add(time.Second), time.Hour)
		}, ends},
		{"back-channel logout of the subject: revocation and delete", "sid-sd", func(s *tokenstore.Session) error {
			if err := a.RevokeSubject(ctx, iss, s.Subject, time.Now().Add(time.Second), time.Hour); err != nil {
				return err
			}
			_, err := a.DeleteBySubject(ctx, iss, s.Subject)
			return err
		}, ends},
		{"logout at the other instance", "sid-del", func(s *tokenstore.Session) error { return a.Delete(ctx, s.ID) }, ends},
		{"refresh at the other instance", "sid-up", func(s *tokenstore.Session) error {
			u := s.Clone()
			u.AccessToken, u.RefreshToken = "new-access", "rotated-refresh"
			return a.Update(ctx, u)
		}, func(s *tokenstore.Session) func(*tokenstore.Session, error) bool {
			return changed(s, func(x *tokenstore.Session) any { return x.RefreshToken })
		}},
		{"activity recorded at the other instance", "sid-touch", func(s *tokenstore.Session) error {
			return a.Touch(ctx, s.ID, time.Now())
		}, func(s *tokenstore.Session) func(*tokenstore.Session, error) bool {
			return changed(s, func(x *tokenstore.Session) any { return x.LastSeen.UnixNano() })
		}},
		{"lifetime shortened by a refresh", "sid-short", func(s *tokenstore.Session) error {
			u := s.Clone()
			u.ExpiresAt = time.Now().Add(50 * time.Millisecond)
			return a.Update(ctx, u)
		}, func(s *tokenstore.Session) func(*tokenstore.Session, error) bool {
			return changed(s, func(x *tokenstore.Session) any { return x.ExpiresAt.UnixNano() })
		}},
	}
	var took []time.Duration
	for round := range 5 {
		for _, st := range steps {
			sid := st.sid
			if sid != "" {
				sid = fmt.Sprintf("%s-%d", sid, round)
			}
			s := session(sid, fmt.Sprintf("user-%d-%d", round, len(took)))
			mustCreate(t, a, s)
			warm(t, b, s)
			if err := st.write(s); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			t0 := time.Now()
			d := watch(t, b, s.ID, t0, bound, st.stale(s))
			took = append(took, d)
			if round == 0 {
				t.Logf("%s: seen by the other instance %v after the write returned", st.name, d)
			}
		}
	}
	slices.Sort(took)
	t.Logf("%d changes: median %v, max %v (bound %v)", len(took), took[len(took)/2], took[len(took)-1], bound)
}

// TestNearCacheTrackingLost: when the tracking connection is lost (killed,
// Redis restarted, FLUSHALL) the near cache is emptied and a change made
// meanwhile is never served stale; tracking comes back by itself.
func TestNearCacheTrackingLost(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Config{AppendOnly: true})
	a, b := nearPair(t, srv, 0, redisstore.Options{})
	admin := srv.NewClient(t, 0)
	ctx := context.Background()
	bound := redisstore.DefaultNearCacheMaxStale

	waitServing := func() time.Duration {
		t.Helper()
		start := time.Now()
		for !b.NearCacheServing() || !a.NearCacheServing() {
			if time.Since(start) > 10*time.Second {
				t.Fatal("the near cache does not come back after tracking was lost")
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	for _, fault := range []struct {
		name  string
		cause func()
	}{
		{"tracking connection killed", func() {
			if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"Redis restarted", func() { srv.Stop(); srv.Restart() }},
	} {
		s, r := session("sid-kept-"+fault.name, "alice"), session("sid-revoked-"+fault.name, "bob")
		mustCreate(t, a, s, r)
		warm(t, b, s)
		warm(t, b, r)
		fault.cause()
		// Right away, while b's tracking is reconnecting: a refresh and a
		// back-channel logout at a.
		u := s.Clone()
		u.RefreshToken = "rotated-" + fault.name
		var t0 time.Time
		for try := 0; ; try++ {
			err := a.Update(ctx, u)
			if err == nil {
				err = a.RevokeSID(ctx, iss, r.SID, time.Hour)
			}
			if err == nil {
				t0 = time.Now()
				break
			}
			if !errors.Is(err, tokenstore.ErrUnavailable) || try > 1000 {
				t.Fatalf("%s: writes at a: %v", fault.name, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		watch(t, b, r.ID, t0, bound, still)
		watch(t, b, s.ID, t0, bound, func(got *tokenstore.Session, err error) bool {
			return err == nil && got.RefreshToken == s.RefreshToken || errors.Is(err, tokenstore.ErrUnavailable)
		})
		t.Logf("%s: near cache serving again %v later", fault.name, waitServing())
		if _, err := b.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}

	// FLUSHALL: Redis tells the trackers everything changed.
	s := session("sid-flushed", "carol")
	mustCreate(t, a, s)
	warm(t, b, s)
	if err := admin.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	watch(t, b, s.ID, time.Now(), bound, still)
}

// TestNearCacheSilentNetwork: when the tracking connection goes silent
// (Redis's host gone, a partition) nothing says it is lost; the lease
// does: a near cache is not used NearCacheMaxStale after the last ping
// Redis answered, so a logout made meanwhile (here, at an instance that
// still reaches Redis) is never served stale longer than that.
func TestNearCacheSilentNetwork(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	proxy := redistest.NewProxy(t, srv.Addr)
	ctx := context.Background()
	a := newStore(t, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}, NearCache: 100})
	bc := redis.NewClient(&redis.Options{Addr: proxy.Addr, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { bc.Close() })
	b := newStore(t, redisstore.Options{Client: bc, Keys: [][]byte{key1}, NearCache: 100})
	bound := redisstore.DefaultNearCacheMaxStale

	s := session("sid-1", "alice")
	mustCreate(t, a, s)
	warm(t, b, s)
	proxy.Blackhole()
	if err := a.RevokeSID(ctx, iss, s.SID, time.Hour); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	served := 0
	for time.Since(t0) < 3*bound {
		start := time.Now()
		_, err := b.Get(ctx, s.ID)
		switch {
		case err == nil && start.Sub(t0) >= bound:
			t.Fatalf("a Get started %v after the logout was served from the near cache (bound %v)", start.Sub(t0), bound)
		case err == nil:
			served++
		case !errors.Is(err, tokenstore.ErrUnavailable) && !errors.Is(err, tokenstore.ErrNotFound):
			t.Fatalf("Get while the network is silent: %v", err)
		}
	}
	t.Logf("served from the near cache %d times before the lease ran out", served)
	proxy.Restore(t)
	for start := time.Now(); ; {
		_, err := b.Get(ctx, s.ID)
		if errors.Is(err, tokenstore.ErrNotFound) {
			break
		}
		if err == nil || time.Since(start) > 10*time.Second {
			t.Fatalf("after the network is back: %v, want ErrNotFound", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNearCacheLockHolderReadsRedis: the holder of a session's refresh lock
// reads what the previous holder (another instance) stored, never its own
// near cache, which may not have heard of it yet: otherwise it would send
// a refresh token the OP already rotated.
func TestNearCacheLockHolderReadsRedis(t *testing.T) {
	srv := redistest.Start(t)
	a, b := nearPair(t, srv, 4, redisstore.Options{})
	ctx := context.Background()
	s := session("sid-1", "alice")
	mustCreate(t, a, s)
	cur := s
	for i := range 50 {
		warm(t, b, cur)
		unlock, err := a.Lock(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		next := cur.Clone()
		next.RefreshToken = fmt.Sprintf("rotated-%d", i)
		if err := a.Update(ctx, next); err != nil {
			t.Fatal(err)
		}
		unlock()
		unlock, err = b.Lock(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(ctx, s.ID)
		unlock()
		if err != nil || got.RefreshToken != next.RefreshToken {
			t.Fatalf("round %d: the lock holder read %v, %v: want the refresh token stored before it got the lock", i, got.RefreshToken, err)
		}
		cur = next
	}
}

// TestNearCacheConcurrentWrites: many readers at one instance and writers
// at another; once the writes stop, every reader sees the last one within
// the bound (no stale entry survives a race between a read and an
// invalidation).
func TestNearCacheConcurrentWrites(t *testing.T) {
	srv := redistest.Start(t)
	a, b := nearPair(t, srv, 4, redisstore.Options{})
	ctx := context.Background()
	var ss []*tokenstore.Session
	for i := range 20 {
		s := session(fmt.Sprintf("sid-%d", i), "alice")
		ss = append(ss, s)
		mustCreate(t, a, s)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = b.Get(ctx, ss[i%len(ss)].ID)
			}
		})
	}
	last := make([]string, len(ss))
	for round := range 30 {
		for i, s := range ss {
			u := s.Clone()
			u.RefreshToken = fmt.Sprintf("rt-%d-%d", round, i)
			if err := a.Update(ctx, u); err != nil {
				t.Fatal(err)
			}
			last[i] = u.RefreshToken
		}
	}
	t0 := time.Now()
	for i, s := range ss {
		watch(t, b, s.ID, t0, redisstore.DefaultNearCacheMaxStale, func(got *tokenstore.Session, err error) bool {
			return err != nil || got.RefreshToken != last[i]
		})
	}
	close(stop)
	wg.Wait()
	hits, misses := b.NearCacheHits()
	t.Logf("readers: %d hits, %d misses", hits, misses)
}

func TestNearCacheOptions(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	for name, o := range map[string]redisstore.Options{
		"negative size":       {NearCache: -1},
		"max stale too short": {NearCache: 10, NearCacheMaxStale: time.Millisecond},
	} {
		o.Client, o.Keys = rdb, [][]byte{key1}
		if _, err := redisstore.New(ctx, o); !errors.Is(err, redisstore.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": srv.Addr}})
	defer ring.Close()
	_, err := redisstore.New(ctx, redisstore.Options{Client: ring, Keys: [][]byte{key1}, NearCache: 10})
	if !errors.Is(err, redisstore.ErrConfig) {
		t.Errorf("a Ring client: %v, want ErrConfig", err)
	}
}

// TestNearCacheACL: an ACL user needs the tracking and Pub/Sub rights
// docs/stores.md lists; without them New says so.
func TestNearCacheACL(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Config{Args: append(append([]string{"--user", "app"}, strings.Fields(aclRule)...),
		"--user", "near", "on", ">near-password", "~{multiapp}:*", "resetchannels", "&"+"__redis__:invalidate", "-@all", "+@read", "+@write",
		"+@scripting", "+@connection", "+@keyspace", "-@dangerous", "+time", "+wait", "+client|id", "+client|tracking", "+subscribe")})
	srv.Client(t, 0)
	ctx := context.Background()
	_, err := redisstore.NewFromURL(ctx, "redis://app:app-password@"+srv.Addr+"/0", redisstore.Options{Keys: [][]byte{key1}, NearCache: 10})
	if !errors.Is(err, redisstore.ErrConfig) || !strings.Contains(err.Error(), "+client|tracking") {
		t.Errorf("NearCache as a user without the rights: %v, want ErrConfig naming them", err)
	}
	url := "redis://near:near-password@" + srv.Addr + "/0"
	a, err := redisstore.NewFromURL(ctx, url, redisstore.Options{Keys: [][]byte{key1}, NearCache: 10})
	if err != nil {
		t.Fatalf("NearCache as a user with the rights: %v", err)
	}
	defer a.Close()
	b, err := redisstore.NewFromURL(ctx, url, redisstore.Options{Keys: [][]byte{key1}, NearCache: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := session("sid-1", "alice")
	mustCreate(t, a, s)
	warm(t, b, s)
	if err := a.RevokeSID(ctx, iss, s.SID, time.Hour); err != nil {
		t.Fatal(err)
	}
	watch(t, b, s.ID, time.Now(), redisstore.DefaultNearCacheMaxStale, still)
}
