package transport

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sseedge/sseedge/auth"
)

// A grant is what a token refresh carries to the nodes holding a client's streams: a verified token's
// deadline and topic prefixes, as text ("<unix seconds>\n<topic>\n<topic>..."), never the token. The
// API encodes it (POST /sse/{clientId}/token); the transport applies it to the client's live streams.
const MaxGrantTopics = 256

// ErrBadGrant is what ParseGrant's refusals wrap.
var ErrBadGrant = errors.New("bad grant")

// AppendGrant encodes a grant; topics holding a line break are dropped (no topic has one).
func AppendGrant(dst []byte, exp uint32, topics []string) []byte {
	dst = strconv.AppendUint(dst, uint64(exp), 10)
	n := 0
	for _, t := range topics {
		if n == MaxGrantTopics || t == "" || strings.ContainsAny(t, "\r\n") {
			continue
		}
		dst = append(append(dst, '\n'), t...)
		n++
	}
	return dst
}

// ParseGrant decodes a grant. It comes off the bus: any bytes parse or are refused.
func ParseGrant(b []byte) (exp uint32, topics []string, err error) {
	if len(b) > auth.MaxTokenLen {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBadGrant, len(b))
	}
	head, rest, more := bytes.Cut(b, []byte("\n"))
	v, err := strconv.ParseUint(string(head), 10, 32)
	if err != nil || v == 0 {
		return 0, nil, fmt.Errorf("%w: deadline %q", ErrBadGrant, head)
	}
	for more {
		var t []byte
		t, rest, more = bytes.Cut(rest, []byte("\n"))
		if len(t) == 0 || len(topics) == MaxGrantTopics || bytes.IndexByte(t, '\r') >= 0 {
			return 0, nil, fmt.Errorf("%w: topic %d", ErrBadGrant, len(topics))
		}
		topics = append(topics, string(t))
	}
	return uint32(v), topics, nil
}

// GrantCovers reports whether a token with these topic prefixes may read every topic of reads.
func GrantCovers(topics, reads []string) bool {
	c := auth.Claims{Topics: topics}
	for _, t := range reads {
		if !c.AllowsTopic(t) {
			return false
		}
	}
	return true
}

// UnixDeadline is t in unix seconds, rounded up, or 0 for the zero time (no deadline): the form of
// Spec.Expires and of a grant's deadline.
func UnixDeadline(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint32(min(max(sec, 1), math.MaxUint32))
}
