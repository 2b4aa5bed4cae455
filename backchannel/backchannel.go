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

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/httpx"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Defaults.
const (
	// DefaultMaxBodyBytes caps the request body (a logout token is ~1 KB).
	DefaultMaxBodyBytes = 64 << 10
	// DefaultRevokedSIDTTL is how long an ended OP session id (or, for a
	// logout token without sid, the logout time of a subject) is
	// remembered, so a login or refresh in flight, or a bearer token of that
	// session, cannot outlive the logout.
	DefaultRevokedSIDTTL = 24 * time.Hour
)

// retryAfter is announced with every 503.
const retryAfter = 5 * time.Second

// Store is the slice of a tokenstore.Store the Handler uses: it records
// the logout (tokenstore.Logouts) and refuses a replayed logout token
// (tokenstore.OneTimeKeys, namespace tokenstore.LogoutTokenIDs). Give it the
// store that keeps the app's sessions: a tokenstore.Store is one, and only
// the backend that keeps the sessions can refuse, atomically, a login or a
// refresh of the OP session being logged out.
type Store interface {
	tokenstore.Logouts
	tokenstore.OneTimeKeys
}

// Verifier validates logout tokens; *rp.Client is one.
type Verifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*rp.LogoutToken, error)
}

// Handler is the back-channel logout endpoint of one app. Set Verifier and
// Store; the other fields have safe defaults.
//
// It answers 200 when the token is valid (also when no session matched);
// 400 with a JSON error and a fixed description per validation code for an
// invalid request or token; 405 for a method other than POST; 413 for an
// oversized body; 503 with Retry-After when the token cannot be checked now
// (the OP's keys are out of reach: errors.Is(err, rp.ErrTemporary)) or the
// store is out of reach, so that an OP that retries delivers it again (a
// verified logout that the store could not apply is also held by the
// Handler, see Guard, so it is not lost when the OP does not retry); 500
// when the Verifier fails in a way that is neither (a misconfiguration).
// Always with Cache-Control: no-store, never a redirect or HTML, never the
// text of an internal error (that goes to the Logger).
//
// A Handler must not be copied after first use.
type Handler struct {
	Verifier Verifier
	Store    Store
	// Observer receives the events of the logouts (event.BackchannelLogout
	// and the refusals, holds and drops). Nil: the audit log,
	// event.Log(Logger).
	Observer event.Observer
	// Logger is where the audit log writes when Observer is nil. Nil:
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// MaxBodyBytes: DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// RevokedSIDTTL: how long the revocation of an OP session or of a
	// subject is kept (tokenstore.Logouts.RevokeSID, RevokeSubject).
	// DefaultRevokedSIDTTL when zero.
	RevokedSIDTTL time.Duration
	// RetryInterval is how often logouts held while the store was
	// unreachable are tried again (they are also tried as soon as a Get
	// through Guard succeeds). DefaultRetryInterval when zero.
	RetryInterval time.Duration
	// MaxHeld bounds the logouts held; beyond it the oldest is dropped (and
	// logged). DefaultMaxHeld when zero.
	MaxHeld int
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time

	held held
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP handles the OP's POST.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.Fail(w, http.StatusMethodNotAllowed, "invalid_request", "the back-channel logout endpoint accepts POST only")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		h.reject(w, r, "content_type", "the logout token must be POSTed as application/x-www-form-urlencoded", nil)
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
			h.emit(r.Context(), event.Event{Name: event.BackchannelLogoutRejected, Level: slog.LevelWarn, Reason: "body_too_large"})
			httpx.Fail(w, http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
			return
		}
		h.reject(w, r, "malformed", "the request body is not a valid form", nil)
		return
	}
	if len(r.URL.Query()["logout_token"]) > 0 {
		h.reject(w, r, "token_in_query", "the logout token must be in the body, not the URL", nil)
		return
	}
	vals := r.PostForm["logout_token"]
	if len(vals) != 1 || vals[0] == "" {
		h.reject(w, r, "missing_token", "exactly one logout_token parameter is required", nil)
		return
	}
	lt, err := h.Verifier.VerifyLogoutToken(r.Context(), vals[0])
	if err != nil {
		h.verifyFailed(w, r, err)
		return
	}
	start := time.Now()
	n, err := h.end(r.Context(), lt, false)
	switch {
	case errors.Is(err, errReplay):
		h.reject(w, r, string(rp.CodeReplay), describe(rp.CodeReplay), nil)
		return
	case err != nil:
		// Not lost: held, applied when the store answers, enforced here
		// meanwhile. 503 still, so that an OP that retries does.
		h.hold(r.Context(), lt, err)
		httpx.Unavailable(w, retryAfter, "the session store is unavailable; retry later")
		return
	}
	h.emit(r.Context(), logoutEvent(lt, n, time.Since(start)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

var errReplay = errors.New("backchannel: logout token replayed")

// end applies a validated logout token. The sessions it ends are marked
// revoked first: the OP session (issuer, sid) when the token has a sid,
// otherwise the subject's sessions issued up to the token's iat. From then
// on no Get returns them, on any instance, and no login or refresh in
// flight can store one, so even if a later step fails the user is signed
// out. Revoking is idempotent, so it may precede the jti replay check; a
// replay is refused before anything is deleted. Then the sessions are
// deleted (the sid's, and the subject's sessions stored without a sid), or,
// without a sid, every session of the subject. A held logout (retry) is
// applied whatever the replay check says: its token was verified and seen
// before, by this Handler.
func (h *Handler) end(ctx context.Context, lt *rp.LogoutToken, retry bool) (int, error) {
	revokeFor := h.RevokedSIDTTL
	if revokeFor <= 0 {
		revokeFor = DefaultRevokedSIDTTL
	}
	var err error
	if lt.SessionID != "" {
		err = h.Store.RevokeSID(ctx, lt.Issuer, lt.SessionID, revokeFor)
	} else {
		err = h.Store.RevokeSubject(ctx, lt.Issuer, lt.Subject, lt.IssuedAt.Time(), revokeFor)
	}
	if err != nil {
		return 0, err
	}
	ttl := lt.ValidUntil.Sub(h.now())
	if ttl < time.Minute {
		ttl = time.Minute
	}
	first, err := h.Store.UseOnce(ctx, tokenstore.LogoutTokenIDs, lt.Issuer, lt.TokenID, ttl)
	if err != nil {
		return 0, err
	}
	if !first && !retry {
		return 0, errReplay
	}
	if lt.SessionID == "" {
		return h.Store.DeleteBySubject(ctx, lt.Issuer, lt.Subject)
	}
	return h.Store.DeleteBySID(ctx, lt.Issuer, lt.SessionID, lt.Subject)
}

// verifyFailed answers a token that could not be verified, by the class of
// the error: temporary (the OP's keys could not be fetched) 503 with
// Retry-After, so that an OP that retries delivers the logout later;
// invalid 400 with the fixed description of its code; anything else
// (a misconfiguration, an error of no class) 500. Temporary is checked
// first: a token that could not be checked is not known to be invalid. The
// error's own text goes to the log only, never to the OP.
func (h *Handler) verifyFailed(w http.ResponseWriter, r *http.Request, err error) {
	var ve *rp.ValidationError
	switch {
	case errors.Is(err, rp.ErrTemporary), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		h.emit(r.Context(), event.Event{Name: event.BackchannelLogoutUnavailable, Level: slog.LevelWarn, Reason: "op_unavailable", Err: err})
		httpx.Unavailable(w, retryAfter, "the logout token cannot be checked right now; retry later")
	case errors.As(err, &ve):
		h.reject(w, r, string(ve.Code), describe(ve.Code), err)
	case errors.Is(err, rp.ErrInvalidToken):
		h.reject(w, r, "invalid", describe(""), err)
	default:
		h.emit(r.Context(), event.Event{Name: event.BackchannelLogoutError, Level: slog.LevelError, Reason: "verifier_error", Err: err})
		httpx.Fail(w, http.StatusInternalServerError, "server_error", "the logout token could not be checked")
	}
}

// descriptions are the 400 bodies' texts, one per validation code: fixed
// words, never the error's own text (which names URLs, keys and claim
// values).
var descriptions = map[rp.Code]string{
	rp.CodeMalformed:   "the logout token is not a well-formed signed JWT",
	rp.CodeAlgorithm:   "the logout token's signing algorithm is not accepted",
	rp.CodeUnknownKey:  "the logout token is signed with a key the OP does not publish",
	rp.CodeSignature:   "the logout token's signature does not verify",
	rp.CodeType:        "the logout token's typ is not a logout token type",
	rp.CodeIssuer:      "the logout token's iss is not this app's OP",
	rp.CodeAudience:    "the logout token's aud is not this app's client id",
	rp.CodeExpired:     "the logout token expired",
	rp.CodeNotYetValid: "the logout token is not valid yet",
	rp.CodeIssuedAt:    "the logout token's iat is missing, in the future or too old",
	rp.CodeTokenID:     "the logout token has no jti",
	rp.CodeReplay:      "this logout token was already used",
	rp.CodeEvents:      "the logout token lacks the back-channel logout event",
	rp.CodeNonce:       "a logout token must not contain a nonce",
	rp.CodeSessionID:   "the logout token has neither sub nor sid",
}

// describe returns the fixed description of a validation code.
func describe(code rp.Code) string {
	if d, ok := descriptions[code]; ok {
		return d
	}
	return "the logout token is invalid"
}

// reject answers 400 with a fixed description; err, when not nil, goes
// to the observer (it never holds the token).
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, reason, description string, err error) {
	h.emit(r.Context(), event.Event{Name: event.BackchannelLogoutRejected, Level: slog.LevelWarn, Reason: reason, Err: err})
	httpx.Fail(w, http.StatusBadRequest, "invalid_request", description)
}

// logoutEvent is the event of an applied logout that ended n sessions.
func logoutEvent(lt *rp.LogoutToken, n int, took time.Duration, attrs ...slog.Attr) event.Event {
	return event.Event{Name: event.BackchannelLogout, Level: slog.LevelInfo, Issuer: lt.Issuer, Subject: lt.Subject, SID: lt.SessionID, Duration: took,
		Attrs: append([]slog.Attr{slog.Any("aud", []string(lt.Audience)), slog.Int("sessions_ended", n)}, attrs...)}
}

func (h *Handler) emit(ctx context.Context, e event.Event) {
	o := h.Observer
	if o == nil {
		o = event.Log(h.Logger)
	}
	event.Emit(ctx, o, e)
}

// compile-time check that the form field name matches the spec.
var _ = url.Values{"logout_token": nil}
