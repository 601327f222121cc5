package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// Multi-topic streams (issue 13): GET /subscribe?topic=/a&topic=/b and GET /sse/{clientId}?topic=/a read
// several topics on one connection, each event's id the stream's cursor over all of them; POST and
// DELETE /clients/{clientId}/subscriptions change a client's stored server-side topics and those of its
// live streams on every node; its streams opened later read the stored ones (subscribed).

// openTopics decides GET /subscribe?topic=…: a stream of several topics, authorized by a token whose
// topics cover every one.
func (c *Core) openTopics(_ context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
	spec := transport.Spec{Kind: transport.Topic}
	if r.Path != "/subscribe" { // the opener of the "/subscribe" prefix sees "/subscribers" too
		return spec, refusal(fasthttp.StatusNotFound, "not_found", "no route for GET "+r.Path)
	}
	query, bad := c.streamQuery(r, &spec)
	if bad != nil {
		return spec, bad
	}
	if bad = c.streamTopics(query, &spec); bad != nil {
		return spec, bad
	}
	if len(spec.Topics) == 0 {
		return spec, refusal(fasthttp.StatusBadRequest, "missing_topic", "GET /subscribe takes at least one ?topic=, or use GET /subscribe/{topic}")
	}
	var err error
	if spec.Meta, err = streamMeta(query, r.Header("X-User-ID")); err != nil {
		return spec, refusal(fasthttp.StatusBadRequest, "bad_metadata", err.Error())
	}
	claims, err := c.cfg.StreamAuth.AuthorizeTopic(streamToken(r, query), spec.Topics[0])
	if err == nil {
		err = coversTopics(claims, spec.Topics)
	}
	return c.authorized(spec, claims, err)
}

// streamTopics reads the ?topic= list of a stream request into spec (none: a single-key stream), with
// its envelope choice, and bounds its Last-Event-ID, which is then a cursor.
func (c *Core) streamTopics(query url.Values, spec *transport.Spec) *transport.Refusal {
	raw := query["topic"]
	if len(raw) == 0 {
		return nil
	}
	topics, err := fanout.NormalizeTopics(raw, c.cfg.MaxTopicsPerStream)
	switch {
	case errors.Is(err, fanout.ErrTooManyTopics):
		return refusal(fasthttp.StatusBadRequest, "too_many_topics", err.Error())
	case err != nil:
		return refusal(fasthttp.StatusBadRequest, "bad_topic", err.Error())
	}
	for _, t := range topics {
		if node.Reserved(t) {
			return refusal(fasthttp.StatusForbidden, "reserved_topic",
				"topics under "+node.ReservedTopicPrefix+" are read one at a time, with GET /subscribe/{topic} and the admin token")
		}
	}
	if len(spec.LastEventID) > fanout.MaxCursorLen {
		return refusal(fasthttp.StatusBadRequest, "cursor_too_long",
			fmt.Sprintf("Last-Event-ID of %d bytes, over the cursor bound of %d", len(spec.LastEventID), fanout.MaxCursorLen))
	}
	spec.Topics = topics
	switch query.Get("envelope") {
	case "1", "true":
		spec.Envelope = true
	}
	return nil
}

// subscribed gives an authorized client stream the client's stored server-side topics (those its URL
// does not name), within the stream's topic bound: the URL's topics come first, and stored ones past
// the bound are left out (logged), which a bounded store makes rare. A store that cannot be read leaves
// none (node.ClientSubscriptions logs and counts it): the stream opens on its URL's topics.
func (c *Core) subscribed(ctx context.Context, spec *transport.Spec) {
	stored := c.node.ClientSubscriptions(ctx, spec.Key)
	stored = slices.DeleteFunc(stored, func(t string) bool { return slices.Contains(spec.Topics, t) })
	if len(stored) == 0 {
		return
	}
	limit := c.cfg.MaxTopicsPerStream
	if limit <= 0 || limit > fanout.MaxTopicsPerStream {
		limit = fanout.MaxTopicsPerStream
	}
	if room := limit - len(spec.Topics); len(stored) > room {
		c.log.Warn("stream opens without some of its server-side subscriptions: over the topic bound",
			"client", spec.Key, "url_topics", len(spec.Topics), "stored", len(stored), "bound", limit)
		stored = stored[:max(room, 0)]
	}
	spec.Subscribed = stored
}

