package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
)

// JSON-RPC error codes the gateway uses.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeInternalError  = -32603
	// CodeBadRequest is what MCP servers answer to transport-level mistakes (missing session header,
	// wrong Accept, ...) alongside the HTTP status.
	CodeBadRequest = -32000
	// CodeSessionNotFound comes with 404 for an unknown or ended session.
	CodeSessionNotFound = -32001
)

// message is what the gateway reads of one JSON-RPC message: enough to route it.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// isRequest: a method and an ID; the function owes it a response.
func (m *message) isRequest() bool { return m.Method != "" && present(m.ID) }

// rpcError is a JSON-RPC error to hand back, with the ID of the message it answers (nil: null).
type rpcError struct {
	id      json.RawMessage
	code    int
	message string
	data    any
}

func (e *rpcError) encode() []byte {
	type errObj struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	id := e.id
	if !present(id) {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct { // only strings, ints, an ID that parsed as JSON and plain maps
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   errObj          `json:"error"`
	}{"2.0", id, errObj{e.code, e.message, e.data}})
	return b
}

// parseMessage reads one JSON-RPC message. Batches (arrays) are refused: a function takes one message
// per call, and batching left MCP in 2025-06-18.
func parseMessage(body []byte) (*message, *rpcError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &rpcError{code: CodeParseError, message: "Parse error: empty body"}
	}
	if body[0] == '[' {
		return nil, &rpcError{code: CodeInvalidRequest, message: "Invalid Request: JSON-RPC batches are not supported; send one message per request"}
	}
	if body[0] != '{' || !json.Valid(body) {
		return nil, &rpcError{code: CodeParseError, message: "Parse error: the body must be one JSON-RPC message (a JSON object)"}
	}
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &rpcError{code: CodeInvalidRequest, message: "Invalid Request: " + err.Error()}
	}
	bad := func(why string) (*message, *rpcError) {
		return nil, &rpcError{id: m.ID, code: CodeInvalidRequest, message: "Invalid Request: " + why}
	}
	switch {
	case m.JSONRPC != "2.0":
		return bad(`"jsonrpc" must be "2.0"`)
	case m.Method != "" && len(m.ID) > 0 && !present(m.ID):
		return bad("a request's id must not be null")
	case present(m.ID) && m.ID[0] != '"' && (m.ID[0] < '0' || m.ID[0] > '9') && m.ID[0] != '-':
		return bad("id must be a string or a number")
	case m.Method == "" && len(m.Result) == 0 && len(m.Error) == 0:
		return bad("neither a request, a notification nor a response")
	}
	return &m, nil
}

// sameID compares two JSON-RPC IDs by value (1 and 1.0 are the same number).
func sameID(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// sseMessages returns the data of the message events of an event-stream body (a function built with an
// MCP SDK may answer a POST with a short stream rather than JSON).
func sseMessages(body []byte) [][]byte {
	var out [][]byte
	var data []byte
	name, has := "", false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), len(body)+1)
	flush := func() {
		if has && (name == "" || name == "message") {
			out = append(out, data)
		}
		data, name, has = nil, "", false
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			flush()
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if has {
				data = append(data, '\n')
			}
			data, has = append(data, value...), true
		}
	}
	flush()
	return out
}
