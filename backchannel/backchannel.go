// Package backchannel receives OpenID Connect Back-Channel Logout 1.0
// notifications: the OP POSTs a signed logout token when a user's OP
// session ends (a logout at any app, an admin action, a timeout), and the
// Handler ends the matching local sessions in a tokenstore.Store, so the user
// is signed out of this app on every instance that shares the store.
//
// The Handler sits outside cookie and CSRF middleware: the OP calls it
// server to server.
package backchannel

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/multiapp-go/multiapp/internal/httpx"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Defaults.
const (
	// DefaultMaxBodyBytes caps the request body (a logout token is ~1 KB).
	DefaultMaxBodyBytes = 64 << 10
	// DefaultRevokedSIDTTL is how long an ended OP session id is remembered,
	// so a login or refresh in flight, or a bearer token of that session,
	// cannot outlive the logout.
	DefaultRevokedSIDTTL = 24 * time.Hour
)

// Verifier validates logout tokens; *rp.Client is one.
type Verifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*rp.LogoutToken, error)
}

// Handler is the back-channel logout endpoint of one app. Set Verifier and
// Store; the other fields have safe defaults.
//
// It answers 200 when the token is valid (also when no session matched),
// 400 with a JSON error for an invalid request or token, 405 for a method
// other than POST, 413 for an oversized body and 503 when the store is out
// of reach; always with Cache-Control: no-store, never a redirect or HTML.
type Handler struct {
	Verifier Verifier
	Store    tokenstore.Store
	// Logger receives one audit event per logout. Nil: slog.Default().
	// Tokens are never logged.
	Logger *slog.Logger
	// MaxBodyBytes: DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// RevokedSIDTTL: DefaultRevokedSIDTTL when zero.
	RevokedSIDTTL time.Duration
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// ServeHTTP handles the OP's POST.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.Fail(w, http.StatusMethodNotAllowed, "invalid_request", "the back-channel logout endpoint accepts POST only")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		h.reject(w, r, "content_type", "the logout token must be POSTed as application/x-www-form-urlencoded")
		return
	}
	max := h.MaxBodyBytes
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.logger().LogAttrs(r.Context(), slog.LevelWarn, "multiapp.backchannel_logout.rejected", slog.String("reason", "body_too_large"))
			httpx.Fail(w, http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
			return
		}
		h.reject(w, r, "malformed", "the request body is not a valid form")
		return
	}
	if len(r.URL.Query()["logout_token"]) > 0 {
		h.reject(w, r, "token_in_query", "the logout token must be in the body, not the URL")
		return
	}
	vals := r.PostForm["logout_token"]
	if len(vals) != 1 || vals[0] == "" {
		h.reject(w, r, "missing_token", "exactly one logout_token parameter is required")
		return
	}
	lt, err := h.Verifier.VerifyLogoutToken(r.Context(), vals[0])
	if err != nil {
		code := "invalid"
		var ve *rp.ValidationError
		if errors.As(err, &ve) {
			code = string(ve.Code)
		}
		if errors.Is(err, rp.ErrTemporary) && !errors.Is(err, rp.ErrInvalidToken) {
			h.logger().LogAttrs(r.Context(), slog.LevelWarn, "multiapp.backchannel_logout.unavailable", slog.String("error", err.Error()))
			httpx.Unavailable(w, 5*time.Second, "the OP's keys could not be fetched")
			return
		}
		h.reject(w, r, code, err.Error())
		return
	}
	n, err := h.end(r.Context(), lt)
	switch {
	case errors.Is(err, errReplay):
		h.reject(w, r, string(rp.CodeReplay), "this logout token was already used")
		return
	case err != nil:
		h.logger().LogAttrs(r.Context(), slog.LevelError, "multiapp.backchannel_logout.store_error",
			slog.String("iss", lt.Issuer), slog.String("sub", lt.Subject), slog.String("sid", lt.SessionID), slog.String("error", err.Error()))
		httpx.Unavailable(w, 5*time.Second, "the session store is unavailable")
		return
	}
	h.logger().LogAttrs(r.Context(), slog.LevelInfo, "multiapp.backchannel_logout",
		slog.String("iss", lt.Issuer), slog.String("sub", lt.Subject), slog.String("sid", lt.SessionID),
		slog.Any("aud", []string(lt.Audience)), slog.Int("sessions_ended", n))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

var errReplay = errors.New("backchannel: logout token replayed")

// end applies a validated logout token. With a sid, the OP session is
// marked revoked first: from then on no Get returns its sessions, on any
// instance, and no login or refresh in flight can store one, so even if a
// later step fails the user is signed out. Revoking is idempotent, so it
// may precede the jti replay check; a replay is refused before anything
// else is deleted. Then the sessions are deleted (the sid's, and the
// subject's sessions stored without a sid), or, without a sid, every
// session of the subject.
func (h *Handler) end(ctx context.Context, lt *rp.LogoutToken) (int, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if lt.SessionID != "" {
		revokeFor := h.RevokedSIDTTL
		if revokeFor <= 0 {
			revokeFor = DefaultRevokedSIDTTL
		}
		if err := h.Store.RevokeSID(ctx, lt.Issuer, lt.SessionID, revokeFor); err != nil {
			return 0, err
		}
	}
	ttl := lt.ValidUntil.Sub(now())
	if ttl < time.Minute {
		ttl = time.Minute
	}
	first, err := h.Store.RememberJTI(ctx, lt.Issuer, lt.TokenID, ttl)
	if err != nil {
		return 0, err
	}
	if !first {
		return 0, errReplay
	}
	if lt.SessionID == "" {
		return h.Store.DeleteBySubject(ctx, lt.Issuer, lt.Subject)
	}
	return h.Store.DeleteBySID(ctx, lt.Issuer, lt.SessionID, lt.Subject)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, reason, description string) {
	h.logger().LogAttrs(r.Context(), slog.LevelWarn, "multiapp.backchannel_logout.rejected", slog.String("reason", reason))
	httpx.Fail(w, http.StatusBadRequest, "invalid_request", description)
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// compile-time check that the form field name matches the spec.
var _ = url.Values{"logout_token": nil}
