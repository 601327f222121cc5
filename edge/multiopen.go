package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// Reasons of the resets a multi-topic stream sends besides the hub's (fanout.ResetNotRetained,
// fanout.ResetHistoryUnavailable).
const (
	// resetNotACursor: the Last-Event-ID is not a cursor of this stream (a plain event ID, another
	// version, corrupt): every key starts afresh.
	resetNotACursor = "last_event_id_not_a_cursor"
	// resetNotInCursor: the cursor holds no position for this key (a topic the stream did not read
	// when the id was sent).
	resetNotInCursor = "topic_not_in_cursor"
)

// openMulti subscribes a multi-topic stream, whose head is queued and held, to every key it reads.
func (s *Server) openMulti(st *stream, spec transport.Spec) {
	m := &multi{st: st, envelope: spec.Envelope, asked: spec.Topics, ka: newKeepAlive(spec.KeepAlive, s.cfg.HeartbeatInterval)}
	keys := slices.Clone(spec.Topics)
	if spec.Kind == transport.Client {
		m.client = spec.Key
		if len(spec.Subscribed) > 0 { // the server's topics are read as changes had asked for them
			req := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(spec.Topics), spec.Subscribed...))))
			if want, err := m.wanted(req); err == nil {
				m.requested, keys = req, want[:len(want)-1] // want ends with the client's own key
			} else {
				st.srv.log.Warn("stream opens without its server-side subscriptions", "id", st.id, "client", m.client, "err", err)
			}
		}
		keys = append(keys, spec.Key)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	st.multi.Store(m)
	at := m.positions(spec.LastEventID, keys)

	m.changes.Lock()
	defer m.changes.Unlock()
	subs := m.subscribe(keys, at)
	st.mu.Lock()
	for i, k := range keys {
		if k == m.client && m.client != "" {
			m.own = subs[i]
		}
	}
	ok, _, _ := m.goLive(keys, subs, at)
	st.live = ok
	st.mu.Unlock()
	if !ok {
		m.unsubscribe(subs)
	}
}

// positions decodes a multi-topic stream's Last-Event-ID into a starting position for each of keys.
// A cursor over its length bound is refused by the opener (400); anything else that is not a cursor of
// the stream makes every key start afresh with a reset, never an error.
func (m *multi) positions(lastEventID string, keys []string) []position {
	at := make([]position, len(keys))
	if lastEventID == "" {
		return at
	}
	c, err := fanout.DecodeCursor(lastEventID)
	if err != nil && m.client != "" && len(m.asked) == 0 && !strings.HasPrefix(lastEventID, fanout.CursorPrefix) {
		// A plain /sse/{id} stream that stored subscriptions made multi: its client last read it as a
		// single-key stream, whose ids are its own key's. That key resumes after it; the topics, which
		// the client did not read then, start from now.
		for i, k := range keys {
			at[i] = position{reset: resetNotInCursor}
			if k == m.client {
				at[i] = position{id: lastEventID}
			}
		}
		return at
	}
	if err != nil {
		m.st.srv.cfg.Metrics.BadCursor()
		for i := range at {
			at[i] = position{reset: resetNotACursor, last: lastEventID}
		}
		return at
	}
	for i, p := range c.Positions(keys) {
		if p == "" {
			at[i] = position{reset: resetNotInCursor}
			continue
		}
		at[i].id = p
	}
	return at
}

