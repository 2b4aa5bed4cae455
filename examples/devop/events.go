package devop

import (
	"maps"
	"slices"
	"time"
)

// EventKind names what an [Event] reports.
type EventKind string

// The kinds of [Event].
const (
	// EventLogin: a user signed in with the login form (a new or refreshed session).
	EventLogin EventKind = "login"
	// EventLoginFailed: the login form was submitted with a wrong email or password.
	EventLoginFailed EventKind = "login_failed"
	// EventSilentLogin: an authorization request was answered from an existing
	// OP session, without the login form (single sign-on, prompt=none).
	EventSilentLogin EventKind = "silent_login"
	// EventLoginRequired: prompt=none found no usable session and answered
	// error=login_required.
	EventLoginRequired EventKind = "login_required"
	// EventToken: a request to the token endpoint was answered. GrantType,
	// ClientID and Status are set.
	EventToken EventKind = "token"
	// EventSessionEnded: an OP session ended. Reason is "logout" (RP-initiated
	// logout), "admin" ([OP.EndSession]), "expired" or "replaced" (another user
	// signed in with the same browser).
	EventSessionEnded EventKind = "session_ended"
	// EventBackChannelLogout: a back-channel logout POST was attempted.
	// Delivery is set.
	EventBackChannelLogout EventKind = "backchannel_logout"
)

// Event is something the OP did, reported to [Config.OnEvent] and counted in
// [Stats]. Fields that do not apply to a kind are zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Time is when it happened.
	Time time.Time
	// ClientID is the client concerned, if any.
	ClientID string
	// UserID is the user (sub) concerned, if known.
	UserID string
	// SessionID is the OP session (sid) concerned, if any.
	SessionID string
	// GrantType is the grant_type of an [EventToken].
	GrantType string
	// Status is the HTTP status of an [EventToken] answer.
	Status int
	// Reason is why a session ended ([EventSessionEnded]).
	Reason string
	// Delivery is the outcome of an [EventBackChannelLogout].
	Delivery *Delivery
}

// Delivery is the outcome of one back-channel logout POST.
type Delivery struct {
	// ClientID is the client the logout token was for (its aud).
	ClientID string
	// SessionID and UserID are the sid and sub of the logout token.
	SessionID string
	UserID    string
	// URI is the client's back-channel logout URI.
	URI string
	// JTI is the jti claim of the logout token that was sent.
	JTI string
	// StatusCode is the HTTP status the client answered, 0 when no answer came.
	StatusCode int
	// Err is nil when the client answered 2xx, the transport error or a
	// description of the unexpected status otherwise.
	Err error
	// Start is when the POST began; Duration how long it took to answer or fail.
	Start    time.Time
	Duration time.Duration
}

// OK reports whether the client accepted the logout token (answered 2xx).
func (d Delivery) OK() bool { return d.Err == nil }

// Stats counts what the OP did since it was created. It is a snapshot: later
// activity does not change it.
type Stats struct {
	// Logins counts successful submissions of the login form.
	Logins int
	// LoginFailures counts rejected submissions of the login form.
	LoginFailures int
	// SilentLogins counts authorization requests answered from an existing
	// session without the login form.
	SilentLogins int
	// LoginRequired counts prompt=none requests answered with login_required.
	LoginRequired int
	// TokenRequests counts token endpoint requests by grant_type, whatever
	// the answer.
	TokenRequests map[string]int
	// TokenErrors counts token endpoint requests answered with an error, by
	// grant_type.
	TokenErrors map[string]int
	// SessionsEnded counts ended OP sessions by reason.
	SessionsEnded map[string]int
	// BackChannel lists every back-channel logout POST, oldest first.
	BackChannel []Delivery
}

type stats struct {
	Stats
}

func newStats() stats {
	return stats{Stats{
		TokenRequests: map[string]int{},
		TokenErrors:   map[string]int{},
		SessionsEnded: map[string]int{},
	}}
}

func (s *stats) record(e Event) {
	switch e.Kind {
	case EventLogin:
		s.Logins++
	case EventLoginFailed:
		s.LoginFailures++
	case EventSilentLogin:
		s.SilentLogins++
	case EventLoginRequired:
		s.LoginRequired++
	case EventToken:
		s.TokenRequests[e.GrantType]++
		if e.Status >= 400 {
			s.TokenErrors[e.GrantType]++
		}
	case EventSessionEnded:
		s.SessionsEnded[e.Reason]++
	case EventBackChannelLogout:
		s.BackChannel = append(s.BackChannel, *e.Delivery)
	}
}

func (s *stats) snapshot() Stats {
	return Stats{
		Logins:        s.Logins,
		LoginFailures: s.LoginFailures,
		SilentLogins:  s.SilentLogins,
		LoginRequired: s.LoginRequired,
		TokenRequests: maps.Clone(s.TokenRequests),
		TokenErrors:   maps.Clone(s.TokenErrors),
		SessionsEnded: maps.Clone(s.SessionsEnded),
		BackChannel:   slices.Clone(s.BackChannel),
	}
}
