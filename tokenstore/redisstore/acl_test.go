package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
	"github.com/multiapp-go/multiapp/tokenstore/storetest"
)

// aclRule is the ACL user docs/stores.md recommends for a store with the
// default prefix: its keys only, no dangerous command.
const aclRule = "on >app-password ~{multiapp}:* resetchannels -@all +@read +@write +@scripting +@connection +@keyspace -@dangerous +time +wait"

// TestACLUser: the store works as a Redis ACL user limited to its prefix's
// keys and the commands the recommended rule grants, reached with a
// user:password URL, as a managed Redis is.
func TestACLUser(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := redistest.StartWith(t, redistest.Config{Args: append([]string{"--user", "app"}, strings.Fields(aclRule)...)})
	srv.Client(t, 0)
	ctx := context.Background()
	url := "redis://app:app-password@" + srv.Addr + "/0"
	storetest.Run(t, func(t *testing.T) tokenstore.Store {
		st, err := redisstore.NewFromURL(ctx, url, redisstore.Options{Keys: [][]byte{key1}, LockLease: time.Second})
		if err != nil {
			t.Fatalf("NewFromURL as the ACL user: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
	st, err := redisstore.NewFromURL(ctx, url, redisstore.Options{Keys: [][]byte{key1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop, err := st.CheckCookieKeys(ctx, [][]byte{key2})
	if err != nil {
		t.Fatalf("CheckCookieKeys as the ACL user: %v", err)
	}
	stop()
	if _, err := redisstore.NewFromURL(ctx, url, redisstore.Options{Keys: [][]byte{key1}, Prefix: "other"}); err == nil {
		t.Error("the ACL user reached another prefix's keys: the rule does not confine it")
	}
}
