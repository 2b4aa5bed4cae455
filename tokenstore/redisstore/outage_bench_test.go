package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// BenchmarkOutage measures what a request waits for its 503 while Redis is
// out of reach (ns/op: one Store.Get that fails with ErrUnavailable), and
// how long after Redis is reachable again the Store answers (recovery-ms,
// after 50 more requests failed at once, as traffic during an outage does:
// go-redis stops dialling after PoolSize failed dials and probes once a
// second),
// for three client configurations: go-redis's defaults (what a user who
// skims builds: redis.NewClient(&redis.Options{Addr: addr})), the options
// the README recommended before NewFromURL, and NewFromURL's defaults.
// Two faults: the port closed (Redis stopped: connections refused) and the
// host silent (connections accepted, nothing answered). Run with:
//
//	go test -run '^$' -bench Outage -benchtime 5x .
func BenchmarkOutage(b *testing.B) {
	srv := redistest.Start(b)
	srv.Client(b, 6)
	configs := []struct {
		name string
		open func(addr string) (*redisstore.Store, error)
	}{
		{"go-redis-defaults", func(addr string) (*redisstore.Store, error) {
			return redisstore.New(context.Background(), redisstore.Options{Client: redis.NewClient(&redis.Options{Addr: addr, DB: 6}), Keys: [][]byte{key1}})
		}},
		{"readme-options", func(addr string) (*redisstore.Store, error) {
			return redisstore.New(context.Background(), redisstore.Options{Client: redis.NewClient(&redis.Options{Addr: addr, DB: 6,
				DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 2, DialerRetries: 1}), Keys: [][]byte{key1}})
		}},
		{"NewFromURL", func(addr string) (*redisstore.Store, error) {
			return redisstore.NewFromURL(context.Background(), "redis://"+addr+"/6", redisstore.Options{Keys: [][]byte{key1}})
		}},
	}
	for _, fault := range []string{"port-closed", "host-silent"} {
		for _, cfg := range configs {
			b.Run(fault+"/"+cfg.name, func(b *testing.B) {
				proxy := redistest.NewProxy(b, srv.Addr)
				st, err := cfg.open(proxy.Addr)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				ctx := context.Background()
				s := session("sid-1", "alice")
				if err := st.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
				if fault == "port-closed" {
					proxy.Cut()
				} else {
					proxy.Blackhole()
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := st.Get(ctx, s.ID); !errors.Is(err, tokenstore.ErrUnavailable) {
						b.Fatalf("Get during the outage: %v", err)
					}
				}
				b.StopTimer()
				// The traffic of a real outage (50 requests at once), so that
				// go-redis's dial breaker opens as it would.
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() { _, _ = st.Get(ctx, s.ID) })
				}
				wg.Wait()
				proxy.Restore(b)
				back := time.Now()
				for {
					_, err := st.Get(ctx, s.ID)
					if err == nil {
						break
					}
					if time.Since(back) > 30*time.Second {
						b.Fatalf("not working 30 s after Redis came back: %v", err)
					}
					time.Sleep(time.Millisecond)
				}
				b.ReportMetric(float64(time.Since(back).Microseconds())/1000, "recovery-ms")
			})
		}
	}
}
