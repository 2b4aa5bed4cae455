package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// TestWaitReplicasWithoutReplicas: a Store asked to wait for a replica that
// does not exist never claims a write durable: the write fails, saying
// why, after WaitTimeout. Negative settings are refused.
func TestWaitReplicasWithoutReplicas(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 8)
	ctx := context.Background()
	for _, o := range []redisstore.Options{{WaitReplicas: -1}, {WaitReplicas: 1, WaitTimeout: -time.Second}} {
		o.Client, o.Keys = rdb, [][]byte{key1}
		if _, err := redisstore.New(ctx, o); !errors.Is(err, redisstore.ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", o, err)
		}
	}
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
	s := session("sid-1", "alice")
	for name, op := range map[string]func() error{
		"Create":        func() error { return st.Create(ctx, s) },
		"RevokeSID":     func() error { return st.RevokeSID(ctx, iss, "sid-1", time.Minute) },
		"RevokeSubject": func() error { return st.RevokeSubject(ctx, iss, "alice", time.Now(), time.Minute) },
		"Delete":        func() error { return st.Delete(ctx, s.ID) },
	} {
		if err := op(); !errors.Is(err, tokenstore.ErrUnavailable) || !strings.Contains(err.Error(), "0 of the 1 replicas") {
			t.Errorf("%s without a replica: %v, want ErrUnavailable naming the replicas", name, err)
		}
	}
}
