package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// TestNewClientFailsFastByDefault: a client made from a URL has the
// fail-fast settings unless the URL names its own, for every kind of
// deployment the URL can describe.
func TestNewClientFailsFastByDefault(t *testing.T) {
	type knobs struct {
		dial, read, write, minBackoff, maxBackoff time.Duration
		retries, dialerRetries                    int
	}
	fast := knobs{redisstore.DefaultDialTimeout, redisstore.DefaultReadTimeout, redisstore.DefaultWriteTimeout,
		redisstore.DefaultMinRetryBackoff, redisstore.DefaultMaxRetryBackoff, redisstore.DefaultMaxRetries, 1}
	for _, tc := range []struct {
		url  string
		kind string // single, cluster, sentinel
		want knobs
		tls  bool
		addr []string
		db   int
		user string
	}{
		{url: "redis://localhost:6379", kind: "single", want: fast, addr: []string{"localhost:6379"}},
		{url: "redis://app:s3cret@redis.internal:6380/4", kind: "single", want: fast, addr: []string{"redis.internal:6380"}, db: 4, user: "app"},
		{url: "rediss://app:s3cret@redis.example.com:6380", kind: "single", want: fast, tls: true, addr: []string{"redis.example.com:6380"}, user: "app"},
		{url: "redis://localhost:6379?dial_timeout=3s&read_timeout=2s&max_retries=-1", kind: "single",
			// An unset write timeout follows the read timeout (go-redis).
			want: knobs{3 * time.Second, 2 * time.Second, 0, redisstore.DefaultMinRetryBackoff, redisstore.DefaultMaxRetryBackoff, -1, 1}, addr: []string{"localhost:6379"}},
		{url: "redis://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", kind: "cluster", want: fast, addr: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}},
		{url: "rediss://u:p@clustercfg.example.com:6379?cluster=true", kind: "cluster", want: fast, tls: true, addr: []string{"clustercfg.example.com:6379"}, user: "u"},
		{url: "redis://10.0.0.1:7000?cluster=true&dialer_retries=3", kind: "cluster",
			want: knobs{fast.dial, fast.read, fast.write, fast.minBackoff, fast.maxBackoff, fast.retries, 3}, addr: []string{"10.0.0.1:7000"}},
		{url: "redis://sentinel-1:26379/2?master_name=mymaster&addr=sentinel-2:26379&username=app&password=s3cret", kind: "sentinel", want: fast,
			addr: []string{"sentinel-1:26379", "sentinel-2:26379"}, db: 2, user: "app"},
	} {
		parsed, err := redisstore.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		var got knobs
		var tls bool
		var addr []string
		var db int
		var user, kind string
		switch o := parsed.(type) {
		case *redis.Options:
			kind = "single"
			got = knobs{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MinRetryBackoff, o.MaxRetryBackoff, o.MaxRetries, o.DialerRetries}
			tls, db, user, addr = o.TLSConfig != nil, o.DB, o.Username, []string{o.Addr}
		case *redis.ClusterOptions:
			kind = "cluster"
			got = knobs{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MinRetryBackoff, o.MaxRetryBackoff, o.MaxRetries, o.DialerRetries}
			tls, user, addr = o.TLSConfig != nil, o.Username, o.Addrs
		case *redis.FailoverOptions:
			kind = "sentinel"
			got = knobs{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MinRetryBackoff, o.MaxRetryBackoff, o.MaxRetries, o.DialerRetries}
			tls, db, user, addr = o.TLSConfig != nil, o.DB, o.Username, o.SentinelAddrs
		}
		if kind != tc.kind || got != tc.want || tls != tc.tls || db != tc.db || user != tc.user || strings.Join(addr, ",") != strings.Join(tc.addr, ",") {
			t.Errorf("%s:\n got %s %+v tls=%v db=%d user=%q addrs=%v\nwant %s %+v tls=%v db=%d user=%q addrs=%v",
				tc.url, kind, got, tls, db, user, addr, tc.kind, tc.want, tc.tls, tc.db, tc.user, tc.addr)
		}
		c, err := redisstore.NewClient(tc.url) // builds without connecting
		if err != nil {
			t.Errorf("NewClient(%s): %v", tc.url, err)
			continue
		}
		c.Close()
	}
}

