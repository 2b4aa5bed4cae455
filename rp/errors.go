package rp

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/errclass"
)

// Class is what a caller must do about an error. Every error this module
// returns (rp, pkce, middleware, and the store errors the middleware and
// backchannel pass on) belongs to exactly one of four classes:
//
//   - ClassInvalid: the input breaks the rules (a token, an authorization
//     response, a callback, a request). Refuse it; never retry it as is.
//     Sentinel: ErrInvalidToken. Types: *ValidationError, and *OPError for
//     refusals such as access_denied or login_required.
//   - ClassTemporary: something needed is out of reach or answered
//     improperly (the OP's token or JWKS endpoint, the session store, a
//     timeout, a refresh still in progress). Keep everything, answer 503
//     with Retry-After, try again later; never sign anyone out for it.
//     Sentinel: ErrTemporary. Type: *TemporaryError, whose RetryAfter
//     carries the OP's Retry-After when it sent one.
//   - ClassRevoked: the shared OP session is over: the OP refused the
//     refresh token (invalid_grant), a refreshed ID token names another
//     user (its iss, sub or aud changed), or a back-channel logout ended
//     the session. Clear every local trace of it.
//     Sentinel: ErrSessionRevoked.
//   - ClassMisconfigured: the app, its registration at the OP, or the way
//     it calls this module must be fixed (a bad Config, the OP refusing
//     this client with invalid_client or unauthorized_client, an endpoint
//     the OP does not offer). Tell the developer; the message says what to
//     fix. Sentinel: ErrConfig (ErrNotSupported is one of its kinds).
//
// Branch with a switch on ClassOf(err), or with errors.Is on the sentinels:
// errors.Is(err, ErrTemporary) is true exactly when ClassOf(err) is
// ClassTemporary, and so on for each class, so the checks can come in any
// order. errors.As still reaches the details (*ValidationError's Code,
// *OPError's OAuth error code, *TemporaryError's RetryAfter).
//
// The class of a wrapped error is the class of the innermost classified
// error in its chain: a cause is the more specific fact. A ValidationError
// whose cause is temporary (the OP's keys could not be fetched) is
// temporary, not invalid: the token was not checked, let alone refused.
// An error type declares its class with an ErrorClass method.
type Class = errclass.Class

// The error classes; see Class.
const (
	ClassInvalid       = errclass.Invalid
	ClassTemporary     = errclass.Temporary
	ClassRevoked       = errclass.Revoked
	ClassMisconfigured = errclass.Misconfigured
)

// ClassOf returns the class of err; zero (whose String is "none") for nil
// and for errors of other origins, which this module never returns
// unclassified.
func ClassOf(err error) Class { return errclass.Of(err) }

// The class sentinels (see Class) and their named kinds. errors.Is matches
// a kind and its class's sentinel.
var (
	// ErrConfig is the ClassMisconfigured sentinel: the Config cannot work,
	// or the OP refuses this client. The message says what to fix.
	ErrConfig error = errclass.ErrMisconfigured

	// ErrInvalidToken is the ClassInvalid sentinel: a token, an
	// authorization response or another input failed validation.
	// errors.As to *ValidationError gives the stable Code.
	ErrInvalidToken error = errclass.ErrInvalid

	// ErrSessionRevoked is the ClassRevoked sentinel: the OP rejected the
	// refresh token (invalid_grant), or a refreshed ID token is another
	// user's. The shared OP session is over: clear every local trace of it.
	ErrSessionRevoked error = errclass.ErrRevoked

	// ErrTemporary is the ClassTemporary sentinel: the OP could not be
	// reached or did not answer properly (network error, timeout, 5xx, 429,
	// temporarily_unavailable, a body that is not the expected JSON).
	// Retry later; never treat it as a logout. errors.As to *TemporaryError
	// gives the OP's Retry-After.
	ErrTemporary error = errclass.ErrTemporary

	// ErrLoginRequired (ClassInvalid): a prompt=none request found no
	// usable session at the OP (login_required, interaction_required,
	// consent_required or account_selection_required). Matched by *OPError.
	ErrLoginRequired error = errclass.New("rp: OP needs user interaction", errclass.Invalid)

	// ErrNotSupported (ClassMisconfigured): the OP does not advertise the
	// endpoint or feature.
	ErrNotSupported error = errclass.New("rp: not supported by the OP", errclass.Misconfigured)
)

