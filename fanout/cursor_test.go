package fanout

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustCursorState(t testing.TB, roots ...string) *CursorState {
	t.Helper()
	cs, err := NewCursorState(roots)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// checkCursorForm checks what every encoded cursor must be: prefixed, URL-safe, a valid event id,
// within the bound.
func checkCursorForm(t testing.TB, s string) {
	t.Helper()
	if len(s) > MaxCursorLen {
		t.Fatalf("cursor of %d bytes, over MaxCursorLen %d", len(s), MaxCursorLen)
	}
	body, ok := strings.CutPrefix(s, CursorPrefix)
	if !ok {
		t.Fatalf("cursor %q lacks the prefix %q", s, CursorPrefix)
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Fatalf("cursor %q has %q, not base64url", s, c)
		}
	}
	if err := ValidateField("id", s, MaxCursorLen); err != nil {
		t.Fatal(err)
	}
}

// roundTrip encodes cs, decodes it and checks every slot comes back.
func roundTrip(t testing.TB, cs *CursorState) string {
	t.Helper()
	s := cs.String()
	checkCursorForm(t, s)
	c, err := DecodeCursor(s)
	if err != nil {
		t.Fatalf("DecodeCursor(%q): %v", s, err)
	}
	roots := make([]string, cs.Len())
	want := make([]string, cs.Len())
	for i := range roots {
		roots[i], want[i] = cs.Root(i), cs.Pos(i)
	}
	if got := c.Positions(roots); !slices.Equal(got, want) {
		t.Fatalf("positions of %q: got %q, want %q", s, got, want)
	}
	return s
}

func TestCursorRoundTrip(t *testing.T) {
	cs := mustCursorState(t, "/news", "/pets", "/weather", "alice")
	if got := roundTrip(t, cs); got != CursorPrefix {
		t.Fatalf("a cursor with no positions is %q, want the bare prefix", got)
	}
	cs.Set(0, "1719999999999-42") // memory: hub start ms, hub-wide sequence
	cs.Set(1, "1720000000123-0")  // Redis Stream ID
	cs.Set(2, "order-7f3a")       // a publisher's own id
	cs.Set(3, "0-1")              // the smallest Redis ID
	s := roundTrip(t, cs)
	t.Logf("4 roots: %d bytes: %s", len(s), s)
	cs.Set(2, "")
	roundTrip(t, cs)
	// IDs that look numeric but are not canonical travel as strings, so they come back unchanged.
	for _, id := range []string{"01-2", "1-02", "+1-2", "1-2-3", "-1", "1-", "18446744073709551616-0", "18446744073709551615-18446744073709551615", "a b:c/ü"} {
		cs.Set(2, id)
		roundTrip(t, cs)
		if cs.Pos(2) != id {
			t.Fatalf("Pos after Set(%q) = %q", id, cs.Pos(2))
		}
	}
}

func TestCursorStateRejectsBadRoots(t *testing.T) {
	for _, roots := range [][]string{{"/b", "/a"}, {"/a", "/a"}, {""}, make([]string, MaxCursorRoots+1)} {
		if _, err := NewCursorState(roots); err == nil {
			t.Errorf("NewCursorState(%q) accepted", roots)
		}
	}
	many := make([]string, MaxCursorRoots+1)
	for i := range many {
		many[i] = fmt.Sprintf("/r%03d", i)
	}
	if _, err := NewCursorState(many); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("%d roots: %v, want ErrTooManyTopics", len(many), err)
	}
	if _, err := NewCursorState(many[:MaxCursorRoots]); err != nil {
		t.Fatalf("%d roots: %v", MaxCursorRoots, err)
	}
}

// Unrepresentable positions (no valid event id has them) are recorded as none, so every cursor decodes.
func TestCursorStateRefusesUnrepresentablePositions(t *testing.T) {
	cs := mustCursorState(t, "/a")
	for _, p := range []string{"a\nb", "x\x00", strings.Repeat("x", MaxEventIDLen+1)} {
		cs.Set(0, p)
		if cs.Pos(0) != "" {
			t.Fatalf("Set(%q) kept it", p)
		}
		roundTrip(t, cs)
	}
	cs.Set(0, strings.Repeat("x", MaxEventIDLen))
	roundTrip(t, cs)
}

