package transport

import (
	"bytes"
	"errors"
	"fmt"
)

// A subscription change is what a server-side subscribe or unsubscribe (POST or DELETE
// /clients/{clientId}/subscriptions, a function's "subscribe" answer) carries to the nodes holding a
// client's streams. It travels as a refresh of the client's key (fanout.RefreshFrame), the way a token
// grant does, so it reaches the client's live streams on every node without an engine of its own; its
// bytes start with SubsPrefix, which no grant has (a grant starts with a digit):
//
//	"\x00subs\n" op "\n" topic "\n" topic ...
//
// op is "+" (add) or "-" (remove); the topics are canonical (fanout.ParseTopic).
const SubsPrefix = "\x00subs\n"

// ErrBadSubsChange is what ParseSubsChange's refusals wrap.
var ErrBadSubsChange = errors.New("bad subscription change")

// IsSubsChange reports whether a refresh's bytes are a subscription change rather than a grant.
func IsSubsChange(b []byte) bool { return bytes.HasPrefix(b, []byte(SubsPrefix)) }

// AppendSubsChange encodes a change: add the topics (add true) or remove them. Topics holding a line
// break are dropped (no canonical topic has one).
func AppendSubsChange(dst []byte, add bool, topics []string) []byte {
	dst = append(dst, SubsPrefix...)
	if add {
		dst = append(dst, '+')
	} else {
		dst = append(dst, '-')
	}
	n := 0
	for _, t := range topics {
		if n == MaxGrantTopics || t == "" || bytes.ContainsAny([]byte(t), "\r\n") {
			continue
		}
		dst = append(append(dst, '\n'), t...)
		n++
	}
	return dst
}

// ParseSubsChange decodes a change. It comes off the bus: any bytes parse or are refused.
func ParseSubsChange(b []byte) (add bool, topics []string, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(SubsPrefix))
	if !ok || len(rest) == 0 {
		return false, nil, fmt.Errorf("%w: no prefix or no op", ErrBadSubsChange)
	}
	switch rest[0] {
	case '+':
		add = true
	case '-':
	default:
		return false, nil, fmt.Errorf("%w: op %q", ErrBadSubsChange, rest[0])
	}
	rest = rest[1:]
	if len(rest) == 0 {
		return add, nil, nil
	}
	if rest[0] != '\n' {
		return false, nil, fmt.Errorf("%w: op %q", ErrBadSubsChange, b[len(SubsPrefix):])
	}
	for _, t := range bytes.Split(rest[1:], []byte("\n")) {
		if len(t) == 0 || len(topics) == MaxGrantTopics || bytes.IndexByte(t, '\r') >= 0 {
			return false, nil, fmt.Errorf("%w: topic %d", ErrBadSubsChange, len(topics))
		}
		topics = append(topics, string(t))
	}
	return add, topics, nil
}
