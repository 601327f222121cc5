package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/transport"
)

// openSSE handles GET /mcp/{fn}/sse on a keep-alive connection; see OpenStream.
func (g *Gateway) openSSE(rc *fasthttp.RequestCtx) { g.holdStream(rc) }

// holdStream opens the stream a GET asks for (OpenStream) and holds it, or answers the refusal.
func (g *Gateway) holdStream(rc *fasthttp.RequestCtx) {
	rc.Response.Header.Set("Access-Control-Expose-Headers", HeaderSessionID)
	header := func(name string) string { return string(rc.Request.Header.Peek(name)) }
	spec, refusal := g.OpenStream(context.Background(), transport.Request{Path: string(rc.Path()), Header: header, Remote: remoteAddr(rc)})
	if refusal != nil {
		answer(rc, refusal)
		return
	}
	g.streams.HoldStream(rc, spec)
}

// OpenStream decides the GET streams of the MCP routes, for the edge's own request reader and for the
// router alike. GET /mcp/{fn}/sse starts an HTTP+SSE session: a new stream whose first event, endpoint,
// names where to POST (each GET is a new session, so Last-Event-ID never resumes an unrelated stream).
// GET /mcp/{fn} with Mcp-Session-Id opens a Streamable HTTP session's listening stream, resumable with
// Last-Event-ID.
func (g *Gateway) OpenStream(ctx context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
	rest, _ := strings.CutPrefix(r.Path, "/mcp/")
	name, legacy := strings.CutSuffix(rest, "/sse")
	if name == "" || strings.Contains(name, "/") {
		return transport.Spec{}, refuse(fasthttp.StatusNotFound, &rpcError{code: CodeBadRequest, message: "no such MCP route"})
	}
	ctx = g.prop.Extract(ctx, propagation.HeaderCarrier{"Traceparent": {r.Header("traceparent")}})
	fn, refusal := g.lookup(ctx, name)
	if refusal != nil {
		return transport.Spec{}, refusal
	}
	if legacy {
		s := Session{ID: NewSessionID(), Function: fn.Name, Transport: TransportSSE, CreatedAt: time.Now().UTC(), Source: SourceOf(r.Remote)}
		if err := g.sessions.Create(ctx, s); err != nil {
			g.log.Warn("creating session failed", "function", fn.Name, "err", err)
			return transport.Spec{}, refuse(fasthttp.StatusServiceUnavailable, &rpcError{code: CodeInternalError, message: "session store unavailable"})
		}
		endpoint := "/mcp/" + fn.Name + "/messages?sessionId=" + s.ID // names are [A-Za-z0-9_-]: no escaping
		g.leases.hold(s.ID)
		// The session ends with its stream, as the HTTP+SSE transport has it: later POSTs get 404.
		end := func() {
			g.leases.release(s.ID)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.sessions.Delete(ctx, s.ID); err != nil && !errors.Is(err, ErrSessionNotFound) {
				g.log.Warn("ending session failed", "session", s.ID, "err", err)
			}
		}
		return transport.Spec{Kind: transport.Client, Key: StreamKey(s.ID), First: fanout.AppendFrame(nil, "", "endpoint", []byte(endpoint)), OnClose: end}, nil
	}
	if !acceptsHeader(r.Header(fasthttp.HeaderAccept), "text/event-stream") {
		return transport.Spec{}, refuse(fasthttp.StatusNotAcceptable, &rpcError{code: CodeBadRequest, message: "Not Acceptable: Accept must include text/event-stream"})
	}
	s, refusal := g.findSession(ctx, fn, r.Header(HeaderSessionID), TransportStreamable)
	if refusal != nil {
		return transport.Spec{}, refusal
	}
	return transport.Spec{Kind: transport.Client, Key: StreamKey(s.ID), First: []byte(": mcp session stream\n\n"), LastEventID: r.Header("Last-Event-ID")}, nil
}

