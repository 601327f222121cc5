package fanout

import (
	"errors"
	"fmt"
	"slices"
)

// MaxTopicsPerStream is the most topics one stream can read: the default of the edge's
// MAX_TOPICS_PER_STREAM and its ceiling, since a Cursor is sized for this many roots plus the client's
// own (MaxCursorRoots).
const MaxTopicsPerStream = 64

// ErrTooManyTopics is wrapped by NormalizeTopics when more topics are requested than a stream may read.
var ErrTooManyTopics = errors.New("too many topics")

// NormalizeTopics turns the topics a stream asks for into the subscriptions it needs: each is parsed with
// ParseTopic (its error is returned, wrapped, naming the topic), duplicates collapse, and a topic under
// another requested topic is dropped, since delivery is hierarchical (a subscription to /pets already
// gets /pets/dogs), so an event reaches the stream once even when it matches two requested topics. The
// result is sorted, so the same request always gives the same subscriptions.
//
// More than max requested topics (counted before duplicates collapse, as the request has them) is an
// error wrapping ErrTooManyTopics. max is clamped to 1..MaxTopicsPerStream. No topics gives none.
func NormalizeTopics(raw []string, max int) ([]string, error) {
	if max <= 0 || max > MaxTopicsPerStream {
		max = MaxTopicsPerStream
	}
	if len(raw) > max {
		return nil, fmt.Errorf("%w: %d requested, at most %d", ErrTooManyTopics, len(raw), max)
	}
	all := make([]string, 0, len(raw))
	for _, r := range raw {
		t, err := ParseTopic(r)
		if err != nil {
			return nil, fmt.Errorf("topic %q: %w", r, err)
		}
		all = append(all, t)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	out := make([]string, 0, len(all))
	for _, t := range all {
		if !underAny(t, all) {
			out = append(out, t)
		}
	}
	return out, nil
}

// underAny reports whether one of t's ancestors is in sorted.
func underAny(t string, sorted []string) bool {
	for p, ok := parent(t); ok; p, ok = parent(p) {
		if _, found := slices.BinarySearch(sorted, p); found {
			return true
		}
	}
	return false
}

// Roots returns the distinct roots (see Root) of keys (empty ones skipped), sorted: the histories a stream on those keys
// reads, one cursor entry each.
func Roots(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if k != "" {
			out = append(out, Root(k))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
