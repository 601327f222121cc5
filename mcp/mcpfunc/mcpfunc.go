// Package mcpfunc writes stateless MCP functions for the sseedge MCP gateway: a Server is an
// http.Handler that takes one JSON-RPC message per POST, answers a request with 200 and its JSON-RPC
// response, and a notification or a response with 202. It implements initialize, ping, tools/list
// and tools/call over a fixed list of tools, with the standard library only.
//
// The gateway holds the session; a function that needs it reads X-Mcp-Session-Id (and
// X-Mcp-Transport, Mcp-Protocol-Version, Authorization) from the request, through ToolCall.Header.
package mcpfunc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

// ProtocolVersions are the MCP versions a Server speaks, newest first. initialize echoes the client's
// version when it is one of them, and offers the newest otherwise.
var ProtocolVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// JSON-RPC error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
)

// ToolCall is one tools/call: the tool's arguments (a JSON object) and the HTTP request's header.
type ToolCall struct {
	Arguments json.RawMessage
	Header    http.Header
}

// Tool is one tool a Server offers.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the JSON Schema of the arguments; nil means {"type":"object"}.
	InputSchema json.RawMessage
	// Call runs the tool and returns its text. An error becomes a result with isError: true, which the
	// model sees: it is for the tool's failures, not the protocol's.
	Call func(ctx context.Context, call ToolCall) (string, error)
}

// Server is a stateless MCP server over HTTP. Its fields must not change while it serves.
type Server struct {
	Name         string
	Version      string
	Instructions string
	Tools        []Tool
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ServeHTTP handles one JSON-RPC message.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST one JSON-RPC message", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, nil, CodeInvalidRequest, err.Error())
		return
	}
	body = bytes.TrimSpace(body)
	var req request
	switch {
	case len(body) > 0 && body[0] == '[':
		writeError(w, http.StatusBadRequest, nil, CodeInvalidRequest, "batches are not supported")
		return
	case json.Unmarshal(body, &req) != nil:
		writeError(w, http.StatusBadRequest, nil, CodeParseError, "the body must be one JSON-RPC message")
		return
	case req.JSONRPC != "2.0":
		writeError(w, http.StatusBadRequest, req.ID, CodeInvalidRequest, `"jsonrpc" must be "2.0"`)
		return
	case req.Method == "" || len(req.ID) == 0 || string(req.ID) == "null":
		w.WriteHeader(http.StatusAccepted) // a notification or a response: nothing to answer
		return
	}
	result, rerr := s.handle(r, &req)
	if rerr != nil {
		writeJSON(w, req.ID, "error", rerr)
		return
	}
	writeJSON(w, req.ID, "result", result)
}

func (s *Server) handle(r *http.Request, req *request) (any, *rpcError) {
	switch req.Method {
	case "initialize":
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		_ = json.Unmarshal(req.Params, &p)
		version := ProtocolVersions[0]
		if slices.Contains(ProtocolVersions, p.ProtocolVersion) {
			version = p.ProtocolVersion
		}
		res := map[string]any{
			"protocolVersion": version,
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]string{"name": s.Name, "version": s.Version},
		}
		if s.Instructions != "" {
			res["instructions"] = s.Instructions
		}
		return res, nil
	case "ping":
		return map[string]any{}, nil
	case "tools/list":
		tools := make([]map[string]any, 0, len(s.Tools))
		for _, t := range s.Tools {
			schema := t.InputSchema
			if schema == nil {
				schema = json.RawMessage(`{"type":"object"}`)
			}
			tools = append(tools, map[string]any{"name": t.Name, "description": t.Description, "inputSchema": schema})
		}
		return map[string]any{"tools": tools}, nil
	case "tools/call":
		var p struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil || p.Name == "" {
			return nil, &rpcError{CodeInvalidParams, "tools/call needs params.name"}
		}
		i := slices.IndexFunc(s.Tools, func(t Tool) bool { return t.Name == p.Name })
		if i < 0 {
			return nil, &rpcError{CodeInvalidParams, "unknown tool " + p.Name}
		}
		if len(p.Arguments) == 0 || string(p.Arguments) == "null" {
			p.Arguments = json.RawMessage("{}")
		}
		text, err := s.Tools[i].Call(r.Context(), ToolCall{Arguments: p.Arguments, Header: r.Header})
		res := map[string]any{"content": []map[string]string{{"type": "text", "text": text}}}
		if err != nil {
			res["content"] = []map[string]string{{"type": "text", "text": err.Error()}}
			res["isError"] = true
		}
		return res, nil
	}
	return nil, &rpcError{CodeMethodNotFound, "method not found: " + req.Method}
}

func writeJSON(w http.ResponseWriter, id json.RawMessage, key string, v any) {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, key: v})
	if err != nil {
		writeError(w, http.StatusInternalServerError, id, -32603, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": rpcError{code, msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
