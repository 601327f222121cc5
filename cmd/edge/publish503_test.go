package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/redistest"
)

// publishAnswer is one publish's answer.
type publishAnswer struct {
	code              int
	body              string
	applied, replayed string // the Sseedge-Applied and Idempotent-Replayed headers
	took              time.Duration
}

// publishWith posts data to url with an optional Idempotency-Key.
func publishWith(t *testing.T, client *http.Client, url, data, key string) publishAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"data":%q}`, data)))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return publishAnswer{body: err.Error(), took: time.Since(began)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return publishAnswer{code: resp.StatusCode, body: string(body), took: time.Since(began),
		applied: resp.Header.Get("Sseedge-Applied"), replayed: resp.Header.Get("Idempotent-Replayed")}
}

// TestPublish503IsFinal is issue 18's item 7 on a real node and a real redis-server frozen by SIGSTOP:
// publishes answered 503 state_unavailable while Redis is frozen must not be applied once it runs again
// (before, 4 of 19 were, out of order), and a publisher that retries with an Idempotency-Key gets its
// event applied once however often it retries.
func TestPublish503IsFinal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	r := redistest.StartSingle(t)
	a := startNode(t, "final-a", "REDIS_ADDR="+r.Addr())
	b := startNode(t, "final-b", "REDIS_ADDR="+r.Addr())
	s := subscribe(t, b.url+"/subscribe/final", "")
	client := &http.Client{Timeout: 10 * time.Second}
	url := a.url + "/publish/final"
	if got := publishWith(t, client, url, "before", ""); got.code != http.StatusOK {
		t.Fatalf("publish before: %+v", got)
	}

	r.Pause()
	const frozen = 19 // the count
	answers := make([]publishAnswer, frozen)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = publishWith(t, client, url, fmt.Sprintf("frozen-%d", i), "") })
	}
	keyed := publishWith(t, client, url, "keyed", "retry-1") // 503 too; retried below
	wg.Wait()
	r.Resume()

	refused := map[string]bool{}
	for i, got := range answers {
		if got.code == http.StatusServiceUnavailable && strings.Contains(got.body, "state_unavailable") {
			refused[fmt.Sprintf("frozen-%d", i)] = true
		}
	}
	// The retry of the keyed publish: until Redis answers again; then once more, which must not apply.
	deadline := time.Now().Add(20 * time.Second)
	var retried publishAnswer
	for retried = publishWith(t, client, url, "keyed", "retry-1"); retried.code != http.StatusOK; retried = publishWith(t, client, url, "keyed", "retry-1") {
		if time.Now().After(deadline) {
			t.Fatalf("the keyed retry was not accepted after Redis ran again: %+v", retried)
		}
		time.Sleep(50 * time.Millisecond) // Redis's return has no event to wait on
	}
	again := publishWith(t, client, b.url+"/publish/final", "keyed", "retry-1") // on the other node
	conflict := publishWith(t, client, url, "another event", "retry-1")
	if got := publishWith(t, client, url, "after", ""); got.code != http.StatusOK {
		t.Fatalf("publish after: %+v", got)
	}

	var events []string
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("the stream ended")
		}
		events = append(events, ev.Data)
		if ev.Data == "after" {
			break
		}
	}
	appliedAnyway, keyedTimes := 0, 0
	for _, e := range events {
		if refused[e] {
			appliedAnyway++
		}
		if e == "keyed" {
			keyedTimes++
		}
	}
	fams := scrape(t, a.url)
	t.Logf("Redis frozen: %d of %d publishes answered 503 state_unavailable (slowest %v); %d of them applied after SIGCONT; "+
		"the keyed publish (503 %q, then retried) was delivered %d time(s); the stream got %q; "+
		"A: sseedge_publish_expired_total %g, sseedge_publish_outcome_unknown_total %g, sseedge_publish_idempotent_replays_total %g",
		len(refused), frozen, slowest(answers), appliedAnyway, keyed.applied, keyedTimes, events,
		value(fams, "sseedge_publish_expired_total"), value(fams, "sseedge_publish_outcome_unknown_total"),
		value(fams, "sseedge_publish_idempotent_replays_total"))

	if len(refused) != frozen {
		t.Errorf("%d of %d publishes to a frozen Redis answered 503 state_unavailable; want all: %+v", len(refused), frozen, answers)
	}
	for _, got := range answers {
		if got.code == http.StatusServiceUnavailable && got.applied != "no" {
			t.Errorf("a 503 with Sseedge-Applied %q; want no (Redis was frozen, not gone)", got.applied)
		}
		if got.took > 3*time.Second {
			t.Errorf("a publish took %v to answer; want a fast 503", got.took)
		}
	}
	if appliedAnyway > 0 {
		t.Errorf("%d publishes answered 503 were applied after Redis ran again; want none", appliedAnyway)
	}
	if keyed.code != http.StatusServiceUnavailable || keyedTimes != 1 {
		t.Errorf("keyed publish: first answer %+v, delivered %d times; want a 503, then exactly once", keyed, keyedTimes)
	}
	if again.code != http.StatusOK || again.replayed != "true" || !strings.Contains(again.body, idOf(retried.body)) {
		t.Errorf("a second retry on the other node: %+v; want 200, Idempotent-Replayed, the first ID (%s)", again, retried.body)
	}
	if conflict.code != http.StatusUnprocessableEntity || !strings.Contains(conflict.body, "idempotency_key_reused") {
		t.Errorf("the key reused for another event: %+v; want 422 idempotency_key_reused", conflict)
	}
	if events[0] != "before" || events[len(events)-1] != "after" || len(events) != 3 {
		t.Errorf("the stream got %q; want before, keyed, after", events)
	}
}

func slowest(as []publishAnswer) time.Duration {
	var m time.Duration
	for _, a := range as {
		m = max(m, a.took)
	}
	return m.Round(time.Millisecond)
}

// idOf is the "id" of a publish answer's JSON body, as it appears there.
func idOf(body string) string {
	_, rest, _ := strings.Cut(body, `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return `"` + id + `"`
}
