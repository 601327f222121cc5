package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// Limits on what a stream request may carry as metadata.
const (
	maxMetaFields    = 16
	maxMetaValueSize = 256
)

// openClient decides GET /sse/{clientId}: a client's personal stream, authorized by a token whose sub
// is the client ID. Query parameters (but for the resume and auth ones) and X-User-ID become metadata.
// The client's stored server-side subscriptions (Subscribed) are read once it is authorized.
func (c *Core) openClient(ctx context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
	spec := transport.Spec{Kind: transport.Client, Key: strings.TrimPrefix(r.Path, "/sse/")} // r.Path is canonical
	if err := clientid.Check(spec.Key); err != nil {
		return spec, refusal(fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule)
	}
	query, bad := c.streamQuery(r, &spec)
	if bad != nil {
		return spec, bad
	}
	if bad = c.streamTopics(query, &spec); bad != nil { // ?topic=: the personal stream plus topics
		return spec, bad
	}
	var err error
	if spec.Meta, err = streamMeta(query, r.Header("X-User-ID")); err != nil {
		return spec, refusal(fasthttp.StatusBadRequest, "bad_metadata", err.Error())
	}
	claims, err := c.cfg.StreamAuth.AuthorizeClient(streamToken(r, query), spec.Key)
	if err == nil {
		err = coversTopics(claims, spec.Topics)
	}
	spec, no := c.authorized(spec, claims, err)
	if no == nil {
		c.subscribed(ctx, &spec)
	}
	return spec, no
}

// openTopic decides GET /subscribe/{topic...}: a topic stream, authorized by a token whose topics cover
// the topic. The node's own topics (node.ReservedTopicPrefix) take the admin token instead.
func (c *Core) openTopic(ctx context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
	if r.Path == "/subscribe" { // the router's /subscribe/{topic:*} takes it too
		return c.openTopics(ctx, r)
	}
	spec := transport.Spec{Kind: transport.Topic}
	var err error
	if spec.Key, err = fanout.ParseTopic(strings.TrimPrefix(r.Path, "/subscribe")); err != nil {
		return spec, refusal(fasthttp.StatusBadRequest, "bad_topic", err.Error())
	}
	query, bad := c.streamQuery(r, &spec)
	if bad != nil {
		return spec, bad
	}
	token := streamToken(r, query)
	if node.Reserved(spec.Key) {
		if admin := c.cfg.Auth.AdminToken; admin.Enabled() {
			err = admin.Check([]byte("Bearer " + token))
		}
		return c.authorized(spec, nil, err)
	}
	claims, err := c.cfg.StreamAuth.AuthorizeTopic(token, spec.Key)
	return c.authorized(spec, claims, err)
}

// streamQuery parses a stream request's query and its resume point: Last-Event-ID, or ?lastEventId= for
// clients that cannot set headers.
func (c *Core) streamQuery(r transport.Request, spec *transport.Spec) (url.Values, *transport.Refusal) {
	query, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		return nil, refusal(fasthttp.StatusBadRequest, "bad_query", "malformed query string")
	}
	spec.LastEventID = r.Header("Last-Event-ID")
	if spec.LastEventID == "" {
		spec.LastEventID = query.Get("lastEventId")
	}
	return query, nil
}

// streamToken is a stream request's token: X-Authorization, or ?token= for EventSource, which cannot set
// headers.
func streamToken(r transport.Request, query url.Values) string {
	return auth.TokenFrom([]byte(r.Header("X-Authorization")), []byte(query.Get("token")))
}

// authorized is spec with its token's deadline, or the refusal of err.
func (c *Core) authorized(spec transport.Spec, claims *auth.Claims, err error) (transport.Spec, *transport.Refusal) {
	if err != nil {
		status, code := auth.Code(err)
		return spec, refusal(status, code, err.Error())
	}
	spec.Expires = transport.UnixDeadline(c.cfg.StreamAuth.Deadline(claims))
	return spec, nil
}

// holdStream is the route of a stream path, for stream requests on keep-alive API connections: the same
// opener decides, and the transport takes the connection back.
func (c *Core) holdStream(open transport.Opener) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		header := func(name string) string { return string(ctx.Request.Header.Peek(name)) }
		spec, no := open(context.Background(), transport.Request{Path: string(ctx.Path()), RawQuery: string(ctx.URI().QueryString()), Header: header})
		if no != nil {
			ctx.SetStatusCode(no.Status)
			ctx.SetContentType(no.ContentType)
			ctx.SetBody(no.Body)
			return
		}
		if c.transport == nil {
			httpjson.WriteError(ctx, fasthttp.StatusServiceUnavailable, "no_transport", "streams are not served here")
			return
		}
		c.transport.HoldStream(ctx, spec)
	}
}

// refusal is a JSON error answer for the transport to write.
func refusal(status int, code, msg string) *transport.Refusal {
	body, _ := json.Marshal(httpjson.ErrorBody{Error: msg, Code: code}) // two strings always encode
	return &transport.Refusal{Status: status, ContentType: "application/json", Body: body}
}

// streamMeta turns query parameters (but for the resume, auth and topic ones, isStreamParam) and X-User-ID into metadata.
func streamMeta(query url.Values, userID string) (map[string]string, error) {
	var meta map[string]string
	put := func(k, v string) error {
		if len(v) > maxMetaValueSize || len(k) > maxMetaValueSize {
			return fmt.Errorf("metadata %q longer than %d bytes", k, maxMetaValueSize)
		}
		if meta == nil {
			meta = make(map[string]string, len(query)+1)
		}
		if len(meta) == maxMetaFields {
			return fmt.Errorf("more than %d metadata fields", maxMetaFields)
		}
		meta[k] = v
		return nil
	}
	for k, vs := range query {
		if isStreamParam(k) {
			continue
		}
		if err := put(k, vs[0]); err != nil {
			return nil, err
		}
	}
	if userID != "" {
		if err := put("user_id", userID); err != nil {
			return nil, err
		}
	}
	return meta, nil
}
