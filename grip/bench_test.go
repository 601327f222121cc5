package grip

import (
	"encoding/json"
	"testing"
)

var benchPublish = []byte(`{"items": [{"channel": "news", "id": "2", "prev-id": "1", "formats": {"http-stream": {"content": "event: update\ndata: {\"n\": 1, \"text\": \"some words of news\"}\n\n"}}}]}`)

// BenchmarkParsePublish reads one Publisher request; BenchmarkPublishBaseline only decodes its JSON
// into a generic value, the floor of any parse.
func BenchmarkParsePublish(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePublish(benchPublish, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(benchPublish, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInstruct(b *testing.B) {
	h := hdr("Grip-Hold", "stream", "Grip-Channel", "news, pets/dogs; prev-id=41", "Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`,
		"Content-Type", "text/event-stream", "Content-Length", "44", "Date", "Mon, 01 Jan 2026 00:00:00 GMT")
	body := []byte("event: welcome\ndata: {\"hello\": \"stream\"}\n\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseInstruct(200, h, body, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s, err := NewSigner([]byte("key"), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(); err != nil {
			b.Fatal(err)
		}
	}
}
