package redisengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
)

// Defaults of the resume settings (Config.ResumeReads, Config.ResumeWait).
const (
	DefaultResumeReads = 16
	DefaultResumeWait  = 10 * time.Second
)

// Back-off between the attempts of one resume's history read.
const (
	resumeBackoff    = 25 * time.Millisecond
	resumeBackoffMax = 500 * time.Millisecond
)

// Since returns the frames of key's subtree published after lastID, read from the root's history under
// a "resume" span. A reconnect storm brings many resumes at once, so:
//
//   - the read starts at lastID (XRANGE lastID +), so a resume costs what it missed, not the root's
//     whole history;
//   - at most ResumeReads of them read at once; the others wait their turn (sseedge_resume_waits_total)
//     rather than pile on Redis and time out together;
//   - a failed read is tried again, with back-off, until ResumeWait has passed
//     (sseedge_resume_read_retries_total);
//   - a resume that still cannot read history fails with fanout.ErrUnavailable, counted
//     (sseedge_resume_history_unavailable_total) and logged, and the hub answers it with a reset whose
//     reason is history_unavailable, never last_event_id_not_retained.
//
// lastID is a Redis ID, or a publisher's own ID, which is looked for among the retained events.
func (n *namespace) Since(ctx context.Context, key, lastID string) ([]*fanout.Frame, bool, error) {
	e := n.e
	ctx, span := e.tracer.Start(ctx, "resume", trace.WithAttributes(
		attribute.String("sseedge.namespace", n.ns), attribute.String("sseedge.key", key)))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ResumeWait)
	defer cancel()
	began := time.Now()
	fail := func(attempts int, err error) ([]*fanout.Frame, bool, error) {
		e.m.ResumeHistoryUnavailable()
		e.log.Warn("resume: history could not be read; the stream starts with a reset (history_unavailable)",
			"namespace", n.ns, "key", key, "last_event_id", lastID, "attempts", attempts, "waited", time.Since(began), "err", err)
		span.SetStatus(codes.Error, err.Error())
		return nil, false, err
	}

	// Read once the root's subscription is confirmed, so the bus brings what the read does not see. The
	// wait is bounded: a subscription sent before the read is answered before it anyway (same slot, so
	// same connection, in order), and a Redis that answers neither is the retries' business below.
	e.interest.resumed(n.ns, fanout.Root(key), lastID)
	wctx, wcancel := context.WithTimeout(ctx, e.cfg.Timeout)
	e.interest.wait(wctx, n.ns, fanout.Root(key))
	wcancel()

	select {
	case e.resumes <- struct{}{}:
	default:
		e.m.ResumeWaited()
		select {
		case e.resumes <- struct{}{}:
		case <-ctx.Done():
			return fail(0, fmt.Errorf("redisengine: resume: no history read slot within %v: %w: %w", e.cfg.ResumeWait, fanout.ErrUnavailable, ctx.Err()))
		}
	}
	defer func() { <-e.resumes }()
	span.SetAttributes(attribute.Int64("sseedge.resume_wait_ms", time.Since(began).Milliseconds()))

	backoff := resumeBackoff
	for attempt := 1; ; attempt++ {
		frames, found, err := n.since(ctx, key, lastID)
		if err == nil {
			span.SetAttributes(attribute.Int("sseedge.resume_attempts", attempt), attribute.Int("sseedge.replayed", len(frames)))
			return frames, found, nil
		}
		if !retriable(err) {
			return fail(attempt, err)
		}
		e.m.ResumeRetried()
		select {
		case <-ctx.Done():
			return fail(attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, resumeBackoffMax)
	}
}

// retriable reports whether a history read may succeed if tried again: anything but an error reply
// from Redis that says the command itself is wrong.
func retriable(err error) bool {
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return true // a timeout, a connection lost or not yet made
	}
	msg := re.Error()
	_, redirect := re.IsRedirect()
	return re.IsTryAgain() || re.IsLoading() || re.IsClusterDown() || redirect ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "BUSY") || strings.HasPrefix(msg, "READONLY")
}

// since is one attempt of Since. When lastID is a Redis ID, one round trip reads the entries from it on
// and the oldest entry: lastID first means it is retained; reading from the oldest means lastID is older
// than history, which the entries then are in full. Only otherwise (lastID is a publisher's own ID that
// looks like a Redis one, or not of this root) is the whole retained history read and searched.
func (n *namespace) since(ctx context.Context, key, lastID string) ([]*fanout.Frame, bool, error) {
	e := n.e
	root := fanout.Root(key)
	hkey := e.historyKey(e.partition(n.ns, root), n.ns, root)
	bound := int64(e.cfg.HistorySize) * 2 // MAXLEN ~ trims in whole nodes: history may hold a few more
	var entries []rueidis.XRangeEntry
	if _, _, ok := parseID(lastID); ok {
		var oldest []rueidis.XRangeEntry
		err := e.call(ctx, "history", "XRANGE", func(ctx context.Context) (err error) {
			rs := e.client.DoMulti(ctx,
				e.client.B().Xrange().Key(hkey).Start(lastID).End("+").Count(bound).Build(), // inclusive
				e.client.B().Xrange().Key(hkey).Start("-").End("+").Count(1).Build())
			if entries, err = rs[0].AsXRange(); err != nil {
				return err
			}
			oldest, err = rs[1].AsXRange()
			trace.SpanFromContext(ctx).SetAttributes(attribute.Int("sseedge.history_entries", len(entries)))
			return err
		})
		switch {
		case err != nil:
			return nil, false, err
		case len(entries) > 0 && entries[0].ID == lastID:
			return n.frames(key, entries[1:]), true, nil
		case len(oldest) == 0: // no history at all
			return nil, false, nil
		case len(entries) > 0 && entries[0].ID == oldest[0].ID && int64(len(entries)) < bound:
			return n.after(key, lastID, entries)
		}
	}
	err := e.call(ctx, "history", "XRANGE", func(ctx context.Context) (err error) {
		entries, err = e.client.Do(ctx, e.client.B().Xrange().Key(hkey).Start("-").End("+").Count(bound).Build()).AsXRange()
		trace.SpanFromContext(ctx).SetAttributes(attribute.Int("sseedge.history_entries", len(entries)))
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return n.after(key, lastID, entries)
}

// after returns the frames of key's subtree after the entry whose Redis ID or publisher's ID is lastID,
// searching from the newest, or all of them and false when there is none.
func (n *namespace) after(key, lastID string, entries []rueidis.XRangeEntry) ([]*fanout.Frame, bool, error) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].ID == lastID || entries[i].FieldValues["u"] == lastID {
			return n.frames(key, entries[i+1:]), true, nil
		}
	}
	return n.frames(key, entries), false, nil
}

// frames keeps the entries of key's subtree that have not expired, as frames.
func (n *namespace) frames(key string, entries []rueidis.XRangeEntry) []*fanout.Frame {
	cutoff := time.Now().Add(-n.e.cfg.HistoryTTL)
	var out []*fanout.Frame
	for _, en := range entries {
		k := en.FieldValues["k"]
		if k != key && !strings.HasPrefix(k, key+"/") {
			continue
		}
		if idTime(en.ID).Before(cutoff) {
			continue
		}
		f := en.FieldValues
		out = append(out, frame(en.ID, f["e"], f["u"], f["d"]))
	}
	return out
}
