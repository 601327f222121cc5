// Package auth holds the two credentials of sseedge (see DESIGN.md, "Auth"):
//
//   - AdminAuth: the static ADMIN_TOKEN that admin and publish calls present as
//     "Authorization: Bearer <token>".
//   - StreamAuth: HS256-signed JWTs (TOKEN_SECRET) that stream requests present in X-Authorization or
//     ?token=, binding a client ID (sub) and the topic prefixes it may read (topics), with a required exp.
//
// Both are off when their secret is empty (the zero values allow everything), because the edge then
// serves loopback only. Every refusal is an *Error with an HTTP status and a stable code; see Code.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
)

// AdminAuth checks the bearer token of admin and publish calls. The zero value has no token configured
// and allows every call. It keeps only a SHA-256 digest of the token, so comparisons take the same time
// whatever the length or content of the presented token.
type AdminAuth struct {
	digest [sha256.Size]byte
	set    bool
}

// NewAdminAuth returns an AdminAuth for token (ADMIN_TOKEN). An empty token gives the zero value, which
// allows everything.
func NewAdminAuth(token string) AdminAuth {
	if token == "" {
		return AdminAuth{}
	}
	return AdminAuth{digest: sha256.Sum256([]byte(token)), set: true}
}

// Enabled reports whether a token is configured.
func (a AdminAuth) Enabled() bool { return a.set }

// Check verifies an Authorization header value, which must be "Bearer <ADMIN_TOKEN>" (scheme matched
// case-insensitively). It returns nil when no token is configured, ErrMissingToken when the header is
// absent, empty or not a bearer credential, and ErrBadToken when the token differs.
func (a AdminAuth) Check(authorizationHeader []byte) error {
	if !a.set {
		return nil
	}
	tok, ok := bearer(authorizationHeader)
	if !ok || len(tok) == 0 {
		return ErrMissingToken
	}
	got := sha256.Sum256(tok)
	if subtle.ConstantTimeCompare(got[:], a.digest[:]) != 1 {
		return ErrBadToken
	}
	return nil
}

// bearer extracts the credential of "Bearer <cred>" (RFC 6750; the scheme is case-insensitive,
// surrounding blanks are ignored). ok is false when h is not a bearer credential.
func bearer(h []byte) (cred []byte, ok bool) {
	h = bytes.TrimSpace(h)
	const scheme = "bearer"
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	if c := h[len(scheme)]; c != ' ' && c != '\t' {
		return nil, false
	}
	return bytes.TrimSpace(h[len(scheme):]), true
}
