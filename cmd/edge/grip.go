package main

import (
	"fmt"
	"log/slog"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/transport"
)

// gripSetup is GRIP_KEY read: the signer of calls to GRIP functions and the verifier of control JWTs,
// both nil when GRIP is off (no key).
type gripSetup struct {
	signer   *grip.Signer
	verifier *grip.ControlVerifier
}

func newGripSetup(cfg *config) (gripSetup, error) {
	if cfg.GripKey == "" {
		return gripSetup{}, nil
	}
	key, err := grip.ParseKey(cfg.GripKey)
	if err != nil {
		return gripSetup{}, fmt.Errorf("GRIP_KEY: %w", err)
	}
	signer, err := grip.NewSigner(key, 0)
	if err != nil {
		return gripSetup{}, fmt.Errorf("GRIP_KEY: %w", err)
	}
	verifier, err := grip.NewControlVerifier(key, "")
	if err != nil {
		return gripSetup{}, fmt.Errorf("GRIP_KEY: %w", err)
	}
	return gripSetup{signer: signer, verifier: verifier}, nil
}

// publishHandler is POST /publish/ in GRIP's format: authorized by the admin token or a control JWT
// signed with GRIP_KEY, open like every API route on a node without an admin token.
func (g gripSetup) publishHandler(cfg *config, n api.TopicPublisher, log *slog.Logger, m *metrics.Metrics) (fasthttp.RequestHandler, error) {
	var authz *grip.Authorizer
	if cfg.AdminToken != "" {
		authz = &grip.Authorizer{AdminToken: cfg.AdminToken, Verifier: g.verifier}
	}
	p, err := api.NewGripPublish(api.GripPublishConfig{Node: n, Authorizer: authz, Logger: log, Metrics: m})
	if err != nil {
		return nil, err
	}
	return p.Serve, nil
}

// mount adds /grip/{fn}/{path…} to r when GRIP is on: an answer may name MAX_TOPICS_PER_STREAM
// channels at most.
func (g gripSetup) mount(r *router.Router, cfg *config, fns *functions, holder transport.Holder, log *slog.Logger, m *metrics.Metrics) error {
	if g.signer == nil {
		log.Info("GRIP_KEY is not set: /grip/ is off")
		return nil
	}
	gr, err := api.NewGrip(api.GripConfig{Store: fns.store, Invoker: fns.inv, Holder: holder, Signer: g.signer, Logger: log, Metrics: m,
		Limits: grip.Limits{MaxChannels: cfg.MaxTopicsPerStream}}) // a held stream reads that many topics at most
	if err != nil {
		return err
	}
	gr.Register(r)
	return nil
}
