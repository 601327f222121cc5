// Package httpjson writes the JSON bodies of the sseedge REST API: results as JSON, and every error in
// the one shape DESIGN.md promises, {"error": "...", "code": "..."}, with a 4xx or 5xx status.
package httpjson

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// ErrorBody is the body of every API error.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Write answers status with v encoded as JSON.
func Write(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteError(ctx, fasthttp.StatusInternalServerError, "encode_failed", err.Error())
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// WriteError answers status with {"error": msg, "code": code}.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	body, _ := json.Marshal(ErrorBody{Error: msg, Code: code}) // two strings always encode
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
