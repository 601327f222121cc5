package redistest

import (
	"strings"
	"testing"
)

func TestTLSServer(t *testing.T) {
	s := StartTLS(t)
	if v, err := s.Do("PING"); err != nil || v != "PONG" {
		t.Fatalf("PING over TLS = %q, %v", v, err)
	}
	if who, err := s.Do("ACL", "WHOAMI"); err != nil || who != s.User {
		t.Fatalf("ACL WHOAMI = %q, %v; want %q", who, err, s.User)
	}
	if _, err := Do(s.Addr(), "PING"); err == nil {
		t.Fatal("a plain-text PING was answered by the TLS-only server")
	}
	other := NewPKI(t)
	if _, err := doTLS(s.Addr(), other.ClientConfig(), s.User, s.Password, "PING"); err == nil {
		t.Fatal("a client trusting another CA connected")
	}
	if !strings.HasPrefix(s.URL(), "rediss://edge:") {
		t.Fatalf("URL = %q", s.URL())
	}
}

func TestSentinelFailover(t *testing.T) {
	set := StartSentinel(t)
	if addr, err := set.MasterAddr(); err != nil || addr != set.Master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", addr, err, set.Master.Addr())
	}
	set.Master.Kill()
	set.WaitFailover(t, set.Replica.Addr())
	if _, err := Do(set.Replica.Addr(), "SET", "k", "v"); err != nil {
		t.Fatalf("SET on the promoted replica: %v", err)
	}
}

func TestClusterWithReplicas(t *testing.T) {
	c := StartClusterWithReplicas(t, 3)
	if len(c.Addrs()) != 6 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	masters := c.Masters(t)
	// Put a key on some master, then kill that master: its replica takes its slots.
	var holder *Server
	for i := 0; holder == nil && i < 100; i++ {
		key := "k" + strings.Repeat("x", i)
		for _, m := range masters {
			if _, err := Do(m.Addr(), "SET", key, "v"); err == nil {
				holder = c.MasterHolding(t, key)
				break
			}
		}
	}
	if holder == nil {
		t.Fatal("no master took a key")
	}
	holder.Kill()
	c.WaitFailover(t, 3)
	if got := len(c.Masters(t)); got != 3 {
		t.Fatalf("%d masters after the failover, want 3", got)
	}
}
