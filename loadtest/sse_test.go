package main

import (
	"fmt"
	"strings"
	"testing"
)

// recorder keeps copies of the events it is handed, in a compact printable form.
type recorder struct{ got []string }

func (r *recorder) OnEvent(ev Event) {
	r.got = append(r.got, fmt.Sprintf("id=%q type=%q data=%q", ev.ID, ev.Type, ev.Data))
}

func TestParser(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  []string
		retry int64
	}{
		{"simple", "id: 1\nevent: e\ndata: hello\n\n",
			[]string{`id="1" type="e" data="hello"`}, 0},
		{"crlf", "id: 1\r\nevent: e\r\ndata: hello\r\n\r\n",
			[]string{`id="1" type="e" data="hello"`}, 0},
		{"cr", "data: a\rdata: b\r\r",
			[]string{`id="" type="" data="a\nb"`}, 0},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n",
			[]string{`id="" type="" data="a\nb\nc"`}, 0},
		{"multiline and empty data", "data\ndata:\ndata: x\n\n",
			[]string{`id="" type="" data="\n\nx"`}, 0},
		{"one space stripped only", "data:  two\ndata:none\n\n",
			[]string{`id="" type="" data=" two\nnone"`}, 0},
		{"comments and unknown fields ignored", ": hi\nfoo: bar\ndata: d\n:x\n\n",
			[]string{`id="" type="" data="d"`}, 0},
		{"no data no dispatch, type reset", "event: e\n\ndata: d\n\n",
			[]string{`id="" type="" data="d"`}, 0},
		{"id persists, NUL id ignored", "id: 5\ndata: a\n\ndata: b\n\nid: 6\x007\ndata: c\n\nid\ndata: d\n\n",
			[]string{`id="5" type="" data="a"`, `id="5" type="" data="b"`, `id="5" type="" data="c"`,
				`id="" type="" data="d"`}, 0},
		{"retry", "retry: 3000\n\nretry: 12x\n\nretry:\n\n", nil, 3000},
		{"bom", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n",
			[]string{`id="" type="" data="a"`}, 0},
		{"incomplete event not dispatched", "data: a\n\ndata: b\n", []string{`id="" type="" data="a"`}, 0},
		{"colon in value", "data: a: b\n\n", []string{`id="" type="" data="a: b"`}, 0},
	}
	for _, c := range cases {
		// Feed the input whole, byte by byte, and in every two-way split: the result must not depend on
		// how the bytes arrive.
		splits := [][]string{{c.in}}
		bytewise := make([]string, 0, len(c.in))
		for i := range len(c.in) {
			bytewise = append(bytewise, c.in[i:i+1])
		}
		splits = append(splits, bytewise)
		for i := 1; i < len(c.in); i++ {
			splits = append(splits, []string{c.in[:i], c.in[i:]})
		}
		for _, parts := range splits {
			var p Parser
			var r recorder
			for _, part := range parts {
				if err := p.Feed([]byte(part), &r); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
			}
			if strings.Join(r.got, "|") != strings.Join(c.want, "|") {
				t.Fatalf("%s split %q:\n got %q\nwant %q", c.name, parts, r.got, c.want)
			}
			if p.Retry() != c.retry {
				t.Fatalf("%s: retry %d, want %d", c.name, p.Retry(), c.retry)
			}
		}
	}
}

func TestParserLineTooLong(t *testing.T) {
	var p Parser
	chunk := []byte(strings.Repeat("x", 64<<10))
	var err error
	for range 20 {
		if err = p.Feed(chunk, &recorder{}); err != nil {
			break
		}
	}
	if err != ErrLineTooLong {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
}

type nopHandler struct{ n int }

func (h *nopHandler) OnEvent(Event) { h.n++ }

func TestParserNoAllocs(t *testing.T) {
	var p Parser
	h := &nopHandler{}
	frame := []byte("id: 123\nevent: bench\ndata: {\"t\":1700000000000000000,\"seq\":4}\n\n")
	_ = p.Feed(frame, h)
	allocs := testing.AllocsPerRun(100, func() { _ = p.Feed(frame, h) })
	if allocs != 0 {
		t.Fatalf("Feed allocates %.1f times per frame", allocs)
	}
}

func BenchmarkParser(b *testing.B) {
	var p Parser
	h := &nopHandler{}
	frame := []byte("id: 123\nevent: bench\ndata: {\"t\":1700000000000000000,\"seq\":4}\n\n")
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_ = p.Feed(frame, h)
	}
}

func TestParseDigitsAndStamp(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "3000": 3000, "1763856000123456789": 1763856000123456789,
		"9223372036854775807": 9223372036854775807} {
		if got, ok := parseDigits([]byte(in)); !ok || got != want {
			t.Errorf("parseDigits(%q) = %d, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-1", "1x", "9223372036854775808", "12345678901234567890"} {
		if _, ok := parseDigits([]byte(bad)); ok {
			t.Errorf("parseDigits(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{`{"t":1763856000123456789,"seq":3}`: 1763856000123456789,
		`{"seq": 3, "t": 42}`: 42} {
		if got, ok := parseStamp([]byte(in)); !ok || got != want {
			t.Errorf("parseStamp(%q) = %d, %v", in, got, ok)
		}
	}
	if _, ok := parseStamp([]byte(`{"x":1}`)); ok {
		t.Error("parseStamp found a stamp in {\"x\":1}")
	}
}
