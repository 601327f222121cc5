// Package cors is the one CORS policy of a node (CORS_ORIGINS), read by the transport for stream
// response heads and by the API for its responses.
package cors

// Policy lists the allowed origins; "*" alone allows any. The zero value allows any origin.
type Policy struct {
	origins []string
}

// New is the policy of origins; none means any.
func New(origins []string) Policy {
	if len(origins) == 0 {
		origins = []string{"*"}
	}
	return Policy{origins: origins}
}

// Any reports whether every origin is allowed (the wildcard): responses then say "*" rather than echo
// the origin, and carry no credentials.
func (p Policy) Any() bool {
	return len(p.origins) == 0 || len(p.origins) == 1 && p.origins[0] == "*"
}

// Allowed reports whether origin may read responses (and open streams).
func (p Policy) Allowed(origin string) bool {
	if p.Any() {
		return true
	}
	for _, o := range p.origins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// AppendHeaders appends the CORS response header lines (each ending in CRLF) for origin to a raw
// response head, or nothing if origin is empty or not allowed.
func (p Policy) AppendHeaders(b []byte, origin string) []byte {
	if origin == "" || !p.Allowed(origin) {
		return b
	}
	if p.Any() {
		return append(b, "Access-Control-Allow-Origin: *\r\n"...)
	}
	b = append(b, "Access-Control-Allow-Origin: "...)
	b = append(b, origin...)
	return append(b, "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"...)
}
