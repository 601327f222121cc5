// Package transport is the small contract between the parts that decide what a stream is (the HTTP API,
// MCP, GRIP) and the transport that holds it (edge, on netpoll). An Opener turns a stream request into a
// Spec; a Holder holds what the Spec describes. The package knows no sockets and no routes.
package transport

import (
	"context"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

// Kind says which hub of the node a stream reads.
type Kind uint8

const (
	Client Kind = iota // a client's personal stream: GET /sse/{clientId}, and streams held for other protocols
	Topic              // a topic stream: GET /subscribe/{topic...}
	KindCount
)

// String is the kind's name in the API and in metrics ("sse" or "topic").
func (k Kind) String() string {
	if k == Topic {
		return "topic"
	}
	return "sse"
}

// Request is a stream request the transport read itself, handed to an Opener.
type Request struct {
	Path     string // canonical (CanonicalPath): decoded once
	RawQuery string
	Header   func(name string) string
	Remote   netip.Addr // the peer's address (MCP bounds the sessions of one source)
}

// Spec says how to hold a stream: which hub and key it reads, where it resumes from, what it sends
// first, and until when its token is good.
type Spec struct {
	Kind Kind
	Key  string // a client ID (Client) or a canonical topic (Topic)
	// Topics, when not empty, makes this a multi-topic stream (GET /subscribe?topic=…&topic=…, GET
	// /sse/{id}?topic=…, a GRIP hold): the canonical topics it reads, as fanout.NormalizeTopics returns
	// them, beside the client's own stream Key (Kind Client) or instead of Key (Kind Topic, Key "").
	// Its events carry the stream's cursor as their id (fanout.CursorState), and LastEventID is such a
	// cursor. Nil: the single-key stream, which sends exactly what it always has.
	Topics []string
	// Subscribed, on a client stream (Kind Client), is the topics the server subscribed the client to
	// (its stored server-side subscriptions), canonical: the stream reads them beside Topics, as one
	// multi-topic stream, but a token refresh need not cover them (the server decided). Topics and
	// Subscribed together hold at most fanout.MaxTopicsPerStream topics.
	Subscribed []string
	// Envelope, on a multi-topic stream (Topics set), wraps each event's data in a JSON object naming
	// the stream's topic it came through: {"topic":"/pets","data":<the data>} (no "topic" for the
	// client's own events). Opt-in (?envelope=1); ignored on single-key streams.
	Envelope bool
	// LastEventID resumes the stream after that event; "" reads live events only.
	LastEventID string
	Meta        map[string]string // shown by GET /admin/connections; nil when the client sent none
	// Expires is when the stream's token stops being accepted, in unix seconds (UnixDeadline); 0: never.
	Expires uint32
	// First, when set, is the stream's first event and marks it as held for another protocol (MCP):
	// heartbeats go as comments, since such clients take any event for theirs. Client streams without it
	// start with the "connected" event.
	First []byte
	// KeepAlive, on a multi-topic stream (Topics set: a GRIP hold is one), replaces the edge's heartbeat
	// with the opener's own bytes (GRIP's Grip-Keep-Alive). Nil: the edge's heartbeat. A transport refuses
	// a spec whose keep-alive it cannot honour (KeepAliveValid).
	KeepAlive *KeepAlive
	// OnClose, when set, runs once the stream has ended, or once the transport has refused to hold it
	// (too many streams from the address, say), on a goroutine of its own (it may call shared state):
	// MCP ends an HTTP+SSE session with its stream.
	OnClose func()
}

// KeepAlive is what a stream sends when it would get the edge's heartbeat. The transport sends it on its
// heartbeat tick: Every is rounded down to a whole number of ticks, one at least, so it is never sent
// less often than asked (a keep-alive exists to beat some proxy's idle timeout).
type KeepAlive struct {
	// Content is whole SSE text that changes no client state (comments, or events without id lines),
	// ending where an event ends: grip.ParseInstruct's KeepAlive.Content.
	Content []byte
	// Every is the keep-alive's timeout: how long the stream may stay quiet (or, with Interval, the
	// period).
	Every time.Duration
	// Interval sends Content every Every, whatever else the stream wrote (GRIP's mode=interval); false
	// sends it only once nothing else was written for Every (mode=idle, GRIP's default).
	Interval bool
}

// MaxKeepAliveBytes bounds KeepAlive.Content: the transport keeps it per stream.
const MaxKeepAliveBytes = 4 << 10

// KeepAliveValid says whether a transport can honour s.KeepAlive: none, or one on a multi-topic stream
// with content within MaxKeepAliveBytes and a positive timeout.
func (s *Spec) KeepAliveValid() bool {
	k := s.KeepAlive
	return k == nil || len(s.Topics) > 0 && len(k.Content) > 0 && len(k.Content) <= MaxKeepAliveBytes && k.Every > 0
}

// Refusal is an opener's answer when it does not open a stream: a status and a body in the opener's own
// format (the API answers JSON errors, MCP JSON-RPC ones).
type Refusal struct {
	Status      int
	ContentType string
	Body        []byte
}

// Opener decides a GET stream request on a path prefix. It runs on the request's own goroutine and may
// read shared state.
type Opener func(ctx context.Context, r Request) (Spec, *Refusal)

// Holder is what a transport offers the parts that open streams.
type Holder interface {
	// HandleStreams has the transport read GET requests under prefix itself, when they are the first
	// request of a connection, and hold them as open decides: such streams never pass through fasthttp.
	// Call it before Serve.
	HandleStreams(prefix string, open Opener)
	// HoldStream answers ctx, a request that reached the API on a keep-alive connection, with the stream
	// spec describes, taking the connection back from fasthttp.
	HoldStream(ctx *fasthttp.RequestCtx, spec Spec)
}

// Stats is a snapshot of a transport's streams and counters.
type Stats struct {
	ClientStreams   int64
	TopicStreams    int64
	Opened          uint64
	HeartbeatFrames uint64
	KeepAlives      uint64 // streams' own keep-alives (Spec.KeepAlive) queued in place of heartbeats
	SlowConsumers   uint64
	BytesSent       uint64
	FramesSent      uint64
	Draining        bool // shutting down: streams are being told to come back later
}

// Conn describes one held stream, for GET /admin/connections.
type Conn struct {
	ID     uint64
	Kind   Kind
	Key    string
	Meta   map[string]string
	Remote string
	Opened time.Time
}
