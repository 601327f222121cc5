package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/textproto"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// call is one client message on its way to the function.
type call struct {
	fn      registry.Function
	session Session
	msg     *message
	body    []byte            // the client's JSON, unchanged (a copy: fasthttp reuses its buffers)
	header  map[string]string // added to the function's request
}

// newCall prepares msg for fn. version is the client's Mcp-Protocol-Version, if it sent one.
func (g *Gateway) newCall(rc *fasthttp.RequestCtx, fn registry.Function, s Session, msg *message, version string) *call {
	if version == "" {
		version = s.ProtocolVersion
	}
	if version == "" {
		version = defaultStreamableVersion
		if s.Transport == TransportSSE {
			version = defaultSSEVersion
		}
	}
	h := map[string]string{
		HeaderFnSessionID:     s.ID,
		HeaderFnTransport:     string(s.Transport),
		HeaderProtocolVersion: version,
		// What the MCP SDKs' stateless servers insist on; a JSON answer is preferred, a short stream
		// is read too.
		fasthttp.HeaderAccept: "application/json, text/event-stream",
	}
	// Authorization is the function's business: it gets the client's header, unless its
	// registration sets one of its own (a registered secret is never replaced by a client's value).
	if auth := rc.Request.Header.Peek(fasthttp.HeaderAuthorization); len(auth) > 0 && !hasHeader(fn.Headers, fasthttp.HeaderAuthorization) {
		h[fasthttp.HeaderAuthorization] = string(auth)
	}
	// A tool call may have effects: re-sending it is safe only if the function says so.
	if msg.Method == "tools/call" && !fn.Idempotent {
		fn.Retry.MaxAttempts = 1
	}
	return &call{fn: fn, session: s, msg: msg, body: bytes.Clone(rc.PostBody()), header: h}
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) == name {
			return true
		}
	}
	return false
}

// forward calls the function with c's message. For a request, reply is what the client gets: the
// function's JSON-RPC response compacted to one line (ok), or a -32603 error with the request's id
// (!ok). For a notification or a response, reply is nil and ok says whether the function accepted it.
func (g *Gateway) forward(ctx context.Context, c *call) (reply []byte, ok bool) {
	isRequest := c.msg.isRequest()
	log := g.log.With("function", c.fn.Name, "session", c.session.ID, "method", c.msg.Method)
	res, err := g.inv.Invoke(ctx, c.fn, invoker.Request{Payload: c.body, ClientID: StreamKey(c.session.ID), Header: c.header})
	if err != nil {
		data := map[string]any{}
		var ie *invoker.Error
		if errors.As(err, &ie) {
			data["code"] = string(ie.Code)
			if ie.TraceID != "" {
				data["trace_id"] = ie.TraceID
			}
		}
		log.Warn("mcp call failed", "err", err)
		if !isRequest {
			return nil, false
		}
		return c.internalError("function "+c.fn.Name+" failed: "+errorMessage(err), data), false
	}
	data := map[string]any{"status": res.Status}
	if res.TraceID != "" {
		data["trace_id"] = res.TraceID
	}
	if res.Status < 200 || res.Status > 299 {
		log.Warn("mcp call refused", "status", res.Status, "trace_id", res.TraceID)
		if !isRequest {
			return nil, false
		}
		data["code"] = "function_error"
		return c.internalError(fmt.Sprintf("function %s answered HTTP %d", c.fn.Name, res.Status), data), false
	}
	if !isRequest {
		return nil, true
	}
	if res.Status == fasthttp.StatusAccepted || len(bytes.TrimSpace(res.Body)) == 0 {
		data["code"] = "no_response"
		return c.internalError(fmt.Sprintf("function %s answered HTTP %d without a response to a request", c.fn.Name, res.Status), data), false
	}
	resp, others := pickResponse(res.ContentType, res.Body, c.msg.ID)
	for _, m := range others { // notifications the function sent along in a streamed answer
		if _, err := g.streams.PublishToClient(ctx, StreamKey(c.session.ID), "message", m); err != nil {
			log.Warn("publishing a function's message failed", "err", err)
		}
	}
	if resp == nil {
		data["code"] = "bad_response"
		return c.internalError("function "+c.fn.Name+" did not answer with a JSON-RPC response to this request", data), false
	}
	return resp, true
}

func (c *call) internalError(msg string, data map[string]any) []byte {
	return (&rpcError{id: c.msg.ID, code: CodeInternalError, message: msg, data: data}).encode()
}

// errorMessage is an invocation failure for the client: the invoker's code and message, without the
// function's endpoint.
func errorMessage(err error) string {
	var ie *invoker.Error
	if errors.As(err, &ie) {
		return string(ie.Code) + ": " + ie.Message
	}
	return err.Error()
}

// pickResponse finds the response to the request id in a function's answer: the JSON body, or the
// message events of an event-stream body. others are the requests and notifications a streamed
// answer carried besides; all come compacted to one line.
func pickResponse(contentType string, body []byte, id json.RawMessage) (resp []byte, others [][]byte) {
	candidates := [][]byte{body}
	mt, _, _ := mime.ParseMediaType(contentType)
	streamed := mt == "text/event-stream"
	if streamed {
		candidates = sseMessages(body)
	}
	for _, raw := range candidates {
		var m message
		if json.Unmarshal(raw, &m) != nil || m.JSONRPC != "2.0" {
			continue
		}
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			continue
		}
		switch {
		case resp == nil && m.Method == "" && (len(m.Result) > 0 || len(m.Error) > 0) && sameID(m.ID, id):
			resp = buf.Bytes()
		case streamed && m.Method != "":
			others = append(others, buf.Bytes())
		}
	}
	return resp, others
}
