package otel

import (
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// reason returns r when it is one of the reasons the library emits, and
// "other" otherwise: the attribute multiapp.reason takes its values from a
// closed set, whatever an OP or a crafted callback URL puts in an error
// code. The audit log keeps the exact reason.
func reason(r string) string {
	if _, ok := reasons[r]; ok {
		return r
	}
	return "other"
}

// oauthErrors are the error codes an OP answers with (RFC 6749 §4.1.2.1,
// §5.2; OpenID Connect Core §3.1.2.6; RFC 9126 PAR; RFC 9449 DPoP; RFC
// 9470 step-up; RFC 8707 resource indicators). The web layer reports an
// authorization response's code as it is and a token endpoint's as
// op_error_<code>.
var oauthErrors = []string{
	"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope",
	"server_error", "temporarily_unavailable", "invalid_client", "invalid_grant", "unsupported_grant_type",
	"interaction_required", "login_required", "account_selection_required", "consent_required",
	"invalid_request_uri", "invalid_request_object", "request_not_supported", "request_uri_not_supported",
	"registration_not_supported", "invalid_target", "invalid_dpop_proof", "use_dpop_nonce",
	"insufficient_user_authentication", "invalid_authorization_details",
}

// reasons is the closed set of reasons reported as they are.
var reasons = func() map[string]struct{} {
	set := map[string]struct{}{}
	add := func(rs ...string) {
		for _, r := range rs {
			set[r] = struct{}{}
		}
	}
	// Validation codes (rp.ValidationError.Code): access tokens, logout
	// tokens, ID tokens.
	for _, c := range []rp.Code{
		rp.CodeMalformed, rp.CodeAlgorithm, rp.CodeUnknownKey, rp.CodeSignature, rp.CodeType, rp.CodeIssuer,
		rp.CodeAudience, rp.CodeAuthorizedBy, rp.CodeExpired, rp.CodeNotYetValid, rp.CodeIssuedAt, rp.CodeSubject,
		rp.CodeNonce, rp.CodeAccessHash, rp.CodeTokenID, rp.CodeReplay, rp.CodeEvents, rp.CodeSessionID,
		rp.CodeState, rp.CodeResponseIss, rp.CodeRevokedSID, rp.CodeScope, rp.CodeAuthTime, rp.CodeInactive,
	} {
		add(string(c))
	}
	// The web layer (middleware): sign-ins, refreshes, sessions.
	add("no_transaction", "login_expired", "login_replayed", "session_revoked", "claims_unreadable", "no_live_session",
		"refresh_in_progress", "store_unavailable", "client_rejected", "client_not_allowed", "grant_refused",
		"identity_changed", "op_rate_limited", "op_unavailable", "op_malformed_answer", "op_timeout", "op_unreachable",
		"signed_out", tokenstore.ExpiredIdle, tokenstore.ExpiredLifetime)
	for _, what := range []string{"id_token", "logout_token", "access_token", "authorization_response", "jwt", "claims"} {
		add("invalid_" + what)
	}
	// Error classes (a reason of last resort).
	add("invalid", "temporary", "revoked", "misconfigured", "none")
	// The back-channel logout handler.
	add("body_too_large", "content_type", "token_in_query", "missing_token", "verifier_error")
	// The bearer layer.
	add("no_token", "malformed_request", "error")
	// Step-up authentication (RFC 9470, issue 15.4) and DPoP proofs (RFC
	// 9449, issue 15.3), landing beside this module: the reasons they emit.
	add("acr", "max_age", "api", "already_met", "acr_not_met", "auth_time_not_met", "dpop_required")
	for _, c := range []string{"alg", "binding", "jwk", "malformed", "htm", "htu", "replay", "signature", "iat", "ath", "typ", "use_dpop_nonce"} {
		add("dpop_" + c)
	}
	for _, c := range oauthErrors {
		add(c, "op_error_"+c)
	}
	return set
}()
