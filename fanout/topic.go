package fanout

import (
	"errors"
	"fmt"
	"strings"
)

// Topic limits. A topic is a path of segments ("/pets/dogs"); the bounds keep keys, histories and the
// ancestor walk of every publish small.
const (
	MaxTopicLen   = 256
	MaxTopicDepth = 16
)

// ErrBadTopic is wrapped by every topic validation error.
var ErrBadTopic = errors.New("bad topic")

// ParseTopic validates a hierarchical topic and returns its canonical form: a leading slash, no trailing
// slash, no empty, "." or ".." segments, no control characters. "pets/dogs/" becomes "/pets/dogs".
func ParseTopic(raw string) (string, error) {
	t := strings.TrimSuffix(raw, "/")
	if !strings.HasPrefix(t, "/") {
		t = "/" + t
	}
	if t == "/" {
		return "", fmt.Errorf("%w: empty", ErrBadTopic)
	}
	if len(t) > MaxTopicLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadTopic, MaxTopicLen)
	}
	depth := 0
	for seg := range strings.SplitSeq(t[1:], "/") {
		depth++
		switch seg {
		case "":
			return "", fmt.Errorf("%w: empty segment", ErrBadTopic)
		case ".", "..":
			return "", fmt.Errorf("%w: %q segment", ErrBadTopic, seg)
		}
	}
	if depth > MaxTopicDepth {
		return "", fmt.Errorf("%w: deeper than %d segments", ErrBadTopic, MaxTopicDepth)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: control character at byte %d", ErrBadTopic, i)
		}
	}
	return t, nil
}

// Root returns the first segment of a canonical topic ("/pets" for "/pets/dogs"), or a flat key itself.
// All streams under one root share a lock (and, with an engine, one history), so one order covers every
// event a subscriber of any of them can see.
func Root(topic string) string {
	if i := strings.IndexByte(topic[1:], '/'); i >= 0 {
		return topic[:i+1]
	}
	return topic
}

// parent returns the topic one level up, and false at a root.
func parent(topic string) (string, bool) {
	i := strings.LastIndexByte(topic, '/')
	if i <= 0 {
		return "", false
	}
	return topic[:i], true
}
