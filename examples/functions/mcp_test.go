package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMCPHandler(t *testing.T) {
	srv := httptest.NewServer(NewMCPHandler())
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       []string // substrings of the answer
	}{
		{"initialize echoes a supported version", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}}`,
			200, []string{`"id":1`, `"protocolVersion":"2024-11-05"`, `"capabilities":{"tools":{}}`, `"serverInfo":{"name":"sseedge-examples","version":"1.0.0"}`}},
		{"initialize offers the newest otherwise", `{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2099-01-01"}}`,
			200, []string{`"protocolVersion":"2025-11-25"`}},
		{"initialized", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 202, nil},
		{"ping", `{"jsonrpc":"2.0","id":"p","method":"ping"}`, 200, []string{`"id":"p"`, `"result":{}`}},
		{"tools/list", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`,
			200, []string{`"name":"upper"`, `"inputSchema":{"type":"object","properties":{"text":{"type":"string"`}},
		{"tools/call", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"upper","arguments":{"text":"mcp"}}}`,
			200, []string{`"id":4`, `"content":[{"text":"MCP","type":"text"}]`}},
		{"tools/call without text", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"upper","arguments":{}}}`,
			200, []string{`"isError":true`}},
		{"unknown tool", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"lower"}}`, 200, []string{`"code":-32602`}},
		{"unknown method", `{"jsonrpc":"2.0","id":7,"method":"resources/list"}`, 200, []string{`"id":7`, `"code":-32601`}},
		{"batch", `[{"jsonrpc":"2.0","id":8,"method":"ping"}]`, 400, []string{`"code":-32600`}},
		{"not JSON", `{`, 400, []string{`"code":-32700`}},
	} {
		status, body := post(tc.body)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.status, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %s", tc.name, body, w)
			}
		}
		if tc.status == 202 && body != "" {
			t.Errorf("%s: 202 with body %q", tc.name, body)
		}
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}
