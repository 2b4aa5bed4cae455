package middleware

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/multiapp-go/multiapp/middleware/internal/loginjar"
)

// safeReturnTo accepts only a same-origin path ("/reports?x=1") of at most
// loginjar.MaxReturnTo bytes (what a login transaction can carry): no scheme,
// no host, no "//" or "/\" prefix (which browsers read as another host), no
// backslash or control character anywhere, also after percent-decoding.
// Anything else yields ok=false.
func safeReturnTo(s string) (string, bool) {
	if s == "" || len(s) > loginjar.MaxReturnTo || s[0] != '/' {
		return "", false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "", false
	}
	if bad(s) {
		return "", false
	}
	if dec, err := url.PathUnescape(s); err != nil || bad(dec) || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	return s, true
}

func bad(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

// returnPath is where a sign-in started from r comes back to: r's path and
// query, or its path alone when they are too long to carry through the
// login (loginjar.MaxReturnTo), or "/".
func returnPath(r *http.Request) string {
	for _, p := range []string{r.URL.RequestURI(), r.URL.EscapedPath()} {
		if len(p) <= loginjar.MaxReturnTo {
			if rt, ok := safeReturnTo(p); ok {
				return rt
			}
		}
	}
	return "/"
}
