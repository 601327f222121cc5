package metrics

import "github.com/valyala/fasthttp"

// RejectReasonOf maps a refusal's status to its label of sseedge_requests_rejected_total.
func RejectReasonOf(status int) RejectReason {
	switch status {
	case fasthttp.StatusUnauthorized:
		return RejectUnauthorized
	case fasthttp.StatusForbidden:
		return RejectForbidden
	case fasthttp.StatusNotFound:
		return RejectNotFound
	case fasthttp.StatusTooManyRequests:
		return RejectRateLimited
	case fasthttp.StatusRequestEntityTooLarge, fasthttp.StatusRequestHeaderFieldsTooLarge:
		return RejectTooLarge
	}
	return RejectBadRequest
}
