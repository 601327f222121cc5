package redistest

import (
	"fmt"
	"strings"
	"testing"
)

// replicaNodeTimeout is the cluster-node-timeout of a cluster with replicas: a master silent this
// long is failed over to its replica (about two to three seconds in all on loopback).
const replicaNodeTimeout = 2000

// ReplicatedCluster is a Redis Cluster whose every master has one replica, so a master that dies is
// replaced by its replica.
type ReplicatedCluster struct {
	nodes []*Server
}

// StartClusterWithReplicas starts masters (at least 3) masters and one replica each, joins them
// with the slots spread evenly, and waits until every node reports cluster_state:ok and every
// replica is in sync. Everything stops when the test ends.
func StartClusterWithReplicas(t testing.TB, masters int) *ReplicatedCluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", masters)
	}
	c := &ReplicatedCluster{nodes: createCluster(t, masters, 1, replicaNodeTimeout)}
	c.WaitHealthy(t)
	for _, n := range c.nodes {
		waitFor(t, clusterTimeout, n.Addr()+" in sync", func() (bool, string) {
			info, err := Do(n.Addr(), "INFO", "replication")
			return err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")), info
		})
	}
	if got := len(c.Masters(t)); got != masters {
		t.Fatalf("redistest: %d masters after create, want %d", got, masters)
	}
	return c
}

// Addrs are every node's host:port, masters and replicas.
func (c *ReplicatedCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Masters are the nodes that answer ROLE as masters now (a promoted replica among them).
func (c *ReplicatedCluster) Masters(t testing.TB) []*Server {
	t.Helper()
	var out []*Server
	for _, n := range c.nodes {
		if role, err := Do(n.Addr(), "ROLE"); err == nil && strings.HasPrefix(role, "master") {
			out = append(out, n)
		}
	}
	return out
}

// MasterHolding is the master that holds a key matching pattern (KEYS, run on each master), or nil.
func (c *ReplicatedCluster) MasterHolding(t testing.TB, pattern string) *Server {
	t.Helper()
	for _, n := range c.Masters(t) {
		keys, err := Do(n.Addr(), "EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), '\\n')", "0", pattern)
		if err == nil && keys != "" {
			return n
		}
	}
	return nil
}

// WaitFailover waits until a replica has taken the place of a killed master (there are n masters
// again) and every running node reports cluster_state:ok.
func (c *ReplicatedCluster) WaitFailover(t testing.TB, n int) {
	t.Helper()
	waitFor(t, clusterTimeout, fmt.Sprintf("%d masters", n), func() (bool, string) {
		got := c.Masters(t)
		return len(got) == n, fmt.Sprintf("%d masters", len(got))
	})
	c.WaitHealthy(t)
}

// WaitHealthy waits until every running node reports cluster_state:ok, as after a failover.
func (c *ReplicatedCluster) WaitHealthy(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		if _, err := Do(n.Addr(), "PING"); err != nil {
			continue // a node the test killed
		}
		waitFor(t, clusterTimeout, n.Addr()+" cluster_state:ok", func() (bool, string) {
			info, err := Do(n.Addr(), "CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok"), info
		})
	}
}
