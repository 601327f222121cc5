package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Frame is one event encoded once in the WHATWG event-stream format. Its Bytes are shared, unchanged, by
// every connection that receives it and by every history that keeps it.
type Frame struct {
	ID    string
	Bytes []byte
	At    time.Time // when it was published; histories expire by it, zero for control frames
	End   bool      // a control frame: the stream ends once it is written (never kept in history)
	// Refresh marks a control frame that is never written: its Bytes are a grant (the edge's encoding of
	// a verified token's deadline and topics) that moves the expiry of the streams it reaches, a token
	// refresh. It reaches key's own streams only.
	Refresh bool

	// The bookkeeping of a frame kept in a hub's own history (see Budget); zero on any other frame.
	refs       int32  // histories holding it; guarded by home's lock
	home       *shard // the shard of key
	key        string // where it was published: the histories of key and of its ancestors hold it
	prev, next *Frame // the budget's list of kept frames, oldest first; guarded by Budget.mu
}

// EndEventName marks the end of a stream on an engine's bus. It holds a NUL, which ValidateField refuses
// in every published event name, so no publisher can end a stream.
const EndEventName = "\x00end"

// EndFrame is the control frame that ends the stream it is sent to, with a comment a reader can see.
// An engine delivers it for a message named EndEventName.
func EndFrame() *Frame { return &Frame{Bytes: []byte(": stream ended\n\n"), End: true} }

// RefreshEventName marks a refresh on an engine's bus (see Frame.Refresh); like EndEventName, no
// publisher can send it.
const RefreshEventName = "\x00refresh"

// RefreshFrame is the control frame carrying grant to the streams of a key.
func RefreshFrame(grant []byte) *Frame { return &Frame{Bytes: grant, Refresh: true} }

// Limits on the fields of an event.
const (
	MaxEventNameLen = 128
	MaxEventIDLen   = 256
)

// ErrBadEvent is wrapped by every event validation error.
var ErrBadEvent = errors.New("bad event")

// ErrFrameTooLarge is returned for an event whose frame would be over the hub's MaxFrameBytes.
var ErrFrameTooLarge = errors.New("event too large")

// DefaultMaxFrameBytes is the default bound of one event's frame: the edge's default queue bound, so a
// frame it accepts always fits an empty queue.
const DefaultMaxFrameBytes = 1 << 20

// generatedIDBound stands in for an ID not assigned yet when a frame is sized: as long as any generated
// ID ("<ms>-<seq>", in memory and in Redis Streams).
const generatedIDBound = "18446744073709551615-18446744073709551615"

// ValidateField checks an event name or ID: the format has no escaping, so a line break would end the
// field and inject others, and a NUL makes browsers ignore an id.
func ValidateField(field, v string, maxLen int) error {
	if len(v) > maxLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrBadEvent, field, maxLen)
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("%w: %s contains a line break or NUL", ErrBadEvent, field)
	}
	return nil
}

// AppendFrame appends one event to dst: an id line when id is set, an event line when name is set and not
// "message", and data split into one "data:" line per line of data (CRLF, CR and LF all end a line, as a
// parser will read them). The caller validates id and name with ValidateField.
func AppendFrame(dst []byte, id, name string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	if name != "" && name != "message" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		dst = appendDataLine(dst, data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	dst = appendDataLine(dst, data)
	return append(dst, '\n')
}

// FrameLen is len(AppendFrame(nil, id, name, data)), counted without encoding: multi-line data grows by
// a "data: " prefix per line, so a publish can be refused before its frame exists.
func FrameLen(id, name string, data []byte) int {
	n := 1 // the blank line that ends the event
	if id != "" {
		n += len("id: \n") + len(id)
	}
	if name != "" && name != "message" {
		n += len("event: \n") + len(name)
	}
	lines, rest := 1, data
	for {
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			break
		}
		lines++
		end := i + 1
		if rest[i] == '\r' && end < len(rest) && rest[end] == '\n' {
			end++
		}
		n -= end - i // the line break is replaced by the data line's own
		rest = rest[end:]
	}
	return n + len(data) + lines*len("data: \n")
}

func appendDataLine(dst, line []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, line...)
	return append(dst, '\n')
}

// Reid appends to dst the frame's bytes with its id line replaced by "id: <id>", or one put first when it
// has none: a multi-root stream sends a shared event with its own cursor as the id, while single-root
// streams keep writing the shared Bytes untouched. id must pass ValidateField (a cursor always does).
// It is for event frames, whose id line AppendFrame writes first; control frames are sent as they are.
func (f *Frame) Reid(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	dst = append(dst, '\n')
	return append(dst, f.withoutID()...)
}

// withoutID is the frame's bytes after its id line, if it starts with one.
func (f *Frame) withoutID() []byte {
	if bytes.HasPrefix(f.Bytes, []byte("id:")) {
		if i := bytes.IndexByte(f.Bytes, '\n'); i >= 0 {
			return f.Bytes[i+1:]
		}
	}
	return f.Bytes
}
