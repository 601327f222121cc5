package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// Transport is what the node's own endpoints need of the transport that holds streams; *edge.Server
// implements it.
type Transport interface {
	transport.Holder
	Stats() transport.Stats
	Connections() []transport.Conn
}

// HealthCheck is one part's say in GET /admin/health: its report goes under Name in the body, and a part
// that is not OK turns the answer into 503 (status "<name>_down"), so a load balancer drains the node.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) (report any, ok bool)
}

// CoreConfig configures the node's own endpoints. Node is required.
type CoreConfig struct {
	Node       *node.Node
	Auth       Auth
	StreamAuth *auth.StreamAuth // stream tokens; nil: streams open
	CORS       cors.Policy
	State      string // where the node's state lives, for GET /admin/health: "memory" (default) or "redis"
	Health     []HealthCheck
	Logger     *slog.Logger
	Metrics    *metrics.Metrics // nil records nothing
	// MaxTopicsPerStream bounds the ?topic= list of one stream (MAX_TOPICS_PER_STREAM); 0 or over
	// fanout.MaxTopicsPerStream means that ceiling.
	MaxTopicsPerStream int
	// GripPublish, when set, answers POST /publish/ (the empty topic, otherwise a 400) with its own
	// authorization: GRIP publishing (GripPublish.Serve).
	GripPublish fasthttp.RequestHandler
}

// Core serves the node's own endpoints: streams (GET /sse/{clientId}, GET /subscribe/{topic}), publishing
// (POST /publish/{topic}, POST /clients/{clientId}/events), token refreshes, GET /admin/health,
// GET /admin/connections and the status page. Register its routes, then Attach the transport before it
// serves.
type Core struct {
	cfg       CoreConfig
	node      *node.Node
	log       *slog.Logger
	transport Transport
}

// NewCore builds the endpoints of n.
func NewCore(cfg CoreConfig) *Core {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Core{cfg: cfg, node: cfg.Node, log: cfg.Logger}
}

// Register adds the routes to r, each wrapped in the token it needs. Stream paths are routes too, for
// stream requests that arrive on a keep-alive API connection: the transport takes the connection back.
func (c *Core) Register(r *router.Router) {
	a := c.cfg.Auth
	r.GET("/sse/{clientId}", c.holdStream(c.openClient))
	r.POST("/sse/{clientId}/token", c.handleTokenRefresh) // authorized by the new stream token itself
	r.GET("/subscribe/{topic:*}", c.holdStream(c.openTopic))
	// GET /subscribe?topic=… and POST /publish {"items"}: the router cannot hold "/subscribe" or
	// "/publish" beside their catch-alls (it refuses the route, then matches neither), so its not-found
	// answer takes them first.
	multi, batch, notFound := c.holdStream(c.openTopics), a.Admin(c.handlePublishBatch), r.NotFound
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		switch path := string(ctx.Path()); {
		case ctx.IsGet() && path == "/subscribe":
			multi(ctx)
		case ctx.IsPost() && path == "/publish":
			batch(ctx)
		default:
			notFound(ctx)
		}
	}
	r.POST("/publish/{topic:*}", c.routePublish(a.Admin(c.handlePublish)))
	r.POST("/clients/{clientId}/events", a.Admin(c.handleClientEvent))
	r.POST("/clients/{clientId}/subscriptions", a.Admin(c.handleSubscriptions))
	r.DELETE("/clients/{clientId}/subscriptions", a.Admin(c.handleSubscriptions))
	r.GET("/admin/health", c.handleHealth) // open: load balancers probe it
	r.GET("/admin/connections", a.Admin(c.handleConnections))
	r.GET("/admin/", a.StatusPage(handleStatusPage))
}

// routePublish sends POST /publish/ (no topic) to GRIP publishing when it is configured, and every
// other topic to publish, which takes the admin token.
func (c *Core) routePublish(publish fasthttp.RequestHandler) fasthttp.RequestHandler {
	gripPublish := c.cfg.GripPublish
	if gripPublish == nil {
		return publish
	}
	return func(ctx *fasthttp.RequestCtx) {
		if userValue(ctx, "topic") == "" {
			gripPublish(ctx)
			return
		}
		publish(ctx)
	}
}

// Attach hands the transport to the endpoints and has it read the stream paths itself on fresh
// connections. Call it once, before the transport serves.
func (c *Core) Attach(t Transport) {
	c.transport = t
	t.HandleStreams("/sse/", c.openClient)
	t.HandleStreams("/subscribe/", c.openTopic)
	t.HandleStreams("/subscribe", c.openTopics) // ?topic=…; shorter, so tried after "/subscribe/"
}

// NewRouter is the router of the API, with its not-found, method and panic answers in the API's JSON
// error shape. It never redirects by itself (its redirects would be absolute URLs built from the Host
// header); GET /admin redirects to the status page with a relative Location.
func NewRouter(log *slog.Logger) *router.Router {
	if log == nil {
		log = slog.Default()
	}
	r := router.New()
	r.RedirectTrailingSlash, r.RedirectFixedPath = false, false
	r.GlobalOPTIONS = handlePreflight
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		if ctx.IsGet() && string(ctx.Path()) == "/admin" {
			redirectToStatusPage(ctx)
			return
		}
		httpjson.WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no route for "+string(ctx.Method())+" "+string(ctx.Path()))
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		httpjson.WriteError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", string(ctx.Method())+" not allowed on "+string(ctx.Path()))
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		log.Error("api handler panic", "path", string(ctx.Path()), "panic", v)
		httpjson.WriteError(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
	}
	return r
}

// handleHealth answers GET /admin/health: 200 while the node serves, 503 while it drains or a part
// reports it unfit (its bus is down).
func (c *Core) handleHealth(ctx *fasthttp.RequestCtx) {
	status, code := "ok", fasthttp.StatusOK
	st := c.stats()
	if st.Draining {
		status, code = "draining", fasthttp.StatusServiceUnavailable
	}
	started := c.node.Started()
	body := map[string]any{
		"node_id":        c.node.ID(),
		"started_at":     started.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(started).Seconds()),
		"streams":        map[string]int64{"sse": st.ClientStreams, "topic": st.TopicStreams, "total": st.ClientStreams + st.TopicStreams},
	}
	body["state"] = c.cfg.State
	if c.cfg.State == "" {
		body["state"] = "memory"
	}
	for _, h := range c.cfg.Health {
		report, ok := h.Check(ctx)
		body[h.Name] = report
		if !ok && code == fasthttp.StatusOK {
			status, code = h.Name+"_down", fasthttp.StatusServiceUnavailable
		}
	}
	body["status"] = status
	httpjson.Write(ctx, code, body)
}

func (c *Core) stats() transport.Stats {
	if c.transport == nil {
		return transport.Stats{}
	}
	return c.transport.Stats()
}

func userValue(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}
