// Package event is the one vocabulary of what multiapp does (a user signed
// in, a refresh failed, the OP logged a session out, a JWKS was fetched...)
// and the one hook to learn of it: an Observer. The audit log is an
// Observer (Log, the default of the web layer, the back-channel handler and
// the bearer layer); metrics are another (count logins by Silent,
// refreshes by Name, histograms of Duration: the module
// github.com/multiapp-go/multiapp/otel is that Observer for OpenTelemetry);
// Join feeds several.
//
// Every event has a Name from the constants below and the fields that
// apply to it. Bounded fields (Name, ClientID, Issuer, Reason, Class,
// Silent, CacheHit) are fit for metric labels; Subject, SID and Session
// identify a user or a session: for the audit log, never labels. No event
// carries a token or a secret.
//
// The web layer (middleware.WebConfig.Observer), the bearer layer
// (bearer.Config.Observer), the back-channel handler
// (backchannel.Handler.Observer) and rp (rp.ProviderOptions.Observer, for
// everything built from the Provider) each take an Observer; give them the
// same one to see everything.
package event

import (
	"context"
	"log/slog"
	"time"

	"github.com/multiapp-go/multiapp/internal/errclass"
)

// Name identifies an event. It is also the audit log's message.
type Name string

// Web sign-in (middleware.Web).
const (
	// Login: a user signed in (Silent: without a login page, prompt=none).
	// Duration: the code exchange and the session's creation.
	Login Name = "multiapp.login"
	// LoginFailed: a callback could not complete a login (Reason says
	// why: login_expired, access_denied, client_rejected...).
	LoginFailed Name = "multiapp.login.failed"
	// LoginError: a login could not start (the authorization request or
	// the transaction cookie could not be built: a misconfiguration).
	LoginError Name = "multiapp.login.error"
	// LoginSilentFailed: a silent sign-in (prompt=none) did not sign the
	// visitor in; usually Reason login_required (no OP session).
	LoginSilentFailed Name = "multiapp.login.silent_failed"
	// Logout: a user signed out here (attribute op_logout: the browser
	// goes on to the OP's end-session endpoint).
	Logout Name = "multiapp.logout"
	// LogoutRevokeFailed: the OP did not revoke the refresh token of a
	// session that signed out (best effort; the local logout happened).
	LogoutRevokeFailed Name = "multiapp.logout.revoke_failed"
	// SessionInvalid: a stored session was not usable (Reason
	// claims_unreadable: its ID token's claims do not parse; a custom
	// store's record, or a damaged one) and was treated as signed out.
	SessionInvalid Name = "multiapp.session.invalid"
	// StepUp: a user was sent to sign in again because a route needs a
	// stronger or more recent sign-in than the session's (step-up
	// authentication, RFC 9470; middleware.Web.RequireStepUp), or an API
	// asked for one (StartStepUp). Reason: acr, max_age (what the session
	// lacked) or api; attributes acr_values and max_age (what the OP is
	// asked for). Reason already_met (Level warn): an API asked for what
	// the session already has, and the user was not sent (a 502 page). The sign-in that follows is a Login with attribute
	// step_up (and acr), or a LoginFailed with Reason acr_not_met or
	// auth_time_not_met when the OP did not authenticate the user as asked.
	StepUp Name = "multiapp.step_up"
	// SessionExpired: a session ended by its own lifetime (Reason idle:
	// no activity within its idle timeout; lifetime: past its absolute
	// end); attributes last_seen and expires_at. The OP session may live
	// on: the user signs in again, silently when it does.
	SessionExpired Name = "multiapp.session.expired"
)

// Refreshes (middleware.Web), one name per outcome. Duration: the token
// request.
const (
	// Refresh: a session's tokens were refreshed.
	Refresh Name = "multiapp.refresh"
	// RefreshRevoked: the OP refused the refresh (invalid_grant) or sent
	// another user's ID token: the shared session is over, the local one
	// was ended.
	RefreshRevoked Name = "multiapp.refresh.revoked"
	// RefreshTemporary: the OP or the store was out of reach; the session
	// is kept and the refresh tried again after retry_after.
	RefreshTemporary Name = "multiapp.refresh.temporary"
	// RefreshMisconfigured: the OP refused this client (invalid_client,
	// unauthorized_client); the session is kept.
	RefreshMisconfigured Name = "multiapp.refresh.misconfigured"
	// RefreshInvalid: the OP's answer did not validate; the session is
	// kept.
	RefreshInvalid Name = "multiapp.refresh.invalid"
)

// Session store calls of the web layer. StoreGet comes with every request
// that carries a session: the store calls are LevelDebug events, built
// only for an Observer that wants them (see Filter). Duration: the call;
// Class: temporary when the store failed.
const (
	StoreGet    Name = "multiapp.store.get"
	StoreCreate Name = "multiapp.store.create"
	StoreUpdate Name = "multiapp.store.update"
	StoreDelete Name = "multiapp.store.delete"
	// StoreLock: taking a session's refresh lock (Duration includes the
	// wait for another instance's refresh).
	StoreLock Name = "multiapp.store.lock"
	// StoreUnavailable: a request was answered 503 because the session
	// store was out of reach.
	StoreUnavailable Name = "multiapp.store.unavailable"
)

