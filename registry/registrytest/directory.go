package registrytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sseedge/sseedge/registry"
)

// RunDirectory holds every Directory backend to the same contract. newDir returns a fresh,
// empty directory whose entries live for ttl.
func RunDirectory(t *testing.T, newDir func(t *testing.T, ttl time.Duration) registry.Directory) {
	ctx := context.Background()
	lookup := func(t *testing.T, d registry.Directory, client string) []string {
		t.Helper()
		nodes, err := d.Lookup(ctx, client)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", client, err)
		}
		return nodes
	}
	// eventually polls cond for up to 3s: expiry has no event to wait for.
	eventually := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: not after 3s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("RegisterLookupUnregister", func(t *testing.T) {
		d := newDir(t, time.Minute)
		for _, n := range []string{"node-b", "node-a"} {
			if err := d.Register(ctx, "c1", n); err != nil {
				t.Fatalf("Register: %v", err)
			}
		}
		if err := d.Register(ctx, "c1", "node-a"); err != nil { // twice is fine
			t.Fatalf("Register again: %v", err)
		}
		if got := lookup(t, d, "c1"); !reflect.DeepEqual(got, []string{"node-a", "node-b"}) {
			t.Fatalf("Lookup = %v, want [node-a node-b]", got)
		}
		if got := lookup(t, d, "nobody"); len(got) != 0 {
			t.Fatalf("Lookup(unknown) = %v, want none", got)
		}
		if err := d.Unregister(ctx, "c1", "node-a"); err != nil {
			t.Fatalf("Unregister: %v", err)
		}
		if err := d.Unregister(ctx, "c1", "node-a"); err != nil {
			t.Fatalf("Unregister twice: %v", err)
		}
		if got := lookup(t, d, "c1"); !reflect.DeepEqual(got, []string{"node-b"}) {
			t.Fatalf("Lookup = %v, want [node-b]", got)
		}
		if err := d.Unregister(ctx, "c1", "node-b"); err != nil {
			t.Fatalf("Unregister: %v", err)
		}
		if got := lookup(t, d, "c1"); len(got) != 0 {
			t.Fatalf("Lookup after Unregister = %v, want none", got)
		}
	})

	t.Run("UnrefreshedEntriesExpire", func(t *testing.T) {
		const ttl = 300 * time.Millisecond
		d := newDir(t, ttl)
		for _, c := range []string{"kept", "dropped"} {
			if err := d.Register(ctx, c, "node-a"); err != nil {
				t.Fatalf("Register: %v", err)
			}
		}
		if err := d.Register(ctx, "kept", "node-dead"); err != nil {
			t.Fatalf("Register: %v", err)
		}
		// node-a keeps refreshing "kept" only; node-dead never refreshes.
		start := time.Now()
		for time.Since(start) < 3*ttl {
			if err := d.Refresh(ctx, "node-a", []string{"kept"}); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			time.Sleep(ttl / 5)
		}
		if got := lookup(t, d, "kept"); !reflect.DeepEqual(got, []string{"node-a"}) {
			t.Fatalf("Lookup(kept) = %v, want [node-a]", got)
		}
		eventually(t, "unrefreshed client expires", func() bool { return len(lookup(t, d, "dropped")) == 0 })
		// Once node-a stops too, everything goes.
		eventually(t, "client of a silent node expires", func() bool { return len(lookup(t, d, "kept")) == 0 })
	})

	t.Run("RefreshRecreatesLostEntries", func(t *testing.T) {
		d := newDir(t, time.Minute)
		if err := d.Refresh(ctx, "node-a", []string{"c1", "c2"}); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if err := d.Refresh(ctx, "node-a", nil); err != nil {
			t.Fatalf("Refresh(none): %v", err)
		}
		for _, c := range []string{"c1", "c2"} {
			if got := lookup(t, d, c); !reflect.DeepEqual(got, []string{"node-a"}) {
				t.Fatalf("Lookup(%s) = %v, want [node-a]", c, got)
			}
		}
	})

	t.Run("NodeCounts", func(t *testing.T) {
		d := newDir(t, time.Minute)
		got, err := d.NodeCounts(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("NodeCounts of an empty directory = %v, %v", got, err)
		}
		report := func(node string, counts map[string]int64, ttl time.Duration) {
			t.Helper()
			if err := d.ReportCounts(ctx, node, counts, ttl); err != nil {
				t.Fatalf("ReportCounts(%s): %v", node, err)
			}
		}
		report("node-a", map[string]int64{"sse": 2, "topic": 1}, 0)
		report("node-b", map[string]int64{"sse": 5}, time.Minute)
		report("node-a", map[string]int64{"sse": 3}, 0) // replaces: topic is gone
		report("node-idle", nil, 0)
		report("node-dying", map[string]int64{"sse": 9}, 200*time.Millisecond)
		got, err = d.NodeCounts(ctx)
		if err != nil {
			t.Fatalf("NodeCounts: %v", err)
		}
		want := map[string]map[string]int64{
			"node-a": {"sse": 3}, "node-b": {"sse": 5}, "node-idle": {}, "node-dying": {"sse": 9},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("NodeCounts = %v, want %v", got, want)
		}
		delete(want, "node-dying")
		eventually(t, "counts of a silent node expire", func() bool {
			got, err := d.NodeCounts(ctx)
			return err == nil && reflect.DeepEqual(got, want)
		})
	})

	t.Run("CanceledContext", func(t *testing.T) {
		d := newDir(t, time.Minute)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		for name, err := range map[string]error{
			"Register":     d.Register(cctx, "c", "n"),
			"Unregister":   d.Unregister(cctx, "c", "n"),
			"Refresh":      d.Refresh(cctx, "n", []string{"c"}),
			"ReportCounts": d.ReportCounts(cctx, "n", nil, 0),
		} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s(canceled) = %v, want context.Canceled", name, err)
			}
		}
		if _, err := d.Lookup(cctx, "c"); !errors.Is(err, context.Canceled) {
			t.Errorf("Lookup(canceled) = %v", err)
		}
		if _, err := d.NodeCounts(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("NodeCounts(canceled) = %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		d := newDir(t, time.Minute)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				node := fmt.Sprintf("node-%d", i)
				for j := range 25 {
					c := fmt.Sprintf("c%d", j)
					if err := d.Register(ctx, c, node); err != nil {
						t.Errorf("Register: %v", err)
						return
					}
					if _, err := d.Lookup(ctx, c); err != nil {
						t.Errorf("Lookup: %v", err)
					}
				}
				if err := d.Refresh(ctx, node, []string{"c0", "c1"}); err != nil {
					t.Errorf("Refresh: %v", err)
				}
				if err := d.ReportCounts(ctx, node, map[string]int64{"sse": int64(i)}, 0); err != nil {
					t.Errorf("ReportCounts: %v", err)
				}
			})
		}
		wg.Wait()
		if got := lookup(t, d, "c24"); len(got) != 8 {
			t.Fatalf("Lookup(c24) = %v, want 8 nodes", got)
		}
		counts, err := d.NodeCounts(ctx)
		if err != nil || len(counts) != 8 {
			t.Fatalf("NodeCounts = %v, %v; want 8 nodes", counts, err)
		}
	})
}
