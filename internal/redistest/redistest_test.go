package redistest

import (
	"strings"
	"testing"
	"time"
)

func TestSingleLifecycle(t *testing.T) {
	s := StartSingle(t)
	if s.Port() == reservedPort {
		t.Fatalf("started on the reserved port %d", reservedPort)
	}
	if _, err := Do(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	before := CommandCount(t, s.Addr(), "get")
	for range 3 {
		if v, err := Do(s.Addr(), "GET", "k"); err != nil || v != "v" {
			t.Fatalf("GET = %q, %v", v, err)
		}
	}
	if got := CommandCount(t, s.Addr(), "get") - before; got != 3 {
		t.Fatalf("cmdstat_get grew by %d, want 3", got)
	}
	if n := CommandCount(t, s.Addr(), "never-run"); n != 0 {
		t.Fatalf("count of a command never run = %d", n)
	}

	port := s.Port()
	s.Restart()
	if s.Port() != port {
		t.Fatalf("Restart moved the port from %d to %d", port, s.Port())
	}
	if v, err := Do(s.Addr(), "GET", "k"); err != nil || v != "" {
		t.Fatalf("after restart GET = %q, %v; want an empty server", v, err)
	}

	s.Pause()
	if _, err := do(s.Addr(), 200*time.Millisecond, "PING"); err == nil {
		t.Fatal("PING answered while paused")
	}
	s.Resume()
	if v, err := Do(s.Addr(), "PING"); err != nil || v != "PONG" {
		t.Fatalf("PING after Resume = %q, %v", v, err)
	}
	s.Pause()
	s.Kill()
	if _, err := Do(s.Addr(), "PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Stop() // stopping a stopped server is a no-op
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	for _, addr := range c.Addrs() {
		info, err := Do(addr, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
			t.Fatalf("%s: CLUSTER INFO = %q, %v", addr, info, err)
		}
	}
	// A key only lives on the master owning its slot: the others redirect.
	var moved int
	for _, addr := range c.Addrs() {
		if _, err := Do(addr, "SET", "k", "v"); err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("%d of 3 masters answered MOVED, want 2", moved)
	}
	c.Stop()
}
