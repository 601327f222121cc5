package main

import (
	"errors"
	"strings"
	"testing"
)

func TestStreamChunkedAndRaw(t *testing.T) {
	chunked := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"d\r\nretry: 3000\n\n\r\n" +
		"1c;ext=1\r\nid: 1\nevent: e\ndata: hello\n\n\r\n" +
		"0\r\n\r\n"
	raw := "HTTP/1.1 200 OK\nCache-Control: no-cache\nContent-Type: text/event-stream; charset=utf-8\n\n" +
		"retry: 3000\n\nid: 1\nevent: e\ndata: hello\n\n"
	for name, in := range map[string]string{"chunked": chunked, "raw": raw} {
		for size := 1; size <= len(in); size++ {
			var s stream
			var r recorder
			var err error
			for off := 0; off < len(in) && err == nil; off += size {
				err = s.feed([]byte(in[off:min(off+size, len(in))]), &r)
			}
			if name == "chunked" && !errors.Is(err, errStreamEnded) || name == "raw" && err != nil {
				t.Fatalf("%s size %d: err %v", name, size, err)
			}
			if s.status != 200 || s.phase != phaseBody || s.sse.Retry() != 3000 {
				t.Fatalf("%s size %d: status %d phase %d retry %d", name, size, s.status, s.phase, s.sse.Retry())
			}
			if got := strings.Join(r.got, "|"); got != `id="1" type="e" data="hello"` {
				t.Fatalf("%s size %d: events %q", name, size, got)
			}
		}
	}
}

func TestStreamRejects(t *testing.T) {
	cases := map[string]string{
		"404":       "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{}",
		"not sse":   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
		"garbage":   "SSH-2.0-OpenSSH\r\n\r\n",
		"bad chunk": "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	}
	for name, in := range cases {
		var s stream
		if err := s.feed([]byte(in), &recorder{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var s stream
	var se *statusError
	if err := s.feed([]byte(cases["404"]), &recorder{}); !errors.As(err, &se) || se.status != 404 {
		t.Errorf("404: err %v", err)
	}
}
