package rp

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps at most one of
// them, so callers branch with errors.Is.
var (
	// ErrConfig: the Config cannot work. The message says what to fix.
	ErrConfig = errors.New("rp: invalid configuration")

	// ErrInvalidToken: a token or an authorization response failed
	// validation. errors.As to *ValidationError gives the stable Code.
	ErrInvalidToken = errors.New("rp: invalid token")

	// ErrSessionRevoked: the OP rejected the refresh token (invalid_grant).
	// The shared OP session is over: clear every local trace of it.
	ErrSessionRevoked = errors.New("rp: OP session revoked")

	// ErrTemporary: the OP could not be reached or did not answer properly
	// (network error, timeout, 5xx, 429, temporarily_unavailable, a body that
	// is not the expected JSON). Retry later; never treat it as a logout.
	ErrTemporary = errors.New("rp: OP temporarily unavailable")

	// ErrLoginRequired: a prompt=none request found no usable session at the
	// OP (login_required, interaction_required, consent_required or
	// account_selection_required). Matched by *OPError.
	ErrLoginRequired = errors.New("rp: OP needs user interaction")

	// ErrNotSupported: the OP does not advertise the endpoint or feature.
	ErrNotSupported = errors.New("rp: not supported by the OP")
)

// Code is a stable, machine-readable reason for a validation failure.
type Code string

// Validation failure codes.
const (
	CodeMalformed    Code = "malformed"     // not a compact JWS / bad JSON / bad parameter shape
	CodeAlgorithm    Code = "algorithm"     // alg not allowed (none, HMAC, not in the allow-list)
	CodeUnknownKey   Code = "unknown_key"   // no key of the issuer's JWKS fits kid/alg
	CodeSignature    Code = "signature"     // signature does not verify
	CodeType         Code = "type"          // typ header not acceptable for this token kind
	CodeIssuer       Code = "issuer"        // iss missing or not the configured issuer
	CodeAudience     Code = "audience"      // aud missing, without our client id, or with an untrusted audience
	CodeAuthorizedBy Code = "azp"           // azp present and not our client id
	CodeExpired      Code = "expired"       // exp missing or in the past
	CodeNotYetValid  Code = "not_yet_valid" // nbf in the future
	CodeIssuedAt     Code = "iat"           // iat missing, in the future, or too old
	CodeSubject      Code = "subject"       // sub missing, or changed across a refresh
	CodeNonce        Code = "nonce"         // nonce missing or different
	CodeAccessHash   Code = "at_hash"       // at_hash does not match the access token
	CodeTokenID      Code = "jti"           // jti missing
	CodeReplay       Code = "replay"        // jti, state or code already used
	CodeEvents       Code = "events"        // logout token without the back-channel logout event
	CodeSessionID    Code = "sid"           // logout token with neither sub nor sid
	CodeState        Code = "state"         // authorization response state missing or wrong
	CodeResponseIss  Code = "response_iss"  // RFC 9207 iss missing or wrong
	CodeDuplicate    Code = "duplicate"     // a parameter appears twice
	CodeMissingCode  Code = "missing_code"  // authorization response without code
	CodeMissingToken Code = "missing_id_token"
	CodeRevokedSID   Code = "revoked_session" // the token's OP session was logged out
	CodeScope        Code = "scope"           // required scope, permission or role missing
	CodeAuthTime     Code = "auth_time"       // max_age was requested and auth_time is missing, too old or in the future
)

// ValidationError reports why a token or an authorization response was
// refused. It never contains the token itself.
type ValidationError struct {
	// What was being validated: "id_token", "logout_token",
	// "access_token", "authorization_response", or "jwt" for a token of
	// no particular kind (InspectJWT, DecodeUnverified).
	What string
	// Code is the stable reason.
	Code Code
	// Detail is a human explanation, possibly with the likely fix.
	Detail string
	// Err is the underlying cause, if any.
	Err error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("rp: invalid ")
	b.WriteString(e.What)
	b.WriteString(": ")
	b.WriteString(string(e.Code))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is makes every ValidationError match ErrInvalidToken.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidToken }

