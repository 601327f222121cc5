package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/transport"
)

// A multi-topic stream (transport.Spec.Topics) holds one subscription per topic it reads, plus its
// client's own key: the transport subscribes each with SubscribeAt, from the position its cursor holds
// for it or, where it holds none, from Latest, so the cursor names a position in every key from the
// start. Server-side subscriptions (ChangeClientSubscriptions) reach a client's live streams on every
// node as a refresh of its key, the way a token refresh does, and are kept (SubscriptionStore) for the
// streams it opens later.

// Latest is the position a new subscription of key starts from (fanout.Hub.Latest): the ID of its
// newest retained event, "" when none.
func (n *Node) Latest(ctx context.Context, kind transport.Kind, key string) (string, error) {
	id, err := n.hubs[kind].Latest(ctx, key)
	if err != nil {
		n.cfg.Metrics.TopicPositionFailed()
		return "", fmt.Errorf("node: %w", err)
	}
	return id, nil
}

// SubscribeAt is Subscribe for one subscription of a multi-topic stream: it resumes after position
// ("" reads live events only) and returns what the replay did, so that the stream can name the topic
// of a reset itself.
func (n *Node) SubscribeAt(kind transport.Kind, key string, sub fanout.Subscriber, position string) (*fanout.Subscription, fanout.Replay) {
	sc, replay := n.hubs[kind].Subscribe(key, sub, position != "", position)
	n.cfg.Metrics.EventsReplayed(replay.Frames)
	if replay.Reset {
		n.cfg.Metrics.StreamReset()
		n.log.Debug("resume gap", "stream", kind.String(), "key", key, "last_event_id", position, "reason", replay.Reason)
	}
	return sc, replay
}

// ChangeClientSubscriptions adds (add true) or removes topics, canonical, in the client's stored set
// (Config.Subscriptions) and on its live streams on every node. reached is the count of local streams,
// -1 when other nodes may hold some. The stored set is what a stream of the client opened later reads
// beside its URL's topics (ClientSubscriptions); an add past Config.MaxTopicsPerStream topics wraps
// ErrTooManySubscriptions and changes nothing.
func (n *Node) ChangeClientSubscriptions(ctx context.Context, clientID string, add bool, topics []string) (reached int, err error) {
	if err := clientid.Check(clientID); err != nil {
		return 0, fmt.Errorf("node: %w", err)
	}
	if add {
		err = n.subs.Add(ctx, clientID, topics, n.cfg.MaxTopicsPerStream)
	} else {
		err = n.subs.Remove(ctx, clientID, topics)
	}
	if err != nil {
		if !errors.Is(err, ErrTooManySubscriptions) {
			n.cfg.Metrics.TopicSubsChangeFailed()
		}
		return 0, fmt.Errorf("node: subscriptions of %q: %w", clientID, err)
	}
	reached, err = n.hubs[transport.Client].Refresh(ctx, clientID, transport.AppendSubsChange(nil, add, topics))
	if err != nil {
		n.cfg.Metrics.TopicSubsChangeFailed()
		return 0, fmt.Errorf("node: subscription change of %q: %w", clientID, err)
	}
	return reached, nil
}

// ClientSubscriptions is the client's stored server-side topics, for a stream of its that opens (which
// renews them). The read is bounded by Config.SubscriptionReadTimeout; when it fails the stream opens
// without them (the caller logs nothing: this does, and counts it), so a Redis away never refuses a
// stream.
func (n *Node) ClientSubscriptions(ctx context.Context, clientID string) []string {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SubscriptionReadTimeout)
	defer cancel()
	topics, err := n.subs.Get(ctx, clientID)
	if err != nil {
		n.cfg.Metrics.SubscriptionReadFailed()
		n.log.Warn("stream opens without its server-side subscriptions", "client", clientID, "err", err)
		return nil
	}
	return topics
}