func manyRoots(n int) []string {
	roots := make([]string, n)
	for i := range roots {
		roots[i] = fmt.Sprintf("/topic-%02d", i)
	}
	slices.Sort(roots)
	return roots
}

func TestCursor65RootsWithinBound(t *testing.T) {
	cs := mustCursorState(t, manyRoots(MaxCursorRoots)...)
	now := uint64(time.Now().UnixMilli())
	for i := range cs.Len() {
		cs.Set(i, fmt.Sprintf("%d-%d", now-uint64(i*37_000), i)) // Redis IDs, roots published a while apart
	}
	s := roundTrip(t, cs)
	t.Logf("65 roots, Redis IDs: %d bytes", len(s))
	for i := range cs.Len() {
		cs.Set(i, fmt.Sprintf("%d-%d", now-86_400_000, 1_000_000+i*1000)) // memory IDs of one hub
	}
	s = roundTrip(t, cs)
	t.Logf("65 roots, memory IDs: %d bytes", len(s))
	// A publisher's own IDs take their length: 39 UUIDs fit the bound (65 do not, see
	// TestCursorOverflowLeavesOutLongestStrings).
	cs = mustCursorState(t, manyRoots(39)...)
	for i := range cs.Len() {
		cs.Set(i, fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", i, i, i, i, i))
	}
	s = roundTrip(t, cs)
	t.Logf("39 roots, UUIDs: %d bytes", len(s))
}

// The largest numeric entries there are fill the bound exactly: MaxCursorLen is not looser than needed,
// and no numeric position is ever left out.
func TestCursorBoundIsTheLargestNumericCursor(t *testing.T) {
	cs := mustCursorState(t, manyRoots(MaxCursorRoots)...)
	const far = uint64(1)<<62 + 1 // each ms delta zigzags to 64 bits: a 10-byte uvarint
	for i := range cs.Len() {
		ms := far
		if i%2 == 1 {
			ms = 0
		}
		cs.Set(i, fmt.Sprintf("%d-%d", ms, uint64(1<<64-1)))
	}
	if s := roundTrip(t, cs); len(s) != MaxCursorLen {
		t.Fatalf("largest numeric cursor: %d bytes, MaxCursorLen %d", len(s), MaxCursorLen)
	}
}

// Long publisher IDs on many roots cannot all fit: the longest are left out (those roots decode as
// absent and get a reset), the rest, and every numeric position, come back.
func TestCursorOverflowLeavesOutLongestStrings(t *testing.T) {
	roots := manyRoots(MaxCursorRoots)
	cs := mustCursorState(t, roots...)
	want := make([]string, len(roots))
	for i := range roots {
		switch {
		case i%3 == 0:
			want[i] = fmt.Sprintf("1720000000%03d-%d", i, i)
		default:
			want[i] = strings.Repeat(string(rune('a'+i%26)), 100+i)
		}
		cs.Set(i, want[i])
	}
	s := cs.String()
	checkCursorForm(t, s)
	c, err := DecodeCursor(s)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Positions(roots)
	kept, shortestLost, longestKept := 0, 1<<30, 0
	for i := range roots {
		switch {
		case got[i] == want[i]:
			kept++
			if i%3 != 0 {
				longestKept = max(longestKept, len(want[i]))
			}
		case got[i] == "" && i%3 != 0:
			shortestLost = min(shortestLost, len(want[i]))
		default:
			t.Fatalf("root %d: got %q, want %q or absent", i, got[i], want[i])
		}
	}
	if kept == len(roots) || longestKept >= shortestLost {
		t.Fatalf("kept %d of %d; longest kept string %d, shortest lost %d: want the longest left out", kept, len(roots), longestKept, shortestLost)
	}
	if c.Len() != len(roots) {
		t.Fatalf("%d entries, want one per root (a left-out root still has its entry)", c.Len())
	}
	t.Logf("%d bytes, %d of %d positions kept", len(s), kept, len(roots))
}

func TestDecodeCursorTooLong(t *testing.T) {
	s := CursorPrefix + strings.Repeat("A", MaxCursorLen-len(CursorPrefix)+1)
	if _, err := DecodeCursor(s); !errors.Is(err, ErrCursorTooLong) {
		t.Fatalf("%d bytes: %v, want ErrCursorTooLong", len(s), err)
	}
	if _, err := DecodeCursor(strings.Repeat("1", MaxCursorLen+1)); !errors.Is(err, ErrCursorTooLong) {
		t.Fatalf("a long plain id: %v, want ErrCursorTooLong", err)
	}
}

// encodeRaw builds a cursor from raw entry bytes, valid or not.
func encodeRaw(b []byte) string { return CursorPrefix + base64.RawURLEncoding.EncodeToString(b) }

func TestDecodeCursorRefusesForeignAndMalformed(t *testing.T) {
	entry := func(root string, rest ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, rootHash(root)), rest...)
	}
	var tooMany []byte
	for i := range MaxCursorRoots + 1 {
		tooMany = append(tooMany, entry(fmt.Sprint(i), posNone)...)
	}
	cases := map[string]string{
		"memory id":           "1719999999999-42",
		"redis id":            "1720000000123-0",
		"custom id":           "order-7",
		"empty":               "",
		"other version":       "~2AAAAAA",
		"bare tilde":          "~",
		"not base64":          "~1!!!!",
		"padding":             "~1AAAAAAA=",
		"std base64":          "~1+/+/",
		"one base64 char":     "~1A",
		"truncated hash":      encodeRaw([]byte{1, 2, 3}),
		"hash only":           encodeRaw(entry("/a")),
		"truncated string":    encodeRaw(entry("/a", 5, 'x')),
		"empty string kind":   encodeRaw(entry("/a", posString)),
		"string with newline": encodeRaw(entry("/a", posString+3, 'a', '\n', 'b')),
		"string with NUL":     encodeRaw(entry("/a", posString+1, 0)),
		"numeric as string":   encodeRaw(entry("/a", posString+3, '1', '-', '2')),
		"string too long":     encodeRaw(append(entry("/a", 0x83, 0x02), make([]byte, MaxEventIDLen+1)...)),
		"truncated numeric":   encodeRaw(entry("/a", posNumeric, 0x80)),
		"numeric without seq": encodeRaw(entry("/a", posNumeric, 1)),
		"kind overflow":       encodeRaw(entry("/a", 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)),
		"too many entries":    encodeRaw(tooMany),
	}
	for name, s := range cases {
		_, err := DecodeCursor(s)
		if !errors.Is(err, ErrBadCursor) || errors.Is(err, ErrCursorTooLong) {
			t.Errorf("%s (%q): %v, want ErrBadCursor", name, s, err)
		}
	}
	// What is close to those but valid decodes, so the cases above fail for the reason they name.
	for name, b := range map[string][]byte{
		"no position":          entry("/a", posNone),
		"string":               entry("/a", posString+3, 'a', '-', 'b'),
		"numeric":              entry("/a", posNumeric, 2, 0),
		"65 entries":           tooMany[:5*MaxCursorRoots],
		"string of MaxEventID": append(entry("/a", 0x82, 0x02), make([]byte, MaxEventIDLen)...),
	} {
		if name == "string of MaxEventID" {
			for i := 6; i < len(b); i++ {
				b[i] = 'x'
			}
		}
		if _, err := DecodeCursor(encodeRaw(b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A cursor read by a stream on other roots: entries for roots it does not read are ignored, roots it
// has no entry for are absent.
func TestCursorPositionsIgnoresOtherRoots(t *testing.T) {
	cs := mustCursorState(t, "/a", "/b")
	cs.Set(0, "1-1")
	cs.Set(1, "2-2")
	c, err := DecodeCursor(cs.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Positions([]string{"/b", "/c"}); !slices.Equal(got, []string{"2-2", ""}) {
		t.Fatalf("got %q", got)
	}
	next := mustCursorState(t, "/b", "/c", "bob")
	if found := next.Load(c); found != 1 || next.Pos(0) != "2-2" || next.Pos(1) != "" || next.Pos(2) != "" {
		t.Fatalf("Load: found %d, positions %q %q %q", found, next.Pos(0), next.Pos(1), next.Pos(2))
	}
}

// collidingRoots are two roots with the same 32-bit FNV-1a (found by a birthday search).
func collidingRoots(t testing.TB) (string, string) {
	t.Helper()
	a, b := "/tfzd17c", "/to3tw4"
	if rootHash(a) != rootHash(b) {
		t.Fatalf("%s and %s do not collide", a, b)
	}
	return a, b
}

// rootHash is FNV-1a, as documented (so another implementation can compute it).
func TestRootHashIsFNV1a(t *testing.T) {
	for _, r := range []string{"/pets", "alice", "/", ""} {
		h := fnv.New32a()
		h.Write([]byte(r))
		if rootHash(r) != h.Sum32() {
			t.Fatalf("rootHash(%q) = %x, FNV-1a %x", r, rootHash(r), h.Sum32())
		}
	}
}

// Two of a stream's roots sharing a hash still resume each from its own position.
func TestCursorHashCollision(t *testing.T) {
	a, b := collidingRoots(t)
	cs := mustCursorState(t, "/0", a, b)
	roundTrip(t, cs)
	cs.Set(2, "5-5") // only the second of the pair
	roundTrip(t, cs)
	cs.Set(1, "4-4")
	roundTrip(t, cs)
	cs.Set(2, "")
	roundTrip(t, cs)
	// A stream reading only one of them takes the first entry of the hash: one of the pair's positions.
	cs.Set(2, "5-5")
	c, err := DecodeCursor(cs.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Positions([]string{a}); got[0] != "4-4" {
		t.Fatalf("got %q", got)
	}
}

func TestCursorStateWith(t *testing.T) {
	cs := mustCursorState(t, "/a", "/b", "alice")
	cs.Set(0, "1-1")
	cs.Set(1, "x")
	cs.Set(2, "3-3")
	next, err := cs.With([]string{"/b", "/c", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"x", "", "3-3"} {
		if next.Pos(i) != want {
			t.Fatalf("slot %d (%s): %q, want %q", i, next.Root(i), next.Pos(i), want)
		}
	}
	if i, ok := next.Slot("alice"); !ok || i != 2 {
		t.Fatalf("Slot(alice) = %d, %v", i, ok)
	}
	if _, ok := next.Slot("/a"); ok {
		t.Fatal("Slot(/a) found after it was left")
	}
	if _, err := cs.With([]string{"/b", "/a"}); err == nil {
		t.Fatal("With unsorted roots accepted")
	}
}

func TestCursorStringOfDecoded(t *testing.T) {
	cs := mustCursorState(t, "/a", "/b", "/c")
	cs.Set(0, "1720000000123-0")
	cs.Set(2, "custom")
	s := cs.String()
	c, err := DecodeCursor(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != s {
		t.Fatalf("re-encoded %q, want %q", c.String(), s)
	}
}

// FuzzCursor decodes arbitrary input, as a string and as the binary form of a cursor (so the fuzzer
// explores entries, not base64): never a panic, the bound respected, and what decodes encodes back to a
// cursor with the same entries; and a cursor built from arbitrary positions round-trips.
func FuzzCursor(f *testing.F) {
	cs := mustCursorState(f, "/news", "/pets", "alice")
	cs.Set(0, "1719999999999-42")
	cs.Set(1, "1720000000123-0")
	cs.Set(2, "order-7")
	bin, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(cs.String(), CursorPrefix))
	f.Add(cs.String(), bin, "1-2", "x")
	f.Add("1719999999999-42", []byte{}, "", "")
	f.Add("~1", []byte{1, 2, 3, 4, posNumeric, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, "18446744073709551615-18446744073709551615", "a\nb")
	f.Add("~1AAAAAAA", []byte{1, 2, 3, 4, posString + 2, '1', '-'}, "01-1", strings.Repeat("y", 300))
	f.Fuzz(func(t *testing.T, s string, raw []byte, p1, p2 string) {
		checkDecode(t, s)
		checkDecode(t, encodeRaw(raw))
		st := mustCursorState(t, "/a", "/b", "c")
		st.Set(0, p1)
		st.Set(1, p2)
		st.Set(2, s)
		roundTrip(t, st)
	})
}

// checkDecode checks DecodeCursor(s) for any s: the right error, or entries that encode back to the same.
func checkDecode(t *testing.T, s string) {
	t.Helper()
	c, err := DecodeCursor(s)
	switch {
	case len(s) > MaxCursorLen:
		if !errors.Is(err, ErrCursorTooLong) {
			t.Fatalf("%d bytes: %v", len(s), err)
		}
	case err != nil:
		if !errors.Is(err, ErrBadCursor) {
			t.Fatalf("%q: %v, not ErrBadCursor", s, err)
		}
	default:
		again := c.String()
		checkCursorForm(t, again)
		if len(again) > len(s) {
			t.Fatalf("%q re-encoded longer: %q", s, again)
		}
		c2, err := DecodeCursor(again)
		if err != nil {
			t.Fatalf("%q re-encoded to %q: %v", s, again, err)
		}
		if !slices.Equal(c.entries, c2.entries) {
			t.Fatalf("%q: entries %+v, after re-encoding %+v", s, c.entries, c2.entries)
		}
	}
}

func BenchmarkCursorAppend(b *testing.B) {
	for _, n := range []int{3, 64} {
		b.Run(fmt.Sprintf("roots=%d", n), func(b *testing.B) {
			cs := mustCursorState(b, manyRoots(n)...)
			ids := make([]string, 1024)
			now := time.Now().UnixMilli()
			for i := range ids {
				ids[i] = fmt.Sprintf("%d-%d", now+int64(i), i%3)
			}
			for i := range n {
				cs.Set(i, ids[i%len(ids)])
			}
			buf := make([]byte, 0, MaxCursorLen)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				cs.Set(i%n, ids[i%len(ids)]) // an event of one root, then its cursor
				buf = cs.AppendTo(buf[:0])
			}
			b.ReportMetric(float64(len(buf)), "bytes/cursor")
		})
	}
}

func BenchmarkDecodeCursor(b *testing.B) {
	for _, n := range []int{3, 64} {
		b.Run(fmt.Sprintf("roots=%d", n), func(b *testing.B) {
			roots := manyRoots(n)
			cs := mustCursorState(b, roots...)
			for i := range n {
				cs.Set(i, fmt.Sprintf("1720000000%03d-0", i))
			}
			s := cs.String()
			b.ReportAllocs()
			for b.Loop() {
				c, err := DecodeCursor(s)
				if err != nil {
					b.Fatal(err)
				}
				c.Positions(roots)
			}
		})
	}
}

func TestFrameReid(t *testing.T) {
	cs := mustCursorState(t, "/a", "/b")
	cs.Set(0, "1720000000123-0")
	cursor := cs.String()
	cases := []struct{ id, name, data string }{
		{"1720000000123-0", "message", "hello"},
		{"my-own-id", "bark", "line one\nline two\r\nend"},
		{"", "reset", `{"reason":"x"}`}, // a frame without an id gets one
		{"7", "", ""},
	}
	for _, c := range cases {
		f := &Frame{ID: c.id, Bytes: AppendFrame(nil, c.id, c.name, []byte(c.data))}
		shared := string(f.Bytes)
		out := f.Reid([]byte("before"), cursor)
		if string(f.Bytes) != shared {
			t.Fatalf("Reid changed the shared bytes: %q", f.Bytes)
		}
		out, ok := bytes.CutPrefix(out, []byte("before"))
		if !ok {
			t.Fatalf("Reid did not append to dst: %q", out)
		}
		if want := AppendFrame(nil, cursor, c.name, []byte(c.data)); !bytes.Equal(out, want) {
			t.Fatalf("%+v: Reid gave %q, want %q", c, out, want)
		}
		evs := parseFrames(t, out)
		if len(evs) != 1 || evs[0].LastEventID != cursor {
			t.Fatalf("%+v: parsed %+v", c, evs)
		}
		if got := cs.AppendFrame(nil, f); !bytes.Equal(got, out) {
			t.Fatalf("%+v: CursorState.AppendFrame gave %q, Reid %q", c, got, out)
		}
	}
}

// An id-only event moves the id a client sends back: the next event parsed carries it. (This parser
// reports the id-only event too, with no data; an EventSource fires none, see AppendIDOnly.)
func TestAppendIDOnly(t *testing.T) {
	b := AppendIDOnly(nil, "~1abc")
	if string(b) != "id: ~1abc\n\n" {
		t.Fatalf("got %q", b)
	}
	b = append(b, "data: x\n\n"...)
	evs := parseFrames(t, b)
	last := evs[len(evs)-1]
	if last.Data != "x" || last.LastEventID != "~1abc" {
		t.Fatalf("parsed %+v, want event x with the id-only event's id", evs)
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Data != "" || ev.Type != "" {
			t.Fatalf("the id-only event parsed as %+v, with content", ev)
		}
	}
}

func TestMergeReplays(t *testing.T) {
	t0 := time.UnixMilli(1720000000000)
	fr := func(id string, ms int) *Frame {
		return &Frame{ID: id, At: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	// Memory: one hub-wide sequence orders every root's frames.
	m1, m2, m3, m4, m5 := fr("1719-1", 0), fr("1719-2", 0), fr("1719-3", 0), fr("1719-4", 0), fr("1719-10", 0)
	// Redis: a stream ID per root history; equal ms compare by seq.
	r1, r2, r3 := fr("1720000000005-0", 5), fr("1720000000005-1", 5), fr("1720000000007-0", 7)
	// A publisher's own ids compare by publish time.
	c1, c2 := fr("own-b", 6), fr("own-a", 9)
	ids := func(ms []Merged) (out []string) {
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s@%d", m.Frame.ID, m.From))
		}
		return out
	}
	cases := []struct {
		name string
		in   []RootReplay
		want []string
	}{
		{"none", nil, nil},
		{"one", []RootReplay{{"/a", []*Frame{m1, m3}}}, []string{"1719-1@0", "1719-3@0"}},
		{"memory", []RootReplay{{"/a", []*Frame{m1, m4, m5}}, {"/b", []*Frame{m2, m3}}, {"alice", nil}},
			[]string{"1719-1@0", "1719-2@1", "1719-3@1", "1719-4@0", "1719-10@0"}},
		{"redis and own ids", []RootReplay{{"/a", []*Frame{r1, c1, r3}}, {"/b", []*Frame{r2, c2}}},
			[]string{"1720000000005-0@0", "1720000000005-1@1", "own-b@0", "1720000000007-0@0", "own-a@1"}},
		{"ties keep the order given", []RootReplay{{"/b", []*Frame{fr("x", 1)}}, {"/a", []*Frame{fr("y", 1)}}},
			[]string{"x@0", "y@1"}},
		// Two topics of one root: a frame both hold (the same pointer, or the same generated id read
		// twice from Redis) comes once.
		{"duplicates", []RootReplay{{"/p", []*Frame{m1, m2, c1}}, {"/p", []*Frame{fr("1719-1", 0), m2, m3, c1}}, {"/q", []*Frame{fr("1719-2", 0)}}},
			[]string{"1719-1@0", "1719-2@0", "1719-2@2", "1719-3@1", "own-b@0"}},
		// A publisher's own id repeated within a root: two events, both kept.
		{"own ids repeat", []RootReplay{{"/p", []*Frame{fr("same", 1)}}, {"/p", []*Frame{fr("same", 2)}}},
			[]string{"same@0", "same@1"}},
	}
	for _, c := range cases {
		if got := ids(MergeReplays(c.in...)); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// BenchmarkFrameReid: what a multi-root stream adds per event (its cursor, and the frame copied with it
// as the id) against what a single-root stream does (the shared bytes, as they are).
func BenchmarkCursorFrame(b *testing.B) {
	f := &Frame{ID: "1720000000123-0", Bytes: AppendFrame(nil, "1720000000123-0", "update", bytes.Repeat([]byte("x"), 200))}
	buf := make([]byte, 0, 4096)
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], f.Bytes...)
		}
	})
	for _, n := range []int{3, 64} {
		b.Run(fmt.Sprintf("cursor/roots=%d", n), func(b *testing.B) {
			cs := mustCursorState(b, manyRoots(n)...)
			for i := range n {
				cs.Set(i, fmt.Sprintf("1720000000%03d-0", i))
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				cs.Set(i%n, f.ID)
				buf = cs.AppendFrame(buf[:0], f)
			}
		})
	}
}
