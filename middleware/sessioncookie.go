package middleware

import (
	"encoding/base64"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/ttlcache"
)

// openedCookiesSize bounds the cache of opened session cookies: about
// 300 bytes an entry, so 3 MB at most. A browser whose entry was evicted
// pays one full opening again.
const openedCookiesSize = 10_000

// openedCookies remembers the session id inside each session cookie this
// instance opened, keyed by the cookie's raw value, so that a warm
// session's requests skip securecookie (a MAC, a decryption, base64 and
// JSON: most of Require's time and allocations).
//
// It cannot weaken what opening checks. A value is only cached after
// securecookie accepted it, and what a sealed value opens to never changes
// while the keys do not (a key rotation builds a new Web, so a new cache);
// a tampered, truncated or foreign value is a different key, so a miss
// that securecookie then refuses. What a value opens to may expire, and an
// entry dies no later than that: at the cookie's own age limit (its sealed
// timestamp plus SessionLifetime, securecookie's MaxAge), by the same clock
// securecookie uses. The cache holds no session state: every request still
// reads the session from the store, so a session deleted, revoked, idle
// or expired there is refused on its next request exactly as without it.
//
// Lookups hash the value with a per-process random seed and compare the
// whole value on a hash match (a collision is a miss), as rp's cache of
// verified tokens does: one mechanism, internal/ttlcache.
type openedCookies struct {
	c      *ttlcache.Cache[string]
	maxAge int64 // seconds; 0: securecookie bounds no age, so nothing is cached
}

func newOpenedCookies(lifetime time.Duration) openedCookies {
	return openedCookies{c: ttlcache.New[string](openedCookiesSize), maxAge: int64(lifetime / time.Second)}
}

// get returns the session id that value opened to, if it is cached and
// its cookie has not expired.
func (o openedCookies) get(value string) (string, bool) {
	return o.c.Get(ttlcache.Hash(value), value, time.Now().Unix())
}

// put remembers that value, which securecookie just accepted, opens to id.
func (o openedCookies) put(value, id string) {
	sealed, ok := sealedAt(value)
	if !ok || o.maxAge <= 0 {
		return
	}
	// securecookie accepts the value until sealed+maxAge inclusive; the
	// entry dies at that second, which is never later.
	o.c.Put(ttlcache.Hash(value), value, id, sealed+o.maxAge, time.Now().Unix())
}

// sealedAt reads the timestamp that securecookie sealed into value (unix
// seconds): the value is base64url("date|ciphertext|mac"), its first bytes
// the decimal date. Called only on a value securecookie accepted, so the
// date is authentic.
func sealedAt(value string) (int64, bool) {
	if len(value) < 16 {
		return 0, false
	}
	var head [12]byte // 16 base64 characters: the date (at most 11 digits until year 5138) and its '|'
	if _, err := base64.URLEncoding.Decode(head[:], []byte(value[:16])); err != nil {
		return 0, false
	}
	date, _, ok := strings.Cut(string(head[:]), "|")
	if !ok {
		return 0, false
	}
	t, err := strconv.ParseInt(date, 10, 64)
	return t, err == nil
}

// maxCookies is net/http's default bound on the cookies of a request
// (GODEBUG httpcookiemaxnum): a request with more has none for
// Request.Cookie.
const maxCookies = 3000

// cookieValue returns the value of the first valid cookie named name in
// the request's Cookie headers: what Request.Cookie(name) returns, without
// its allocations (a slice and a Cookie per request). It follows
// net/http's parsing: parts separated by ';' and trimmed, a name that is a
// token, double quotes around the value stripped, a part whose value has a
// byte a cookie value cannot have skipped, no cookie at all beyond
// maxCookies (FuzzCookieValue compares the two).
func cookieValue(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return "", false
	}
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return "", false
	}
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name || !isToken(name) {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if !cookieValueByte[v[i]] {
			return false
		}
	}
	return true
}

// cookieValueByte: the bytes a cookie value may have (net/http's rule: a
// printable ASCII character other than '"', ';' and a backslash), a table so that
// a 200-byte session cookie is checked in a few dozen nanoseconds.
var cookieValueByte = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != ';' && b != '\\'
	}
	return t
}()

// isToken: s is an RFC 9110 token, which a cookie name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}
