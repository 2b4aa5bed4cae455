package bearer

import (
	"errors"
	"strings"
	"testing"
)

// FuzzBearerHeader: any Authorization header and query string give either
// a token that is exactly what the client sent, or one of the two request
// errors; never a panic.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []struct{ h, q string }{
		{"Bearer abc.def.ghi", ""}, {"bearer  x", ""}, {"Bearer", ""}, {"Bearer a b", ""}, {"Basic dTpw", ""},
		{"", "access_token=abc"}, {"Bearer abc", "access_token=abc"}, {"", "access_token=a&access_token=b"},
		{"", "access%5Ftoken=abc"}, {"", "access_token=%zz"}, {"Bearer abc==", ""}, {"Bearer a=b", ""}, {"Bearer\tx", ""},
	} {
		f.Add(s.h, s.q, true)
		f.Add(s.h, s.q, false)
	}
	f.Fuzz(func(t *testing.T, header, query string, allowQuery bool) {
		var authz []string
		if header != "" {
			authz = []string{header}
		}
		tok, err := bearerToken(authz, query, allowQuery)
		if err != nil {
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("unexpected error %v", err)
			}
			if strings.Contains(err.Error(), header) && len(header) > 12 {
				t.Fatalf("the error echoes the header")
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") {
			t.Fatalf("token %q", tok)
		}
		fromHeader := strings.HasSuffix(header, tok) && len(header) > len(tok) && strings.EqualFold(strings.TrimRight(header[:len(header)-len(tok)], " "), "bearer")
		if !fromHeader && !(allowQuery && strings.Contains(query, "access")) {
			t.Fatalf("token %q from header %q query %q", tok, header, query)
		}
		if _, err2 := bearerToken(append(authz, header), query, allowQuery); header != "" && !errors.Is(err2, ErrBadRequest) {
			t.Fatalf("two Authorization headers accepted")
		}
	})
}

func TestB64Token(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "=": false, "abc": true, "a.b-c_d~e+f/g": true, "abc==": true, "ab=c": false, "a b": false, "ä": false,
	} {
		if b64token(s) != want {
			t.Errorf("b64token(%q) != %v", s, want)
		}
	}
}
