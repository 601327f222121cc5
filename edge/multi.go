package edge

import (
	"context"
	"slices"
	"sync"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// A multi-topic stream (transport.Spec.Topics: GET /subscribe?topic=…, GET /sse/{id}?topic=…, or a
// client stream given topics by the server) holds one hub subscription per key it reads: each
// normalized topic, plus the client's own key. Its events carry the stream's cursor as their id
// (fanout.CursorState, one slot per key), so the Last-Event-ID a browser sends back resumes every key.
//
// Each subscription is a keySub, the hub's Subscriber for it: three words, no goroutine, no timer. A
// subscription starts pending: the frames its hub sends while it is being made (its replay, then live
// ones) are kept aside, and once every pending subscription is in place they are merged in publish
// order (fanout.MergeReplays) and queued before anything newer. Slots are guarded by the stream's lock.

// Slot values of a keySub besides a cursor slot.
const (
	slotPending = -1 // being subscribed: its frames wait in multi.early
	slotRemoved = -2 // unsubscribed: its frames are dropped
)

// keySub is one subscription of a multi-topic stream.
type keySub struct {
	m    *multi
	sc   *fanout.Subscription
	slot int32 // a cursor slot, or slotPending, slotRemoved; guarded by the stream's mu
	kind transport.Kind
}

// Send is the hub's delivery to this subscription (hub lock held: queue only).
func (k *keySub) Send(f *fanout.Frame) { k.m.send(k, f) }

// multi is the state of a multi-topic stream.
type multi struct {
	st       *stream
	client   string // the client's own key, "" on a topic stream
	envelope bool
	// converted: a client's single-key stream that a server-side subscribe made multi (becomeMultiLocked);
	// its own key's subscriber is the stream itself, which hands its events here. Guarded by st.mu;
	// beside envelope so the two bools share a word (the struct stays in its size class).
	converted bool
	// ka is the stream's own keep-alive (transport.Spec.KeepAlive, keepalive.go), set at open; nil: the
	// edge's heartbeat.
	ka *keepAlive
	// asked are the topics the URL asked for: what a token refresh must cover (stream.reads).
	asked []string

	changes sync.Mutex // serializes opening and subscription changes, which call the hubs

	// Guarded by st.mu.
	requested []string  // topics asked for by server-side changes too, canonical and sorted; nil: asked
	subs      []*keySub // live subscriptions, in the order of their keys: subs[i] moves cursor slot i
	cursor    *fanout.CursorState
	early     map[*keySub][]*fanout.Frame // frames of pending subscriptions
	own       *keySub                     // the client key's subscription, nil on a topic stream
	// holds counts the subscribes under way (subsChange to addKeys); while any is, the client key's
	// events wait in held, to be merged with the new topics' first frames.
	holds int
	held  []*fanout.Frame
}

// send takes a frame of one of the stream's subscriptions.
func (m *multi) send(k *keySub, f *fanout.Frame) {
	st := m.st
	switch {
	case f.Refresh:
		st.Send(f)
		return
	case f.End:
		st.Send(f)
		return
	}
	st.mu.Lock()
	switch {
	case k.slot == slotRemoved:
		st.mu.Unlock()
		return
	case k.slot == slotPending:
		if f.ID != "" && m.early != nil { // "" is the hub's own reset: the stream sends one naming the topic instead
			m.early[k] = append(m.early[k], f)
		}
		st.mu.Unlock()
		return
	case k == m.own && m.holds > 0:
		// A subscribe that arrived before this event is being made: the event waits for it, so that
		// the client reads the new topics by the time it sees what followed the change (a function's
		// result).
		m.held = append(m.held, f)
		st.mu.Unlock()
		return
	}
	m.cursor.Set(int(k.slot), f.ID)
	start, cut := st.queueLocked(m.frame(int(k.slot), f))
	m.ka.wroteLocked()
	st.mu.Unlock()
	st.afterQueue(start, cut)
}

// frame is f as this stream sends it: with the cursor as its id, its data in an envelope if asked for.
func (m *multi) frame(slot int, f *fanout.Frame) *fanout.Frame {
	var b []byte
	if m.envelope {
		b = appendEnvelope(make([]byte, 0, len(f.Bytes)+96), m.cursor, m.topicOf(slot), f)
	} else {
		b = m.cursor.AppendFrame(make([]byte, 0, len(f.Bytes)+16+10*m.cursor.Len()), f)
	}
	return &fanout.Frame{ID: f.ID, Bytes: b, At: f.At}
}

// topicOf is the topic an event of slot came through, "" for the client's own key.
func (m *multi) topicOf(slot int) string {
	if k := m.cursor.Root(slot); k != m.client {
		return k
	}
	return ""
}

// kindOf is the hub of a key of the stream.
func (m *multi) kindOf(key string) transport.Kind {
	if key == m.client {
		return transport.Client
	}
	return transport.Topic
}

// position is where a key's subscription starts, and the reset it owes the client, if any.
type position struct {
	id    string
	reset string // a reset reason, "" for none
	last  string // the position the client sent, for the reset
}

// subscribe subscribes each key from its position, pending, and returns the subscriptions in the
// order of keys. Called with m.changes held, never st.mu (the hubs call send under their locks).
func (m *multi) subscribe(keys []string, at []position) []*keySub {
	n := m.st.srv.node
	out := make([]*keySub, len(keys))
	st := m.st
	for i, key := range keys {
		k := &keySub{m: m, slot: slotPending, kind: m.kindOf(key)}
		st.mu.Lock()
		if m.early == nil {
			m.early = make(map[*keySub][]*fanout.Frame)
		}
		m.early[k] = nil
		st.mu.Unlock()
		p := &at[i]
		if p.id == "" {
			id, err := n.Latest(context.Background(), m.kindOf(key), key)
			switch {
			case err != nil:
				if p.reset == "" {
					p.reset = fanout.ResetHistoryUnavailable
				}
			case id == "": // nothing retained yet: whatever comes is after this stream's start
				id = fanout.OriginID
			}
			p.id = id
		}
		sc, r := n.SubscribeAt(m.kindOf(key), key, k, p.id)
		if r.Reset && p.reset == "" {
			p.reset, p.last = r.Reason, p.id
		}
		k.sc = sc
		out[i] = k
	}
	st.srv.cfg.Metrics.TopicSubscribed(len(keys))
	return out
}

// goLive puts the pending subscriptions subs (of keys, from at) into the stream: the cursor is rebuilt
// over every key, the resets owed are queued, then the frames the pending subscriptions got, merged in
// publish order. It reports false when the stream is gone (the caller unsubscribes them), and what
// queueing asks of the caller (stream.afterQueue). The caller holds st.mu.
func (m *multi) goLive(keys []string, subs []*keySub, at []position) (ok, start, cut bool) {
	st := m.st
	if st.gone {
		return false, false, false
	}
	m.subs = append(m.subs, subs...)
	if m.rebuild(append(m.keys(), keys...)) != nil {
		return false, false, false
	}
	queue := func(f *fanout.Frame) {
		s, c := st.queueLocked(f)
		start, cut = start || s, cut || c
	}
	replays := make([]fanout.RootReplay, len(subs), len(subs)+1)
	from := slices.Clone(subs)
	if m.holds > 0 && m.own != nil { // this is a change's subscribe: the client key's events it held join
		replays = append(replays, fanout.RootReplay{Root: m.client, Frames: m.held})
		from = append(from, m.own)
		m.held = nil
		m.holds--
	}
	for i, k := range subs {
		slot, _ := m.cursor.Slot(keys[i])
		k.slot = int32(slot)
		m.cursor.Set(slot, at[i].id)
		if at[i].reset != "" {
			st.srv.cfg.Metrics.TopicReset()
			queue(resetFrame(at[i].reset, m.topicOf(slot), m.client, keys[i], at[i].last))
		}
		replays[i] = fanout.RootReplay{Root: keys[i], Frames: m.early[k]}
		delete(m.early, k)
	}
	if len(m.early) == 0 {
		m.early = nil // a map keeps its buckets: a held stream should not
	}
	sent := false
	for _, mf := range fanout.MergeReplays(replays...) {
		k := from[mf.From]
		m.cursor.Set(int(k.slot), mf.Frame.ID)
		queue(m.frame(int(k.slot), mf.Frame))
		sent = true
	}
	if !sent { // the client learns the new cursor without an event (see fanout.AppendIDOnly)
		queue(&fanout.Frame{Bytes: fanout.AppendIDOnly(nil, m.cursor.String())})
	}
	return true, start, cut
}

// unsubscribe removes subs from their hubs. Never under st.mu.
func (m *multi) unsubscribe(subs []*keySub) {
	for _, k := range subs {
		m.st.srv.node.Unsubscribe(k.kind, k.sc)
	}
}

// keys is the keys the stream reads, in cursor order (subs' order).
func (m *multi) keys() []string {
	if m.cursor == nil {
		return nil
	}
	out := make([]string, m.cursor.Len())
	for i := range out {
		out[i] = m.cursor.Root(i)
	}
	return out
}

// close unsubscribes the live subscriptions once the stream is gone (cleanup); pending ones are
// unsubscribed by whoever is making them, when goLive finds the stream gone.
func (m *multi) close() {
	st := m.st
	st.mu.Lock()
	subs := m.subs
	m.subs = nil
	for _, k := range subs {
		k.slot = slotRemoved
	}
	clear(m.early)
	st.mu.Unlock()
	m.unsubscribe(subs)
}

// releaseLocked ends one hold of a subscribe that added nothing (or failed): the client key's events it
// held are queued. The caller holds st.mu and calls afterQueue.
func (m *multi) releaseLocked() (start, cut bool) {
	if m.holds == 0 {
		return false, false
	}
	m.holds--
	held := m.held
	m.held = nil
	for _, f := range held {
		if m.own == nil || m.own.slot < 0 {
			break
		}
		m.cursor.Set(int(m.own.slot), f.ID)
		s, c := m.st.queueLocked(m.frame(int(m.own.slot), f))
		start, cut = start || s, cut || c
	}
	return start, cut
}
