package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("test-secret-of-reasonable-length!")

func mustSign(t testing.TB, sub string, topics ...string) string {
	t.Helper()
	tok, err := Sign(testSecret, sub, topics, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsAt builds claims expiring at exp.
func claimsAt(sub string, exp time.Time, topics ...string) *Claims {
	return &Claims{Topics: topics, RegisteredClaims: jwt.RegisteredClaims{
		Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}}
}

func wantErr(t *testing.T, err, sentinel error, status int, code string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if s, c := Code(err); s != status || c != code {
		t.Fatalf("Code(%v) = %d %q, want %d %q", err, s, c, status, code)
	}
}

func TestAdminAuth(t *testing.T) {
	var zero AdminAuth
	if zero.Enabled() || zero.Check(nil) != nil || NewAdminAuth("").Check([]byte("junk")) != nil {
		t.Fatal("zero/empty AdminAuth must allow everything")
	}
	a := NewAdminAuth("s3cret")
	for _, h := range []string{"Bearer s3cret", "bearer s3cret", "BEARER \t s3cret  ", "  Bearer s3cret"} {
		if err := a.Check([]byte(h)); err != nil {
			t.Errorf("Check(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"", "   ", "Bearer", "Bearer ", "Basic s3cret", "s3cret", "Bearers3cret"} {
		wantErr(t, a.Check([]byte(h)), ErrMissingToken, 401, "admin_token_missing")
	}
	for _, h := range []string{"Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "Bearer " + strings.Repeat("x", 10000)} {
		wantErr(t, a.Check([]byte(h)), ErrBadToken, 401, "admin_token_invalid")
	}
}

func TestStreamAuthOff(t *testing.T) {
	for _, s := range []*StreamAuth{nil, {}, NewStreamAuth(nil)} {
		if s.Enabled() {
			t.Fatal("enabled without a secret")
		}
		if c, err := s.AuthorizeClient("", "c1"); c != nil || err != nil {
			t.Fatalf("AuthorizeClient = %v, %v", c, err)
		}
		if c, err := s.AuthorizeTopic("garbage", "/x"); c != nil || err != nil {
			t.Fatalf("AuthorizeTopic = %v, %v", c, err)
		}
	}
}

func TestStreamAuthValid(t *testing.T) {
	s := NewStreamAuth(testSecret)
	tok := mustSign(t, "c1", "/pets")
	c, err := s.AuthorizeClient(tok, "c1")
	if err != nil || c.Subject != "c1" || len(c.Topics) != 1 {
		t.Fatalf("AuthorizeClient = %+v, %v", c, err)
	}
	if _, err := s.AuthorizeTopic(tok, "/pets/dogs"); err != nil {
		t.Fatal(err)
	}
}

func TestStreamAuthMissing(t *testing.T) {
	s := NewStreamAuth(testSecret)
	_, err := s.AuthorizeClient("", "c1")
	wantErr(t, err, ErrTokenMissing, 401, "token_missing")
	_, err = s.AuthorizeTopic("", "/pets")
	wantErr(t, err, ErrTokenMissing, 401, "token_missing")
}

// hmacToken signs header and claims with HMAC-SHA256 whatever alg the header names.
func hmacToken(header map[string]any, claims any, secret []byte) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(header) + "." + enc(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestStreamAuthInvalid(t *testing.T) {
	s := NewStreamAuth(testSecret)
	future := time.Now().Add(time.Hour)
	good := claimsAt("c1", future, "/")

	wrongSig, _ := signClaims([]byte("another-secret"), good)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, good).SignedString(testSecret)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, good).SignedString(key)
	// Algorithm confusion: header says RS256 but the signature is a valid HMAC with our secret.
	rsHeaderHMAC := hmacToken(map[string]any{"alg": "RS256", "typ": "JWT"}, good, testSecret)
	noneHeaderHMAC := hmacToken(map[string]any{"alg": "none"}, good, testSecret)
	noExp, _ := signClaims(testSecret, &Claims{Topics: []string{"/"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "c1"}})
	notYet, _ := signClaims(testSecret, &Claims{Topics: []string{"/"}, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "c1", ExpiresAt: jwt.NewNumericDate(future), NotBefore: jwt.NewNumericDate(future.Add(-time.Minute))}})
	badTopics := hmacToken(map[string]any{"alg": "HS256"}, map[string]any{"sub": "c1", "exp": future.Unix(), "topics": "/"}, testSecret)
	parts := strings.Split(mustSign(t, "c1", "/"), ".")
	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","topics":["/"],"exp":9999999999}`)) + "." + parts[2]

	cases := map[string]string{
		"garbage":          "not-a-jwt",
		"two parts":        "a.b",
		"wrong signature":  wrongSig,
		"alg none":         none,
		"alg none + hmac":  noneHeaderHMAC,
		"HS512":            hs512,
		"RS256":            rs256,
		"RS256 + hmac":     rsHeaderHMAC,
		"no exp":           noExp,
		"not yet valid":    notYet,
		"topics not list":  badTopics,
		"tampered payload": tamperedPayload,
		"too long":         strings.Repeat("a", MaxTokenLen+1),
		"empty signature":  parts[0] + "." + parts[1] + ".",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.AuthorizeClient(tok, "c1")
			wantErr(t, err, ErrTokenInvalid, 401, "token_invalid")
			_, err = s.AuthorizeTopic(tok, "/x")
			wantErr(t, err, ErrTokenInvalid, 401, "token_invalid")
		})
	}
}

func TestStreamAuthExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	tok, err := signClaims(testSecret, claimsAt("c1", now.Add(-10*time.Second), "/"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewStreamAuth(testSecret, WithClock(clock)).AuthorizeClient(tok, "c1")
	wantErr(t, err, ErrTokenExpired, 401, "token_expired")
	if !strings.Contains(err.Error(), "new token") || !strings.Contains(err.Error(), "not retry blindly") {
		t.Errorf("expired message should tell the client what to do: %q", err)
	}
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Error("cause should stay reachable")
	}
	// 10s past exp is within a 15s leeway, outside the default 5s.
	if _, err := NewStreamAuth(testSecret, WithClock(clock), WithLeeway(15*time.Second)).AuthorizeClient(tok, "c1"); err != nil {
		t.Errorf("within leeway: %v", err)
	}
	// Just expired, within the default leeway.
	fresh, _ := signClaims(testSecret, claimsAt("c1", now.Add(-2*time.Second), "/"))
	if _, err := NewStreamAuth(testSecret, WithClock(clock)).AuthorizeClient(fresh, "c1"); err != nil {
		t.Errorf("within default leeway: %v", err)
	}
	_, err = NewStreamAuth(testSecret, WithClock(clock), WithLeeway(0)).AuthorizeClient(fresh, "c1")
	wantErr(t, err, ErrTokenExpired, 401, "token_expired")
	// An expired token with a bad signature is invalid, not expired: expiry is only reported for
	// genuine tokens.
	forged, _ := signClaims([]byte("other"), claimsAt("c1", now.Add(-time.Hour), "/"))
	_, err = NewStreamAuth(testSecret, WithClock(clock)).AuthorizeClient(forged, "c1")
	wantErr(t, err, ErrTokenInvalid, 401, "token_invalid")
}

func TestStreamAuthWrongSubject(t *testing.T) {
	s := NewStreamAuth(testSecret)
	_, err := s.AuthorizeClient(mustSign(t, "c1", "/"), "c2")
	wantErr(t, err, ErrWrongSubject, 403, "token_wrong_subject")
	_, err = s.AuthorizeClient(mustSign(t, "", "/"), "")
	wantErr(t, err, ErrWrongSubject, 403, "token_wrong_subject")
	_, err = s.AuthorizeClient(mustSign(t, "C1", "/"), "c1")
	wantErr(t, err, ErrWrongSubject, 403, "token_wrong_subject")
}

func TestStreamAuthTopics(t *testing.T) {
	s := NewStreamAuth(testSecret)
	cases := []struct {
		prefixes []string
		topic    string
		ok       bool
	}{
		{[]string{"/pets"}, "/pets", true},
		{[]string{"/pets"}, "/pets/dogs", true},
		{[]string{"/pets"}, "/pets/dogs/rex", true},
		{[]string{"/pets"}, "pets/dogs", true},
		{[]string{"/pets"}, "/pets/", true},
		{[]string{"/pets"}, "//pets//dogs", true},
		{[]string{"pets/"}, "/pets/cats", true},
		{[]string{"/pets"}, "/petsitters", false},
		{[]string{"/pets"}, "/pet", false},
		{[]string{"/pets"}, "/Pets", false},
		{[]string{"/pets"}, "/", false},
		{[]string{"/pets"}, "", false},
		{[]string{"/pets"}, "/other/pets", false},
		{[]string{"/pets"}, "/pets/../admin", false},
		{[]string{"/pets"}, "/pets/./dogs", false},
		{[]string{"/pets/dogs"}, "/pets", false},
		{[]string{"/pets/dogs"}, "/pets/cats", false},
		{[]string{"/pets/dogs"}, "/pets/dogs/rex", true},
		{[]string{"/a", "/b"}, "/b/c", true},
		{[]string{"/"}, "/anything/at/all", true},
		{[]string{"*"}, "/anything", true},
		{[]string{"*"}, "/", true},
		{[]string{"/"}, "/x/../y", false},
		{[]string{""}, "/pets", false},
		{[]string{"  "}, "/pets", false},
		{nil, "/pets", false},
		{[]string{"/pets*"}, "/pets/dogs", false},
	}
	for _, tc := range cases {
		_, err := s.AuthorizeTopic(mustSign(t, "c1", tc.prefixes...), tc.topic)
		if tc.ok && err != nil {
			t.Errorf("%q on %q: %v", tc.prefixes, tc.topic, err)
		}
		if !tc.ok {
			if !errors.Is(err, ErrTopicDenied) {
				t.Errorf("%q on %q: err = %v, want topic denied", tc.prefixes, tc.topic, err)
			} else if st, code := Code(err); st != 403 || code != "token_topic_denied" {
				t.Errorf("Code = %d %q", st, code)
			}
		}
	}
	var nilClaims *Claims
	if nilClaims.AllowsTopic("/") {
		t.Error("nil claims must allow nothing")
	}
}

