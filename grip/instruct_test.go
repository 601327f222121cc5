package grip

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/fanout"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseInstructStream(t *testing.T) {
	h := hdr(
		"Grip-Hold", "stream",
		"Grip-Channel", "news; prev-id=7, pets/dogs",
		"grip-channel", `sports; prev-id="a,b;c"`, // a second line, non-canonical name, a quoted prev-id
		"Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`,
		"Content-Type", "text/event-stream; charset=utf-8",
		"Content-Length", "40",
		"Set-Cookie", "s=1",
		"Connection", "close, X-Hop",
		"X-Hop", "1",
	)
	body := "event: hello\ndata: a\ndata: b\nid: 9\n\n: comment\ndata: second\n\nretry: 10\n\ndata: open"
	in, err := ParseInstruct(200, h, []byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Hold != HoldStream || in.Status != 200 {
		t.Errorf("hold %v status %d", in.Hold, in.Status)
	}
	wantCh := []Channel{{"news", "/news", "7"}, {"pets/dogs", "/pets/dogs", ""}, {"sports", "/sports", "a,b;c"}}
	if !reflect.DeepEqual(in.Channels, wantCh) {
		t.Errorf("channels %+v, want %+v", in.Channels, wantCh)
	}
	if in.KeepAlive == nil || string(in.KeepAlive.Content) != ":\n\n" || in.KeepAlive.Interval != 20*time.Second || in.KeepAlive.Mode != KeepAliveIdle {
		t.Errorf("keep-alive %+v", in.KeepAlive)
	}
	wantEv := []fanout.Event{{Name: "hello", Data: []byte("a\nb")}, {Data: []byte("second")}, {Data: []byte("open")}}
	if !reflect.DeepEqual(in.Events, wantEv) {
		t.Errorf("events %q, want %q", in.Events, wantEv)
	}
	wantH := http.Header{"Set-Cookie": {"s=1"}}
	if !reflect.DeepEqual(in.Header, wantH) {
		t.Errorf("client header %v, want %v", in.Header, wantH)
	}
	if in.Body != nil {
		t.Errorf("body %q on a held stream", in.Body)
	}
}

func TestParseInstructPassThrough(t *testing.T) {
	// @fanoutio/grip writes an empty Grip-Channel when an instruct was started without a channel.
	h := hdr("Grip-Channel", "", "Grip-Status", "304 Not Modified", "Content-Type", "text/plain", "Grip-Expose-Headers", "content-type, X-A", "X-A", "a", "X-B", "b")
	in, err := ParseInstruct(200, h, []byte("plain body"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Hold != HoldNone || in.Status != 304 || in.Reason != "Not Modified" || string(in.Body) != "plain body" || len(in.Channels) != 0 {
		t.Errorf("%+v", in)
	}
	if want := (http.Header{"Content-Type": {"text/plain"}, "X-A": {"a"}}); !reflect.DeepEqual(in.Header, want) {
		t.Errorf("client header %v, want %v", in.Header, want)
	}
	// No GRIP header at all: an ordinary response, status and body unchanged.
	in, err = ParseInstruct(403, hdr("Content-Type", "application/json"), []byte(`{"error":"no"}`), Limits{})
	if err != nil || in.Hold != HoldNone || in.Status != 403 || string(in.Body) != `{"error":"no"}` {
		t.Fatalf("%+v %v", in, err)
	}
}

func TestParseInstructKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		value, content string
		interval       time.Duration
		mode           KeepAliveMode
	}{
		{": ping; format=raw", ": ping\n", DefaultKeepAliveInterval, KeepAliveIdle},
		{": ping", ": ping\n", DefaultKeepAliveInterval, KeepAliveIdle},
		{"OjpcbgpkYXRhOiB4Cg==; format=base64; timeout=0; mode=interval", "::\\n\ndata: x\n\n", time.Second, KeepAliveInterval},
		{`event: ka\ndata:\x20\n\n; format=cstring; timeout=5`, "event: ka\ndata: \n\n", 5 * time.Second, KeepAliveIdle},
		{`"a:b; c"; format=raw`, "", 0, 0}, // "a" is not an SSE field: refused below
	} {
		in, err := ParseInstruct(200, hdr("Grip-Hold", "stream", "Grip-Channel", "c", "Grip-Keep-Alive", tc.value), nil, Limits{})
		if tc.content == "" {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%q: %v, want malformed", tc.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if ka := in.KeepAlive; string(ka.Content) != tc.content || ka.Interval != tc.interval || ka.Mode != tc.mode {
			t.Errorf("%q: %q %v %v, want %q %v %v", tc.value, ka.Content, ka.Interval, ka.Mode, tc.content, tc.interval, tc.mode)
		}
	}
}

