package grip

import (
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sseedge/sseedge/fanout"
)

// The GRIP instruct headers a function's answer may carry, and the request header the edge signs.
const (
	HeaderHold          = "Grip-Hold"
	HeaderChannel       = "Grip-Channel"
	HeaderKeepAlive     = "Grip-Keep-Alive"
	HeaderStatus        = "Grip-Status"
	HeaderTimeout       = "Grip-Timeout"
	HeaderExposeHeaders = "Grip-Expose-Headers"
	HeaderSetMeta       = "Grip-Set-Meta" // refused: no meta, no filters
	HeaderLink          = "Grip-Link"     // refused: no next/gone links
	HeaderSig           = "Grip-Sig"      // on requests: the edge's signature
)

// Hold is what a function's answer asks of the edge.
type Hold int

const (
	// HoldNone: no Grip-Hold; the answer is passed to the client as it is.
	HoldNone Hold = iota
	// HoldStream: Grip-Hold: stream; the edge holds an SSE stream on the channels.
	HoldStream
)

func (h Hold) String() string {
	if h == HoldStream {
		return "stream"
	}
	return "none"
}

// Channel is one Grip-Channel entry: the channel, the topic that carries it (ChannelTopic) and the
// prev-id the function gave, if any.
type Channel struct {
	Name   string
	Topic  string
	PrevID string
}

// KeepAliveMode says when keep-alive content is sent.
type KeepAliveMode int

const (
	// KeepAliveIdle: after Interval with nothing else sent (Pushpin's default, "mode=idle").
	KeepAliveIdle KeepAliveMode = iota
	// KeepAliveInterval: every Interval, whatever else was sent ("mode=interval").
	KeepAliveInterval
)

// KeepAlive is a Grip-Keep-Alive: bytes to write on a quiet held stream. Content is SSE text that
// changes no client state: comments, or whole events without "id:" lines (so a keep-alive never moves
// a client's Last-Event-ID off the edge's cursor), ending with a blank line.
type KeepAlive struct {
	Content  []byte
	Interval time.Duration
	Mode     KeepAliveMode
}

// Keep-alive and timeout defaults, as Pushpin has them.
const (
	DefaultKeepAliveInterval = 55 * time.Second
	minKeepAliveInterval     = time.Second
)

// Instruct is a function's answer, read: what to hold, and what to send the client.
type Instruct struct {
	Hold Hold
	// Status is the status to answer the client with: Grip-Status when given, else the answer's own.
	Status int
	// Reason is Grip-Status's reason phrase, when it gave one.
	Reason string
	// Channels are the streams' channels (HoldStream only; at least one).
	Channels []Channel
	// KeepAlive is the Grip-Keep-Alive (HoldStream only); nil: the edge's own heartbeat.
	KeepAlive *KeepAlive
	// Timeout is Grip-Timeout, parsed for completeness: it applies to Grip-Hold: response only.
	Timeout time.Duration
	// Header holds the answer's headers for the client: no Grip-* header, no hop-by-hop header, no
	// Content-Length (and with HoldStream no Content-Type: the stream is text/event-stream), only
	// those Grip-Expose-Headers names when it is given.
	Header http.Header
	// Events is the initial body of a held stream, parsed with ParseSSE: sent first, each with the
	// edge's own id.
	Events []fanout.Event
	// Body is the body to pass through (HoldNone).
	Body []byte
}

