package redisstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
	"github.com/multiapp-go/multiapp/tokenstore/storetest"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
	key3 = []byte("another key of thirty-two bytes!")
)

// quietLog drops go-redis's own log lines (dial failures while a test
// keeps Redis down on purpose).
type quietLog struct{}

func (quietLog) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLog{})
	os.Exit(m.Run())
}

func newStore(t testing.TB, c redisstore.Options) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.New(ctx, c)
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	return s
}

// TestConformance runs the shared suite. Every subtest gets its own Store
// (as separate instances of an app would have) on one Redis database.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 1)
	storetest.Run(t, func(t *testing.T) tokenstore.Store {
		return newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, LockLease: time.Second})
	})
}

// TestConformanceSeparateClients runs it again with a new client (its own
// connection pool) per store, and another prefix, on another database.
func TestConformanceSeparateClients(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := redistest.Start(t)
	srv.Client(t, 2) // flush
	storetest.Run(t, func(t *testing.T) tokenstore.Store {
		rdb := srv.NewClient(t, 2)
		return newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2, key1}, Prefix: "app-b"})
	})
}
