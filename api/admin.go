package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/transport"
)

// connectionInfo is one row of GET /admin/connections.
type connectionInfo struct {
	ID         uint64            `json:"id"`
	Kind       string            `json:"kind"`
	ClientID   string            `json:"client_id,omitempty"`
	Topic      string            `json:"topic,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	RemoteAddr string            `json:"remote_addr"`
	OpenedAt   string            `json:"opened_at"`
	AgeSeconds float64           `json:"age_seconds"`
}

// handleConnections lists streams by ascending ID: ?kind=sse|topic, ?limit= (default 100, at most 1000),
// ?after=<id> for the next page.
func (c *Core) handleConnections(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	limit := 100
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_limit", "limit must be 1-1000")
			return
		}
		limit = n
	}
	var after uint64
	if v := args.Peek("after"); len(v) > 0 {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_after", "after must be a connection ID")
			return
		}
		after = n
	}
	kind := string(args.Peek("kind"))
	if kind != "" && kind != "sse" && kind != "topic" {
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_kind", "kind must be sse or topic")
		return
	}
	var all []transport.Conn
	if c.transport != nil {
		all = c.transport.Connections()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	now := time.Now()
	rows := make([]connectionInfo, 0, min(limit, len(all)))
	var next uint64
	for _, st := range all {
		if st.ID <= after || (kind != "" && st.Kind.String() != kind) {
			continue
		}
		if len(rows) == limit {
			next = rows[len(rows)-1].ID
			break
		}
		row := connectionInfo{ID: st.ID, Kind: st.Kind.String(), Metadata: st.Meta, RemoteAddr: st.Remote,
			OpenedAt: st.Opened.UTC().Format(time.RFC3339), AgeSeconds: now.Sub(st.Opened).Seconds()}
		if st.Kind == transport.Topic {
			row.Topic = st.Key
		} else {
			row.ClientID = st.Key
		}
		rows = append(rows, row)
	}
	stats := c.stats()
	body := map[string]any{
		"node_id":     c.node.ID(),
		"counts":      map[string]int64{"sse": stats.ClientStreams, "topic": stats.TopicStreams, "total": stats.ClientStreams + stats.TopicStreams},
		"connections": rows,
	}
	if next != 0 {
		body["next_after"] = next
	}
	if nodes, err := c.node.NodeCounts(ctx); err != nil {
		body["nodes_error"] = err.Error()
	} else if nodes != nil {
		body["nodes"] = nodes
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}

// statusPage is the status page: one self-contained HTML document, inline style and script, no build
// step. It is served with a Content-Security-Policy that allows exactly its own inline style and script
// (by hash), so that a piece of data the page renders could never run even if it slipped through. It
// reads the node's snapshots from node.StatusTopic.
//
//go:embed status.html
var statusPage []byte

var statusCSP = "default-src 'none'; " +
	"script-src '" + inlineHash(statusPage, "script") + "'; " +
	"style-src '" + inlineHash(statusPage, "style") + "'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash is the CSP source ("sha256-...") of the content of the one <tag> element of page.
func inlineHash(page []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	i := bytes.Index(page, open)
	j := bytes.Index(page, end)
	if i < 0 || j < i || bytes.Count(page, open) != 1 {
		panic("api: status.html must hold exactly one <" + tag + "> element")
	}
	sum := sha256.Sum256(page[i+len(open) : j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// redirectToStatusPage answers GET /admin (the router holds /admin/ and /admin in one node) with a
// relative Location, never one built from the Host header.
func redirectToStatusPage(ctx *fasthttp.RequestCtx) {
	loc := "/admin/"
	if q := ctx.URI().QueryString(); len(q) > 0 {
		loc += "?" + string(q)
	}
	ctx.Response.Header.Set("Location", loc)
	ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
}

func handleStatusPage(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentType("text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer") // the page's URL may carry ?token=
	ctx.SetBody(statusPage)
}
