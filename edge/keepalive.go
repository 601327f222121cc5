package edge

import (
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// A stream opened with transport.Spec.KeepAlive (a GRIP hold's Grip-Keep-Alive) gets its opener's bytes
// instead of the edge's heartbeat. It has no timer of its own: the heartbeat tick (tick.go) counts its
// ticks, and sends the keep-alive once a window of them has passed (mode interval) or has passed with
// nothing else written (mode idle). The state is a keepAlive behind one pointer of the stream's multi,
// which only multi-topic streams allocate; plain streams pay nothing.

// keepAlive is a stream's own keep-alive. Frame, window and interval are set at open and never change;
// ticks and wrote are guarded by the stream's mu (ticks is only written by the heartbeat tick).
type keepAlive struct {
	frame    *fanout.Frame // the content, built once per stream
	window   uint32        // ticks between keep-alives (at least one)
	ticks    uint32        // ticks counted towards the next keep-alive
	interval bool          // every window, whatever else was written
	wrote    bool          // an event was queued since the last tick (mode idle)
}

// newKeepAlive is the keep-alive of a stream opened with ka, on a server ticking every tick; nil when ka
// is. Its timeout is rounded down to whole ticks, one at least: never later than the opener asked (a
// keep-alive exists to beat some proxy's idle timeout), at worst as often as the edge's own heartbeat.
func newKeepAlive(ka *transport.KeepAlive, tick time.Duration) *keepAlive {
	if ka == nil {
		return nil
	}
	return &keepAlive{
		frame:    &fanout.Frame{Bytes: append([]byte(nil), ka.Content...)},
		window:   keepAliveWindow(ka.Every, tick),
		interval: ka.Interval,
	}
}

// keepAliveWindow is every in whole ticks, rounded down, at least one, at most what uint32 holds.
func keepAliveWindow(every, tick time.Duration) uint32 {
	if tick <= 0 {
		return 1
	}
	n := every / tick
	switch {
	case n < 1:
		return 1
	case n > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(n)
}

// wroteLocked records that the stream queued an event: an idle keep-alive waits a whole window from
// here. The caller holds the stream's mu.
func (k *keepAlive) wroteLocked() {
	if k != nil {
		k.wrote = true
	}
}

// due counts one heartbeat tick and says whether the keep-alive is to be sent now. In mode idle a tick
// that follows a write restarts the window, counting the part-tick since the write as its first tick:
// the keep-alive goes once the stream has been quiet for window-1 whole ticks and that part, so never
// later than the timeout (a window of one tick is sent at every tick, as in mode interval). A
// keep-alive that finds the stream busy (stream.keepAlive) is due again at the next tick: see sent.
func (k *keepAlive) due(st *stream) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !k.interval && k.wrote {
		k.wrote, k.ticks = false, 1
		return k.ticks >= k.window
	}
	if k.ticks < k.window {
		k.ticks++
	}
	return k.ticks >= k.window
}

// sent starts the next window once the keep-alive was queued.
func (k *keepAlive) sent(st *stream) {
	st.mu.Lock()
	k.ticks = 0
	st.mu.Unlock()
}

// keepAliveTick is the heartbeat tick of a stream with a keep-alive of its own: the keep-alive when it
// is due, never the edge's heartbeat. It reports whether one was queued.
func (k *keepAlive) tick(st *stream) bool {
	if !k.due(st) || !st.keepAlive(k.frame) {
		return false
	}
	k.sent(st)
	return true
}
