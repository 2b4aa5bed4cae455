// Package httpx holds the few response helpers every multiapp handler
// shares, so each status is written the same way everywhere.
package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error is the JSON body of every error multiapp answers itself, in the
// OAuth 2.0 shape (RFC 6749 §5.2).
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// JSON writes v as JSON with status, never cached.
func JSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Fail writes an Error body with status.
func Fail(w http.ResponseWriter, status int, code, description string) {
	JSON(w, status, Error{Code: code, Description: description})
}

// Unavailable answers 503 with Retry-After: a dependency (the OP, the
// store) is out of reach and the client should come back.
func Unavailable(w http.ResponseWriter, retryAfter time.Duration, description string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", description)
}
