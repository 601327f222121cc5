package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// InvokeRequest is the body of POST /invoke/{name}.
type InvokeRequest struct {
	// Payload is any JSON; it becomes the function's request body. Absent: null.
	Payload json.RawMessage `json:"payload"`
	// ClientID is sent to the function as X-Client-Id; async results go to this client's stream.
	ClientID string `json:"client_id,omitempty"`
	// Async answers 202 at once and delivers the result as a function_response event.
	Async bool `json:"async,omitempty"`
	// Timeout overrides the function's timeout, in seconds (or a Go duration string).
	Timeout *registry.Duration `json:"timeout,omitempty"`
}

// FunctionResponse is the data of a function_response event: the outcome of an async invocation.
type FunctionResponse struct {
	InvocationID string `json:"invocation_id"`
	Function     string `json:"function"`
	// Status is "ok" for a 2xx/3xx answer, "error" otherwise.
	Status string `json:"status"`
	// HTTPStatus is the function's status; 0 when it never answered.
	HTTPStatus int `json:"http_status,omitempty"`
	// Result is the function's body: its JSON as is when it answered JSON, else a string.
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *ErrorInfo      `json:"error,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	Attempts   int             `json:"attempts"`
	TraceID    string          `json:"trace_id,omitempty"`
}

// ErrorInfo says why an invocation failed.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// InvokeAccepted is the body of a 202 answer to an async invoke.
type InvokeAccepted struct {
	InvocationID string `json:"invocation_id"`
}

// codeFunctionError marks an async result whose function answered with a 4xx or 5xx status.
const codeFunctionError = "function_error"

// invoke handles POST /invoke/{name}.
func (a *API) invoke(rc *fasthttp.RequestCtx) {
	if !a.bodyOK(rc) {
		return
	}
	in, ok := a.parseInvoke(rc)
	if !ok {
		return
	}
	fn, ok := a.lookup(rc)
	if !ok {
		return
	}
	req := invoker.Request{Payload: in.Payload, ClientID: in.ClientID, InvocationID: uuid.NewString()}
	if in.Timeout != nil {
		req.Timeout = in.Timeout.Std()
	}
	rc.Response.Header.Set(invocationIDHeader, req.InvocationID)

	if in.Async {
		a.invokeAsync(rc, fn, req)
		return
	}
	ctx := a.prop.Extract(rc, metrics.RequestHeaderCarrier{Header: &rc.Request.Header})
	res, err := a.inv.Invoke(ctx, fn, req)
	if err != nil {
		var ie *invoker.Error
		if !errors.As(err, &ie) {
			ie = &invoker.Error{Code: invoker.CodeUpstreamError, Message: err.Error()}
		}
		if ie.Attempts > 0 {
			rc.Response.Header.Set(invocationAttemptsHead, strconv.Itoa(ie.Attempts))
		}
		httpjson.WriteError(rc, StatusFor(ie.Code), string(ie.Code), ie.Error())
		return
	}
	rc.Response.Header.Set(invocationAttemptsHead, strconv.Itoa(res.Attempts))
	rc.SetStatusCode(res.Status)
	if res.ContentType != "" {
		rc.SetContentType(res.ContentType)
	}
	rc.SetBody(res.Body)
}

// parseInvoke reads and checks the invoke body, answering 400 itself when it is wrong.
func (a *API) parseInvoke(rc *fasthttp.RequestCtx) (InvokeRequest, bool) {
	var in InvokeRequest
	body := rc.PostBody()
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			var te *json.UnmarshalTypeError
			msg := err.Error()
			if errors.As(err, &te) && te.Field != "" {
				msg = fmt.Sprintf("field %s: cannot use %s here", te.Field, te.Value)
			}
			httpjson.WriteError(rc, fasthttp.StatusBadRequest, "bad_json", msg)
			return in, false
		}
	}
	if len(in.Payload) == 0 {
		in.Payload = json.RawMessage("null")
	}
	if in.Timeout != nil && (*in.Timeout <= 0 || in.Timeout.Std() > a.maxTO) {
		httpjson.WriteError(rc, fasthttp.StatusBadRequest, "invalid_timeout",
			fmt.Sprintf("field timeout: must be positive and at most %v", a.maxTO))
		return in, false
	}
	if in.ClientID != "" {
		if err := clientid.Check(in.ClientID); err != nil { // an async result for it could not be delivered
			httpjson.WriteError(rc, fasthttp.StatusBadRequest, "invalid_client_id", "field client_id: "+clientid.Rule)
			return in, false
		}
	}
	if in.Async && in.ClientID == "" {
		httpjson.WriteError(rc, fasthttp.StatusBadRequest, "client_id_required",
			"field client_id: required for async invocations (the result goes to that client's stream)")
		return in, false
	}
	return in, true
}

// invokeAsync answers 202 and runs the invocation in the background, bounded by MaxAsync.
func (a *API) invokeAsync(rc *fasthttp.RequestCtx, fn registry.Function, req invoker.Request) {
	ok, closing := a.async.Start()
	switch {
	case closing:
		httpjson.WriteError(rc, fasthttp.StatusServiceUnavailable, "shutting_down", "the edge is shutting down")
		return
	case !ok:
		httpjson.WriteError(rc, fasthttp.StatusTooManyRequests, "too_many_invocations",
			fmt.Sprintf("%d async invocations already in flight", a.async.Cap()))
		return
	}
	// Detached from the request (it outlives it) but carrying the caller's trace.
	ctx := a.prop.Extract(a.async.Context(), metrics.RequestHeaderCarrier{Header: &rc.Request.Header})
	go a.runAsync(ctx, fn, req)
	httpjson.Write(rc, fasthttp.StatusAccepted, InvokeAccepted{InvocationID: req.InvocationID})
}

// runAsync invokes fn and delivers the outcome, success or failure, to the client's stream.
func (a *API) runAsync(ctx context.Context, fn registry.Function, req invoker.Request) {
	defer a.async.Done()
	log := a.log.With("invocation_id", req.InvocationID, "function", fn.Name, "client_id", req.ClientID)
	defer func() {
		if p := recover(); p != nil {
			log.Error("async invocation panicked", "panic", p)
		}
	}()
	res, err := a.inv.Invoke(ctx, fn, req)
	msg := responseEvent(fn.Name, req.InvocationID, res, err)
	data, merr := json.Marshal(msg)
	if merr != nil { // cannot happen with these types; never drop the delivery anyway
		log.Error("encoding function_response failed", "err", merr)
		data, _ = json.Marshal(FunctionResponse{InvocationID: req.InvocationID, Function: fn.Name, Status: "error",
			Error: &ErrorInfo{Code: "encode_failed", Message: merr.Error()}})
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.deliverT)
	defer cancel()
	a.applyResultSubscriptions(dctx, req.ClientID, msg) // first: the client reads the new topics when it sees the result
	if err := a.deliver(dctx, req.ClientID, FunctionResponseEvent, data); err != nil {
		log.Error("delivering function_response failed", "err", err, "status", msg.Status)
		// The stream refused the event itself (a result too large to frame, say): the client still
		// learns how its invocation ended, as a small error event in its place.
		fallback, _ := json.Marshal(FunctionResponse{InvocationID: req.InvocationID, Function: fn.Name, Status: "error",
			DurationMS: msg.DurationMS, Attempts: msg.Attempts, TraceID: msg.TraceID,
			Error: &ErrorInfo{Code: "delivery_failed", Message: err.Error()}})
		if ferr := a.deliver(dctx, req.ClientID, FunctionResponseEvent, fallback); ferr != nil {
			log.Error("delivering the delivery_failed event failed too", "err", ferr)
		}
		return
	}
	if msg.Error != nil {
		log.Warn("async invocation failed", "code", msg.Error.Code, "attempts", msg.Attempts)
	}
}

// responseEvent builds the function_response event of an invocation's outcome.
func responseEvent(fnName, invocationID string, res invoker.Result, err error) FunctionResponse {
	out := FunctionResponse{InvocationID: invocationID, Function: fnName}
	if err != nil {
		var ie *invoker.Error
		if !errors.As(err, &ie) {
			ie = &invoker.Error{Code: invoker.CodeUpstreamError, Message: err.Error()}
		}
		out.Status = "error"
		out.HTTPStatus = ie.Status
		out.Error = &ErrorInfo{Code: string(ie.Code), Message: ie.Message}
		out.DurationMS = ie.Duration.Milliseconds()
		out.Attempts = ie.Attempts
		out.TraceID = ie.TraceID
		return out
	}
	out.Status = "ok"
	out.HTTPStatus = res.Status
	out.Result = resultJSON(res.ContentType, res.Body)
	out.DurationMS = res.Duration.Milliseconds()
	out.Attempts = res.Attempts
	out.TraceID = res.TraceID
	if res.Status >= 400 {
		out.Status = "error"
		out.Error = &ErrorInfo{Code: codeFunctionError, Message: fmt.Sprintf("function returned %d", res.Status)}
	}
	return out
}

// resultJSON passes a JSON body through as is and turns anything else into a JSON string.
func resultJSON(contentType string, body []byte) json.RawMessage {
	if len(body) == 0 {
		return json.RawMessage("null")
	}
	if isJSON(contentType) && json.Valid(body) {
		return json.RawMessage(body)
	}
	s, _ := json.Marshal(string(body)) // a string always encodes
	return s
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// StatusFor maps an invocation failure to the HTTP status of a synchronous answer.
func StatusFor(code invoker.Code) int {
	switch code {
	case invoker.CodeCircuitOpen, invoker.CodeNoHealthyEndpoint, invoker.CodeCanceled:
		return fasthttp.StatusServiceUnavailable
	case invoker.CodeTimeout:
		return fasthttp.StatusGatewayTimeout
	case invoker.CodeUpstreamError, invoker.CodeResponseTooLarge:
		return fasthttp.StatusBadGateway
	default:
		return fasthttp.StatusInternalServerError
	}
}