// Back-channel logout (backchannel.Handler).
const (
	// BackchannelLogout: a logout token was applied (attributes
	// sessions_ended, and held and held_for for a logout held while the
	// store was down). Duration: the store's work.
	BackchannelLogout Name = "multiapp.backchannel_logout"
	// BackchannelLogoutRejected: the request or its logout token was
	// refused (400; Reason: the validation code or what was wrong).
	BackchannelLogoutRejected Name = "multiapp.backchannel_logout.rejected"
	// BackchannelLogoutUnavailable: the token could not be checked (the
	// OP's keys out of reach): 503, the OP should retry.
	BackchannelLogoutUnavailable Name = "multiapp.backchannel_logout.unavailable"
	// BackchannelLogoutError: the verifier failed in a way that is
	// neither invalid nor temporary (a misconfiguration): 500.
	BackchannelLogoutError Name = "multiapp.backchannel_logout.error"
	// BackchannelLogoutHeld: a verified logout could not be applied (the
	// store is out of reach): it is held and enforced by this instance
	// until the store takes it.
	BackchannelLogoutHeld Name = "multiapp.backchannel_logout.held"
	// BackchannelLogoutDropped: a held logout was dropped because too many
	// were held.
	BackchannelLogoutDropped Name = "multiapp.backchannel_logout.dropped"
)

// API services (bearer, rp's access-token verifier).
const (
	// BearerRefused: an API request was refused (attribute status; Reason:
	// no_token, malformed_request, or the validation code such as expired,
	// audience, scope, revoked_sid, acr and auth_time (a step-up
	// requirement, answered insufficient_user_authentication);
	// temporarily_unavailable for a 503).
	// LevelDebug, LevelWarn for 503, LevelError for 500.
	BearerRefused Name = "multiapp.bearer.refused"
	// AccessToken: an access token was checked (CacheHit: answered from
	// the verified-token cache; Class and Reason when it was refused).
	// Duration: the validation. One per API request: LevelDebug.
	AccessToken Name = "multiapp.access_token"
)

// The OP (rp).
const (
	// JWKSFetch: the OP's JWKS was fetched (Class temporary when it could
	// not be). Duration: the request.
	JWKSFetch Name = "multiapp.jwks.fetch"
	// JWKSCooldown: a token's key is not in a JWKS fetched within the
	// cooldown, so it was not fetched again (many of these: tokens signed
	// with unknown keys). LevelDebug.
	JWKSCooldown Name = "multiapp.jwks.cooldown"
	// ClientAuth: how the client authenticates to the OP was decided or
	// checked (attributes method, source, confirmed), or the OP refused
	// the client's credentials (Class misconfigured).
	ClientAuth Name = "multiapp.client_auth"
)

// perRequest reports whether events named n come with every request (or
// every store call): they are LevelDebug, and the audit log builds them
// only when its logger is enabled for debug.
func perRequest(n Name) bool {
	switch n {
	case StoreGet, StoreCreate, StoreUpdate, StoreDelete, StoreLock, AccessToken, JWKSCooldown:
		return true
	}
	return false
}

// Event is one thing that happened. Fields that do not apply are zero.
type Event struct {
	// Name says what happened.
	Name Name
	// Level is how much an operator should care: LevelInfo for the usual,
	// LevelWarn for something worth a look, LevelError for what needs
	// action, LevelDebug for the per-request measurements.
	Level slog.Level

	// ClientID is the app's OAuth client id; Issuer the OP's.
	ClientID string
	Issuer   string
	// Subject (sub), SID (the OP session) and Session (a hash of the local
	// session id, as middleware.Session.IDHash) say whose session: for the
	// audit log, never metric labels.
	Subject string
	SID     string
	Session string

	// Reason is a stable code of why (from a bounded set), for failures
	// and refusals.
	Reason string
	// Class is the error class of a failure (rp.Class: "invalid",
	// "temporary", "revoked", "misconfigured"); empty when it went well.
	Class string
	// Silent: a sign-in without a login page (prompt=none).
	Silent bool
	// CacheHit: an access token answered from the verified-token cache.
	CacheHit bool
	// Duration is how long the operation took, where the library measures
	// it; zero otherwise.
	Duration time.Duration
	// Err is the failure, when there is one. It never contains a token.
	Err error
	// Attrs are further details for the audit log (op_logout,
	// retry_after, sessions_ended...).
	Attrs []slog.Attr
}

// An Observer learns of events. Observe is called on the path of the
// request the event comes from: it must be safe for concurrent use, return
// quickly, and treat e as read-only.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc is a function as an Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Filter is an optional method of an Observer: events it does not want are
// not built and their durations not measured. An Observer without it gets
// every event.
type Filter interface {
	Enabled(ctx context.Context, n Name) bool
}

// Enabled reports whether o wants events named n: false for a nil o, what
// its Enabled method says when it has one (Filter), true otherwise.
// Emitters call it before measuring what an event would report.
func Enabled(ctx context.Context, o Observer, n Name) bool {
	switch f := o.(type) {
	case nil:
		return false
	case Filter:
		return f.Enabled(ctx, n)
	}
	return true
}

// Emit gives e to o (nothing when o is nil), with Class set from e.Err
// when it is empty.
func Emit(ctx context.Context, o Observer, e Event) {
	if o == nil {
		return
	}
	if e.Class == "" && e.Err != nil {
		if c := errclass.Of(e.Err); c != errclass.None {
			e.Class = c.String()
		}
	}
	o.Observe(ctx, e)
}

// Join returns an Observer that gives every event to each of obs in
// order (nil ones skipped), e.g. the audit log and metrics:
//
//	event.Join(event.Log(logger), metrics)
func Join(obs ...Observer) Observer {
	var j joined
	for _, o := range obs {
		if o != nil {
			j = append(j, o)
		}
	}
	return j
}

type joined []Observer

func (j joined) Observe(ctx context.Context, e Event) {
	for _, o := range j {
		o.Observe(ctx, e)
	}
}

func (j joined) Enabled(ctx context.Context, n Name) bool {
	for _, o := range j {
		if Enabled(ctx, o, n) {
			return true
		}
	}
	return false
}
