package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// FunctionView is a registered function as the admin API shows it: secrets redacted, with the
// live health of its endpoints.
type FunctionView struct {
	registry.Function
	Health invoker.FunctionHealth `json:"health"`
}

// FunctionList is the body of GET /admin/functions.
type FunctionList struct {
	Functions []FunctionView `json:"functions"`
	Count     int            `json:"count"`
}

func (a *API) view(fn registry.Function) FunctionView {
	return FunctionView{Function: fn.Redacted(), Health: a.inv.HealthFor(fn)}
}

// bodyOK answers 413 and returns false when the request body is over the limit.
func (a *API) bodyOK(rc *fasthttp.RequestCtx) bool {
	if len(rc.PostBody()) > a.maxBody {
		httpjson.WriteError(rc, fasthttp.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body larger than %d bytes", a.maxBody))
		return false
	}
	return true
}

// createFunction handles POST /admin/functions: create (201) or replace (200) a function.
func (a *API) createFunction(rc *fasthttp.RequestCtx) {
	if !a.bodyOK(rc) {
		return
	}
	fn, err := registry.DecodeFunction(rc.PostBody())
	var fe *registry.FieldError
	switch {
	case errors.As(err, &fe):
		httpjson.WriteError(rc, fasthttp.StatusBadRequest, "invalid_function", fe.Error())
		return
	case err != nil:
		httpjson.WriteError(rc, fasthttp.StatusBadRequest, "bad_json", err.Error())
		return
	}
	if a.checkEndpoint != nil {
		for _, target := range append(fn.Targets(), fn.HealthEndpoint) {
			if target == "" || strings.HasPrefix(target, "/") {
				continue
			}
			if err := a.checkEndpoint(rc, target); err != nil {
				httpjson.WriteError(rc, fasthttp.StatusBadRequest, "endpoint_refused", "field endpoint: "+err.Error())
				return
			}
		}
	}
	status := fasthttp.StatusOK
	if _, err := a.store.Get(rc, fn.Name); errors.Is(err, registry.ErrNotFound) {
		status = fasthttp.StatusCreated
	} else if err != nil {
		a.storeError(rc, "get", err)
		return
	}
	if err := a.store.Put(rc, fn); err != nil {
		if errors.As(err, &fe) {
			httpjson.WriteError(rc, fasthttp.StatusBadRequest, "invalid_function", fe.Error())
			return
		}
		a.storeError(rc, "put", err)
		return
	}
	a.log.Info("function registered", "function", fn.Name, "endpoints", len(fn.Targets()), "created", status == fasthttp.StatusCreated)
	httpjson.Write(rc, status, fn.Redacted())
}

// listFunctions handles GET /admin/functions.
func (a *API) listFunctions(rc *fasthttp.RequestCtx) {
	fns, err := a.store.List(rc)
	if err != nil {
		a.storeError(rc, "list", err)
		return
	}
	out := FunctionList{Functions: make([]FunctionView, 0, len(fns)), Count: len(fns)}
	for _, fn := range fns {
		out.Functions = append(out.Functions, a.view(fn))
	}
	httpjson.Write(rc, fasthttp.StatusOK, out)
}

// getFunction handles GET /admin/functions/{name}.
func (a *API) getFunction(rc *fasthttp.RequestCtx) {
	fn, ok := a.lookup(rc)
	if !ok {
		return
	}
	httpjson.Write(rc, fasthttp.StatusOK, a.view(fn))
}

// deleteFunction handles DELETE /admin/functions/{name}: 204, and the function's breakers and
// health are forgotten.
func (a *API) deleteFunction(rc *fasthttp.RequestCtx) {
	name := userValue(rc, "name")
	err := a.store.Delete(rc, name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		notFound(rc, name)
		return
	case err != nil:
		a.storeError(rc, "delete", err)
		return
	}
	a.inv.Forget(name)
	a.log.Info("function deleted", "function", name)
	rc.SetStatusCode(fasthttp.StatusNoContent)
}

// lookup fetches the function named in the path, answering 404 or 500 itself when it cannot.
func (a *API) lookup(rc *fasthttp.RequestCtx) (registry.Function, bool) {
	name := userValue(rc, "name")
	if !registry.ValidName(name) {
		notFound(rc, name)
		return registry.Function{}, false
	}
	fn, err := a.store.Get(rc, name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		notFound(rc, name)
		return registry.Function{}, false
	case err != nil:
		a.storeError(rc, "get", err)
		return registry.Function{}, false
	}
	return fn, true
}

func notFound(rc *fasthttp.RequestCtx, name string) {
	httpjson.WriteError(rc, fasthttp.StatusNotFound, "not_found", fmt.Sprintf("function %q is not registered", name))
}

func (a *API) storeError(rc *fasthttp.RequestCtx, op string, err error) {
	a.log.Error("function registry failed", "op", op, "err", err)
	if errors.Is(err, registry.ErrUnavailable) {
		httpjson.WriteError(rc, fasthttp.StatusServiceUnavailable, "state_unavailable", "function registry unavailable: "+err.Error())
		return
	}
	httpjson.WriteError(rc, fasthttp.StatusInternalServerError, "registry_error", "function registry failed")
}
