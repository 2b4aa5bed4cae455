package middleware

import (
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/multiapp-go/multiapp/internal/httpx"
)

func jsonError(rw http.ResponseWriter, status int, code, description string) {
	httpx.Fail(rw, status, code, description)
}

// page writes a small HTML page; title and message are escaped (they may
// carry the OP's error_description).
func (w *Web) page(rw http.ResponseWriter, status int, title, message string) {
	noStore(rw)
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	rw.WriteHeader(status)
	fmt.Fprintf(rw, pageHTML, html.EscapeString(title), html.EscapeString(title), html.EscapeString(message), html.EscapeString(w.prefix+"/login"))
}

const pageHTML = `<!doctype html><html><head><meta charset="utf-8"><title>%s</title>
<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}a{color:#2457d6}</style>
</head><body><h1>%s</h1><p>%s</p><p><a href="%s">Sign in again</a></p></body></html>`

const logoutForm = `<!doctype html><html><head><meta charset="utf-8"><title>Sign out</title>
<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1rem}</style>
</head><body><h1>Sign out</h1><p>This signs you out of every app that shares your sign-in.</p>
<form method="post" action="%s"><button type="submit">Sign out</button></form></body></html>`

// containsToken reports whether a comma-separated header lists media type
// mt (parameters ignored).
func containsToken(header, mt string) bool {
	for _, part := range strings.Split(header, ",") {
		if v, _, _ := strings.Cut(part, ";"); strings.EqualFold(strings.TrimSpace(v), mt) {
			return true
		}
	}
	return false
}
