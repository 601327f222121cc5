package invoker

import "github.com/sseedge/sseedge/metrics"

// HeaderCarrier is metrics.RequestHeaderCarrier, kept under its old name for existing callers.
//
// Deprecated: use metrics.RequestHeaderCarrier.
type HeaderCarrier = metrics.RequestHeaderCarrier
