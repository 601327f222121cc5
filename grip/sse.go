package grip

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/fanout"
)

// ParseSSE reads SSE text (the initial body of a Grip-Hold: stream answer, or an item's http-stream
// content) into events, with the WHATWG parsing rules (go-sse's parser): "event:" names an event, its
// "data:" lines join with "\n", a blank line ends it, comments and "retry:" are dropped. The events
// carry no ID: the edge gives each its own id: line, so a client can resume from it; the text's own
// "id:" lines are dropped. The end of the text ends a pending event, so an event never spans two texts.
//
// At most lim.MaxEvents events, each at most lim.MaxEventBytes as the edge frames it; names are checked
// with fanout.ValidateField. Errors are *Error, with a 502 status (a function's answer is at fault);
// ParsePublish re-states them for a publish.
func ParseSSE(text []byte, lim Limits) ([]fanout.Event, error) {
	return parseSSE(text, lim.withDefaults(), upstream, "body")
}

func parseSSE(text []byte, lim Limits, s side, where string) ([]fanout.Event, error) {
	if len(text) == 0 {
		return nil, nil
	}
	// The appended blank line dispatches an event the text left open; after a complete event it is a
	// no-op, as blank lines are.
	r := io.MultiReader(bytes.NewReader(text), strings.NewReader("\n\n"))
	var out []fanout.Event
	for ev, err := range sse.Read(r, &sse.ReadConfig{MaxEventSize: lim.MaxEventBytes}) {
		if err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, s.wrap(CodeTooLarge, where, err, "an event is larger than %d bytes", lim.MaxEventBytes)
			}
			return nil, s.wrap(CodeMalformed, where, err, "SSE text does not parse")
		}
		if len(out) == lim.MaxEvents {
			return nil, s.errorf(CodeTooMany, where, "more than %d events", lim.MaxEvents)
		}
		if err := fanout.ValidateField("event", ev.Type, fanout.MaxEventNameLen); err != nil {
			return nil, s.wrap(CodeMalformed, where, err, "event %d has a bad name", len(out))
		}
		data := []byte(ev.Data)
		if n := fanout.FrameLen("", ev.Type, data); n > lim.MaxEventBytes {
			return nil, s.errorf(CodeTooLarge, where, "event %d is %d bytes framed, more than %d", len(out), n, lim.MaxEventBytes)
		}
		out = append(out, fanout.Event{Name: ev.Type, Data: data})
	}
	return out, nil
}
