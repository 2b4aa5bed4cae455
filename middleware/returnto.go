package middleware

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds the return path kept in a login transaction.
const maxReturnTo = 2048

// safeReturnTo accepts only a same-origin path ("/reports?x=1"): no scheme,
// no host, no "//" or "/\" prefix (which browsers read as another host), no
// backslash or control character anywhere, also after percent-decoding.
// Anything else yields ok=false.
func safeReturnTo(s string) (string, bool) {
	if s == "" || len(s) > maxReturnTo || s[0] != '/' {
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
