// Package cookie writes the cookies of multiapp (session handle, login
// transactions) with one policy: HttpOnly, SameSite=Lax, Secure and the
// __Host- prefix except on plain-http localhost development.
package cookie

import (
	"net/http"
	"strings"
	"time"
)

// Policy holds the attributes shared by every cookie of one app.
type Policy struct {
	// Secure marks cookies Secure (https only). Name adds the __Host- prefix
	// when it is set.
	Secure bool
}

// Name returns the cookie name for base under this policy: "__Host-"+base
// when Secure (the browser then enforces Secure, Path=/ and no Domain, so a
// sibling subdomain cannot plant or overwrite it).
func (p Policy) Name(base string) string {
	if p.Secure && !strings.HasPrefix(base, "__Host-") {
		return "__Host-" + base
	}
	return base
}

// Set writes a cookie that lives for maxAge (0: a browser-session cookie).
func (p Policy) Set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   p.Secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
		c.Expires = time.Now().Add(maxAge)
	}
	http.SetCookie(w, c)
}

// Clear tells the browser to drop the cookie.
func (p Policy) Clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		HttpOnly: true,
		Secure:   p.Secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
	})
}

// IsLocalDev reports whether a plain-http URL host is a loopback name, where
// browsers do not send Secure cookies and development must still work.
func IsLocalDev(host string) bool {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "::1" || strings.HasPrefix(h, "127.")
}
