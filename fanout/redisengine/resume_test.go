package redisengine_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/metrics"
)

// resumeNode is a node with its own metrics and spans, and cfg's resume settings.
func resumeNode(t *testing.T, addr string, cfg redisengine.Config) (*node, *prometheus.Registry, *tracetest.SpanRecorder) {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rec := tracetest.NewSpanRecorder()
	cfg.Partitions, cfg.HistorySize = 4, 100
	cfg.Metrics, cfg.TracerProvider = metrics.New(reg), trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := redisengine.New(client, cfg)
	hub := fanout.NewHub(fanout.Config{Engine: eng.Namespace("t")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); client.Close() })
	return &node{eng: eng, hub: hub}, reg, rec
}

// frames keeps what a subscriber gets, bytes and all.
type frames struct {
	mu  sync.Mutex
	got [][]byte
	ids []string
}

func (f *frames) Send(fr *fanout.Frame) {
	f.mu.Lock()
	f.got, f.ids = append(f.got, fr.Bytes), append(f.ids, fr.ID)
	f.mu.Unlock()
}

func (f *frames) snapshot() ([][]byte, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.got...), append([]string(nil), f.ids...)
}

// publishIDs publishes n events to key and returns their IDs.
func publishIDs(t *testing.T, n *node, key string, count int) []string {
	t.Helper()
	ids := make([]string, count)
	for i := range ids {
		id, _, err := n.hub.Publish(t.Context(), key, fanout.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// awaitCounter polls a counter until it reaches at least want.
func awaitCounter(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for counter(t, reg, name) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 20 s; want %v", name, counter(t, reg, name), want)
		}
		time.Sleep(10 * time.Millisecond) // the counter has no event to wait on
	}
}

// historyEntries is what the "redis history" spans read, in order.
func historyEntries(rec *tracetest.SpanRecorder) []string {
	var out []string
	for _, s := range spansNamed(rec, "redis history", oteltrace.TraceID{}) {
		out = append(out, attrs(s)["sseedge.history_entries"])
	}
	return out
}

// TestResumeReadsFromLastID: a resume reads history from its Last-Event-ID on (issue 18, item 2: each
// resume read the root's whole history), in one round trip; an ID older than history gets the reset
// last_event_id_not_retained and the retained events, still in one read; a publisher's own ID is found.
func TestResumeReadsFromLastID(t *testing.T) {
	r := redistest.StartSingle(t)
	n, _, rec := resumeNode(t, r.Addr(), redisengine.Config{})
	ids := publishIDs(t, n, "/read", 100)

	f := &frames{}
	if _, rep := n.hub.Subscribe("/read", f, true, ids[89]); rep.Reset || rep.Frames != 10 {
		t.Fatalf("resume from the 90th of 100: %+v; want its 10 successors", rep)
	}
	if _, got := f.snapshot(); strings.Join(got, ",") != strings.Join(ids[90:], ",") {
		t.Fatalf("replayed %v; want %v", got, ids[90:])
	}
	if e := historyEntries(rec); len(e) != 1 || e[0] != "11" {
		t.Fatalf("history reads returned %v entries; want one read of 11 (the Last-Event-ID and what followed)", e)
	}

	old := &frames{}
	if _, rep := n.hub.Subscribe("/read", old, true, "1-0"); !rep.Reset || rep.Reason != fanout.ResetNotRetained || rep.Frames != 100 {
		t.Fatalf("resume from before history: %+v; want reset last_event_id_not_retained and 100 frames", rep)
	}
	if got, _ := old.snapshot(); !bytes.Contains(got[0], []byte(`"reason":"last_event_id_not_retained"`)) {
		t.Fatalf("first frame %q", got[0])
	}
	if e := historyEntries(rec); len(e) != 2 {
		t.Fatalf("history reads %v; want one more for an ID older than history", e)
	}

	own, _, err := n.hub.Publish(t.Context(), "/read", fanout.Event{ID: "99999999999999-7", Data: []byte("mine")})
	if err != nil {
		t.Fatal(err)
	}
	publishIDs(t, n, "/read", 2)
	mine := &frames{}
	if _, rep := n.hub.Subscribe("/read", mine, true, own); rep.Reset || rep.Frames != 2 {
		t.Fatalf("resume from a publisher's own ID: %+v; want the 2 events after it", rep)
	}
}

// TestResumeWaitsOutAPause: a resume whose history read fails while Redis is paused (SIGSTOP) tries
// again, and once Redis runs again the stream gets what it missed, with no reset.
func TestResumeWaitsOutAPause(t *testing.T) {
	r := redistest.StartSingle(t)
	n, reg, _ := resumeNode(t, r.Addr(), redisengine.Config{Timeout: 300 * time.Millisecond})
	ids := publishIDs(t, n, "/pause", 10)
	r.Pause()
	f := &frames{}
	done := make(chan fanout.Replay, 1)
	go func() {
		_, rep := n.hub.Subscribe("/pause", f, true, ids[4])
		done <- rep
	}()
	awaitCounter(t, reg, "sseedge_resume_read_retries_total", 1)
	r.Resume()
	select {
	case rep := <-done:
		if rep.Reset || rep.Frames != 5 {
			t.Fatalf("resume after the pause: %+v; want the 5 missed events and no reset", rep)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the resume did not finish after Redis ran again")
	}
	if v := counter(t, reg, "sseedge_resume_history_unavailable_total"); v != 0 {
		t.Fatalf("sseedge_resume_history_unavailable_total = %v", v)
	}
}

// TestResumeHistoryUnavailable: Redis paused for longer than a resume waits gives a reset whose reason
// is history_unavailable (not last_event_id_not_retained), counted; the stream stays subscribed and
// gets the next event.
func TestResumeHistoryUnavailable(t *testing.T) {
	r := redistest.StartSingle(t)
	n, reg, rec := resumeNode(t, r.Addr(), redisengine.Config{Timeout: 200 * time.Millisecond, ResumeWait: time.Second})
	ids := publishIDs(t, n, "/gone", 3)
	r.Pause()
	f := &frames{}
	began := time.Now()
	_, rep := n.hub.Subscribe("/gone", f, true, ids[0])
	took := time.Since(began)
	r.Resume()
	if !rep.Reset || rep.Reason != fanout.ResetHistoryUnavailable {
		t.Fatalf("resume with Redis paused: %+v; want a history_unavailable reset", rep)
	}
	if took < time.Second || took > 3*time.Second {
		t.Fatalf("the resume gave up after %v; want about ResumeWait (1 s)", took)
	}
	if got, _ := f.snapshot(); len(got) == 0 || !bytes.Contains(got[0], []byte(`"reason":"history_unavailable"`)) {
		t.Fatalf("frames %q; want a reset with reason history_unavailable first", got) // then live events the bus still had
	}
	if v := counter(t, reg, "sseedge_resume_history_unavailable_total"); v != 1 {
		t.Fatalf("sseedge_resume_history_unavailable_total = %v; want 1", v)
	}
	if s := spansNamed(rec, "resume", oteltrace.TraceID{}); len(s) != 1 || s[0].Status().Code.String() != "Error" {
		t.Fatalf("resume spans %v; want one, with an error status", s)
	}
	deadline := time.Now().Add(20 * time.Second)
	for { // Redis's return has no event to wait on: publish until one is accepted
		if _, _, err := n.hub.Publish(t.Context(), "/gone", fanout.Event{Data: []byte("after")}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("publishing did not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for got, _ := f.snapshot(); !bytes.Contains(got[len(got)-1], []byte("data: after")); got, _ = f.snapshot() {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not get the next event")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResumeReadsBounded: many resumes at once read history a few at a time (ResumeReads); the others
// wait their turn, counted, and none fails or resets.
func TestResumeReadsBounded(t *testing.T) {
	r := redistest.StartSingle(t)
	n, reg, _ := resumeNode(t, r.Addr(), redisengine.Config{ResumeReads: 2})
	ids := publishIDs(t, n, "/many", 20)
	const resumes = 50
	r.Pause() // holds the first two reads, so the others must wait for a slot
	var wg sync.WaitGroup
	reps := make([]fanout.Replay, resumes)
	for i := range resumes {
		wg.Go(func() {
			_, reps[i] = n.hub.Subscribe("/many", &frames{}, true, ids[9])
		})
	}
	awaitCounter(t, reg, "sseedge_resume_waits_total", resumes-2)
	r.Resume()
	wg.Wait()
	for i, rep := range reps {
		if rep.Reset || rep.Frames != 10 {
			t.Fatalf("resume %d: %+v; want 10 frames and no reset", i, rep)
		}
	}
}
