package api_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// gripRig is the Node rig of package grip (grip/testdata/node): @fanoutio/serve-grip and
// @fanoutio/grip installed from its lockfile.
func gripRig(t *testing.T) (node, dir string) {
	t.Helper()
	return testutil.NodeRig(t, "grip-rig", filepath.Join("..", "grip", "testdata", "node"),
		[]string{"package.json", "package-lock.json", ".npmrc", "function.mjs", "publish.mjs"}, filepath.Join("@fanoutio", "serve-grip"))
}

// startServeGrip runs function.mjs (a function on @fanoutio/serve-grip) with GRIP_KEY and returns its
// base URL; the process ends with the test.
func startServeGrip(t *testing.T, key string) string {
	t.Helper()
	node, dir := gripRig(t)
	return testutil.StartNodeServer(t, node, dir, "function.mjs", "GRIP_KEY="+key)
}

// publishWithGrip runs @fanoutio/grip's Publisher (publish.mjs) with config against the edge and returns
// what it reported.
func publishWithGrip(t *testing.T, config map[string]string, publishes string) map[string]any {
	t.Helper()
	node, dir := gripRig(t)
	cfg, _ := json.Marshal(config)
	return testutil.RunNodeScript(t, node, dir, "publish.mjs", string(cfg), publishes)
}

// TestServeGripThroughEdge: a function on @fanoutio/serve-grip, behind the edge, verifies the edge's
// Grip-Sig and answers Grip-Hold: stream on two channels (news, pets/dogs) with a first event;
// @fanoutio/grip's Publisher, pointed at the edge as its control URI, publishes to both channels (with
// the admin token, then a control JWT); the client gets the first event, then each published event once. Its plain and 403 answers are proxied
// unchanged.
func TestServeGripThroughEdge(t *testing.T) {
	e := newGripEdge(t, nil)
	base := startServeGrip(t, gripKey)
	e.register("live", base, nil)

	s := openStream(t, e.url+"/grip/live/stream?room=1", "Cookie", "session=abc")
	if ev := s.Next(t); ev.Type != "welcome" || ev.Data != `{"hello": "stream"}` {
		t.Fatalf("first event %+v", ev)
	}
	res := publishWithGrip(t, map[string]string{"control_uri": e.url + "/", "key": gripAdmin}, `[
		{"channel": "news", "content": "event: update\ndata: one\n\n"},
		{"channel": "pets/dogs", "content": "data: two\n\ndata: three\n\n", "id": "2", "prevId": "1"},
		{"channel": "pets", "content": "data: not held: pets is above pets/dogs\n\n"}
	]`)
	if res["ok"] != true {
		t.Fatalf("publish: %v", res)
	}
	res = publishWithGrip(t, map[string]string{"control_uri": e.url, "control_iss": "backend", "key": gripKey},
		`[{"channel": "news", "content": "data: four\n\n"}, {"channel": "pets/dogs/puppies", "content": "data: five\n\n"}]`)
	if res["ok"] != true {
		t.Fatalf("publish with a control JWT: %v", res)
	}
	ids := map[string]bool{}
	for _, want := range []string{"one", "two", "three", "four", "five"} {
		ev := s.Next(t)
		if ev.Data != want || ev.LastEventID == "" || ids[ev.LastEventID] {
			t.Fatalf("event %+v, want %s with an id of its own", ev, want)
		}
		ids[ev.LastEventID] = true
	}
	s.ExpectNone(t, 100*time.Millisecond)

	res = publishWithGrip(t, map[string]string{"control_uri": e.url + "/", "key": "wrong"}, `[{"channel": "news", "content": "data: x\n\n"}]`)
	if res["ok"] != false || res["status"] != 401.0 {
		t.Errorf("a publish with a wrong key: %v", res)
	}
	res = publishWithGrip(t, map[string]string{"control_uri": e.url + "/", "key": gripAdmin}, `[{"channel": "news", "close": true}]`)
	if res["ok"] != true {
		t.Fatalf("close: %v", res)
	}
	s.Ended(t)

	st, h, b := e.do("GET", "/grip/live/plain", "")
	if st != 200 || string(b) != `{"plain":true,"signed":true}` || h.Get("Content-Type") != "application/json" || h.Get("X-Middleware-Signed") != "true" {
		t.Errorf("/plain through the edge: %d %v %s", st, h, b)
	}
	st, _, b = e.do("GET", "/grip/live/forbidden", "")
	if st != 403 || string(b) != `{"error":"forbidden"}` {
		t.Errorf("/forbidden through the edge: %d %s", st, b)
	}
}

// TestServeGripKeepAliveThroughEdge: serve-grip's GripInstruct.setKeepAlive (the keep-alive event
// Pushpin functions send, every second here) reaches the client in place of the edge's heartbeat, which
// ticks every 50 ms; a publish on the channel still arrives.
func TestServeGripKeepAliveThroughEdge(t *testing.T) {
	e := newGripEdge(t, func(c *teststack.Config) { c.HeartbeatInterval = kaTick })
	base := startServeGrip(t, gripKey)
	e.register("live", base, nil)
	s := openRawStream(t, e, "/grip/live/keepalive")
	var lines []string
	heartbeats := 0
	for keepAlives := 0; keepAlives < 2; {
		line, ok := <-s.lines
		if !ok {
			t.Fatalf("the stream ended before two keep-alives: %q", lines)
		}
		if isHeartbeat(line) {
			heartbeats++
		}
		if line == "data: " && len(lines) > 0 && lines[len(lines)-1] == "event: keep-alive" {
			keepAlives++
		}
		lines = append(lines, line)
	}
	if heartbeats != 0 {
		t.Errorf("%d edge heartbeats on a stream with serve-grip's keep-alive", heartbeats)
	}
	e.publish(`{"items": [` + gripItem("ka", "data: after\n\n") + `]}`)
	for line := ""; line != "data: after"; {
		var ok bool
		if line, ok = <-s.lines; !ok {
			t.Fatal("the stream ended before the published event")
		}
	}
}
