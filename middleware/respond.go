package middleware

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/httpx"
	"github.com/multiapp-go/multiapp/rp"
)

func jsonError(rw http.ResponseWriter, status int, code, description string) {
	httpx.Fail(rw, status, code, description)
}

// page writes a small HTML page; title, message and detail are escaped
// (they may carry the OP's error_description). detail, when given, is a
// developer's explanation (see devDetails).
func (w *Web) page(rw http.ResponseWriter, status int, title, message string, detail ...string) {
	noStore(rw)
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	rw.WriteHeader(status)
	var dev string
	for _, d := range detail {
		if d != "" {
			dev += `<p class="dev">` + html.EscapeString(d) + `</p>`
		}
	}
	fmt.Fprintf(rw, pageHTML, html.EscapeString(title), html.EscapeString(title), html.EscapeString(message), dev, html.EscapeString(w.prefix+"/login"))
}

const pageStyle = `body{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222;overflow-wrap:normal;word-break:normal}` +
	`a{color:#2457d6}button{font:inherit;padding:.5rem 1rem}.dev{font-size:14px;color:#555;border-left:3px solid #ccc;padding-left:.75rem}`

const pageHTML = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title>
<style>` + pageStyle + `</style>
</head><body><h1>%s</h1><p>%s</p>%s<p><a href="%s">Sign in again</a> · <a href="/">Back to the home page</a></p></body></html>`

// devDetails explains a failure to the developer running the app over
// plain http on this machine: the reason code and the log event that has
// the full error. Elsewhere it says nothing (the reason is in the logs).
func (w *Web) devDetails(reason string, name event.Name) string {
	if !w.dev || reason == "" {
		return ""
	}
	return fmt.Sprintf("For the developer: reason %s; the server logged the details as the event %s (shown because this app runs over plain http on this machine).", reason, name)
}

// reason is the stable code of a failure, the same in logs, pages and
// JSON answers.
func reason(err error) string {
	var (
		oe *rp.OPError
		ve *rp.ValidationError
		te *rp.TemporaryError
		se *storeFailure
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errRefreshPending):
		return "refresh_in_progress"
	case errors.As(err, &se):
		return "store_unavailable"
	case errors.As(err, &oe):
		switch oe.Code {
		case "invalid_client":
			return "client_rejected"
		case "unauthorized_client":
			return "client_not_allowed"
		case "invalid_grant":
			return "grant_refused"
		}
		return "op_error_" + oe.Code
	case errors.As(err, &ve) && rp.ClassOf(err) == rp.ClassRevoked:
		return "identity_changed"
	case errors.As(err, &ve):
		return "invalid_" + ve.What
	case errors.As(err, &te):
		switch {
		case te.Status == http.StatusTooManyRequests:
			return "op_rate_limited"
		case te.Status >= 500:
			return "op_unavailable"
		case te.Status != 0:
			return "op_malformed_answer"
		case errors.Is(err, context.DeadlineExceeded):
			return "op_timeout"
		}
		return "op_unreachable"
	case errors.Is(err, ErrSignedOut):
		return "signed_out"
	}
	return rp.ClassOf(err).String()
}

// failureEvent names the event that has the details of a failure a
// request is answered with.
func failureEvent(err error) event.Name {
	switch reason(err) {
	case "store_unavailable":
		return event.StoreUnavailable
	case "refresh_in_progress":
		return event.Refresh
	}
	return refreshFailed(err)
}

// refreshFailed names the event of a refresh that failed with err, by
// its class.
func refreshFailed(err error) event.Name {
	switch rp.ClassOf(err) {
	case rp.ClassRevoked:
		return event.RefreshRevoked
	case rp.ClassMisconfigured:
		return event.RefreshMisconfigured
	case rp.ClassInvalid:
		return event.RefreshInvalid
	}
	return event.RefreshTemporary
}

// unavailableText tells the user what kept the request from being served.
func unavailableText(reason string) string {
	const kept = " You are still signed in; please try again shortly."
	switch reason {
	case "store_unavailable":
		return "The session store cannot be reached right now." + kept
	case "refresh_in_progress":
		return "Your session is being renewed with the sign-in service." + kept
	case "op_unavailable", "op_unreachable", "op_timeout":
		return "The sign-in service is not answering, so your session could not be renewed." + kept
	case "op_rate_limited":
		return "The sign-in service asked this site to slow down, so your session could not be renewed yet." + kept
	case "op_malformed_answer":
		return "The sign-in service gave an answer this site could not use, so your session could not be renewed." + kept
	case "client_rejected", "client_not_allowed":
		return "The sign-in service refused this site's credentials, so your session cannot be renewed. The site's operators must fix its configuration; your session is kept meanwhile."
	}
	return "Your session could not be renewed right now." + kept
}

// storeFailure marks an error of the session store, as the middleware
// passes it on (inside an *rp.TemporaryError).
type storeFailure struct{ err error }

func (e *storeFailure) Error() string { return "middleware: session store: " + e.err.Error() }
func (e *storeFailure) Unwrap() error { return e.err }

const logoutForm = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign out</title>
<style>` + pageStyle + `</style>
</head><body><h1>Sign out</h1><p>This signs you out of every app that shares your sign-in.</p>
<form method="post" action="%s"><button type="submit">Sign out</button></form>
<p><a href="%s">Stay signed in and go back</a></p></body></html>`

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
