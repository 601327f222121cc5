package grip

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParseKey(t *testing.T) {
	for in, want := range map[string]string{"secret": "secret", "base64:c2VjcmV0": "secret", "base64:": ""} {
		got, err := ParseKey(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %q", in, got)
			}
			continue
		}
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseKey("base64:!!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestSigner(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	s, err := NewSigner([]byte("k"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return at }
	sig, err := s.Sign()
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(sig, &claims, func(*jwt.Token) (any, error) { return []byte("k"), nil },
		jwt.WithTimeFunc(func() time.Time { return at }), jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !tok.Valid {
		t.Fatal(err)
	}
	if claims.Issuer != "sseedge" || !claims.ExpiresAt.Equal(at.Add(DefaultSigTTL)) || !claims.IssuedAt.Equal(at) {
		t.Errorf("claims %+v", claims)
	}
	if _, err := NewSigner(nil, 0); err == nil {
		t.Error("empty key accepted")
	}
}

func TestControlVerifier(t *testing.T) {
	key := []byte("control-key")
	now := time.Unix(1_700_000_000, 0)
	sign := func(method jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := now.Add(10 * time.Minute).Unix()
	good := sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "publisher", "exp": exp})
	v, err := NewControlVerifier(key, "")
	if err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return now }
	c, err := v.Verify(good)
	if err != nil || c.Issuer != "publisher" || c.ExpiresAt.Unix() != exp {
		t.Fatalf("%+v %v", c, err)
	}
	for name, tok := range map[string]string{
		"wrong key":         sign(jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"iss": "publisher", "exp": exp}),
		"expired":           sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "publisher", "exp": now.Add(-time.Minute).Unix()}),
		"no exp":            sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "publisher"}),
		"no iss":            sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": exp}),
		"the edge's own":    sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": Issuer, "exp": exp}),
		"HS512":             sign(jwt.SigningMethodHS512, key, jwt.MapClaims{"iss": "publisher", "exp": exp}),
		"alg none":          sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"iss": "publisher", "exp": exp}),
		"not a JWT":         "control-key",
		"a signed Grip-Sig": func() string { s, _ := NewSigner(key, 0); s.now = v.now; sig, _ := s.Sign(); return sig }(),
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	pinned, err := NewControlVerifier(key, "realm")
	if err != nil {
		t.Fatal(err)
	}
	pinned.now = v.now
	if _, err := pinned.Verify(good); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("another issuer than the pinned one: %v", err)
	}
	if _, err := NewControlVerifier(key, Issuer); err == nil {
		t.Error("a verifier pinned to the edge's own issuer")
	}
}

func TestAuthorizer(t *testing.T) {
	v, err := NewControlVerifier([]byte("k"), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "p", "exp": time.Now().Add(time.Minute).Unix()}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	a := Authorizer{AdminToken: "admin", Verifier: v}
	for h, ok := range map[string]bool{
		"Bearer admin": true, "bearer admin": true, "Bearer " + tok: true,
		"": false, "Bearer": false, "Bearer ": false, "Basic YTpi": false, "Bearer admin2": false, "admin": false,
	} {
		err := a.Authorize(h)
		if ok != (err == nil) {
			t.Errorf("%q: %v", h, err)
		}
		var ge *Error
		if err != nil && (!errors.As(err, &ge) || ge.Status != 401) {
			t.Errorf("%q: %v, want a 401 *Error", h, err)
		}
	}
	if err := (Authorizer{AdminToken: "admin"}).Authorize("Bearer " + tok); err == nil {
		t.Error("a control JWT accepted without a verifier")
	}
	if err := (Authorizer{Verifier: v}).Authorize("Bearer "); err == nil {
		t.Error("an empty admin token matched")
	}
}
