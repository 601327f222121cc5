package api

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/transport"
)

// handleTokenRefresh answers POST /sse/{clientId}/token, authorized by the new token (Authorization:
// Bearer, or X-Authorization as on streams): it must be valid, unexpired and for this client. The
// deadline of the client's live streams on every node becomes the new token's.
func (c *Core) handleTokenRefresh(ctx *fasthttp.RequestCtx) {
	refused := func(status int, code, msg string) {
		c.cfg.Metrics.StreamTokenRefresh(false)
		httpjson.WriteError(ctx, status, code, msg)
	}
	id := userValue(ctx, "clientId")
	if err := clientid.Check(id); err != nil {
		refused(fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule)
		return
	}
	if !c.cfg.StreamAuth.Enabled() {
		refused(fasthttp.StatusNotFound, "token_auth_off", "stream tokens are off (no TOKEN_SECRET): streams do not expire")
		return
	}
	token := auth.TokenFrom(ctx.Request.Header.Peek("X-Authorization"), nil)
	if token == "" {
		token = auth.TokenFrom(ctx.Request.Header.Peek("Authorization"), nil)
	}
	claims, err := c.cfg.StreamAuth.AuthorizeClient(token, id)
	if err != nil {
		status, code := auth.Code(err)
		refused(status, code, err.Error())
		return
	}
	exp := transport.UnixDeadline(c.cfg.StreamAuth.Deadline(claims))
	// Not the RequestCtx as parent: a timeout derived from it would cost a goroutine.
	n, err := c.node.RefreshClient(context.Background(), id, transport.AppendGrant(nil, exp, claims.Topics))
	if err != nil {
		refused(fasthttp.StatusServiceUnavailable, "state_unavailable", err.Error())
		return
	}
	if n == 0 {
		refused(fasthttp.StatusNotFound, "no_stream", "no stream of client "+id+" is open")
		return
	}
	c.cfg.Metrics.StreamTokenRefresh(true)
	body := map[string]any{"client_id": id, "expires_at": time.Unix(int64(exp), 0).UTC().Format(time.RFC3339)}
	if n > 0 { // known only when the node is alone
		body["streams"] = n
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}