// postSSE handles POST /mcp/{fn}/messages?sessionId=: 202 at once, the reply on the session's stream.
func (g *Gateway) postSSE(rc *fasthttp.RequestCtx) {
	ctx := g.context(context.Background(), rc)
	fn, ok := g.function(ctx, rc)
	if !ok {
		return
	}
	s, ok := g.session(ctx, rc, fn, string(rc.QueryArgs().Peek("sessionId")), TransportSSE)
	if !ok {
		return
	}
	msg, perr := parseMessage(rc.PostBody())
	if perr != nil {
		fail(rc, fasthttp.StatusBadRequest, perr)
		return
	}
	if ok, _ := g.pending.Start(); !ok { // full or closing: either way, try again (another node)
		rc.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		fail(rc, fasthttp.StatusServiceUnavailable, &rpcError{id: msg.ID, code: CodeInternalError, message: "too many messages in flight; try again"})
		return
	}
	c := g.newCall(rc, fn, s, msg, string(rc.Request.Header.Peek(HeaderProtocolVersion)))
	detached := g.context(g.pending.Context(), rc) // ends with the gateway, not with this request
	rc.SetStatusCode(fasthttp.StatusAccepted)
	go func() {
		defer g.pending.Done()
		reply, _ := g.forward(detached, c)
		if reply == nil {
			return
		}
		if _, err := g.streams.PublishToClient(detached, StreamKey(s.ID), "message", reply); err != nil {
			g.log.Warn("publishing a reply failed", "function", fn.Name, "session", s.ID, "err", err)
		}
	}()
}

// postStreamable handles POST /mcp/{fn}: one message, the reply (for a request) in the answer.
func (g *Gateway) postStreamable(rc *fasthttp.RequestCtx) {
	ctx := g.context(context.Background(), rc)
	fn, ok := g.function(ctx, rc)
	if !ok {
		return
	}
	if !accepts(rc, "application/json") || !accepts(rc, "text/event-stream") {
		fail(rc, fasthttp.StatusNotAcceptable, &rpcError{code: CodeBadRequest, message: "Not Acceptable: Accept must include application/json and text/event-stream"})
		return
	}
	if mt, _, err := mime.ParseMediaType(string(rc.Request.Header.ContentType())); err != nil || mt != "application/json" {
		fail(rc, fasthttp.StatusUnsupportedMediaType, &rpcError{code: CodeBadRequest, message: "Unsupported Media Type: Content-Type must be application/json"})
		return
	}
	msg, perr := parseMessage(rc.PostBody())
	if perr != nil {
		fail(rc, fasthttp.StatusBadRequest, perr)
		return
	}
	version := string(rc.Request.Header.Peek(HeaderProtocolVersion))
	if version != "" && !validVersion(version) {
		fail(rc, fasthttp.StatusBadRequest, &rpcError{id: msg.ID, code: CodeBadRequest, message: "Bad Request: unsupported " + HeaderProtocolVersion + " " + version})
		return
	}
	if msg.isRequest() && msg.Method == "initialize" {
		g.initialize(ctx, rc, fn, msg, version)
		return
	}
	s, ok := g.session(ctx, rc, fn, string(rc.Request.Header.Peek(HeaderSessionID)), TransportStreamable)
	if !ok {
		return
	}
	if version != "" && s.ProtocolVersion != "" && version != s.ProtocolVersion {
		fail(rc, fasthttp.StatusBadRequest, &rpcError{id: msg.ID, code: CodeBadRequest,
			message: fmt.Sprintf("Bad Request: %s %s does not match the session's %s", HeaderProtocolVersion, version, s.ProtocolVersion)})
		return
	}
	reply, accepted := g.forward(ctx, g.newCall(rc, fn, s, msg, version))
	switch {
	case reply != nil:
		rc.SetStatusCode(fasthttp.StatusOK)
		rc.SetContentType("application/json")
		rc.SetBody(reply)
	case accepted:
		rc.SetStatusCode(fasthttp.StatusAccepted)
	default:
		fail(rc, fasthttp.StatusBadGateway, &rpcError{code: CodeInternalError, message: "the function did not accept the message"})
	}
}

