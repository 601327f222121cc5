package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/metrics"
)

func TestMemorySessionStore(t *testing.T) {
	ctx := context.Background()
	m := &MemorySessionStore{Max: 2}
	for _, id := range []string{"a", "b", "c"} {
		if err := m.Create(ctx, Session{ID: id, Function: "f", Transport: TransportSSE}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("the oldest session should be evicted: %v", err)
	}
	if s, err := m.Get(ctx, "c"); err != nil || s.Function != "f" {
		t.Fatalf("get c: %+v %v", s, err)
	}
	if err := m.Create(ctx, Session{ID: "c"}); !errors.Is(err, ErrSessionExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := m.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "b"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if m.Len() != 1 {
		t.Fatalf("len %d", m.Len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Get(cctx, "c"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled get: %v", err)
	}
	if id := NewSessionID(); len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || id == NewSessionID() {
		t.Fatalf("session ID %q", id)
	}
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		body    string
		code    int
		request bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, 0, true},
		{` {"jsonrpc":"2.0","id":"a","method":"ping"} `, 0, true},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0, false},
		{`{"jsonrpc":"2.0","id":3,"result":{}}`, 0, false},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}`, 0, false},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0",`, CodeParseError, false},
		{`"ping"`, CodeParseError, false},
		{``, CodeParseError, false},
	} {
		m, err := parseMessage([]byte(tc.body))
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %+v", tc.body, err)
		case tc.code != 0 && (err == nil || err.code != tc.code):
			t.Errorf("%s: %+v, want code %d", tc.body, err, tc.code)
		case err == nil && m.isRequest() != tc.request:
			t.Errorf("%s: request %v", tc.body, m.isRequest())
		}
	}
	e := (&rpcError{id: json.RawMessage(`"q"`), code: CodeInternalError, message: "m", data: map[string]any{"code": "timeout"}}).encode()
	if string(e) != `{"jsonrpc":"2.0","id":"q","error":{"code":-32603,"message":"m","data":{"code":"timeout"}}}` {
		t.Fatalf("encoded %s", e)
	}
	if e := (&rpcError{code: CodeParseError, message: "m"}).encode(); !strings.Contains(string(e), `"id":null`) {
		t.Fatalf("encoded %s", e)
	}
}

func TestPickResponse(t *testing.T) {
	stream := "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n" +
		": comment\nevent: other\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":0}}\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\n data:\n" + // not JSON once joined: skipped
		"\n" +
		"data: {\"jsonrpc\": \"2.0\", \"id\": 7.0,\n" +
		"data:  \"result\": {\"x\": 1}}\n\n"
	resp, others := pickResponse("text/event-stream; charset=utf-8", []byte(stream), json.RawMessage("7"))
	if string(resp) != `{"jsonrpc":"2.0","id":7.0,"result":{"x":1}}` {
		t.Fatalf("response %s", resp)
	}
	if len(others) != 1 || !strings.Contains(string(others[0]), "notifications/progress") {
		t.Fatalf("others %q", others)
	}
	resp, others = pickResponse("application/json", []byte("{\n \"jsonrpc\": \"2.0\", \"id\": \"a\", \"error\": {\"code\": 1, \"message\": \"no\"}\n}"), json.RawMessage(`"a"`))
	if string(resp) != `{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"no"}}` || others != nil {
		t.Fatalf("response %s %q", resp, others)
	}
	for _, body := range []string{`{"jsonrpc":"2.0","id":"b","result":{}}`, `{"id":"a","result":{}}`, `{"jsonrpc":"2.0","id":"a"}`, `text`} {
		if resp, _ := pickResponse("application/json", []byte(body), json.RawMessage(`"a"`)); resp != nil {
			t.Errorf("%s taken for the response to a", body)
		}
	}
}

func TestValidVersion(t *testing.T) {
	for v, want := range map[string]bool{"2025-06-18": true, "2024-11-05": true, "2025-13-01": false, "latest": false, "": false, "2025-6-18": false} {
		if validVersion(v) != want {
			t.Errorf("validVersion(%q) = %v", v, !want)
		}
	}
}

// FuzzParseMessage: any body is either one routable message or an error whose encoding is a valid
// JSON-RPC error; a function's answer never yields a reply that is not one line of valid JSON.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, `{"jsonrpc":"2.0","method":"n"}`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`, `[1]`, `{"id":null}`, "data: {}\n\n", ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body)
		if err != nil {
			if e := err.encode(); !json.Valid(e) {
				t.Fatalf("error encodes to invalid JSON %q", e)
			}
			return
		}
		if m.isRequest() {
			if e := (&rpcError{id: m.ID, code: CodeInternalError, message: "x"}).encode(); !json.Valid(e) {
				t.Fatalf("error with id %q encodes to invalid JSON %q", m.ID, e)
			}
		}
		for _, ct := range []string{"application/json", "text/event-stream"} {
			resp, others := pickResponse(ct, body, m.ID)
			for _, r := range append(others, resp) {
				if r != nil && (!json.Valid(r) || strings.ContainsAny(string(r), "\r\n")) {
					t.Fatalf("reply %q is not one line of JSON", r)
				}
			}
		}
	})
}

// TestMemorySessionStoreEvictionOrder: sessions that never made a second request go first, then the
// least recently used; a source at its bound loses its own; OnEvict hears of each.
func TestMemorySessionStoreEvictionOrder(t *testing.T) {
	ctx := context.Background()
	var got []string
	m := &MemorySessionStore{Max: 4, MaxPerSource: 2, OnEvict: func(_ context.Context, s Session, r metrics.SessionEviction) {
		got = append(got, s.ID+":"+r.String())
	}}
	create := func(id, src string) {
		t.Helper()
		if err := m.Create(ctx, Session{ID: id, Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(id string) {
		t.Helper()
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	create("a1", "a")
	create("a2", "a")
	get("a1")
	create("a3", "a") // a's bound: a2 never made a second request, a1 did
	create("b1", "b")
	create("c1", "")
	get("b1")
	get("a1")         // used order now b1, a1 (a3 and c1 idle)
	create("d1", "d") // the store's bound: the oldest idle, a3
	create("d2", "d") // then c1
	get("d1")
	get("d2")
	create("e1", "e") // no idle left: the least recently used, b1
	want := []string{"a2:address_limit", "a3:store_full", "c1:store_full", "b1:store_full"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("evicted %v; want %v", got, want)
	}
	for _, id := range []string{"a1", "d1", "d2", "e1"} {
		get(id)
	}
	for _, id := range []string{"a1", "d1", "d2", "e1"} {
		if err := m.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 0 || len(m.bySource) != 0 || m.all.len() != 0 {
		t.Fatalf("after deleting everything: %d sessions, %d sources, %d listed", m.Len(), len(m.bySource), m.all.len())
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		if got := SourceOf(netip.MustParseAddr(in)); got != want {
			t.Errorf("SourceOf(%s) = %q; want %q", in, got, want)
		}
	}
	if got := SourceOf(netip.Addr{}); got != "" {
		t.Errorf("SourceOf(invalid) = %q", got)
	}
}