// TestNewClientRefusesBadURLs with ErrConfig and a message that never
// shows the password.
func TestNewClientRefusesBadURLs(t *testing.T) {
	for _, u := range []string{
		"",
		"localhost:6379",
		"http://user:hunter2@localhost:6379",
		"redis://user:hunter2@localhost:6379/x",
		"redis://user:hunter2@localhost:6379?no_such_option=1",
		"redis://user:hunter2@localhost:6379?cluster=maybe",
		"redis://user:hunter2@local host:6379",
		"redis://user:hunter2@localhost:6379?cluster=true&master_name=m",
		"unix://user:hunter2@/run/redis.sock?cluster=true",
	} {
		_, err := redisstore.NewClient(u)
		if !errors.Is(err, redisstore.ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", u, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password: %v", u, err)
		}
	}
}

// TestNewFromURL: the Store owns the client it made, and Close closes it;
// Options.Client with a URL is a mistake.
func TestNewFromURL(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 3)
	ctx := context.Background()
	st, err := redisstore.NewFromURL(ctx, "redis://"+srv.Addr+"/3", redisstore.Options{Keys: [][]byte{key1}})
	if err != nil {
		t.Fatal(err)
	}
	s := session("sid-1", "alice")
	mustCreate(t, st, s)
	if got, err := st.Get(ctx, s.ID); err != nil || got.RefreshToken != s.RefreshToken {
		t.Fatalf("Get: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, s.ID); err == nil {
		t.Error("Get after Close worked")
	}
	if _, err := redisstore.NewFromURL(ctx, "redis://"+srv.Addr, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}}); !errors.Is(err, redisstore.ErrConfig) {
		t.Errorf("NewFromURL with a Client: %v, want ErrConfig", err)
	}
	if _, err := redisstore.NewFromURL(ctx, "redis://"+srv.Addr+"/3", redisstore.Options{Keys: [][]byte{key2}}); !errors.Is(err, redisstore.ErrWrongKey) {
		t.Errorf("NewFromURL with other keys: %v, want ErrWrongKey", err)
	}
	// A Store from New does not own its client: Close leaves it open.
	rdb := srv.NewClient(t, 3)
	st2 := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Errorf("Close of a Store from New closed the caller's client: %v", err)
	}
}

// TestFailFastOutage: with the settings NewFromURL gives by default, a
// Redis that goes away (its port closed, or its host silent) makes every
// call fail with ErrUnavailable within a bound far below go-redis's own
// defaults (1.7 s for a closed port), the Store works again within about a
// second of Redis coming back, and every session written before the outage
// is still there.
func TestFailFastOutage(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 4)
	proxy := redistest.NewProxy(t, srv.Addr)
	ctx := context.Background()
	st, err := redisstore.NewFromURL(ctx, "redis://"+proxy.Addr+"/4", redisstore.Options{Keys: [][]byte{key1}, LockLease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var kept []*tokenstore.Session
	for i := range 20 {
		s := session("sid-"+string(rune('a'+i)), "user-"+string(rune('a'+i)))
		kept = append(kept, s)
	}
	mustCreate(t, st, kept...)

	for _, fault := range []struct {
		name  string
		start func()
		bound time.Duration // generous: the point is "not seconds"
	}{
		{"port closed", proxy.Cut, time.Second},
		// A silent connection waits out ReadTimeout on each of the
		// 1+MaxRetries tries; new connections the same on the handshake.
		{"host silent", proxy.Blackhole, time.Duration(redisstore.DefaultMaxRetries+2) * redisstore.DefaultReadTimeout},
	} {
		t.Run(fault.name, func(t *testing.T) {
			fault.start()
			var worst time.Duration
			for i := range 10 {
				start := time.Now()
				_, err := st.Get(ctx, kept[i].ID)
				d := time.Since(start)
				worst = max(worst, d)
				if !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("Get during the outage: %v, want ErrUnavailable", err)
				}
				if d > fault.bound {
					t.Errorf("Get during the outage took %v, want well under %v", d, fault.bound)
				}
			}
			if err := st.Create(ctx, session("sid-new", "zed")); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Errorf("Create during the outage: %v", err)
			}
			t.Logf("%s: slowest of 10 Gets: %v", fault.name, worst)

			proxy.Restore(t)
			t.Logf("%s: working again %v after Redis came back", fault.name, waitServed(t, st, kept[0].ID, 5*time.Second))
			for _, s := range kept {
				if got, err := st.Get(ctx, s.ID); err != nil || got.RefreshToken != s.RefreshToken {
					t.Errorf("session written before the outage: %v", err)
				}
			}
		})
	}
}
