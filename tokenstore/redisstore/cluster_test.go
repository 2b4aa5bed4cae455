package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
	"github.com/multiapp-go/multiapp/tokenstore/storetest"
)

// TestCluster runs the store against a Redis Cluster of three masters with
// a replica each, started once for its subtests (the cluster takes a few
// seconds to form).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cl := redistest.StartCluster(t)
	rdb := cl.Client(t)

	// The shared suite, every subtest with its own Store (as separate
	// instances would have) through one cluster client, every durable write
	// waiting for its replica (the single-server suites cover the writes
	// that do not wait).
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) tokenstore.Store {
			return newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, LockLease: time.Second, Prefix: "conf", WaitReplicas: 1})
		})
	})

	t.Run("KeysShareASlot", func(t *testing.T) { testKeysShareASlot(t, cl, rdb) })
	t.Run("FailoverLosesNothing", func(t *testing.T) { testFailoverLosesNothing(t, cl) })
	t.Run("WaitReplicas", func(t *testing.T) { testWaitReplicas(t, cl) })
}

// testWaitReplicas: with Options.WaitReplicas, a write is acknowledged
// only once a replica has it, so a master that crashes right after loses
// nothing acknowledged; a write the replica cannot take in time (here a
// frozen replica) fails with ErrUnavailable instead of being reported
// stored.
func testWaitReplicas(t *testing.T, cl *redistest.Cluster) {
	ctx := context.Background()
	opts := redisstore.Options{Keys: [][]byte{key1}, Prefix: "wait", WaitReplicas: 1} // another shard than the failover above
	st, err := redisstore.NewFromURL(ctx, cl.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	replica := cl.ReplicaOf(cl.MasterOf(st.Base()))
	replica.Pause()
	lagging := session("sid-lag", "lag")
	start := time.Now()
	err = st.Create(ctx, lagging)
	replica.Resume()
	if !errors.Is(err, tokenstore.ErrUnavailable) || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("Create while the replica is frozen: %v, want ErrUnavailable naming the replicas", err)
	}
	t.Logf("Create with a frozen replica failed after %v: %v", time.Since(start), err)

	var kept []*tokenstore.Session
	for i := range 10 {
		kept = append(kept, session(fmt.Sprintf("sid-d%d", i), fmt.Sprintf("user-d%d", i)))
	}
	mustCreate(t, st, kept...)
	out := session("sid-dout", "dora")
	mustCreate(t, st, out)
	if err := st.RevokeSID(ctx, iss, "sid-dout", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSubject(ctx, iss, "user-d9", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	cl.Failover(st.Base()) // at once: no waiting for replication
	waitServed(t, st, kept[0].ID, 10*time.Second)
	for _, k := range kept[:9] {
		if _, err := st.Get(ctx, k.ID); err != nil {
			t.Errorf("session %s acknowledged before the crash: %v", k.SID, err)
		}
	}
	for _, g := range []*tokenstore.Session{out, kept[9]} {
		if _, err := st.Get(ctx, g.ID); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Errorf("session %s revoked before the crash: %v, want ErrNotFound", g.SID, err)
		}
	}
}

// testKeysShareASlot verifies, on the keys the store wrote, what the
// scripts rely on: every key of one Store (sessions, indexes, revocations,
// logout token ids, locks, key check, hash key) hashes to one slot and lives
// on one master, while two prefixes may land on different masters.
func testKeysShareASlot(t *testing.T, cl *redistest.Cluster, rdb *redis.ClusterClient) {
	ctx := context.Background()
	slots := map[string]int64{}
	for _, prefix := range []string{"shop", "blog", "wiki", "docs"} {
		st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, Prefix: prefix})
		a, b, c := session("sid-a", "alice"), session("sid-b", "bob"), session("", "carol")
		mustCreate(t, st, a, b, c)
		if _, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeSID(ctx, iss, "sid-b", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DeleteBySID(ctx, iss, "sid-b", "bob"); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeSubject(ctx, iss, "dave", time.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		unlock, err := st.Lock(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		var mu sync.Mutex
		masters := 0
		err = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			found, err := m.Keys(ctx, "{"+prefix+"}:*").Result()
			mu.Lock() // ForEachMaster runs f on the masters at once
			defer mu.Unlock()
			if len(found) > 0 {
				masters++
			}
			keys = append(keys, found...)
			return err
		})
		unlock()
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[byte]bool{}
		var slot int64 = -1
		for _, k := range keys {
			s, err := rdb.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if slot >= 0 && s != slot {
				t.Errorf("prefix %s: key %s is in slot %d, others in %d", prefix, k, s, slot)
			}
			slot = s
			kinds[k[len(prefix)+3]] = true
		}
		if masters != 1 {
			t.Errorf("prefix %s: keys on %d masters, want 1", prefix, masters)
		}
		// s: sessions, x u n: indexes, r: revoked sid, e: logged-out
		// subject, j: jti, l: lock, k: key check, h: hash key.
		for _, kind := range []byte("sxunrejlkh") {
			if !kinds[kind] {
				t.Errorf("prefix %s: no key of kind %q written: the check did not cover it (keys %v)", prefix, kind, keys)
			}
		}
		slots[prefix] = slot
	}
	distinct := map[int64]bool{}
	for _, s := range slots {
		distinct[s] = true
	}
	if len(distinct) < 2 {
		t.Errorf("four prefixes in %d slot: the check cannot tell slots apart", len(distinct))
	}
	t.Logf("slots by prefix: %v", slots)
}

