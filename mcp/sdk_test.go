package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/registry"
)

// useUpper lists the tools and calls upper through an official-SDK session, with a pause longer than
// the heartbeat interval in between, so heartbeats flow on the held streams meanwhile.
func useUpper(t *testing.T, ctx context.Context, cs *sdk.ClientSession, pause time.Duration) {
	t.Helper()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "upper" {
		t.Fatalf("tools: %+v", tools.Tools)
	}
	time.Sleep(pause)
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "upper", Arguments: map[string]any{"text": "hello, edge"}})
	if err != nil {
		t.Fatalf("call upper: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("upper result: %+v", res)
	}
	if text, ok := res.Content[0].(*sdk.TextContent); !ok || text.Text != "HELLO, EDGE" {
		t.Fatalf("upper result: %#v", res.Content[0])
	}
	if err := cs.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestGoSDKStreamable(t *testing.T) {
	h := start(t, options{heartbeat: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "sseedge-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: h.url + "/mcp/upper", HTTPClient: h.client}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "sseedge-examples" {
		t.Errorf("server name %q", got)
	}
	if h.sessions.Len() != 1 {
		t.Fatalf("%d sessions, want 1", h.sessions.Len())
	}
	useUpper(t, ctx, cs, 300*time.Millisecond)
	// The SDK opens the listening stream (GET) after initialize; it is held by the edge.
	testutil.WaitFor(t, "the listening stream", func() bool { return h.srv.Stats().ClientStreams == 1 })
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// Close sends DELETE: the session is gone, and so is the stream.
	testutil.WaitFor(t, "the session to end", func() bool { return h.sessions.Len() == 0 && h.srv.Stats().ClientStreams == 0 })
}

func TestGoSDKSSE(t *testing.T) {
	h := start(t, options{heartbeat: 100 * time.Millisecond})
	if why := heldStreamFraming(t, h); why != "" {
		t.Fatal("the Go SDK's HTTP+SSE client (v1.8.0) takes every event for an MCP message and needs " +
			"\"endpoint\" first; the edge's held streams no longer frame it so: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "sseedge-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.SSEClientTransport{Endpoint: h.url + "/mcp/upper/sse", HTTPClient: h.client}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	useUpper(t, ctx, cs, 300*time.Millisecond)
	if err := cs.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("close: %v", err)
	}
	testutil.WaitFor(t, "the stream to close", func() bool { return h.srv.Stats().ClientStreams == 0 })
}

// TestTypeScriptSDK runs the official TypeScript SDK (mcp/testdata/tsclient) over both transports. It
// needs node and npm, and runs npm install (into the user's cache directory, not the work tree).
func TestTypeScriptSDK(t *testing.T) {
	node, dir := testutil.NodeRig(t, "mcp-tsclient", filepath.Join("testdata", "tsclient"),
		[]string{"package.json", "package-lock.json", ".npmrc", "client.mjs"}, filepath.Join("@modelcontextprotocol", "sdk"))

	h := start(t, options{heartbeat: 100 * time.Millisecond})
	for _, tc := range []struct{ transport, url string }{
		{"streamable", h.url + "/mcp/upper"},
		{"sse", h.url + "/mcp/upper/sse"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "client.mjs", tc.url, tc.transport, "hello from typescript")
			cmd.Dir = dir
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node client.mjs: %v\n%s", err, stderr.String())
			}
			var got struct {
				Tools           []string
				Text            string
				IsError         bool
				SessionID       *string
				ProtocolVersion *string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("client output %q: %v", out, err)
			}
			if !slices.Equal(got.Tools, []string{"upper"}) || got.Text != "HELLO FROM TYPESCRIPT" || got.IsError {
				t.Fatalf("client output: %s", out)
			}
			if tc.transport == "streamable" && (got.SessionID == nil || len(*got.SessionID) != 32) {
				t.Fatalf("session ID: %s", out)
			}
		})
	}
	// The streamable client ended its session with DELETE; the HTTP+SSE one ended with its stream.
	testutil.WaitFor(t, "the streams to close", func() bool { return h.srv.Stats().ClientStreams == 0 })
	testutil.WaitFor(t, "both sessions to end", func() bool { return h.sessions.Len() == 0 })
}

// heldStreamFraming says what, on a held stream, breaks SSE clients that take every event for theirs:
// a retry hint sent as an event of its own before "endpoint", or heartbeats sent as events rather than
// comments. "" when nothing does.
func heldStreamFraming(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := h.client.Get(h.url + "/mcp/upper/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	block := func() string {
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("held stream: %v", err)
			}
			if line == "\n" {
				return b.String()
			}
			b.WriteString(line)
		}
	}
	if first := block(); !strings.Contains(first, "event: endpoint\n") {
		return fmt.Sprintf("its first event is %q", first)
	}
	if next := block(); strings.Contains(next, "data:") { // after the 100ms heartbeat interval
		return fmt.Sprintf("it sends %q", next)
	}
	return ""
}

// TestGoSDKServerAsFunction: a function built on the official Go SDK (a stateless Streamable HTTP
// server, which answers with a short event stream) serves a Go SDK client through the edge.
func TestGoSDKServerAsFunction(t *testing.T) {
	h := start(t, options{})
	server := sdk.NewServer(&sdk.Implementation{Name: "gosdk-function", Version: "1.0.0"}, nil)
	type args struct {
		Text string `json:"text"`
	}
	sdk.AddTool(server, &sdk.Tool{Name: "upper", Description: "Upper-cases a text."},
		func(_ context.Context, _ *sdk.CallToolRequest, in args) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.ToUpper(in.Text)}}}, nil, nil
		})
	fnSrv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server },
		&sdk.StreamableHTTPOptions{Stateless: true}))
	defer fnSrv.Close()
	h.register(t, registry.Function{Name: "gosdk", Endpoint: fnSrv.URL, MCP: true})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "sseedge-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: h.url + "/mcp/gosdk", HTTPClient: h.client}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	useUpper(t, ctx, cs, 0)
	if got := cs.InitializeResult().ServerInfo.Name; got != "gosdk-function" {
		t.Errorf("server name %q", got)
	}
}