// applyLocked records a server-side change of the stream's topics and takes the subscriptions it
// ends out of the stream at once, so that nothing of theirs is queued after the change (which arrives
// in order with the client's own events). It returns those, for the caller to unsubscribe off the
// hub's lock, and the keys to subscribe (addKeys). The caller holds st.mu.
func (m *multi) applyLocked(add bool, topics []string) (removed []*keySub, added []string) {
	st := m.st
	if st.gone {
		return nil, nil
	}
	req := slices.Clone(m.requested)
	if req == nil {
		req = slices.Clone(m.asked)
	}
	for _, t := range topics {
		if add {
			req = append(req, t)
		} else {
			req = slices.DeleteFunc(req, func(r string) bool { return r == t })
		}
	}
	want, err := m.wanted(req)
	if err != nil {
		st.srv.cfg.Metrics.TopicSubsChangeFailed()
		st.srv.log.Warn("subscription change refused", "id", st.id, "client", m.client, "err", err)
		return nil, nil
	}
	m.requested = slices.Compact(slices.Sorted(slices.Values(req)))
	cur := m.keys()
	keys, subs := make([]string, 0, len(cur)), make([]*keySub, 0, len(cur))
	for i, k := range cur {
		if slices.Contains(want, k) {
			keys, subs = append(keys, k), append(subs, m.subs[i])
		} else {
			removed = append(removed, m.subs[i])
			m.subs[i].slot = slotRemoved
		}
	}
	if len(removed) > 0 {
		m.subs = subs
		_ = m.rebuild(keys)
		cur = keys
	}
	for _, k := range want {
		if !slices.Contains(cur, k) {
			added = append(added, k)
		}
	}
	return removed, added
}

// wanted is the keys the stream should read for the topics req: their subscriptions (NormalizeTopics)
// and the client's own key.
func (m *multi) wanted(req []string) ([]string, error) {
	want, err := fanout.NormalizeTopics(req, fanout.MaxTopicsPerStream)
	if err != nil {
		return nil, err
	}
	if m.client != "" {
		want = append(want, m.client)
	}
	return want, nil
}

// addKeys subscribes the stream to keys that a change asked for, unless it reads them by now or no
// longer wants them (changes may overtake each other until here, where they are serialized). It calls
// the hubs: never under a hub's lock or st.mu.
func (m *multi) addKeys(keys []string) {
	m.changes.Lock()
	defer m.changes.Unlock()
	st := m.st
	st.mu.Lock()
	req := m.requested
	if req == nil {
		req = m.asked
	}
	want, _ := m.wanted(req)
	cur := m.keys()
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return slices.Contains(cur, k) || !slices.Contains(want, k) })
	if len(keys) == 0 {
		start, cut := m.releaseLocked()
		st.mu.Unlock()
		st.afterQueue(start, cut)
		return
	}
	st.mu.Unlock()
	slices.Sort(keys)
	at := make([]position, len(keys))
	subs := m.subscribe(keys, at)
	st.mu.Lock()
	ok, start, cut := m.goLive(keys, subs, at)
	st.mu.Unlock()
	if !ok {
		m.unsubscribe(subs)
		return
	}
	st.afterQueue(start, cut)
}

// subsChange takes a subscription change off a refresh of the stream's client, under the hub's lock:
// the subscriptions it ends leave the stream here, and the hub calls (unsubscribing, subscribing) are
// left to a goroutine of the change's own.
func (s *stream) subsChange(b []byte) {
	add, topics, err := transport.ParseSubsChange(b)
	if err != nil {
		s.srv.log.Warn("ignoring a malformed subscription change", "id", s.id, "err", err)
		return
	}
	if s.kind != transport.Client {
		return
	}
	if !add && s.multi.Load() == nil {
		return // a single-key stream reads no topic to remove
	}
	s.mu.Lock()
	m := s.multi.Load()
	if m == nil {
		if m = s.becomeMultiLocked(); m == nil {
			s.mu.Unlock()
			return
		}
	}
	removed, added := m.applyLocked(add, topics)
	if len(added) > 0 {
		m.holds++ // released by addKeys
	}
	s.mu.Unlock()
	go func() {
		if m.converted {
			m.ownPosition()
		}
		m.unsubscribe(removed)
		if len(added) > 0 {
			m.addKeys(added)
		}
	}()
}