// testFailoverLosesNothing crashes the master that serves a store's slot
// while an instance keeps reading, and checks, once its replica is
// promoted, that every session and every logout written before is there:
// sessions read back with their tokens, revoked sids and logged-out
// subjects stay revoked, logout token ids stay remembered. Writes that the
// master acknowledged are on the replica before the crash (WaitReplicated):
// what Redis's asynchronous replication can lose in the instant before a
// crash is beyond what a client can see, and docs/stores.md says so.
//
// During the failover no call may report a session missing: only
// ErrUnavailable (503, nobody signed out) or success.
func testFailoverLosesNothing(t *testing.T, cl *redistest.Cluster) {
	ctx := context.Background()
	st, err := redisstore.NewFromURL(ctx, cl.URL(), redisstore.Options{Keys: [][]byte{key1}, Prefix: "failover"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var kept []*tokenstore.Session
	for i := range 30 {
		kept = append(kept, session(fmt.Sprintf("sid-%d", i), fmt.Sprintf("user-%d", i)))
	}
	mustCreate(t, st, kept...)
	gone := []*tokenstore.Session{session("sid-out", "mallory"), session("", "trudy")}
	mustCreate(t, st, gone...)
	if err := st.RevokeSID(ctx, iss, "sid-out", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSubject(ctx, iss, "trudy", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if first, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-before", time.Hour); err != nil || !first {
		t.Fatal(first, err)
	}
	master := cl.MasterOf(st.Base())
	cl.WaitReplicated(master)

	// An instance keeps reading while the master crashes.
	var reads, unavailable atomic.Int64
	var wrong sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := st.Get(ctx, kept[i%len(kept)].ID)
			reads.Add(1)
			switch {
			case err == nil:
			case errors.Is(err, tokenstore.ErrUnavailable) && !errors.Is(err, tokenstore.ErrNotFound):
				unavailable.Add(1)
			default:
				wrong.Store(err.Error(), true)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	start := time.Now()
	promoted := cl.Failover(st.Base())
	took := time.Since(start)
	// The client finds the new master by itself.
	t.Logf("served again %v after the promotion", waitServed(t, st, kept[0].ID, 10*time.Second))
	close(stop)
	wg.Wait()
	wrong.Range(func(k, _ any) bool {
		t.Errorf("during the failover a read answered %v: only ErrUnavailable may", k)
		return true
	})
	t.Logf("failover to %s in %v; %d reads meanwhile, %d answered ErrUnavailable", promoted.Addr, took, reads.Load(), unavailable.Load())
	if cl.MasterOf(st.Base()) != promoted {
		t.Fatalf("the store's slot is not served by the promoted replica")
	}

	// Another instance, started after the failover, sees the same.
	other, err := redisstore.NewFromURL(ctx, cl.URL(), redisstore.Options{Keys: [][]byte{key1}, Prefix: "failover"})
	if err != nil {
		t.Fatalf("New after the failover: %v", err)
	}
	defer other.Close()
	for _, s := range []*redisstore.Store{st, other} {
		for _, k := range kept {
			if got, err := s.Get(ctx, k.ID); err != nil || got.RefreshToken != k.RefreshToken {
				t.Errorf("session %s after the failover: %v", k.SID, err)
			}
		}
		for _, g := range gone {
			if _, err := s.Get(ctx, g.ID); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Errorf("revoked session %s/%s after the failover: %v, want ErrNotFound", g.Subject, g.SID, err)
			}
		}
		if again := session("sid-out", "mallory"); !errors.Is(s.Create(ctx, again), tokenstore.ErrRevoked) {
			t.Error("a login into the revoked sid after the failover was not refused")
		}
		if r, err := s.SIDRevoked(ctx, iss, "sid-out"); err != nil || !r {
			t.Errorf("SIDRevoked after the failover: %v %v", r, err)
		}
		if first, err := s.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti-before", time.Hour); err != nil || first {
			t.Errorf("a logout token id seen before the failover: first=%v %v, want a replay", first, err)
		}
	}
	// And writes go on.
	late := session("sid-late", "zoe")
	if err := other.Create(ctx, late); err != nil {
		t.Fatalf("Create after the failover: %v", err)
	}
	if _, err := st.Get(ctx, late.ID); err != nil {
		t.Errorf("Get of a session written after the failover: %v", err)
	}
}

// waitServed waits until st reads session id again (errors meanwhile may
// only be ErrUnavailable) and returns how long that took.
func waitServed(t testing.TB, st *redisstore.Store, id string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := st.Get(context.Background(), id)
		if err == nil {
			return time.Since(start)
		}
		if !errors.Is(err, tokenstore.ErrUnavailable) || time.Since(start) > within {
			t.Fatalf("Get %v later: %v, want the session back within %v", time.Since(start), err, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
