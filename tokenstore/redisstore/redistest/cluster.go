package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of StartCluster's nodes:
// a master unreachable this long is failed over to its replica (Redis's
// default, 15 s, would make a failover test slow).
const ClusterNodeTimeout = time.Second

// Cluster is a Redis Cluster of three masters, each with one replica, made
// by redis-cli --cluster create.
type Cluster struct {
	// Nodes are its six servers. Which are masters changes with failovers:
	// ask MasterOf.
	Nodes []*Server

	t testing.TB
}

// StartCluster runs a Redis Cluster until the test ends: six redis-server
// processes with cluster-enabled on free ports, joined by redis-cli into
// three masters, each with one replica, all 16384 slots served. It returns
// once every node sees the cluster as ok and every replica is in sync.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := lookPath(t, "redis-cli", "redis-tools")
	c := &Cluster{t: t}
	for range 6 {
		c.Nodes = append(c.Nodes, StartWith(t, Config{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(ClusterNodeTimeout.Milliseconds()),
		}}))
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitHealthy()
	for _, n := range c.Nodes { // and every replica is in sync
		role, err := node(n.Addr, func(n *redis.Client) ([]any, error) { return n.Do(context.Background(), "ROLE").Slice() })
		if err == nil && len(role) > 0 && role[0] == "master" {
			c.WaitReplicated(n)
		}
	}
	return c
}

// Addrs are the nodes' addresses (seeds for a cluster client).
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// URL is a redisstore URL of the cluster: every node as a seed.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr + "?cluster=true"
	for _, n := range c.Nodes[1:] {
		u += "&addr=" + n.Addr
	}
	return u
}

// NewClient returns a cluster client, closed when the test ends.
func (c *Cluster) NewClient(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Client returns a cluster client after emptying every master.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := c.NewClient(t)
	err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		return m.FlushAll(ctx).Err()
	})
	if err != nil {
		t.Fatalf("redistest: FLUSHALL: %v", err)
	}
	return rdb
}

// node runs f with a client of one node (no retries), closed after.
func node[T any](addr string, f func(*redis.Client) (T, error)) (T, error) {
	n := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
	defer n.Close()
	return f(n)
}

// running are the nodes whose process is up.
func (c *Cluster) running() []*Server {
	var up []*Server
	for _, n := range c.Nodes {
		n.mu.Lock()
		stopped := n.stopped
		n.mu.Unlock()
		if !stopped {
			up = append(up, n)
		}
	}
	return up
}

// MasterOf returns the node that serves key as master, as the first
// running node sees it (CLUSTER SLOTS).
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	ctx := context.Background()
	up := c.running()[0]
	slot, err := node(up.Addr, func(n *redis.Client) (int64, error) { return n.ClusterKeySlot(ctx, key).Result() })
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT: %v", err)
	}
	slots, err := node(up.Addr, func(n *redis.Client) ([]redis.ClusterSlot, error) { return n.ClusterSlots(ctx).Result() })
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	for _, r := range slots {
		if int(slot) < r.Start || int(slot) > r.End || len(r.Nodes) == 0 {
			continue
		}
		for _, n := range c.Nodes {
			if n.Addr == r.Nodes[0].Addr {
				return n
			}
		}
	}
	c.t.Fatalf("redistest: no master serves slot %d", slot)
	return nil
}

// ReplicaOf returns the running node that replicates master.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.t.Helper()
	ctx := context.Background()
	for _, n := range c.running() {
		role, err := node(n.Addr, func(n *redis.Client) ([]any, error) { return n.Do(ctx, "ROLE").Slice() })
		if err != nil || len(role) < 3 || role[0] != "slave" {
			continue
		}
		if fmt.Sprintf("127.0.0.1:%v", role[2]) == master.Addr {
			return n
		}
	}
	c.t.Fatalf("redistest: no running replica of %s", master.Addr)
	return nil
}

// Failover crashes the master that serves key (SIGKILL: no time to hand
// anything over) and waits until its replica has been promoted and every
// running node sees the cluster as ok. It returns the new master.
func (c *Cluster) Failover(key string) *Server {
	c.t.Helper()
	master := c.MasterOf(key)
	replica := c.ReplicaOf(master)
	master.Crash()
	deadline := time.Now().Add(20 * ClusterNodeTimeout)
	for {
		role, err := node(replica.Addr, func(n *redis.Client) ([]any, error) { return n.Do(context.Background(), "ROLE").Slice() })
		if err == nil && len(role) > 0 && role[0] == "master" {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: the replica %s of the crashed master %s was not promoted within %v", replica.Addr, master.Addr, 20*ClusterNodeTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.WaitHealthy()
	return replica
}

// WaitHealthy waits until every running node reports cluster_state:ok.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.running() {
		for {
			info, err := node(n.Addr, func(n *redis.Client) (string, error) { return n.ClusterInfo(context.Background()).Result() })
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("redistest: node %s not ok after 30 s: %v\n%s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// WaitReplicated waits until every replica of master has received what
// master had written when it was called (ROLE's replication offsets).
func (c *Cluster) WaitReplicated(master *Server) {
	c.t.Helper()
	ctx := context.Background()
	role, err := node(master.Addr, func(n *redis.Client) ([]any, error) { return n.Do(ctx, "ROLE").Slice() })
	if err != nil || len(role) < 2 {
		c.t.Fatalf("redistest: ROLE of %s: %v %v", master.Addr, role, err)
	}
	want, _ := role[1].(int64)
	deadline := time.Now().Add(10 * time.Second)
	for {
		role, err := node(master.Addr, func(n *redis.Client) ([]any, error) { return n.Do(ctx, "ROLE").Slice() })
		behind := err != nil || len(role) < 3
		if !behind {
			replicas, _ := role[2].([]any)
			behind = len(replicas) == 0
			for _, r := range replicas {
				f, _ := r.([]any)
				var off int64 = -1
				if len(f) == 3 {
					off, _ = strconv.ParseInt(fmt.Sprint(f[2]), 10, 64)
				}
				behind = behind || off < want
			}
		}
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: the replicas of %s did not reach offset %d in 10 s: %v %v", master.Addr, want, role, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