// becomeMultiLocked turns a client's single-key stream into a multi-topic one reading its own key only,
// so that the server can subscribe it to topics: its ids become cursors from then on. Its key's position
// is set by its next event, or by ownPosition. It returns nil when the stream is gone or not yet
// subscribed. The caller holds s.mu (and the client hub's lock: it calls no hub).
func (s *stream) becomeMultiLocked() *multi {
	if s.gone || s.sub == nil {
		return nil
	}
	m := &multi{st: s, client: s.key, converted: true}
	m.own = &keySub{m: m, sc: s.sub, slot: 0, kind: transport.Client}
	m.subs = []*keySub{m.own}
	if m.rebuild([]string{s.key}) != nil {
		return nil
	}
	s.multi.Store(m)
	return m
}

// ownPosition gives a converted stream's own key the position of its newest retained event, unless an
// event has set one since the conversion (OriginID when it retains none).
func (m *multi) ownPosition() {
	pos, err := m.st.srv.node.Latest(context.Background(), transport.Client, m.client)
	if err != nil || pos == "" {
		pos = fanout.OriginID
	}
	m.st.mu.Lock()
	if m.own.slot >= 0 && m.cursor.Pos(int(m.own.slot)) == "" {
		m.cursor.Set(int(m.own.slot), pos)
	}
	m.st.mu.Unlock()
}

// rebuild makes keys (those of m.subs, in the same order) the stream's keys: sorted, with its cursor
// rebuilt over them, keeping the positions of the keys it still reads, and the slots of the live
// subscriptions renumbered. The caller holds st.mu.
func (m *multi) rebuild(keys []string) error {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	sorted, subs := make([]string, len(order)), make([]*keySub, len(order))
	for i, j := range order {
		sorted[i], subs[i] = keys[j], m.subs[j]
	}
	m.subs = subs
	var err error
	if m.cursor == nil {
		m.cursor, err = fanout.NewCursorState(sorted)
	} else {
		m.cursor, err = m.cursor.With(sorted)
	}
	if err != nil { // not reached: keys are distinct and bounded by the openers and changes
		m.st.srv.log.Error("multi-topic stream: cursor", "id", m.st.id, "err", err)
		return err
	}
	for i, k := range m.subs {
		if k.slot != slotPending {
			k.slot = int32(i)
		}
	}
	return nil
}

// resetFrame tells a multi-topic stream's client that events of one of its keys after last may be
// lost: topic names it, or client for the client's own key.
func resetFrame(reason, topic, client, key, last string) *fanout.Frame {
	body := struct {
		Reason      string `json:"reason"`
		Topic       string `json:"topic,omitempty"`
		ClientID    string `json:"client_id,omitempty"`
		LastEventID string `json:"last_event_id,omitempty"`
	}{Reason: reason, Topic: topic, LastEventID: last}
	if topic == "" {
		body.ClientID = client
	}
	_ = key
	data, _ := json.Marshal(body) // strings always encode
	return &fanout.Frame{Bytes: fanout.AppendFrame(nil, "", "reset", data)}
}

// appendEnvelope appends f with the cursor as its id and its data wrapped as
// {"topic":<topic>,"data":<data>}: the data as JSON when it is JSON, else as a JSON string; no "topic"
// for the client's own events. Its event name is kept.
func appendEnvelope(dst []byte, cs *fanout.CursorState, topic string, f *fanout.Frame) []byte {
	name, data := splitFrame(f.Bytes)
	env := struct {
		Topic string          `json:"topic,omitempty"`
		Data  json.RawMessage `json:"data"`
	}{Topic: topic}
	var compact bytes.Buffer
	if json.Valid(data) && json.Compact(&compact, data) == nil {
		env.Data = compact.Bytes()
	} else {
		env.Data, _ = json.Marshal(string(data))
	}
	body, _ := json.Marshal(env) // raw JSON checked above, strings always encode
	dst = append(dst, "id: "...)
	dst = cs.AppendTo(dst)
	dst = append(dst, '\n')
	return fanout.AppendFrame(dst, "", name, body)
}

// splitFrame reads the event name and data back from an event's frame (as fanout.AppendFrame wrote
// it: the data's lines joined by "\n").
func splitFrame(b []byte) (name string, data []byte) {
	var lines [][]byte
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			lines = append(lines, line[len("data: "):])
		}
	}
	return name, bytes.Join(lines, []byte("\n"))
}
