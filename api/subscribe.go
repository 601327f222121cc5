package api

import (
	"context"
	"encoding/json"
)

// A function can change the topics of its caller's stream in its answer, so that a "join room" function
// needs no second call: an async invocation with a client_id whose function answers 2xx with a JSON
// object holding "subscribe" and/or "unsubscribe" lists of topics has those applied to the client's live
// streams, on whichever nodes hold them, before its function_response is delivered (docs/functions.md).

// SubscribeFunc adds (add true) or removes topics in a client's stored server-side subscriptions and on
// its live streams, wherever it is connected.
type SubscribeFunc func(ctx context.Context, clientID string, add bool, topics []string) error

// resultSubscriptions is what the edge reads of a function's JSON answer.
type resultSubscriptions struct {
	Subscribe   []string `json:"subscribe"`
	Unsubscribe []string `json:"unsubscribe"`
}

// applyResultSubscriptions applies the subscribe and unsubscribe lists of a successful async result.
// A malformed list is logged and skipped, never a failure of the invocation.
func (a *API) applyResultSubscriptions(ctx context.Context, clientID string, msg FunctionResponse) {
	if a.subscribe == nil || msg.Status != "ok" || len(msg.Result) == 0 || msg.Result[0] != '{' {
		return
	}
	var rs resultSubscriptions
	if err := json.Unmarshal(msg.Result, &rs); err != nil {
		return // not an object with such fields: an answer like any other
	}
	for _, change := range []struct {
		add    bool
		topics []string
	}{{false, rs.Unsubscribe}, {true, rs.Subscribe}} {
		if len(change.topics) == 0 {
			continue
		}
		topics, bad := parseSubscriptionTopics(change.topics)
		if bad != nil {
			a.log.Warn("function answer: subscription list refused", "client_id", clientID, "add", change.add, "err", bad.msg)
			continue
		}
		if err := a.subscribe(ctx, clientID, change.add, topics); err != nil {
			a.log.Warn("function answer: subscription change not sent", "client_id", clientID, "add", change.add, "err", err)
		}
	}
}