// initialize forwards an initialize request with a fresh session ID and keeps the session if the
// function accepts it.
func (g *Gateway) initialize(ctx context.Context, rc *fasthttp.RequestCtx, fn registry.Function, msg *message, version string) {
	var params struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(msg.Params, &params) // the function judges the params
	if version == "" && validVersion(params.ProtocolVersion) {
		version = params.ProtocolVersion
	}
	s := Session{ID: NewSessionID(), Function: fn.Name, Transport: TransportStreamable, CreatedAt: time.Now().UTC(), Source: SourceOf(remoteAddr(rc))}
	reply, ok := g.forward(ctx, g.newCall(rc, fn, s, msg, version))
	if ok {
		var res struct {
			Result *struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"result"`
		}
		if json.Unmarshal(reply, &res) == nil && res.Result != nil {
			if validVersion(res.Result.ProtocolVersion) {
				s.ProtocolVersion = res.Result.ProtocolVersion
			}
			if err := g.sessions.Create(ctx, s); err != nil {
				g.log.Warn("creating session failed", "function", fn.Name, "err", err)
				fail(rc, fasthttp.StatusServiceUnavailable, &rpcError{id: msg.ID, code: CodeInternalError, message: "session store unavailable"})
				return
			}
			rc.Response.Header.Set(HeaderSessionID, s.ID)
		}
	}
	rc.SetStatusCode(fasthttp.StatusOK)
	rc.SetContentType("application/json")
	rc.SetBody(reply)
}

// getStreamable handles GET /mcp/{fn}: the session's listening stream, resumable with Last-Event-ID.
func (g *Gateway) getStreamable(rc *fasthttp.RequestCtx) { g.holdStream(rc) }

// deleteStreamable handles DELETE /mcp/{fn}: the session ends; its ID gets 404 from then on.
func (g *Gateway) deleteStreamable(rc *fasthttp.RequestCtx) {
	ctx := g.context(context.Background(), rc)
	fn, ok := g.function(ctx, rc)
	if !ok {
		return
	}
	s, ok := g.session(ctx, rc, fn, string(rc.Request.Header.Peek(HeaderSessionID)), TransportStreamable)
	if !ok {
		return
	}
	err := g.sessions.Delete(ctx, s.ID)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		fail(rc, fasthttp.StatusNotFound, &rpcError{code: CodeSessionNotFound, message: "Session not found"})
	case err != nil:
		g.log.Warn("deleting session failed", "session", s.ID, "err", err)
		fail(rc, fasthttp.StatusServiceUnavailable, &rpcError{code: CodeInternalError, message: "session store unavailable"})
	default:
		// The session's listening stream ends too, on whichever node holds it.
		if err := g.streams.EndClientStreams(ctx, StreamKey(s.ID)); err != nil {
			g.log.Warn("ending the session's stream failed", "session", s.ID, "err", err)
		}
		rc.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// accepts reports whether the Accept header names mediaType (parameters aside).
func accepts(rc *fasthttp.RequestCtx, mediaType string) bool {
	return acceptsHeader(string(rc.Request.Header.Peek(fasthttp.HeaderAccept)), mediaType)
}

// acceptsHeader reports whether an Accept header value lists mediaType.
func acceptsHeader(accept, mediaType string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), mediaType) {
			return true
		}
	}
	return false
}

// validVersion accepts protocol versions shaped as MCP's are (YYYY-MM-DD); which of them a function
// supports is its own business, negotiated in initialize.
func validVersion(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	_, err := time.Parse(time.DateOnly, v)
	return err == nil
}

// remoteAddr is the peer's address of rc.
func remoteAddr(rc *fasthttp.RequestCtx) netip.Addr {
	ip, _ := netip.AddrFromSlice(rc.RemoteIP())
	return ip.Unmap()
}
