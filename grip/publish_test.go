package grip

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/fanout"
)

func TestParsePublish(t *testing.T) {
	body := `{"items": [
		{"channel": "news", "id": "1", "prev-id": "0", "formats": {"http-stream": {"content": "event: update\ndata: {\"a\":1}\n\n"}}},
		{"channel": "pets/dogs", "formats": {"http-stream": {"content-bin": "ZGF0YTogYmluCgo=", "content": "ignored"}, "http-response": {"body": "x"}, "ws-message": {"content": "y"}}},
		{"channel": "news", "formats": {"http-stream": {"action": "close", "content": ""}}},
		{"channel": "quiet", "formats": {"http-stream": {"action": "send", "content": ": only a comment\n\n"}}}
	]}`
	items, err := ParsePublish([]byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{Channel: "news", Topic: "/news", ID: "1", PrevID: "0", Events: []fanout.Event{{Name: "update", Data: []byte(`{"a":1}`)}}},
		{Channel: "pets/dogs", Topic: "/pets/dogs", Events: []fanout.Event{{Data: []byte("bin")}}, Ignored: []string{"http-response", "ws-message"}},
		{Channel: "news", Topic: "/news", Action: ActionClose},
		{Channel: "quiet", Topic: "/quiet"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Errorf("items\n%+v\nwant\n%+v", items, want)
	}
	if items, err := ParsePublish([]byte(`{"items": []}`), Limits{}); err != nil || len(items) != 0 {
		t.Errorf("no items: %v %v", items, err)
	}
}

func TestParsePublishErrors(t *testing.T) {
	item := func(s string) string { return `{"items": [` + s + `]}` }
	stream := func(s string) string { return item(`{"channel": "c", "formats": {"http-stream": ` + s + `}}`) }
	for _, tc := range []struct {
		name, body string
		code       Code
		status     int
		where      string
	}{
		{"not JSON", `{`, CodeMalformed, 400, "body"},
		{"trailing data", `{"items": []} {}`, CodeMalformed, 400, "body"},
		{"trailing bracket", `{"items": []}]`, CodeMalformed, 400, "body"},
		{"no items", `{}`, CodeMalformed, 400, "items"},
		{"unknown top field", `{"items": [], "x": 1}`, CodeMalformed, 400, "body"},
		{"items not a list", `{"items": {}}`, CodeMalformed, 400, "body"},
		{"no channel", item(`{"formats": {"http-stream": {"content": "data: x\n\n"}}}`), CodeMalformed, 400, "items[0].channel"},
		{"bad channel", item(`{"channel": "/c", "formats": {"http-stream": {"content": "data: x\n\n"}}}`), CodeBadChannel, 400, "items[0].channel"},
		{"unknown item field", item(`{"channel": "c", "meta": {}, "formats": {}}`), CodeMalformed, 400, "items[0]"},
		{"long id", item(`{"channel": "c", "id": "` + strings.Repeat("i", 257) + `", "formats": {"http-stream": {"content": ""}}}`), CodeMalformed, 400, "items[0].id"},
		{"no http-stream", item(`{"channel": "c", "formats": {"http-response": {"body": "x"}}}`), CodeUnsupported, 400, "items[0].formats"},
		{"unknown format", item(`{"channel": "c", "formats": {"http-stream": {"content": ""}, "carrier-pigeon": {}}}`), CodeMalformed, 400, "items[0].formats"},
		{"no content", stream(`{}`), CodeMalformed, 400, "items[0].formats.http-stream"},
		{"content not a string", stream(`{"content": 5}`), CodeMalformed, 400, "items[0].formats.http-stream"},
		{"bad base64", stream(`{"content-bin": "!!"}`), CodeMalformed, 400, "items[0].formats.http-stream.content-bin"},
		{"hint", stream(`{"action": "hint"}`), CodeUnsupported, 400, "items[0].formats.http-stream.action"},
		{"unknown action", stream(`{"action": "explode"}`), CodeMalformed, 400, "items[0].formats.http-stream.action"},
		{"filters", stream(`{"content": "", "content-filters": ["skip-self"]}`), CodeUnsupported, 400, "items[0].formats.http-stream.content-filters"},
		{"bad event name", stream(`{"content": "event: a\u0000b\ndata: x\n\n"}`), CodeMalformed, 400, "items[0].formats.http-stream.content"},
		{"huge body", `{"items": [` + strings.Repeat(" ", 4<<20) + `]}`, CodeTooLarge, 413, "body"},
	} {
		items, err := ParsePublish([]byte(tc.body), Limits{})
		var ge *Error
		if !errors.As(err, &ge) {
			t.Errorf("%s: %+v, %v: want an *Error", tc.name, items, err)
			continue
		}
		if ge.Code != tc.code || ge.Status != tc.status || ge.Where != tc.where {
			t.Errorf("%s: %v (code %s, status %d, where %q), want %s %d %q", tc.name, err, ge.Code, ge.Status, ge.Where, tc.code, tc.status, tc.where)
		}
	}
}

func TestParsePublishLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items": [`)
	for i := range 3 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"channel": "c%d", "formats": {"http-stream": {"content": "data: %d\n\ndata: again\n\n"}}}`, i, i)
	}
	b.WriteString("]}")
	if _, err := ParsePublish([]byte(b.String()), Limits{MaxItems: 2}); !errors.Is(err, ErrTooMany) {
		t.Errorf("3 items over 2: %v", err)
	}
	if _, err := ParsePublish([]byte(b.String()), Limits{MaxEvents: 1}); !errors.Is(err, ErrTooMany) {
		t.Errorf("2 events an item over 1: %v", err)
	}
	if _, err := ParsePublish([]byte(b.String()), Limits{MaxEventBytes: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("events over 10 bytes: %v", err)
	}
	items, err := ParsePublish([]byte(b.String()), Limits{MaxItems: 3, MaxEvents: 2})
	if err != nil || len(items) != 3 || len(items[2].Events) != 2 || string(items[2].Events[0].Data) != "2" {
		t.Errorf("at the limits: %+v %v", items, err)
	}
}

func TestParseSSE(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []fanout.Event
	}{
		{"", nil},
		{": just a comment\n\n", nil},
		{"data: a\n\n", []fanout.Event{{Data: []byte("a")}}},
		{"data:a\r\ndata:  b\r\n\r\nevent: e\rdata\r\r", []fanout.Event{{Data: []byte("a\n b")}, {Name: "e", Data: []byte("")}}},
		{"\ufeffdata: bom\n\n", []fanout.Event{{Data: []byte("bom")}}},
		{"id: 5\nretry: 10\ndata: x\nfoo: bar\n\n", []fanout.Event{{Data: []byte("x")}}},
		{"data: unterminated", []fanout.Event{{Data: []byte("unterminated")}}},
		{"event: message\ndata: {\"json\": true}\n\n", []fanout.Event{{Name: "message", Data: []byte(`{"json": true}`)}}},
	} {
		got, err := ParseSSE([]byte(tc.text), Limits{})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.text, got, err, tc.want)
		}
	}
	big := "data: " + strings.Repeat("x", 2000) + "\n\n"
	if _, err := ParseSSE([]byte(big), Limits{MaxEventBytes: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an event over the bound: %v", err)
	}
}

func TestChannelTopic(t *testing.T) {
	for _, ch := range []string{"news", "pets/dogs", "a b", "ünïcode", "x.y", strings.Repeat("a", fanout.MaxTopicLen-1)} {
		topic, err := ChannelTopic(ch)
		if err != nil || topic != "/"+ch || TopicChannel(topic) != ch {
			t.Errorf("%q: %q %v", ch, topic, err)
		}
	}
	for _, ch := range []string{"", "/", "/a", "a/", "a//b", "a/./b", "..", "a\nb", "a\x7f", strings.Repeat("a", fanout.MaxTopicLen), strings.Repeat("a/", 16) + "a"} {
		if topic, err := ChannelTopic(ch); err == nil {
			t.Errorf("%q: accepted as %q", ch, topic)
		}
	}
}
