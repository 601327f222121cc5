package fanout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A publisher that cannot tell whether a publish was applied (no answer, or a 503 whose outcome is
// unknown) retries it with the same idempotency key (Event.IdempotencyKey, the Idempotency-Key header):
// within the window (HistoryTTL) the retry is answered with the first publish's ID and applied no
// second time, in memory and, with an engine, on every node (redisengine keeps the key in Redis next to
// the root's history). A key is scoped to its topic's root (or client ID).

// MaxIdempotencyKeyLen bounds an idempotency key.
const MaxIdempotencyKeyLen = 255

// maxIdempotencyKeys bounds the keys one hub remembers in memory; past it the oldest are forgotten
// before their window ends.
const maxIdempotencyKeys = 100_000

// Replayed is what Publish returns as delivered when the event's idempotency key was seen within the
// window: the ID is the first publish's and nothing was published again.
const Replayed = -2

// ErrReplayed is returned by an Engine's Publish, with the first publish's ID, when the event's
// idempotency key was seen within the window; the hub answers it as Replayed.
var ErrReplayed = errors.New("idempotency key seen: publish not applied again")

// ErrIdempotencyConflict is returned when an idempotency key seen within the window came with another
// event (key, name, ID or data).
var ErrIdempotencyConflict = errors.New("idempotency key already used for another event")

// ErrOutcomeUnknown is wrapped, with ErrUnavailable, by a publish error when the publish may have been
// applied (the connection to Redis was lost while it was in flight). Without it, an ErrUnavailable
// publish was not applied.
var ErrOutcomeUnknown = errors.New("the publish may have been applied")

// ValidateIdempotencyKey checks a key: printable ASCII, at most MaxIdempotencyKeyLen bytes ("" is none).
func ValidateIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: idempotency key longer than %d bytes", ErrBadEvent, MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return fmt.Errorf("%w: idempotency key must be printable ASCII without spaces", ErrBadEvent)
		}
	}
	return nil
}

// EventFingerprint identifies what a publish of ev to key would apply, so a key reused for another
// event is told from a retry.
func EventFingerprint(key string, ev Event) string {
	h := sha256.New()
	for _, s := range []string{key, ev.Name, ev.ID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(ev.Data)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// idempotency is a hub's memory of the keys it published under, oldest first, bounded in time (the
// window) and in number.
type idempotency struct {
	mu      sync.Mutex
	entries map[string]*idemEntry
	queue   []*idemEntry // insertion order; queue[head:] are live
	head    int
}

type idemEntry struct {
	name        string // root + "\n" + key
	fingerprint string
	at          time.Time
	id          string        // the first publish's ID, set before done closes; "" if it failed
	done        chan struct{} // closed once the first publish returned
}

// publishOnce is PublishLocal for an event with an idempotency key: a retry within the window waits for
// the first publish and answers with its ID; a concurrent one waits for it too.
func (h *Hub) publishOnce(key string, ev Event) (string, int, error) {
	s := &h.idem
	name := Root(key) + "\n" + ev.IdempotencyKey
	fp := EventFingerprint(key, ev)
	for {
		now := time.Now()
		s.mu.Lock()
		s.forget(now.Add(-h.cfg.HistoryTTL))
		if seen := s.entries[name]; seen != nil {
			s.mu.Unlock()
			<-seen.done
			switch {
			case seen.id == "": // the first one failed and was forgotten: this one may apply
				continue
			case seen.fingerprint != fp:
				return "", 0, fmt.Errorf("%w: %q", ErrIdempotencyConflict, ev.IdempotencyKey)
			}
			return seen.id, Replayed, nil
		}
		e := &idemEntry{name: name, fingerprint: fp, at: now, done: make(chan struct{})}
		if s.entries == nil {
			s.entries = make(map[string]*idemEntry)
		}
		s.entries[name] = e
		s.queue = append(s.queue, e)
		s.mu.Unlock()

		id, delivered, err := h.PublishLocal(key, ev)
		s.mu.Lock()
		if err != nil && s.entries[name] == e {
			delete(s.entries, name)
		}
		e.id = id
		s.mu.Unlock()
		close(e.done)
		return id, delivered, err
	}
}

// forget drops the entries older than cutoff, and the oldest beyond maxIdempotencyKeys less the one
// about to be added. The caller holds s.mu.
func (s *idempotency) forget(cutoff time.Time) {
	for s.head < len(s.queue) {
		e := s.queue[s.head]
		if !e.at.Before(cutoff) && len(s.queue)-s.head < maxIdempotencyKeys { // room for the one to come
			break
		}
		if s.entries[e.name] == e {
			delete(s.entries, e.name)
		}
		s.queue[s.head] = nil
		s.head++
	}
	if s.head > len(s.queue)/2 { // compact, so the queue's array does not grow without bound
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
}
