package edge

import (
	"slices"
	"testing"
	"time"

	"github.com/sseedge/sseedge/transport"
)

// TestKeepAliveWindow: a timeout is rounded down to whole ticks, one at least.
func TestKeepAliveWindow(t *testing.T) {
	for _, c := range []struct {
		every, tick time.Duration
		want        uint32
	}{
		{20 * time.Second, 15 * time.Second, 1}, {55 * time.Second, 15 * time.Second, 3}, {time.Second, 50 * time.Millisecond, 20},
		{time.Second, 15 * time.Second, 1}, {0, time.Second, 1}, {time.Second, 0, 1}, {1 << 62, time.Nanosecond, 1<<32 - 1},
	} {
		if got := keepAliveWindow(c.every, c.tick); got != c.want {
			t.Errorf("keepAliveWindow(%v, %v) = %d, want %d", c.every, c.tick, got, c.want)
		}
	}
}

// TestKeepAliveDue walks the tick counting of both modes on a stream struct (no socket: the
// socket-level behaviour is api's TestGripKeepAlive*).
func TestKeepAliveDue(t *testing.T) {
	st := &stream{}
	idle := newKeepAlive(&transport.KeepAlive{Content: []byte(":\n"), Every: 3 * time.Second}, time.Second)
	interval := newKeepAlive(&transport.KeepAlive{Content: []byte(":\n"), Every: 3 * time.Second, Interval: true}, time.Second)
	// ticks: a write before ticks 2 and 4; "due" is what due says at each tick (sent when due).
	writes := map[int]bool{2: true, 4: true}
	var gotIdle, gotInterval []int
	for tick := 1; tick <= 12; tick++ {
		if writes[tick] {
			st.mu.Lock()
			idle.wroteLocked()
			interval.wroteLocked()
			st.mu.Unlock()
		}
		for _, c := range []struct {
			k   *keepAlive
			got *[]int
		}{{idle, &gotIdle}, {interval, &gotInterval}} {
			if c.k.due(st) {
				*c.got = append(*c.got, tick)
				c.k.sent(st)
			}
		}
	}
	// idle: the write before tick 4 restarts the window at 4 (counted as its first tick), so 6; then
	// every 3 ticks.
	if want := []int{6, 9, 12}; !slices.Equal(gotIdle, want) {
		t.Errorf("idle keep-alives at ticks %v, want %v", gotIdle, want)
	}
	if want := []int{3, 6, 9, 12}; !slices.Equal(gotInterval, want) {
		t.Errorf("interval keep-alives at ticks %v, want %v", gotInterval, want)
	}
	// A window of one tick (a timeout under two ticks) goes at every tick in either mode, writes or not.
	one := newKeepAlive(&transport.KeepAlive{Content: []byte(":\n"), Every: 1500 * time.Millisecond}, time.Second)
	for tick := 1; tick <= 3; tick++ {
		if tick == 2 {
			st.mu.Lock()
			one.wroteLocked()
			st.mu.Unlock()
		}
		if !one.due(st) {
			t.Errorf("a one-tick idle keep-alive not due at tick %d", tick)
		}
		one.sent(st)
	}
	if string(idle.frame.Bytes) != ":\n" || idle.frame.ID != "" || idle.frame.End || idle.frame.Refresh {
		t.Errorf("keep-alive frame %+v", idle.frame)
	}
}
