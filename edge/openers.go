package edge

import (
	"context"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// StreamRequest is a stream request the edge read itself, handed to a StreamOpener.
type StreamRequest struct {
	Path     string // as sent, still percent-encoded
	RawQuery string
	Header   func(name string) string
	Remote   netip.Addr // the peer's address (MCP bounds the sessions of one source)
}

// StreamSpec says how to hold a stream another package opens: the client-stream key it is held under
// (PublishToClient reaches it on any node), its first frame, and whether Last-Event-ID may resume it.
type StreamSpec struct {
	Key      string
	First    []byte
	NoResume bool
	// OnClose, when set, runs once the stream has ended, or once the edge has refused to hold it (too
	// many streams from the address, say), on a goroutine of its own (it may call shared state): MCP
	// ends an HTTP+SSE session with its stream.
	OnClose func()
}

// Refusal is an opener's answer when it does not open a stream: a status and a body in the opener's
// own format (MCP answers JSON-RPC errors).
type Refusal struct {
	Status      int
	ContentType string
	Body        []byte
}

// StreamOpener decides a GET stream request on a path another package owns. It runs on the request's
// own goroutine and may read shared state.
type StreamOpener func(ctx context.Context, r StreamRequest) (StreamSpec, *Refusal)

type opener struct {
	prefix string
	open   StreamOpener
}

// HandleStreams has the edge read GET requests under prefix itself, when they are the first request of
// a connection, and hold them as open decides: such streams never pass through fasthttp, so they keep
// none of its per-connection buffers. (Requests on keep-alive API connections still reach the router,
// whose handler should call the same opener and HoldStream.) Call it before Serve.
func (s *Server) HandleStreams(prefix string, open StreamOpener) {
	s.openers = append(s.openers, opener{prefix: prefix, open: open})
}

// openerFor returns the opener of a path, if any.
func (s *Server) openerFor(path string) StreamOpener {
	for _, o := range s.openers {
		if strings.HasPrefix(path, o.prefix) {
			return o.open
		}
	}
	return nil
}

// isOpenerRequest reports whether a buffered request line is a GET for an opener's path.
func (s *Server) isOpenerRequest(b []byte) bool {
	for _, o := range s.openers {
		if len(b) >= 4+len(o.prefix) && string(b[:4]) == "GET " && string(b[4:4+len(o.prefix)]) == o.prefix {
			return true
		}
	}
	return false
}

// heldStream is the stream request of a stream held for another package: a client stream under
// spec.Key, resumable from the request's Last-Event-ID unless spec.NoResume.
func heldStream(spec StreamSpec, header func(string) string) (streamRequest, *apiError) {
	if !validClientID(spec.Key) {
		return streamRequest{onClose: spec.OnClose}, &apiError{fasthttp.StatusBadRequest, "bad_stream_key", "stream key must be 1-128 printable characters without '/'"}
	}
	req := streamRequest{kind: kindClient, key: spec.Key, origin: header("Origin"), first: spec.First, onClose: spec.OnClose}
	if !spec.NoResume {
		req.lastEventID = header("Last-Event-ID")
		req.resume = req.lastEventID != ""
	}
	return req, nil
}
