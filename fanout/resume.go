package fanout

import (
	"context"
	"encoding/json"
)

// Reasons a reset event gives (its "reason" field), so a client can tell a resume that came too late
// from one the edge could not serve.
const (
	// ResetNotRetained: the Last-Event-ID is older than what history keeps.
	ResetNotRetained = "last_event_id_not_retained"
	// ResetHistoryUnavailable: the shared history (Redis) could not be read in time, so what the client
	// missed is unknown; the events may well still be retained, and a later resume can get them.
	ResetHistoryUnavailable = "history_unavailable"
)

// maxHeld bounds the live frames one resuming subscription holds back while its engine's history is
// read (a read may wait its turn behind others, see redisengine), so a busy root cannot grow memory per
// waiting stream. Past it the older half goes: those are in the history the read returns; whether the
// held frames still join the replay is checked, and the history read again when they do not.
const maxHeld = 2048

// maxRereads bounds the extra history reads of one resume whose held frames no longer join its replay.
const maxRereads = 3

// holding is what a resuming subscription holds back. Its pointer is the one word a Subscription spends
// on it, nil once the replay is sent.
type holding struct {
	frames  []*Frame
	dropped bool // frames were dropped to keep within maxHeld
}

// add holds f, dropping the older half of what is held when full. The caller holds the shard lock.
func (h *holding) add(f *Frame) {
	if len(h.frames) >= maxHeld {
		h.frames = append(h.frames[:0], h.frames[len(h.frames)-maxHeld/2:]...)
		h.dropped = true
	}
	h.frames = append(h.frames, f)
}

// joins reports whether the held frames follow on from the replay without a gap: nothing was dropped,
// or the oldest frame kept is one the replay holds (bus and history carry a root's events in the same
// order).
func (h *holding) joins(replayed map[string]struct{}) bool {
	if !h.dropped || len(h.frames) == 0 {
		return true
	}
	_, ok := replayed[h.frames[0].ID]
	return ok
}

// subscribeShared resumes from an engine's history: live frames are held back while the history is
// read, then the replay is sent, then the held frames that the replay did not already contain. When
// the held frames were cut to their bound and no longer join the replay, the history is read again
// from the end of what was sent. An error means the history could not be read; the subscription is in
// place and still holding (see Subscribe).
func (h *Hub) subscribeShared(key string, sub Subscriber, lastEventID string) (*Subscription, Replay, error) {
	s := h.shardOf(key)
	s.mu.Lock()
	n := s.node(key)
	held := &holding{}
	sc := &Subscription{shard: s, node: n, root: s.node(Root(key)), sub: sub, slot: len(n.subs), held: held, resumed: true}
	n.subs = append(n.subs, sc)
	h.watch(sc, key)
	s.mu.Unlock()

	var r Replay
	cursor := lastEventID
	for reads := 0; ; reads++ {
		frames, found, err := h.cfg.Engine.Since(context.Background(), key, cursor)
		if err != nil {
			return sc, r, err
		}
		found = found || cursor == OriginID // a multi-topic stream's position before any event
		s.mu.Lock()
		if !found {
			r.Reset, r.Reason = true, ResetNotRetained
			earliest := ""
			if len(frames) > 0 {
				earliest = frames[0].ID
			}
			sub.Send(resetFrameReason(ResetNotRetained, cursor, earliest))
		}
		if len(frames) > 0 && sc.replayed == nil {
			sc.replayed = make(map[string]struct{}, len(frames))
		}
		for _, f := range frames {
			if _, dup := sc.replayed[f.ID]; dup {
				continue // a read after the first that found its cursor gone starts from history's oldest
			}
			sub.Send(f)
			sc.replayed[f.ID] = struct{}{}
			r.Frames++
		}
		if len(frames) > 0 {
			cursor = frames[len(frames)-1].ID
		}
		joins := held.joins(sc.replayed)
		if joins || reads == maxRereads {
			if !joins { // the bus kept outrunning history reads: say so rather than leave a gap
				r.Reset, r.Reason = true, ResetHistoryUnavailable
				sub.Send(resetFrameReason(ResetHistoryUnavailable, cursor, ""))
			}
			sc.flushHeld()
			s.mu.Unlock()
			return sc, r, nil
		}
		// What the bus brought during this read is all in history now: hold afresh and read on from the
		// end of what was sent.
		held.frames, held.dropped = held.frames[:0], false
		s.mu.Unlock()
	}
}

// flushHeld ends holding and sends what was held that the replay did not already contain. The caller
// holds the shard lock.
func (sc *Subscription) flushHeld() {
	held := sc.held
	sc.held = nil
	if held == nil {
		return
	}
	for _, f := range held.frames {
		sc.sendLive(f)
	}
}

// resetFrameReason tells a resuming client that events after lastEventID may be lost, and why; earliest
// is the oldest event still retained, if known.
func resetFrameReason(reason, lastEventID, earliest string) *Frame {
	body := struct {
		Reason          string `json:"reason"`
		LastEventID     string `json:"last_event_id"`
		EarliestEventID string `json:"earliest_event_id,omitempty"`
	}{Reason: reason, LastEventID: lastEventID, EarliestEventID: earliest}
	data, _ := json.Marshal(body) // strings always encode
	return &Frame{Bytes: AppendFrame(nil, "", "reset", data)}
}