// Code is a stable, machine-readable reason for a validation failure.
type Code string

// Validation failure codes.
const (
	CodeMalformed    Code = "malformed"       // not a compact JWS, bad JSON, a parameter missing, repeated or of the wrong shape
	CodeAlgorithm    Code = "algorithm"       // alg not allowed (none, HMAC, not in the allow-list)
	CodeUnknownKey   Code = "unknown_key"     // no key of the issuer's JWKS fits kid/alg
	CodeSignature    Code = "signature"       // signature does not verify
	CodeType         Code = "type"            // typ header not acceptable for this token kind
	CodeIssuer       Code = "issuer"          // iss missing or not the configured issuer
	CodeAudience     Code = "audience"        // aud missing, without our client id, or with an untrusted audience
	CodeAuthorizedBy Code = "azp"             // azp present and not our client id
	CodeExpired      Code = "expired"         // exp missing or in the past
	CodeNotYetValid  Code = "not_yet_valid"   // nbf in the future
	CodeIssuedAt     Code = "iat"             // iat missing, in the future, or too old
	CodeSubject      Code = "subject"         // sub missing, or changed across a refresh
	CodeNonce        Code = "nonce"           // nonce missing or different
	CodeAccessHash   Code = "at_hash"         // at_hash does not match the access token
	CodeTokenID      Code = "jti"             // jti missing
	CodeReplay       Code = "replay"          // jti, state or code already used
	CodeEvents       Code = "events"          // logout token without the back-channel logout event
	CodeSessionID    Code = "sid"             // logout token with neither sub nor sid
	CodeState        Code = "state"           // authorization response state missing or wrong
	CodeResponseIss  Code = "response_iss"    // RFC 9207 iss missing or wrong
	CodeRevokedSID   Code = "revoked_session" // the token's OP session was logged out
	CodeScope        Code = "scope"           // required scope, permission or role missing
	CodeAuthTime     Code = "auth_time"       // max_age was requested and auth_time is missing, too old or in the future
	CodeACR          Code = "acr"             // acr_values were requested (or required) and acr is missing or not one of them
	CodeInactive     Code = "inactive"        // introspection: the OP says the token is not active, or not an access token
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

// ErrorClass is ClassInvalid (unless the cause has a class, which wins:
// see Class).
func (e *ValidationError) ErrorClass() Class { return ClassInvalid }

// Is matches the sentinel of the error's class (ErrInvalidToken for a
// refusal).
func (e *ValidationError) Is(target error) bool { return errclass.Matches(e, target) }

func invalid(what string, code Code, format string, args ...any) *ValidationError {
	return &ValidationError{What: what, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// OPError is an OAuth 2.0 error answered by the OP: an error response at the
// redirect URI (RFC 6749 §4.1.2.1) or at the token, revocation or userinfo
// endpoint (RFC 6749 §5.2).
//
// Its class follows the OAuth error code: invalid_grant in answer to a
// refresh is ClassRevoked (in answer to a code, ClassInvalid);
// invalid_client, unauthorized_client, invalid_scope, invalid_request and
// the unsupported_* codes are ClassMisconfigured; temporarily_unavailable
// and server_error are ClassTemporary; every other code (access_denied,
// login_required, invalid_token, ...) is ClassInvalid.
type OPError struct {
	// Endpoint: "authorization", "pushed_authorization", "token",
	// "revocation", "introspection" or "userinfo".
	Endpoint string
	// Grant is the grant_type of a token request ("authorization_code",
	// "refresh_token"), empty for other endpoints.
	Grant string
	// Code is the OAuth "error" value, e.g. "access_denied", "invalid_grant".
	Code string
	// Description is the OP's error_description, untrusted text: escape
	// it before showing it. (The OP's error_uri is not kept: a link chosen
	// by whoever wrote the answer is nothing to show a user.)
	Description string
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

// ErrorClass classifies the OAuth error code (see OPError).
func (e *OPError) ErrorClass() Class {
	switch e.Code {
	case "invalid_grant":
		if e.Endpoint == "token" && e.Grant == "refresh_token" {
			return ClassRevoked
		}
	case "invalid_client", "unauthorized_client", "invalid_scope", "invalid_request",
		"unsupported_grant_type", "unsupported_response_type", "unsupported_token_type",
		"request_not_supported", "request_uri_not_supported", "registration_not_supported":
		return ClassMisconfigured
	case "temporarily_unavailable", "server_error", "slow_down":
		return ClassTemporary
	}
	return ClassInvalid
}

// Is matches the sentinel of the error's class, and ErrLoginRequired for
// the prompt=none error codes of OpenID Connect Core §3.1.2.6.
func (e *OPError) Is(target error) bool {
	if target == ErrLoginRequired {
		switch e.Code {
		case "login_required", "interaction_required", "consent_required", "account_selection_required":
			return true
		}
	}
	return errclass.Matches(e, target)
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
	return hintContext{redirectURL: c.cfg.RedirectURL, clientID: c.cfg.ClientID, authMethod: c.auth.current().Method, grant: grant}
}

// withHint records the grant of the refused request (it decides whether
// invalid_grant is ClassRevoked) and names the likely misconfiguration
// behind an OP error, in the words of the README's troubleshooting section
// and of `multiapp doctor`.
func (e *OPError) withHint(h hintContext) *OPError {
	e.Grant = h.grant
	e.Hint = hintFor(e, h)
	return e
}

// TemporaryError is a ClassTemporary error: the OP (or the session store,
// as the middleware reports it) could not be reached or did not answer
// properly. Nothing is lost: try again later, not before RetryAfter.
//
// Like every wrapper, it takes the class of a cause that has one (see
// Class): the middleware reports a refresh held back after the OP refused
// this client as a TemporaryError (for its RetryAfter) around the OP's
// ClassMisconfigured error, and that error's class is misconfigured.
type TemporaryError struct {
	// Err is the cause.
	Err error
	// Status is the HTTP status of the OP's answer (429, 503, or a status
	// whose body was not a proper OAuth answer); 0 when no answer came.
	Status int
	// RetryAfter is the OP's Retry-After (or, from the middleware, when to
	// come back); zero when nothing was said.
	RetryAfter time.Duration
}

func (e *TemporaryError) Error() string {
	msg := "rp: temporarily unavailable"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns the cause.
func (e *TemporaryError) Unwrap() error { return e.Err }

// ErrorClass is ClassTemporary.
func (e *TemporaryError) ErrorClass() Class { return ClassTemporary }

// Is matches ErrTemporary.
func (e *TemporaryError) Is(target error) bool { return errclass.Matches(e, target) }

// temporary wraps err as a TemporaryError.
func temporary(err error) error { return &TemporaryError{Err: err} }

// temporaryAnswer is an answer of the OP that is not a usable one: a 5xx,
// a 429, or a body that is not the expected JSON. It keeps the status and
// the OP's Retry-After.
func temporaryAnswer(resp *http.Response, err error) *TemporaryError {
	e := &TemporaryError{Err: err}
	if resp != nil {
		e.Status = resp.StatusCode
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// retryAfter parses a Retry-After value (RFC 9110 §10.2.3): delay seconds or
// an HTTP date. Zero when absent, unparsable or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
