package grip

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/fanout"
)

// FuzzParseInstruct: any answer parses to a consistent Instruct or to an *Error of status 501 or 502,
// never a panic.
func FuzzParseInstruct(f *testing.F) {
	f.Add("stream", "news; prev-id=7, pets/dogs", `:\n\n; format=cstring; timeout=20`, "", "text/event-stream", "event: a\ndata: b\n\n")
	f.Add("", "", "", "304", "text/plain", "body")
	f.Add("response", "c", "", "", "", "")
	f.Add("stream", `c; prev-id="a,b"`, "OjoKCg==; format=base64; mode=interval", "200 OK", "text/event-stream", "data: x")
	f.Fuzz(func(t *testing.T, hold, channels, keepAlive, status, ct, body string) {
		h := http.Header{}
		for _, kv := range [][2]string{{HeaderHold, hold}, {HeaderChannel, channels}, {HeaderKeepAlive, keepAlive}, {HeaderStatus, status}, {"Content-Type", ct}} {
			if kv[1] != "" {
				h.Set(kv[0], kv[1])
			}
		}
		lim := Limits{MaxChannels: 8, MaxEvents: 16}
		in, err := ParseInstruct(200, h, []byte(body), lim)
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) || (ge.Status != 501 && ge.Status != 502) {
				t.Fatalf("%v: not a 501/502 *Error", err)
			}
			return
		}
		if in.Hold == HoldStream && (len(in.Channels) == 0 || len(in.Channels) > 8) {
			t.Fatalf("%d channels", len(in.Channels))
		}
		if in.Hold == HoldNone && (len(in.Channels) != 0 || in.KeepAlive != nil || string(in.Body) != body) {
			t.Fatalf("a pass-through answer: %+v", in)
		}
		for _, c := range in.Channels {
			if topic, err := fanout.ParseTopic(c.Topic); err != nil || topic != c.Topic || TopicChannel(c.Topic) != c.Name {
				t.Fatalf("channel %+v: %v", c, err)
			}
		}
		if ka := in.KeepAlive; ka != nil {
			if again, err := sseSafe(ka.Content); err != nil || string(again) != string(ka.Content) {
				t.Fatalf("keep-alive %q is not stable SSE: %q %v", ka.Content, again, err)
			}
			if strings.Contains("\n"+string(ka.Content), "\nid") {
				t.Fatalf("keep-alive %q has an id line", ka.Content)
			}
		}
		checkEvents(t, in.Events, 16)
	})
}

// FuzzParsePublish: any body parses to good items or to an *Error of status 400 or 413.
func FuzzParsePublish(f *testing.F) {
	f.Add(`{"items": [{"channel": "news", "id": "1", "formats": {"http-stream": {"content": "event: a\ndata: b\n\n"}}}]}`)
	f.Add(`{"items": [{"channel": "c", "formats": {"http-stream": {"action": "close"}}}]}`)
	f.Add(`{"items": [{"channel": "c", "formats": {"http-stream": {"content-bin": "ZGF0YTogeAoK"}, "ws-message": {}}}]}`)
	f.Add(`{"items": []}`)
	f.Fuzz(func(t *testing.T, body string) {
		items, err := ParsePublish([]byte(body), Limits{MaxItems: 8, MaxEvents: 16})
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) || (ge.Status != 400 && ge.Status != 413) {
				t.Fatalf("%v: not a 400/413 *Error", err)
			}
			return
		}
		if len(items) > 8 {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			if topic, err := fanout.ParseTopic(it.Topic); err != nil || topic != it.Topic || TopicChannel(it.Topic) != it.Channel {
				t.Fatalf("item %+v: %v", it, err)
			}
			if it.Action == ActionClose && len(it.Events) > 0 {
				t.Fatalf("a close with events: %+v", it)
			}
			checkEvents(t, it.Events, 16)
		}
	})
}

func checkEvents(t *testing.T, evs []fanout.Event, max int) {
	t.Helper()
	if len(evs) > max {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		if ev.ID != "" {
			t.Fatalf("an event with the text's id %q", ev.ID)
		}
		if err := fanout.ValidateField("event", ev.Name, fanout.MaxEventNameLen); err != nil {
			t.Fatalf("event name %q: %v", ev.Name, err)
		}
	}
}
