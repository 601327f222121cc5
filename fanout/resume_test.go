package fanout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// logEngine is an in-process engine: one history log in publish order, delivered to the hub at once.
// during, when set, runs inside each Since after history was read and before the read returns, as
// publishes racing a slow read would; fail makes Since fail.
type logEngine struct {
	mu     sync.Mutex
	local  Local
	log    []*Frame
	calls  int
	during func(call int)
	fail   error
}

func (e *logEngine) Attach(l Local) { e.local = l }

func (e *logEngine) Publish(_ context.Context, key string, ev Event) (string, error) {
	e.mu.Lock()
	id := strconv.Itoa(len(e.log) + 1)
	f := &Frame{ID: id, Bytes: AppendFrame(nil, id, ev.Name, ev.Data)}
	e.log = append(e.log, f)
	e.mu.Unlock()
	e.local.Deliver(key, f)
	return id, nil
}

func (e *logEngine) Since(_ context.Context, _, lastID string) ([]*Frame, bool, error) {
	e.mu.Lock()
	e.calls++
	call := e.calls
	snapshot := append([]*Frame(nil), e.log...)
	e.mu.Unlock()
	if e.during != nil {
		e.during(call)
	}
	if e.fail != nil {
		return nil, false, e.fail
	}
	for i, f := range snapshot {
		if f.ID == lastID {
			return snapshot[i+1:], true, nil
		}
	}
	return snapshot, false, nil
}

func (e *logEngine) End(context.Context, string) error             { return nil }
func (e *logEngine) Refresh(context.Context, string, []byte) error { return nil }

// publishN publishes n events to key.
func publishN(t *testing.T, h *Hub, key string, n int) {
	t.Helper()
	for range n {
		if _, _, err := h.Publish(t.Context(), key, Event{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRun checks that events are exactly the IDs from..to, in order, after an optional reset.
func checkRun(t *testing.T, r *recorder, from, to int, reset string) {
	t.Helper()
	evs := r.events(t)
	if reset != "" {
		if len(evs) == 0 || evs[0].Type != "reset" || !strings.Contains(evs[0].Data, `"reason":"`+reset+`"`) {
			t.Fatalf("first event %+v; want a reset with reason %s", evs[:min(1, len(evs))], reset)
		}
		evs = evs[1:]
	}
	if len(evs) != to-from+1 {
		t.Fatalf("%d events; want %d (%d..%d)", len(evs), to-from+1, from, to)
	}
	for i, ev := range evs {
		if ev.Type == "reset" || ev.LastEventID != strconv.Itoa(from+i) {
			t.Fatalf("event %d is %+v; want id %d", i, ev, from+i)
		}
	}
}

// TestResumeHeldFramesBounded: while a resume's history read is slow, more live events arrive than a
// subscription holds back (maxHeld). It holds only the newest, sees that they no longer join the replay,
// reads history again from the end of what it sent, and the stream still gets every event once, in
// order, with no reset.
func TestResumeHeldFramesBounded(t *testing.T) {
	e := &logEngine{}
	h := NewHub(Config{Engine: e})
	publishN(t, h, "/busy", 10)
	e.during = func(call int) {
		switch call {
		case 1:
			publishN(t, h, "/busy", 3*maxHeld) // far more than are held
		case 2:
			publishN(t, h, "/busy", 3) // a few: held, and they join
		}
	}
	r := &recorder{}
	_, rep := h.Subscribe("/busy", r, true, "5")
	if rep.Reset || e.calls != 2 {
		t.Fatalf("resume %+v after %d history reads; want no reset after 2", rep, e.calls)
	}
	checkRun(t, r, 6, 10+3*maxHeld+3, "")
}

// TestResumeOutrunTellsTheClient: when the bus outruns every history read a resume may make, the stream
// gets a reset (history_unavailable) rather than a silent gap, then what was held, never a frame twice.
func TestResumeOutrunTellsTheClient(t *testing.T) {
	e := &logEngine{}
	h := NewHub(Config{Engine: e})
	publishN(t, h, "/flood", 10)
	e.during = func(int) { publishN(t, h, "/flood", 2*maxHeld) }
	r := &recorder{}
	_, rep := h.Subscribe("/flood", r, true, "10")
	if !rep.Reset || rep.Reason != ResetHistoryUnavailable || e.calls != maxRereads+1 {
		t.Fatalf("resume %+v after %d reads; want a history_unavailable reset after %d", rep, e.calls, maxRereads+1)
	}
	seen := map[string]bool{}
	last := 0
	for _, ev := range r.events(t) {
		if ev.Type == "reset" {
			continue
		}
		n, _ := strconv.Atoi(ev.LastEventID)
		if seen[ev.LastEventID] || n <= last {
			t.Fatalf("event %s after %d: twice or out of order", ev.LastEventID, last)
		}
		seen[ev.LastEventID], last = true, n
	}
	if want := 10 + (maxRereads+1)*2*maxHeld; last != want {
		t.Fatalf("last event %d; want the newest, %d", last, want)
	}
}

// TestResumeUnavailableReason: history that cannot be read gives a reset whose reason says so (not
// last_event_id_not_retained), and the live events that arrived meanwhile still follow it.
func TestResumeUnavailableReason(t *testing.T) {
	e := &logEngine{fail: fmt.Errorf("test: %w", ErrUnavailable)}
	h := NewHub(Config{Engine: e})
	publishN(t, h, "/down", 3)
	e.during = func(int) { publishN(t, h, "/down", 2) }
	r := &recorder{}
	sc, rep := h.Subscribe("/down", r, true, "1")
	if !rep.Reset || rep.Reason != ResetHistoryUnavailable {
		t.Fatalf("resume %+v; want a history_unavailable reset", rep)
	}
	checkRun(t, r, 4, 5, ResetHistoryUnavailable)
	publishN(t, h, "/down", 1)
	checkRun(t, r, 4, 6, ResetHistoryUnavailable)
	h.Unsubscribe(sc)
	if !errors.Is(e.fail, ErrUnavailable) {
		t.Fatal("test engine error lost its wrapping")
	}
}

// TestHoldingKeepsNewest: a holding never grows past maxHeld and keeps the newest frames.
func TestHoldingKeepsNewest(t *testing.T) {
	var h holding
	for i := range 5 * maxHeld {
		h.add(&Frame{ID: strconv.Itoa(i)})
		if len(h.frames) > maxHeld {
			t.Fatalf("%d frames held; bound %d", len(h.frames), maxHeld)
		}
	}
	if !h.dropped || h.frames[len(h.frames)-1].ID != strconv.Itoa(5*maxHeld-1) {
		t.Fatalf("dropped %v, newest %s", h.dropped, h.frames[len(h.frames)-1].ID)
	}
	if h.joins(map[string]struct{}{"0": {}}) || !h.joins(map[string]struct{}{h.frames[0].ID: {}}) {
		t.Fatal("joins: wrong answer")
	}
}
