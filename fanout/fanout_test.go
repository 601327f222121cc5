package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

func TestParseTopic(t *testing.T) {
	good := map[string]string{
		"/pets":       "/pets",
		"pets/dogs":   "/pets/dogs",
		"/pets/dogs/": "/pets/dogs",
		"/a.b/c-d_e":  "/a.b/c-d_e",
	}
	for in, want := range good {
		got, err := ParseTopic(in)
		if err != nil || got != want {
			t.Errorf("ParseTopic(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "/", "//", "/pets//dogs", "/pets/../etc", "/./x", "/a\x01b", "/a\x7f", "/" + strings.Repeat("x", MaxTopicLen),
		strings.Repeat("/a", MaxTopicDepth+1)}
	for _, in := range bad {
		if _, err := ParseTopic(in); !errors.Is(err, ErrBadTopic) {
			t.Errorf("ParseTopic(%q) err = %v; want ErrBadTopic", in, err)
		}
	}
}

// parseFrames reads frames back with an independent SSE parser.
func parseFrames(t testing.TB, b []byte) []sse.Event {
	t.Helper()
	var out []sse.Event
	for ev, err := range sse.Read(bytes.NewReader(b), nil) {
		if err != nil {
			t.Fatalf("parse %q: %v", b, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestAppendFrameRoundTrip(t *testing.T) {
	cases := []struct{ id, name, data string }{
		{"1", "message", "hello"},
		{"2", "bark", "line one\nline two\r\nline three\rend"},
		{"", "heartbeat", "x"},
		{"3", "", "trailing newline\n"},
		{"4", "e", " leading space"},
	}
	for _, c := range cases {
		evs := parseFrames(t, AppendFrame(nil, c.id, c.name, []byte(c.data)))
		if len(evs) != 1 {
			t.Fatalf("%+v: got %d events", c, len(evs))
		}
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(c.data)
		wantType := c.name
		if wantType == "message" {
			wantType = ""
		}
		if evs[0].Data != wantData || evs[0].Type != wantType || evs[0].LastEventID != c.id {
			t.Errorf("%+v: got %+v", c, evs[0])
		}
	}
}

// FuzzFrame checks that any valid event parses back to itself with an independent parser.
func FuzzFrame(f *testing.F) {
	f.Add("1", "message", "hello\nworld")
	f.Add("", "x", "\r\n\r")
	f.Fuzz(func(t *testing.T, id, name, data string) {
		if ValidateField("id", id, MaxEventIDLen) != nil || ValidateField("event", name, MaxEventNameLen) != nil {
			return
		}
		frame := AppendFrame(nil, id, name, []byte(data))
		if n := FrameLen(id, name, []byte(data)); n != len(frame) {
			t.Fatalf("FrameLen(%q, %q, %q) = %d; the frame has %d bytes", id, name, data, n, len(frame))
		}
		if strings.ContainsAny(name, " :") || strings.HasPrefix(id, " ") || strings.ContainsRune(data, 0) {
			return // field values lose a leading space on parsing; names are tokens in practice
		}
		evs := parseFrames(t, frame)
		if len(evs) != 1 {
			t.Fatalf("got %d events for %q %q %q", len(evs), id, name, data)
		}
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		wantType := name
		if wantType == "message" {
			wantType = ""
		}
		if evs[0].Data != wantData || evs[0].Type != wantType || evs[0].LastEventID != id {
			t.Fatalf("round trip of %q %q %q gave %+v", id, name, data, evs[0])
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"/pets/dogs", "a/../b", "/\x00", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		topic, err := ParseTopic(raw)
		if err != nil {
			return
		}
		again, err := ParseTopic(topic)
		if err != nil || again != topic {
			t.Fatalf("canonical %q of %q does not parse to itself: %q %v", topic, raw, again, err)
		}
		if strings.Contains(topic, "//") || strings.Contains(topic, "/../") || strings.HasSuffix(topic, "/..") {
			t.Fatalf("unsafe topic accepted: %q", topic)
		}
	})
}

// recorder is a Subscriber that keeps what it is sent.
type recorder struct{ frames [][]byte }

func (r *recorder) Send(f *Frame) { r.frames = append(r.frames, f.Bytes) }

func (r *recorder) events(t *testing.T) []sse.Event {
	return parseFrames(t, bytes.Join(r.frames, nil))
}

func TestHubHierarchy(t *testing.T) {
	h := NewHub(Config{})
	pets, dogs, cats := &recorder{}, &recorder{}, &recorder{}
	h.Subscribe("/pets", pets, false, "")
	h.Subscribe("/pets/dogs", dogs, false, "")
	h.Subscribe("/pets/cats", cats, false, "")
	_, n, err := h.Publish(t.Context(), "/pets/dogs", Event{Name: "bark", Data: []byte("woof")})
	if err != nil || n != 2 {
		t.Fatalf("publish: delivered %d, %v; want 2", n, err)
	}
	if len(pets.frames) != 1 || len(dogs.frames) != 1 || len(cats.frames) != 0 {
		t.Fatalf("pets %d dogs %d cats %d frames; want 1 1 0", len(pets.frames), len(dogs.frames), len(cats.frames))
	}
	if &pets.frames[0][0] != &dogs.frames[0][0] {
		t.Error("subscribers got different copies of one frame")
	}
}

func TestHubResume(t *testing.T) {
	h := NewHub(Config{HistorySize: 10})
	var ids []string
	for i := range 15 {
		id, _, _ := h.Publish(t.Context(), "/a/b", Event{Data: fmt.Appendf(nil, "%d", i)})
		ids = append(ids, id)
	}
	// Resume on the ancestor from a retained ID: exactly the later events, in order.
	r := &recorder{}
	_, rep := h.Subscribe("/a", r, true, ids[9])
	evs := r.events(t)
	if rep.Reset || rep.Frames != 5 || len(evs) != 5 || evs[0].Data != "10" || evs[4].Data != "14" {
		t.Fatalf("resume from retained: %+v, %d events %+v", rep, len(evs), evs)
	}
	// An evicted ID: reset first, then what is retained.
	r = &recorder{}
	_, rep = h.Subscribe("/a/b", r, true, ids[2])
	evs = r.events(t)
	if !rep.Reset || len(evs) != 11 || evs[0].Type != "reset" || evs[1].Data != "5" {
		t.Fatalf("resume from evicted: %+v, %+v", rep, evs)
	}
	// The newest ID: nothing to replay.
	r = &recorder{}
	_, rep = h.Subscribe("/a/b", r, true, ids[14])
	if rep.Reset || len(r.frames) != 0 {
		t.Fatalf("resume from newest: %+v, %d frames", rep, len(r.frames))
	}
}

func TestHubUnsubscribeAndSweep(t *testing.T) {
	h := NewHub(Config{HistoryTTL: time.Minute})
	a, b := &recorder{}, &recorder{}
	sa, _ := h.Subscribe("/t", a, false, "")
	h.Subscribe("/t", b, false, "")
	h.Unsubscribe(sa)
	h.Unsubscribe(sa) // idempotent
	if _, n, _ := h.Publish(t.Context(), "/t", Event{Data: []byte("x")}); n != 1 || len(a.frames) != 0 {
		t.Fatalf("after unsubscribe: delivered %d, a got %d", n, len(a.frames))
	}
	h.Publish(t.Context(), "/gone", Event{Data: []byte("x")})
	h.Sweep(time.Now().Add(2 * time.Minute))
	if got := h.Streams(); got != 1 { // "/t" stays: it has a subscriber
		t.Fatalf("streams after sweep = %d; want 1", got)
	}
}

// TestHubWatching: a root is watched while any stream under it has a subscriber, and its node goes
// with the last one.
func TestHubWatching(t *testing.T) {
	h := NewHub(Config{HistoryTTL: time.Minute})
	l := local{h}
	if l.Watching("/pets") {
		t.Fatal("watching /pets with no subscriber")
	}
	dogs, _ := h.Subscribe("/pets/dogs", &recorder{}, false, "")
	cats, _ := h.Subscribe("/pets/cats", &recorder{}, false, "")
	if !l.Watching("/pets") || l.Watching("/cars") {
		t.Fatalf("watching /pets %v, /cars %v; want true, false", l.Watching("/pets"), l.Watching("/cars"))
	}
	h.Unsubscribe(dogs)
	h.Unsubscribe(dogs)
	if !l.Watching("/pets") {
		t.Fatal("/pets not watched with /pets/cats subscribed")
	}
	h.Unsubscribe(cats)
	if l.Watching("/pets") {
		t.Fatal("/pets watched with no subscriber left")
	}
	h.Sweep(time.Now().Add(2 * time.Minute))
	if got := h.Streams(); got != 0 {
		t.Fatalf("streams after the last unsubscribe and a sweep = %d; want 0", got)
	}
}

func TestPublishRejectsInjection(t *testing.T) {
	h := NewHub(Config{})
	for _, ev := range []Event{{Name: "a\nid: 9", Data: []byte("x")}, {ID: "1\r2", Data: []byte("x")}, {ID: "a\x00", Data: []byte("x")}} {
		if _, _, err := h.Publish(t.Context(), "/t", ev); !errors.Is(err, ErrBadEvent) {
			t.Errorf("Publish(%+v) err = %v; want ErrBadEvent", ev, err)
		}
	}
}

func BenchmarkPublish10k(b *testing.B) {
	h := NewHub(Config{HistorySize: 100})
	subs := make([]*countSub, 10000)
	for i := range subs {
		subs[i] = &countSub{}
		h.Subscribe("/bench", subs[i], false, "")
	}
	data := []byte(`{"t":1,"seq":1}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.Publish(b.Context(), "/bench", Event{Data: data})
	}
	b.ReportMetric(float64(b.N*len(subs))/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(testing.AllocsPerRun(10, func() { h.Publish(b.Context(), "/bench", Event{Data: data}) }))/float64(len(subs)), "allocs/delivery")
}

// BenchmarkPublishNested publishes to a leaf three levels deep with subscribers on every level, so each
// event walks the ancestors (one shard lock for all of them).
func BenchmarkPublishNested(b *testing.B) {
	h := NewHub(Config{HistorySize: 100})
	keys := []string{"/a", "/a/b", "/a/b/c"}
	n := 0
	for _, k := range keys {
		for range 1000 {
			h.Subscribe(k, &countSub{}, false, "")
			n++
		}
	}
	data := []byte(`{"t":1,"seq":1}`)
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(b.Context(), "/a/b/c", Event{Name: "tick", Data: data})
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkSubscribeUnsubscribe is the hub's share of opening and closing a stream.
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	h := NewHub(Config{HistorySize: 100})
	for range 10000 {
		h.Subscribe("/bench", &countSub{}, false, "")
	}
	sub := &countSub{}
	b.ReportAllocs()
	for b.Loop() {
		sc, _ := h.Subscribe("/bench", sub, false, "")
		h.Unsubscribe(sc)
	}
}

// TestPublishAllocsPerDelivery: a publish allocates its frame once, whatever the number of subscribers,
// so a delivered frame costs no allocation.
func TestPublishAllocsPerDelivery(t *testing.T) {
	allocs := func(subs int) float64 {
		h := NewHub(Config{HistorySize: 100})
		for range subs {
			h.Subscribe("/bench", &countSub{}, false, "")
		}
		data := []byte(`{"t":1}`)
		for range 200 { // fill the history ring, which grows once
			h.Publish(t.Context(), "/bench", Event{Data: data})
		}
		return testing.AllocsPerRun(100, func() { h.Publish(t.Context(), "/bench", Event{Data: data}) })
	}
	one, many := allocs(1), allocs(10000)
	if many > one {
		t.Errorf("publish allocates %.1f times with 10000 subscribers, %.1f with one: want no allocation per delivery", many, one)
	}
}

type countSub struct{ n int }

func (c *countSub) Send(*Frame) { c.n++ }

func BenchmarkAppendFrame(b *testing.B) {
	data := []byte(`{"user":"alice","text":"hello world","n":42}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for range b.N {
		buf = AppendFrame(buf[:0], "1795395407980-12345", "chat", data)
	}
}

func BenchmarkAppendFrameMultiline(b *testing.B) {
	data := []byte("line one\nline two\r\nline three\rline four")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], "1795395407980-12345", "chat", data)
	}
}

func TestHubEnd(t *testing.T) {
	h := NewHub(Config{})
	own, ancestor := &endRecorder{}, &endRecorder{}
	h.Subscribe("/a/b", own, false, "")
	h.Subscribe("/a", ancestor, false, "")
	if err := h.End(t.Context(), "/a/b"); err != nil {
		t.Fatal(err)
	}
	if !own.ended || ancestor.ended {
		t.Fatalf("end reached own=%v ancestor=%v; want only the key's own subscribers", own.ended, ancestor.ended)
	}
	// No publisher can send the end marker.
	if _, _, err := h.Publish(t.Context(), "/a/b", Event{Name: EndEventName, Data: []byte("x")}); !errors.Is(err, ErrBadEvent) {
		t.Fatalf("publishing the end marker: %v; want ErrBadEvent", err)
	}
}

type endRecorder struct{ ended bool }

func (r *endRecorder) Send(f *Frame) { r.ended = r.ended || f.End }
