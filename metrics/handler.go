package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Handler serves the exposition format of g (text, OpenMetrics or protobuf, as the scraper asks) for
// GET /metrics on the fasthttp API router. It goes through fasthttpadaptor because promhttp is a
// net/http handler; the adaptation costs an allocation or two per scrape, which is nothing at one
// scrape every few seconds. A collector that fails is reported and skipped rather than failing the
// whole scrape, and at most a few scrapes are served at once so a scrape storm cannot pile up.
func Handler(g prometheus.Gatherer) fasthttp.RequestHandler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		EnableOpenMetrics:   true,
	})
	return fasthttpadaptor.NewFastHTTPHandler(h)
}
