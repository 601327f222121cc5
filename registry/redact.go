package registry

import (
	"net/url"
	"strings"
)

// RedactedValue replaces every secret in a redacted function.
const RedactedValue = "[redacted]"

// Redacted returns a copy of f fit to show: the values of headers whose names look secret
// (Authorization, or containing token, key, secret, password, cookie, credential; any case), the
// password of URLs with user info, and query parameters with such names are replaced by
// "[redacted]". The API answers with it; the original stays in the store for the invoker.
func (f Function) Redacted() Function {
	f = f.Clone()
	for name := range f.Headers {
		if SecretName(name) {
			f.Headers[name] = RedactedValue
		}
	}
	f.Endpoint = RedactURL(f.Endpoint)
	for i, ep := range f.Endpoints {
		f.Endpoints[i] = RedactURL(ep)
	}
	f.HealthEndpoint = RedactURL(f.HealthEndpoint)
	return f
}

// SecretName reports whether a header or parameter called name probably carries a secret.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, word := range []string{"authorization", "token", "key", "secret", "password", "passwd", "cookie", "credential", "signature"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// RedactURL hides the password of user info and the values of secret-looking query parameters.
func RedactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return RedactedValue
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), RedactedValue)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for name := range q {
			if SecretName(name) {
				q[name] = []string{RedactedValue}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	return u.String()
}
