package grip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sseedge/sseedge/fanout"
)

// Action is what an item does to the streams of its channel.
type Action int

const (
	// ActionSend delivers the item's events.
	ActionSend Action = iota
	// ActionClose ends the held streams of the channel (http-stream "action": "close").
	ActionClose
)

func (a Action) String() string {
	if a == ActionClose {
		return "close"
	}
	return "send"
}

// Item is one item of a GRIP publish: for a topic (the channel's, see ChannelTopic), events to publish
// in order or a close.
type Item struct {
	Channel string
	Topic   string
	// ID and PrevID are the item's "id" and "prev-id", as given (at most 256 bytes each).
	ID     string
	PrevID string
	Action Action
	// Events is the http-stream content parsed with ParseSSE (ActionSend); none if it held only
	// comments.
	Events []fanout.Event
	// Ignored names the other GRIP formats the item carried ("http-response", "ws-message"), which
	// sseedge does not deliver.
	Ignored []string
}

// maxItemIDLen bounds an item's id and prev-id.
const maxItemIDLen = 256

// The GRIP formats sseedge knows of but does not deliver.
var ignoredFormats = []string{"http-response", "ws-message"}

type publishJSON struct {
	Items *[]json.RawMessage `json:"items"`
}

type itemJSON struct {
	Channel *string                    `json:"channel"`
	ID      *string                    `json:"id"`
	PrevID  *string                    `json:"prev-id"`
	Formats map[string]json.RawMessage `json:"formats"`
}

type httpStreamJSON struct {
	Content        *string         `json:"content"`
	ContentBin     *string         `json:"content-bin"`
	Action         *string         `json:"action"`
	ContentFilters json.RawMessage `json:"content-filters"`
}

// ParsePublish reads a GRIP publish body, {"items": [{"channel": ..., "id"?, "prev-id"?, "formats":
// {"http-stream": {"content" | "content-bin" (base64), "action"?: "send" | "close"}}}]}, as
// @fanoutio/grip's Publisher posts it to {control URI}/publish/. Every item needs an http-stream
// format; the others are listed in Item.Ignored. Errors are *Error with a 400 status (413 when too
// large); nothing is returned unless every item is good, so a publish is all or nothing to parse.
func ParsePublish(body []byte, lim Limits) ([]Item, error) {
	lim = lim.withDefaults()
	const s = caller
	if len(body) > lim.MaxPublishBytes {
		return nil, s.errorf(CodeTooLarge, "body", "%d bytes, more than %d", len(body), lim.MaxPublishBytes)
	}
	var pj publishJSON
	if err := strictJSON(body, &pj); err != nil {
		return nil, s.wrap(CodeMalformed, "body", err, `not a GRIP publish body {"items": [...]}`)
	}
	if pj.Items == nil {
		return nil, s.errorf(CodeMalformed, "items", "missing")
	}
	raw := *pj.Items
	if len(raw) > lim.MaxItems {
		return nil, s.errorf(CodeTooMany, "items", "%d items, more than %d", len(raw), lim.MaxItems)
	}
	out := make([]Item, 0, len(raw))
	for i, r := range raw {
		it, err := parseItem(r, lim, fmt.Sprintf("items[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func parseItem(raw json.RawMessage, lim Limits, where string) (Item, error) {
	const s = caller
	var ij itemJSON
	if err := strictJSON(raw, &ij); err != nil {
		return Item{}, s.wrap(CodeMalformed, where, err, "not an item")
	}
	if ij.Channel == nil {
		return Item{}, s.errorf(CodeMalformed, where+".channel", "missing")
	}
	topic, err := ChannelTopic(*ij.Channel)
	if err != nil {
		return Item{}, s.wrap(CodeBadChannel, where+".channel", err, "channel %q", *ij.Channel)
	}
	it := Item{Channel: *ij.Channel, Topic: topic}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"id", ij.ID, &it.ID}, {"prev-id", ij.PrevID, &it.PrevID}} {
		if f.v == nil {
			continue
		}
		if len(*f.v) > maxItemIDLen {
			return Item{}, s.errorf(CodeMalformed, where+"."+f.name, "longer than %d bytes", maxItemIDLen)
		}
		*f.dst = *f.v
	}
	var stream json.RawMessage
	for name, v := range ij.Formats {
		switch {
		case name == "http-stream":
			stream = v
		case slices.Contains(ignoredFormats, name):
			it.Ignored = append(it.Ignored, name)
		default:
			return Item{}, s.errorf(CodeMalformed, where+".formats", "unknown format %q", name)
		}
	}
	slices.Sort(it.Ignored)
	if stream == nil {
		return Item{}, s.errorf(CodeUnsupported, where+".formats", "no http-stream format: sseedge delivers http-stream only")
	}
	where += ".formats.http-stream"
	var hs httpStreamJSON
	if err := strictJSON(stream, &hs); err != nil {
		return Item{}, s.wrap(CodeMalformed, where, err, "not an http-stream format")
	}
	if hs.ContentFilters != nil {
		return Item{}, s.errorf(CodeUnsupported, where+".content-filters", "content filters are not supported")
	}
	action := "send"
	if hs.Action != nil {
		action = *hs.Action
	}
	switch action {
	case "close":
		it.Action = ActionClose
		return it, nil
	case "send":
	case "hint", "refresh":
		return Item{}, s.errorf(CodeUnsupported, where+".action", "%q is not supported", action)
	default:
		return Item{}, s.errorf(CodeMalformed, where+".action", "%q is none of send, close", action)
	}
	var content []byte
	switch {
	case hs.ContentBin != nil: // as Pushpin, content-bin wins over content
		if content, err = base64.StdEncoding.DecodeString(*hs.ContentBin); err != nil {
			return Item{}, s.wrap(CodeMalformed, where+".content-bin", err, "not base64")
		}
	case hs.Content != nil:
		content = []byte(*hs.Content)
	default:
		return Item{}, s.errorf(CodeMalformed, where, "neither content nor content-bin")
	}
	if it.Events, err = parseSSE(content, lim, s, where+".content"); err != nil {
		return Item{}, err
	}
	return it, nil
}

// strictJSON decodes one JSON value into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