func TestParseInstructErrors(t *testing.T) {
	stream := []string{"Grip-Hold", "stream", "Grip-Channel", "c"}
	many := make([]string, 65)
	for i := range many {
		many[i] = "c" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name   string
		h      []string
		ct     string
		body   string
		code   Code
		status int
	}{
		{"response hold", []string{"Grip-Hold", "response", "Grip-Channel", "c"}, "", "", CodeHoldResponse, 501},
		{"bad hold", []string{"Grip-Hold", "forever", "Grip-Channel", "c"}, "", "", CodeMalformed, 502},
		{"two holds", []string{"Grip-Hold", "stream", "Grip-Hold", "stream", "Grip-Channel", "c"}, "", "", CodeMalformed, 502},
		{"unknown instruction", append(stream, "Grip-Frobnicate", "1"), "", "", CodeUnknownInstruction, 502},
		{"set-meta", append(stream, "Grip-Set-Meta", `user="a"`), "", "", CodeUnsupported, 502},
		{"link", append(stream, "Grip-Link", "</next>; rel=next"), "", "", CodeUnsupported, 502},
		{"filter", []string{"Grip-Hold", "stream", "Grip-Channel", "c; filter=skip-self"}, "", "", CodeUnsupported, 502},
		{"unknown channel param", []string{"Grip-Hold", "stream", "Grip-Channel", "c; colour=red"}, "", "", CodeMalformed, 502},
		{"empty prev-id", []string{"Grip-Hold", "stream", "Grip-Channel", "c; prev-id"}, "", "", CodeMalformed, 502},
		{"conflicting prev-ids", []string{"Grip-Hold", "stream", "Grip-Channel", "c; prev-id=1, c; prev-id=2"}, "", "", CodeMalformed, 502},
		{"unterminated quote", []string{"Grip-Hold", "stream", "Grip-Channel", `c; prev-id="1`}, "", "", CodeMalformed, 502},
		{"too many channels", []string{"Grip-Hold", "stream", "Grip-Channel", strings.Join(many, ", ")}, "", "", CodeTooMany, 502},
		{"bad channel", []string{"Grip-Hold", "stream", "Grip-Channel", "a//b"}, "", "", CodeBadChannel, 502},
		{"slash channel", []string{"Grip-Hold", "stream", "Grip-Channel", "/a"}, "", "", CodeBadChannel, 502},
		{"dot channel", []string{"Grip-Hold", "stream", "Grip-Channel", "a/../b"}, "", "", CodeBadChannel, 502},
		{"stream without channel", []string{"Grip-Hold", "stream"}, "", "", CodeMalformed, 502},
		{"channel without hold", []string{"Grip-Channel", "c"}, "", "", CodeMalformed, 502},
		{"keep-alive without hold", []string{"Grip-Keep-Alive", ":"}, "", "", CodeMalformed, 502},
		{"keep-alive format", append(stream, "Grip-Keep-Alive", ":; format=hex"), "", "", CodeMalformed, 502},
		{"keep-alive cstring", append(stream, "Grip-Keep-Alive", `:\q; format=cstring`), "", "", CodeMalformed, 502},
		{"keep-alive base64", append(stream, "Grip-Keep-Alive", "!!; format=base64"), "", "", CodeMalformed, 502},
		{"keep-alive id", append(stream, "Grip-Keep-Alive", `id: 5\n\n; format=cstring`), "", "", CodeMalformed, 502},
		{"keep-alive timeout", append(stream, "Grip-Keep-Alive", ":; timeout=-1"), "", "", CodeMalformed, 502},
		{"keep-alive mode", append(stream, "Grip-Keep-Alive", ":; mode=often"), "", "", CodeMalformed, 502},
		{"keep-alive empty", append(stream, "Grip-Keep-Alive", "; timeout=5"), "", "", CodeMalformed, 502},
		{"keep-alive too large", append(stream, "Grip-Keep-Alive", ":"+strings.Repeat("x", 2000)), "", "", CodeTooLarge, 502},
		{"status", []string{"Grip-Status", "99"}, "", "", CodeMalformed, 502},
		{"status text", []string{"Grip-Status", "ok"}, "", "", CodeMalformed, 502},
		{"timeout", append(stream, "Grip-Timeout", "soon"), "", "", CodeMalformed, 502},
		{"expose", []string{"Grip-Expose-Headers", "a b"}, "", "", CodeMalformed, 502},
		{"huge header", append(stream, "Grip-Timeout", strings.Repeat("1", 9000)), "", "", CodeTooLarge, 502},
		{"instruct body", nil, "application/grip-instruct", "{}", CodeUnsupported, 502},
		{"stream body not SSE", stream, "text/plain", "[stream open]\n", CodeMalformed, 502},
		{"stream body bad name", stream, "text/event-stream", "event: a\x00b\ndata: x\n\n", CodeMalformed, 502},
		{"huge body", nil, "text/plain", strings.Repeat("x", 1<<20+1), CodeTooLarge, 502},
	} {
		h := hdr(tc.h...)
		if tc.ct != "" {
			h.Set("Content-Type", tc.ct)
		}
		in, err := ParseInstruct(200, h, []byte(tc.body), Limits{})
		var ge *Error
		if !errors.As(err, &ge) {
			t.Errorf("%s: %+v, %v: want an *Error", tc.name, in, err)
			continue
		}
		if ge.Code != tc.code || ge.Status != tc.status || !errors.Is(err, sentinels[tc.code]) {
			t.Errorf("%s: %v (code %s, status %d), want code %s status %d", tc.name, err, ge.Code, ge.Status, tc.code, tc.status)
		}
	}
}