// coversTopics refuses, naming it, the first topic the claims do not allow. nil claims (stream auth
// off) allow all.
func coversTopics(claims *auth.Claims, topics []string) error {
	if claims == nil {
		return nil
	}
	for _, t := range topics {
		if !claims.AllowsTopic(t) {
			return fmt.Errorf("%w: topic %q", auth.ErrTopicDenied, t)
		}
	}
	return nil
}

// isStreamParam reports the query parameters of a stream request that are not connection metadata.
func isStreamParam(k string) bool {
	switch k {
	case "lastEventId", "token", "topic", "envelope":
		return true
	}
	return false
}

// subscriptionsBody is the body of POST and DELETE /clients/{clientId}/subscriptions.
type subscriptionsBody struct {
	Topics []string `json:"topics"`
}

// handleSubscriptions answers POST (add) and DELETE (remove) /clients/{clientId}/subscriptions, admin
// token required: the topics change the client's stored set, which its streams opened later read, and
// reach its live streams on whichever nodes hold them, bypassing its token's topics (the server
// decides). A client with no stream open is subscribed all the same: "streams" is then 0 on a node
// alone.
func (c *Core) handleSubscriptions(ctx *fasthttp.RequestCtx) {
	add := ctx.IsPost()
	refused := func(status int, code, msg string) {
		c.cfg.Metrics.ClientSubscriptionChange(false)
		httpjson.WriteError(ctx, status, code, msg)
	}
	id := userValue(ctx, "clientId")
	if err := clientid.Check(id); err != nil {
		refused(fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule)
		return
	}
	var body subscriptionsBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		refused(fasthttp.StatusBadRequest, "bad_json", "body must be {\"topics\": [...]}: "+err.Error())
		return
	}
	topics, bad := parseSubscriptionTopics(body.Topics)
	if bad != nil {
		refused(bad.status, bad.code, bad.msg)
		return
	}
	n, err := c.node.ChangeClientSubscriptions(context.Background(), id, add, topics)
	switch {
	case errors.Is(err, node.ErrTooManySubscriptions):
		refused(fasthttp.StatusBadRequest, "too_many_topics", err.Error())
		return
	case err != nil:
		refused(fasthttp.StatusServiceUnavailable, "state_unavailable", err.Error())
		return
	}
	c.cfg.Metrics.ClientSubscriptionChange(true)
	out := map[string]any{"client_id": id, "topics": topics}
	if add {
		out["subscribed"] = true
	} else {
		out["unsubscribed"] = true
	}
	if n >= 0 { // known only when the node is alone
		out["streams"] = n
	}
	httpjson.Write(ctx, fasthttp.StatusOK, out)
}

// parseSubscriptionTopics checks the topics of a server-side subscription change: one to
// fanout.MaxTopicsPerStream canonical topics, none of the node's own.
func parseSubscriptionTopics(raw []string) ([]string, *apiError) {
	if len(raw) == 0 {
		return nil, &apiError{fasthttp.StatusBadRequest, "missing_topic", "topics must list at least one topic"}
	}
	if len(raw) > fanout.MaxTopicsPerStream {
		return nil, &apiError{fasthttp.StatusBadRequest, "too_many_topics", fmt.Sprintf("%d topics, at most %d", len(raw), fanout.MaxTopicsPerStream)}
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		t, err := fanout.ParseTopic(r)
		if err != nil {
			return nil, &apiError{fasthttp.StatusBadRequest, "bad_topic", fmt.Sprintf("topic %q: %v", r, err)}
		}
		if node.Reserved(t) {
			return nil, &apiError{fasthttp.StatusForbidden, "reserved_topic", "topics under " + node.ReservedTopicPrefix + " are the edge's own"}
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}
