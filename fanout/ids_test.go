package fanout_test

import (
	"context"
	"testing"

	"github.com/sseedge/sseedge/fanout"
)

// TestSharedIDsOrderAcrossHubs: hubs sharing one IDs generator (a node's topics and clients) number
// their events in one sequence, so a replay merged across them comes in publish order.
func TestSharedIDsOrderAcrossHubs(t *testing.T) {
	ids := fanout.NewIDs()
	topics, clients := fanout.NewHub(fanout.Config{IDs: ids}), fanout.NewHub(fanout.Config{IDs: ids})
	var order []string
	replays := []fanout.RootReplay{{Root: "/t"}, {Root: "alice"}}
	for i := range 6 {
		h, key := topics, "/t"
		if i%2 == 1 {
			h, key = clients, "alice"
		}
		id, _, err := h.Publish(context.Background(), key, fanout.Event{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, id)
		replays[i%2].Frames = append(replays[i%2].Frames, &fanout.Frame{ID: id})
	}
	seen := map[string]bool{}
	for _, id := range order {
		if seen[id] {
			t.Fatalf("ID %s given twice across the two hubs: %v", id, order)
		}
		seen[id] = true
	}
	for i, m := range fanout.MergeReplays(replays...) {
		if m.Frame.ID != order[i] {
			t.Fatalf("merged replay %d is %s; want %s (publish order %v)", i, m.Frame.ID, order[i], order)
		}
	}
}
