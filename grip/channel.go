package grip

import (
	"errors"
	"strings"

	"github.com/sseedge/sseedge/fanout"
)

// ChannelTopic maps a GRIP channel to the sseedge topic that carries it: the channel with a leading
// slash ("news" is "/news", "pets/dogs" is "/pets/dogs"). A channel is accepted only when that topic is
// valid and already canonical (fanout.ParseTopic returns it unchanged), so the map is one-to-one and
// TopicChannel reverses it: no empty channel, no leading or trailing slash, no empty, "." or ".."
// segment, no control character, at most fanout.MaxTopicLen-1 bytes and fanout.MaxTopicDepth segments.
//
// Topics are hierarchical, so a stream held on channel "pets" also receives what is published to
// channel "pets/dogs" (an ancestor's subscribers get its descendants' events), and the ordinary
// POST /publish/news reaches the streams held on channel "news".
func ChannelTopic(channel string) (string, error) {
	if channel == "" {
		return "", errors.New("empty channel")
	}
	if strings.HasPrefix(channel, "/") || strings.HasSuffix(channel, "/") {
		return "", errors.New("a channel neither starts nor ends with a slash")
	}
	want := "/" + channel
	topic, err := fanout.ParseTopic(want)
	if err != nil {
		return "", err
	}
	if topic != want {
		return "", errors.New("channel does not map to a canonical topic")
	}
	return topic, nil
}

// TopicChannel is the channel of a topic that ChannelTopic made: the topic without its leading slash.
func TopicChannel(topic string) string { return strings.TrimPrefix(topic, "/") }