func invalid(what string, code Code, format string, args ...any) *ValidationError {
	return &ValidationError{What: what, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// OPError is an OAuth 2.0 error answered by the OP: an error response at the
// redirect URI (RFC 6749 §4.1.2.1) or at the token, revocation or userinfo
// endpoint (RFC 6749 §5.2).
type OPError struct {
	// Endpoint: "authorization", "token", "revocation" or "userinfo".
	Endpoint string
	// Code is the OAuth "error" value, e.g. "access_denied", "invalid_grant".
	Code string
	// Description and URI are the OP's error_description and error_uri,
	// untrusted text: escape before showing it.
	Description string
	URI         string
	// Status is the HTTP status of a back-channel answer (0 for redirects).
	Status int
	// Hint is this package's guess at the misconfiguration behind the error,
	// when it has one.
	Hint string
}

func (e *OPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rp: OP %s endpoint answered %q", e.Endpoint, e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %q", e.Description)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Is matches ErrLoginRequired for the prompt=none error codes of OpenID
// Connect Core §3.1.2.6.
func (e *OPError) Is(target error) bool {
	if target == ErrLoginRequired {
		switch e.Code {
		case "login_required", "interaction_required", "consent_required", "account_selection_required":
			return true
		}
	}
	return false
}

// hintContext is what withHint knows about the request the OP refused.
type hintContext struct {
	redirectURL string
	clientID    string
	authMethod  string
	// grant is the token request's grant_type ("authorization_code",
	// "refresh_token"), empty for other endpoints.
	grant string
}

func (c *Client) hintContext(grant string) hintContext {
	return hintContext{redirectURL: c.cfg.RedirectURL, clientID: c.cfg.ClientID, authMethod: c.AuthMethod(), grant: grant}
}

// withHint names the likely misconfiguration behind an OP error, in the
// words of the README's troubleshooting section and of `multiapp doctor`.
func (e *OPError) withHint(h hintContext) *OPError {
	d := strings.ToLower(e.Description + " " + e.Code)
	switch {
	case strings.Contains(d, "post_logout_redirect"):
		e.Hint = "the post-logout redirect URL must be registered at the OP exactly as sent (scheme, host, port, path and trailing slash)"
	case strings.Contains(d, "redirect") && e.Endpoint == "token":
		e.Hint = fmt.Sprintf("the redirect_uri sent with the code (%q, Config.RedirectURL) must be exactly the one of the authorization request and registered for client %q: every instance and every handler of this app's callback must use the same RedirectURL; `multiapp doctor` probes the registration", h.redirectURL, h.clientID)
	case strings.Contains(d, "redirect"):
		e.Hint = fmt.Sprintf("the redirect URL %q is probably not registered for client %q at this OP: it must be registered exactly as sent, with the same scheme (http/https), host (localhost is not 127.0.0.1), port, path and trailing slash; `multiapp doctor` probes the OP and names the difference", h.redirectURL, h.clientID)
	case e.Code == "invalid_client":
		e.Hint = fmt.Sprintf("the OP does not accept the credentials of client %q: check that this client id exists in this OP environment (a client of another environment is unknown here), that ClientSecret is its current secret, and that it is registered for token endpoint auth method %q (a web app as a confidential client, an SPA or native app as a public one)", h.clientID, h.authMethod)
	case e.Code == "unauthorized_client":
		e.Hint = fmt.Sprintf("client %q is not allowed this grant or response type at the OP: enable the authorization code flow (and refresh tokens) for it", h.clientID)
	case e.Code == "invalid_scope":
		e.Hint = "a requested scope is not enabled for this client at the OP (offline_access, for refresh tokens, often has to be allowed explicitly): enable it, or set Config.Scopes to the scopes the OP allows"
	case e.Code == "invalid_grant" && e.Endpoint == "token" && h.grant == "refresh_token":
		e.Hint = "the refresh token is expired, revoked (the user signed out of the shared session, or an admin ended it), already used (refresh tokens rotate: refresh once per session at a time, across every instance of the app), or was issued to another client or without offline_access"
	case e.Code == "invalid_grant" && e.Endpoint == "token":
		e.Hint = "the code expired (codes live about a minute), was already redeemed (a callback reloaded or submitted twice), was issued to another client, or the PKCE verifier or redirect_uri differs from the authorization request (the callback used another login's transaction, or another RedirectURL)"
	}
	return e
}

// temporary wraps err as ErrTemporary.
type temporaryError struct{ err error }

func (e *temporaryError) Error() string {
	return "rp: OP temporarily unavailable: " + e.err.Error()
}
func (e *temporaryError) Unwrap() []error { return []error{ErrTemporary, e.err} }

func temporary(err error) error { return &temporaryError{err: err} }

// revokedError wraps the OP's invalid_grant as ErrSessionRevoked.
type revokedError struct{ op *OPError }

func (e *revokedError) Error() string {
	return "rp: OP session revoked: " + e.op.Error()
}
func (e *revokedError) Unwrap() []error { return []error{ErrSessionRevoked, e.op} }
