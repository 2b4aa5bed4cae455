// Package middleware is the net/http layer of web apps: the server of a
// confidential or public client that signs users in and keeps their
// tokens. Web (built by NewWeb from a WebConfig) serves the sign-in routes
// (login, callback, logout, back-channel logout), keeps server-side
// sessions in a tokenstore.Store behind a sealed session cookie, refreshes
// their tokens once per session across instances, and guards handlers:
// Require lets only signed-in users through, Optional attaches the session
// when there is one (and with SilentSSO signs in a user who is signed in
// at another app), RequireStepUp asks for a stronger or more recent
// sign-in (acr_values, max_age) where a route needs one, and StartStepUp
// follows an API's RFC 9470 challenge (StepUpFromResponse). A handler reads
// the session with SessionFrom.
//
// The login transaction of a sign-in in flight (package pkce) travels
// sealed in a cookie, with attributes derived from the app's redirect URL
// (Secure and the __Host- prefix except on plain-http localhost).
//
// What happens (logins, refreshes, logouts, store calls) is told to one
// event.Observer, by default the audit log (slog).
//
// API services use package bearer instead: it shares nothing with this
// package but rp.
package middleware
