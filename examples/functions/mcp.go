package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sseedge/sseedge/mcp/mcpfunc"
)

// NewMCPHandler returns the sample MCP function, served at /mcp: a stateless MCP server with one tool,
// upper, for the edge's MCP gateway. Register it with "mcp": true and point an MCP client at
// /mcp/{name} (Streamable HTTP) or /mcp/{name}/sse (HTTP+SSE) on the edge:
//
//	curl -X POST localhost:8080/admin/functions \
//	  -d '{"name":"upper","endpoint":"http://127.0.0.1:9000/mcp","mcp":true,"idempotent":true}'
//
// It answers initialize (echoing the client's protocol version when it speaks it), ping, tools/list
// and tools/call with 200 and the JSON-RPC response, notifications with 202, and any other method
// with -32601.
func NewMCPHandler() http.Handler {
	return &mcpfunc.Server{
		Name:    "sseedge-examples",
		Version: "1.0.0",
		Tools: []mcpfunc.Tool{{
			Name:        "upper",
			Description: "Upper-cases a text.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string","description":"the text to upper-case"}},"required":["text"]}`),
			Call:        upperTool,
		}},
	}
}

func upperTool(_ context.Context, call mcpfunc.ToolCall) (string, error) {
	var args struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(call.Arguments, &args); err != nil || args.Text == nil {
		return "", errors.New(`upper needs {"text": "..."}`)
	}
	return strings.ToUpper(*args.Text), nil
}