func TestTokenFrom(t *testing.T) {
	cases := []struct{ header, query, want string }{
		{"Bearer abc", "", "abc"},
		{"bearer  abc ", "q", "abc"},
		{"abc", "q", "abc"},
		{"  abc  ", "", "abc"},
		{"", "q", "q"},
		{"   ", " q ", "q"},
		{"", "", ""},
	}
	for _, tc := range cases {
		if got := TokenFrom([]byte(tc.header), []byte(tc.query)); got != tc.want {
			t.Errorf("TokenFrom(%q, %q) = %q, want %q", tc.header, tc.query, got, tc.want)
		}
	}
}

func TestCode(t *testing.T) {
	if s, c := Code(nil); s != 200 || c != "" {
		t.Errorf("Code(nil) = %d %q", s, c)
	}
	if s, c := Code(errors.New("x")); s != http.StatusInternalServerError || c != "internal_error" {
		t.Errorf("Code(other) = %d %q", s, c)
	}
	wrapped := errors.Join(errors.New("ctx"), ErrTopicDenied.with(errors.New("cause")))
	if s, c := Code(wrapped); s != 403 || c != "token_topic_denied" {
		t.Errorf("Code(wrapped) = %d %q", s, c)
	}
	if errors.Is(ErrTokenInvalid, ErrTokenExpired) {
		t.Error("distinct codes must not match")
	}
}

func TestSign(t *testing.T) {
	if _, err := Sign(nil, "c", nil, time.Minute); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := Sign(testSecret, "c", nil, 0); err == nil {
		t.Error("zero ttl accepted")
	}
	c, err := NewStreamAuth(testSecret).AuthorizeClient(mustSign(t, "c9", "/a", "/b"), "c9")
	if err != nil || c.ExpiresAt == nil || c.IssuedAt == nil || len(c.Topics) != 2 {
		t.Fatalf("claims = %+v, %v", c, err)
	}
}

// validHS256 independently checks that tok is HS256-headed and HMAC-signed with secret.
func validHS256(tok string, secret []byte) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return false
	}
	var h struct{ Alg string }
	if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	return hmac.Equal(sig, m.Sum(nil))
}

func FuzzStreamToken(f *testing.F) {
	valid, _ := Sign(testSecret, "c1", []string{"/pets"}, time.Hour)
	other, _ := Sign([]byte("other"), "c1", []string{"/"}, time.Hour)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt("c1", time.Now().Add(time.Hour), "/")).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{"", ".", "..", "a.b.c", "Bearer x", valid, other, none, valid + "x", valid[:len(valid)-1]} {
		f.Add(s, "c1", "/pets/dogs")
	}
	s := NewStreamAuth(testSecret)
	f.Fuzz(func(t *testing.T, tok, clientID, topic string) {
		_ = TokenFrom([]byte(tok), []byte(topic))
		_ = NewAdminAuth(clientID).Check([]byte(tok))
		c1, err1 := s.AuthorizeClient(tok, clientID)
		c2, err2 := s.AuthorizeTopic(tok, topic)
		for _, err := range []error{err1, err2} {
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || (e.Status != 401 && e.Status != 403) {
				t.Fatalf("untyped or odd error %v", err)
			}
		}
		if (err1 == nil || err2 == nil) && !validHS256(tok, testSecret) {
			t.Fatalf("authorized a token without a valid HS256 signature: %q", tok)
		}
		if err1 == nil && c1.Subject != clientID {
			t.Fatalf("sub %q authorized for %q", c1.Subject, clientID)
		}
		if err2 == nil && !c2.AllowsTopic(topic) {
			t.Fatalf("topic %q authorized", topic)
		}
	})
}
