package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: body %q: %v", path, b, err)
	}
	return resp.StatusCode, out
}

func TestHandlers(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	for body, want := range map[string]string{`{"text":"hello"}`: "HELLO", `"quoted"`: "QUOTED", `raw words`: "RAW WORDS"} {
		if st, out := call(t, srv, "POST", "/upper", body, nil); st != 200 || out["text"] != want {
			t.Errorf("upper %s = %d %v, want %s", body, st, out, want)
		}
	}

	st, out := call(t, srv, "POST", "/echo", `{"a":1}`, map[string]string{
		"X-Invocation-Id": "inv-1", "X-Client-Id": "c-1",
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-Other": "no",
	})
	hdrs, _ := out["headers"].(map[string]any)
	body, _ := out["body"].(map[string]any)
	if st != 200 || body["a"] != 1.0 || out["content_type"] != "application/json" ||
		hdrs["X-Invocation-Id"] != "inv-1" || hdrs["X-Client-Id"] != "c-1" || hdrs["Traceparent"] == nil || hdrs["X-Other"] != nil {
		t.Errorf("echo = %d %v", st, out)
	}

	if st, out := call(t, srv, "POST", "/sleep?ms=20", "", nil); st != 200 || out["slept_ms"] != 20.0 {
		t.Errorf("sleep = %d %v", st, out)
	}
	if st, _ := call(t, srv, "POST", "/sleep?ms=x", "", nil); st != 400 {
		t.Errorf("sleep bad ms = %d", st)
	}
	if st, _ := call(t, srv, "POST", "/fail?status=503", "", nil); st != 503 {
		t.Errorf("fail 503 = %d", st)
	}
	if st, _ := call(t, srv, "POST", "/fail", "", nil); st != 500 {
		t.Errorf("fail default = %d", st)
	}
	if st, out := call(t, srv, "GET", "/health", "", nil); st != 200 || out["status"] != "ok" {
		t.Errorf("health = %d %v", st, out)
	}
}

func TestSleepStopsWhenCallerLeaves(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close() // waits for handlers: it would hang if sleep ignored the caller leaving
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/sleep?ms=600000", nil)
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("a ten-minute sleep answered within 100ms")
	}
}
