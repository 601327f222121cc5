package edge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	raw := "GET /subscribe/pets?lastEventId=7&x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 42\r\nX-Empty:\r\n\r\nextra"
	h, n, err := parseHead([]byte(raw), DefaultMaxHeadBytes)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(raw)-len("extra") || h.method != "GET" || h.path != "/subscribe/pets" || h.rawQuery != "lastEventId=7&x=1" {
		t.Fatalf("parsed %+v, n=%d", h, n)
	}
	if h.get("last-event-id") != "42" || h.get("HOST") != "a" || h.get("X-Empty") != "" || h.get("missing") != "" {
		t.Fatalf("headers %+v", h.headers)
	}
	bad := map[string]error{
		// Bare LF line ends are refused, as fasthttp refuses them on API paths: one rule for both.
		"GET /sse/a HTTP/1.0\nHost: a\n\n":                                                errBareLF,
		"GET /sse/a HTTP/1.1\r\nHost: a\n\r\n":                                            errBareLF,
		"GET /sse/a HTTP/1.1\r\nHost: a\r\n":                                              errHeadIncomplete,
		"GET /sse/a\r\n\r\n":                                                              errBadRequestLine,
		"GET sse HTTP/1.1\r\n\r\n":                                                        errBadRequestLine,
		"GET /sse/a HTTP/2.0\r\n\r\n":                                                     errBadRequestLine,
		"G(T /sse/a HTTP/1.1\r\n\r\n":                                                     errBadRequestLine,
		"GET /sse/a HTTP/1.1\r\nNoColon\r\n\r\n":                                          errBadHeader,
		"GET /sse/a HTTP/1.1\r\n folded: x\r\n\r\n":                                       errBadHeader,
		"GET /sse/a HTTP/1.1\r\nBad Name: x\r\n\r\n":                                      errBadHeader,
		"GET /sse/a HTTP/1.1\r\nX: " + strings.Repeat("a", 9000):                          errHeadTooLarge,
		"GET /sse/a HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", maxHeaderCount+1) + "\r\n": errTooManyHeaders,
	}
	for in, want := range bad {
		if _, _, err := parseHead([]byte(in), DefaultMaxHeadBytes); !errors.Is(err, want) {
			t.Errorf("parseHead(%.40q) = %v; want %v", in, err, want)
		}
	}
}

// FuzzParseHead checks that no input panics the parser or yields a head it should have refused.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET /sse/alice?x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 5\r\n\r\n",
		"GET /subscribe/a/b HTTP/1.0\nX: y\n\n",
		"GET / HTTP/1.1\r\n\r\n",
		"\r\n\r\n",
		"GET /x HTTP/1.1\r\nA:\x00\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseHead(b, 1024)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with length %d", err, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > 1024 {
			t.Fatalf("head length %d of %d bytes", n, len(b))
		}
		if !isToken([]byte(h.method)) || !strings.HasPrefix(h.path, "/") || len(h.headers) > maxHeaderCount {
			t.Fatalf("accepted a bad head: %+v", h)
		}
		if strings.ContainsAny(h.path+h.rawQuery, " \r\n\x00") {
			t.Fatalf("target with whitespace or NUL: %q", h.path)
		}
		for _, f := range h.headers {
			if !isToken([]byte(f.name)) || strings.ContainsAny(f.value, "\r\n\x00") {
				t.Fatalf("bad header accepted: %q: %q", f.name, f.value)
			}
		}
		if !bytes.HasSuffix(b[:n], []byte("\n")) {
			t.Fatalf("head does not end at a line end: %q", b[:n])
		}
	})
}