func TestParseInstructLimits(t *testing.T) {
	lim := Limits{MaxChannels: 2, MaxEvents: 1}
	if _, err := ParseInstruct(200, hdr("Grip-Hold", "stream", "Grip-Channel", "a, b, c"), nil, lim); !errors.Is(err, ErrTooMany) {
		t.Errorf("3 channels over 2: %v", err)
	}
	h := hdr("Grip-Hold", "stream", "Grip-Channel", "a, b, a", "Content-Type", "text/event-stream")
	in, err := ParseInstruct(200, h, []byte("data: 1\n\n"), lim)
	if err != nil || len(in.Channels) != 2 || len(in.Events) != 1 {
		t.Fatalf("a repeated channel counts once: %+v %v", in, err)
	}
	if _, err := ParseInstruct(200, h, []byte("data: 1\n\ndata: 2\n\n"), lim); !errors.Is(err, ErrTooMany) {
		t.Errorf("2 events over 1: %v", err)
	}
}

func TestForwardRequestHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Cookie": true, "authorization": true, "Last-Event-ID": true, "X-Anything": true, "Accept": true,
		"Grip-Sig": false, "grip-last": false, "Host": false, "Connection": false, "Transfer-Encoding": false,
		"Content-Length": false, "Upgrade": false,
	} {
		if got := ForwardRequestHeader(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
