package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel timings: short, so a failover takes a few seconds, not the production defaults' half
// minute; long enough that a busy test machine does not trigger one by itself.
const (
	sentinelDownAfter       = 1000 // ms without a reply before a sentinel sees the master down
	sentinelFailoverTimeout = 5000 // ms
	sentinelQuorum          = 2
	sentinelCount           = 3
	sentinelTimeout         = 30 * time.Second
)

// SentinelSet is a master, one replica and three sentinels monitoring them, as self-hosted Redis
// runs: kill the master and the sentinels promote the replica.
type SentinelSet struct {
	Name      string    // the master set name the sentinels monitor
	Master    *Server   // the master at start
	Replica   *Server   // its replica at start (the master after a failover)
	Sentinels []*Server // sentinel processes
}

// StartSentinel starts the set and waits until the replica is in sync and every sentinel knows the
// replica and the other sentinels, so a failover can happen. Everything stops when the test ends.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	bin := lookBin(t, "redis-server")
	set := &SentinelSet{Name: "sseedge-master"}
	set.Master = startServer(t, bin, t.TempDir(), nil)
	set.Replica = startServer(t, bin, t.TempDir(), func(int) []string {
		return []string{"--replicaof", "127.0.0.1", strconv.Itoa(set.Master.Port())}
	})
	waitFor(t, sentinelTimeout, "replica in sync", func() (bool, string) {
		info, err := Do(set.Replica.Addr(), "INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up"), info
	})
	for range sentinelCount {
		dir := t.TempDir()
		set.Sentinels = append(set.Sentinels, startServer(t, bin, dir, nil, func(s *Server) {
			// A sentinel rewrites its config file, so each has its own, and it must come first.
			conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", s.port))
			body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
				"sentinel down-after-milliseconds %[1]s %[4]d\n"+
				"sentinel failover-timeout %[1]s %[5]d\n"+
				"sentinel parallel-syncs %[1]s 1\n",
				set.Name, set.Master.Port(), sentinelQuorum, sentinelDownAfter, sentinelFailoverTimeout)
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				t.Fatalf("redistest: write %s: %v", conf, err)
			}
			s.first = []string{conf, "--sentinel"}
		}))
	}
	want := fmt.Sprintf("slaves=1,sentinels=%d", sentinelCount)
	for _, s := range set.Sentinels {
		waitFor(t, sentinelTimeout, "sentinel "+s.Addr()+" sees the replica and the other sentinels", func() (bool, string) {
			info, err := Do(s.Addr(), "INFO", "sentinel")
			return err == nil && strings.Contains(info, "status=ok") && strings.Contains(info, want), info
		})
	}
	return set
}

// Addrs are the sentinels' host:port addresses, for REDIS_SENTINEL_ADDR.
func (s *SentinelSet) Addrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr()
	}
	return addrs
}

// MasterAddr is the master's address as the first sentinel that answers reports it.
func (s *SentinelSet) MasterAddr() (string, error) {
	var lastErr error
	for _, n := range s.Sentinels {
		reply, err := Do(n.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
		if err != nil {
			lastErr = err
			continue
		}
		host, port, ok := strings.Cut(reply, "\n")
		if !ok {
			lastErr = fmt.Errorf("unexpected reply %q", reply)
			continue
		}
		return net.JoinHostPort(host, port), nil
	}
	return "", lastErr
}

// WaitFailover waits until every sentinel names addr as the master and addr answers as one.
func (s *SentinelSet) WaitFailover(t testing.TB, addr string) {
	t.Helper()
	for _, n := range s.Sentinels {
		waitFor(t, sentinelTimeout, "sentinel "+n.Addr()+" names "+addr, func() (bool, string) {
			reply, err := Do(n.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
			return err == nil && strings.ReplaceAll(reply, "\n", ":") == addr, reply
		})
	}
	waitFor(t, sentinelTimeout, addr+" is a master", func() (bool, string) {
		role, err := Do(addr, "ROLE")
		return err == nil && strings.HasPrefix(role, "master"), role
	})
}

// waitFor polls cond until it holds, failing the test with what it last saw after timeout. There is
// no event to wait on: replication, gossip and elections are only visible by asking.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s: not after %v; last saw:\n%s", what, timeout, last)
		}
		time.Sleep(20 * pollInterval)
	}
}
