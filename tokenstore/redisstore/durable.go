package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultWaitTimeout is how long a write waits for Options.WaitReplicas
// replicas when Options.WaitTimeout is zero.
const DefaultWaitTimeout = 250 * time.Millisecond

// durable runs a script that writes what must survive a failover (a
// session, its deletion, a revocation). With Options.WaitReplicas it then
// sends WAIT on the same connection, so the write is acknowledged only once
// that many replicas have it; fewer in time makes the returned command fail
// (the write stays on the master, and every such script gives the same
// answer when run again).
func (s *Store) durable(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.waitReplicas <= 0 {
		return script.Run(ctx, s.c, keys, args...)
	}
	fail := func(err error) *redis.Cmd {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	// WAIT counts the replicas that have this connection's writes: the
	// script and WAIT go down one connection to the master of the keys.
	var node *redis.Client
	switch c := s.c.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, keys[0])
		if err != nil {
			return fail(err)
		}
		node = n
	default:
		return fail(fmt.Errorf("WaitReplicas needs a redis.Client or a redis.ClusterClient, not %T", s.c))
	}
	var run *redis.Cmd
	var wait *redis.Cmd
	for range 2 {
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			run = script.EvalSha(ctx, p, keys, args...)
			wait = p.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds()) // keep WaitTimeout below the client's ReadTimeout
			return nil
		})
		if err := run.Err(); err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			break
		}
		if err := script.Load(ctx, node).Err(); err != nil {
			return fail(err)
		}
	}
	if run.Err() != nil {
		return run
	}
	if n, err := wait.Int64(); err != nil || n < int64(s.waitReplicas) {
		if err == nil {
			err = fmt.Errorf("the write reached %d of the %d replicas Options.WaitReplicas asks for within %v", n, s.waitReplicas, s.waitTimeout)
		}
		run.SetErr(err)
	}
	return run
}
