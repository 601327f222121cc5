package edge

import (
	"strings"

	"github.com/sseedge/sseedge/transport"
)

type opener struct {
	prefix string
	open   transport.Opener
}

// openers are the path prefixes whose GET requests the transport reads itself, longest first.
type openers struct {
	list    []opener
	longest int // bytes of "GET " plus the longest prefix: a shorter first line cannot be told apart yet
}

// HandleStreams has the transport read GET requests under prefix itself, when they are the first
// request of a connection, and hold them as open decides: such streams never pass through fasthttp, so
// they keep none of its per-connection buffers. (Requests on keep-alive API connections still reach the
// API's router, whose handler should call the same opener and HoldStream.) Call it before Serve.
func (s *Server) HandleStreams(prefix string, open transport.Opener) {
	o := &s.openers
	i := 0
	for i < len(o.list) && len(o.list[i].prefix) >= len(prefix) {
		i++
	}
	o.list = append(o.list[:i], append([]opener{{prefix: prefix, open: open}}, o.list[i:]...)...)
	o.longest = max(o.longest, len("GET ")+len(prefix))
}

// find returns the opener of a canonical path, if any.
func (o *openers) find(path string) transport.Opener {
	for _, op := range o.list {
		if strings.HasPrefix(path, op.prefix) {
			return op.open
		}
	}
	return nil
}

// match reports whether a buffered request line is a GET for an opener's path.
func (o *openers) match(b []byte) bool {
	for _, op := range o.list {
		if len(b) >= 4+len(op.prefix) && string(b[:4]) == "GET " && string(b[4:4+len(op.prefix)]) == op.prefix {
			return true
		}
	}
	return false
}