// ParseInstruct reads a function's answer: status, headers (canonical or not) and body. It refuses,
// with an *Error of status 502, unknown Grip-* headers, GRIP features sseedge does not implement,
// malformed values, more channels or bytes than lim allows; Grip-Hold: response gets a 501.
func ParseInstruct(status int, header http.Header, body []byte, lim Limits) (*Instruct, error) {
	lim = lim.withDefaults()
	const s = upstream
	grip := map[string][]string{}
	for name, lines := range header {
		c := http.CanonicalHeaderKey(name)
		if !strings.HasPrefix(c, "Grip-") {
			continue
		}
		switch c {
		case HeaderHold, HeaderChannel, HeaderKeepAlive, HeaderStatus, HeaderTimeout, HeaderExposeHeaders:
		case HeaderSetMeta:
			return nil, s.errorf(CodeUnsupported, c, "sseedge keeps no connection meta (no channel filters use it)")
		case HeaderLink:
			return nil, s.errorf(CodeUnsupported, c, "sseedge follows no next or gone links")
		default:
			return nil, s.errorf(CodeUnknownInstruction, c, "not a GRIP instruction sseedge knows")
		}
		n := 0
		for _, l := range lines {
			n += len(l)
		}
		if n > lim.MaxHeaderBytes {
			return nil, s.errorf(CodeTooLarge, c, "%d bytes, more than %d", n, lim.MaxHeaderBytes)
		}
		grip[c] = append(grip[c], lines...)
	}
	if ct, _, _ := mime.ParseMediaType(header.Get("Content-Type")); ct == "application/grip-instruct" {
		return nil, s.errorf(CodeUnsupported, "Content-Type", "application/grip-instruct bodies are not supported: use Grip-* headers")
	}
	if len(body) > lim.MaxBodyBytes {
		return nil, s.errorf(CodeTooLarge, "body", "%d bytes, more than %d", len(body), lim.MaxBodyBytes)
	}

	in := &Instruct{Status: status}
	if lines, ok := grip[HeaderHold]; ok {
		v, err := single(HeaderHold, lines)
		if err != nil {
			return nil, err
		}
		switch v {
		case "stream":
			in.Hold = HoldStream
		case "response":
			return nil, s.errorf(CodeHoldResponse, HeaderHold, "long-polling (Grip-Hold: response) is not supported yet; hold a stream")
		default:
			return nil, s.errorf(CodeMalformed, HeaderHold, "%q is neither stream nor response", v)
		}
	}
	var err error
	if in.Channels, err = parseChannels(grip[HeaderChannel], lim); err != nil {
		return nil, err
	}
	if lines, ok := grip[HeaderKeepAlive]; ok {
		if in.KeepAlive, err = parseKeepAlive(lines, lim); err != nil {
			return nil, err
		}
	}
	if lines, ok := grip[HeaderTimeout]; ok {
		v, err := single(HeaderTimeout, lines)
		if err != nil {
			return nil, err
		}
		secs, err := seconds(v)
		if err != nil {
			return nil, s.wrap(CodeMalformed, HeaderTimeout, err, "not a number of seconds")
		}
		in.Timeout = secs
	}
	if lines, ok := grip[HeaderStatus]; ok {
		if in.Status, in.Reason, err = parseStatus(lines); err != nil {
			return nil, err
		}
	}
	if in.Hold == HoldNone {
		for _, h := range []string{HeaderChannel, HeaderKeepAlive, HeaderTimeout} {
			if h == HeaderChannel && len(in.Channels) == 0 {
				continue // @fanoutio/grip sends an empty Grip-Channel when no channel was added
			}
			if _, ok := grip[h]; ok {
				return nil, s.errorf(CodeMalformed, h, "given without Grip-Hold")
			}
		}
	}
	if in.Hold == HoldStream && len(in.Channels) == 0 {
		return nil, s.errorf(CodeMalformed, HeaderChannel, "Grip-Hold: stream needs at least one channel")
	}
	if in.Header, err = clientHeader(header, grip[HeaderExposeHeaders], in.Hold); err != nil {
		return nil, err
	}

	if in.Hold == HoldNone {
		in.Body = body
		return in, nil
	}
	if len(body) > 0 {
		ct, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
		if ct != "text/event-stream" {
			return nil, s.errorf(CodeMalformed, "Content-Type", "the initial body of a held stream is SSE text: Content-Type text/event-stream, not %q", header.Get("Content-Type"))
		}
		if enc := header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			return nil, s.errorf(CodeMalformed, "Content-Encoding", "the initial body of a held stream is not encoded (%q)", enc)
		}
		if in.Events, err = parseSSE(body, lim, s, "body"); err != nil {
			return nil, err
		}
	}
	return in, nil
}
