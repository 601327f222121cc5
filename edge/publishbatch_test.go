package edge_test

import (
	"testing"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// TestPublishBatch: POST /publish with items publishes each to its topic in order and answers one result
// per item; an invalid item fails alone, with its code.
func TestPublishBatch(t *testing.T) {
	srv := start(t, teststack.Config{NodeID: "node-a"})
	pets := openSSE(t, srv.url+"/subscribe/pets", nil)
	news := openSSE(t, srv.url+"/subscribe/news", nil)
	testutil.WaitFor(t, "2 topic streams", func() bool { return srv.Stats().TopicStreams == 2 })

	code, out := post(t, srv.url+"/publish", `{"items": [
		{"topic": "/pets/dogs", "event": "bark", "data": "woof"},
		{"topic": "/news", "data": {"headline": "hi"}},
		{"topic": "/pets", "data": "two", "id": "own-1"},
		{"topic": "", "data": "x"},
		{"topic": "/news", "data": ""},
		"not an object"
	]}`)
	if code != 200 {
		t.Fatalf("batch publish: %d %v", code, out)
	}
	results := out["results"].([]any)
	if len(results) != 6 {
		t.Fatalf("%d results; want 6: %v", len(results), results)
	}
	res := func(i int) map[string]any { return results[i].(map[string]any) }
	if res(2)["id"] != "own-1" || res(0)["id"] == nil || res(1)["id"] == nil {
		t.Fatalf("results %v", results)
	}
	if res(3)["code"] != "bad_topic" || res(4)["code"] != "empty_data" || res(5)["code"] != "bad_json" {
		t.Fatalf("results of the invalid items %v, %v, %v", res(3), res(4), res(5))
	}
	if ev := pets.next(t); ev.Type != "bark" || ev.Data != "woof" || ev.LastEventID != res(0)["id"] {
		t.Errorf("pets got %+v first", ev)
	}
	if ev := pets.next(t); ev.Data != "two" || ev.LastEventID != "own-1" {
		t.Errorf("pets got %+v second", ev)
	}
	if ev := news.next(t); ev.Data != `{"headline":"hi"}` {
		t.Errorf("news got %+v", ev)
	}
	if code, out := post(t, srv.url+"/publish", `{"items": []}`); code != 400 || out["code"] != "bad_items" {
		t.Errorf("empty batch: %d %v", code, out)
	}
}
