package rp

import (
	"strconv"
	"strings"
)

// The fix-it texts of this package: what a developer reads after a
// refusal, in the words of the README's troubleshooting section and of
// `multiapp doctor`. They are kept here, as a table, so that they read as
// one list and are reviewed together; the code that raises an error names
// the text it adds.

// opHints name the likely misconfiguration behind an OP's error answer;
// the first whose when matches is the OPError's Hint. In the texts,
// {redirect_url}, {client_id} and {auth_method} stand for the refused
// request's values, quoted.
var opHints = []struct {
	when func(e *OPError, h hintContext, text string) bool // text: error code and description, lower case
	hint string
}{
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return strings.Contains(text, "post_logout_redirect")
		},
		hint: "the post-logout redirect URL must be registered at the OP exactly as sent " +
			"(scheme, host, port, path and trailing slash)",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return strings.Contains(text, "redirect") && e.Endpoint == "token"
		},
		hint: "the redirect_uri sent with the code ({redirect_url}, Config.RedirectURL) must be exactly the one " +
			"of the authorization request and registered for client {client_id}: every instance and every " +
			"handler of this app's callback must use the same RedirectURL; `multiapp doctor` probes the registration",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool { return strings.Contains(text, "redirect") },
		hint: "the redirect URL {redirect_url} is probably not registered for client {client_id} at this OP: " +
			"it must be registered exactly as sent, with the same scheme (http/https), host (localhost is not " +
			"127.0.0.1), port, path and trailing slash; `multiapp doctor` probes the OP and names the difference",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return e.Code == "invalid_client" && h.authMethod == AuthPrivateKeyJWT
		},
		hint: "the OP does not accept the private_key_jwt assertion of client {client_id}: check that the client " +
			"is registered for private_key_jwt with the public half of Config.Key (jwks or jwks_uri, same kid), " +
			"that the OP allows the assertion's alg, and that this server's clock is right (assertions live 60 s)",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool { return e.Code == "invalid_client" },
		hint: "the OP does not accept the credentials of client {client_id}: check that this client id exists " +
			"in this OP environment (a client of another environment is unknown here), that ClientSecret is its " +
			"current secret, and that it is registered for token endpoint auth method {auth_method} (a web app " +
			"as a confidential client, an SPA or native app as a public one)",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return e.Endpoint == "authorization" && strings.Contains(text, "pushed authorization request")
		},
		hint: "the OP requires pushed authorization requests (RFC 9126) of client {client_id} but does not say so " +
			"in its discovery document: set Config.PAR",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool { return e.Code == "unauthorized_client" },
		hint: "client {client_id} is not allowed this grant or response type at the OP: enable the " +
			"authorization code flow (and refresh tokens) for it",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool { return e.Code == "invalid_scope" },
		hint: "a requested scope is not enabled for this client at the OP (offline_access, for refresh tokens, " +
			"often has to be allowed explicitly): enable it, or set Config.Scopes to the scopes the OP allows",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return e.Code == "invalid_grant" && e.Endpoint == "token" && h.grant == "refresh_token"
		},
		hint: "the refresh token is expired, revoked (the user signed out of the shared session, or an admin " +
			"ended it), already used (refresh tokens rotate: refresh once per session at a time, across every " +
			"instance of the app), or was issued to another client or without offline_access",
	},
	{
		when: func(e *OPError, h hintContext, text string) bool {
			return e.Code == "invalid_grant" && e.Endpoint == "token"
		},
		hint: "the code expired (codes live about a minute), was already redeemed (a callback reloaded or " +
			"submitted twice), was issued to another client, or the PKCE verifier or redirect_uri differs from " +
			"the authorization request (the callback used another login's transaction, or another RedirectURL)",
	},
}

// hintFor returns the first matching opHint, with the request's values
// filled in, or "".
func hintFor(e *OPError, h hintContext) string {
	text := strings.ToLower(e.Description + " " + e.Code)
	for _, oh := range opHints {
		if oh.when(e, h, text) {
			return strings.NewReplacer(
				"{redirect_url}", strconv.Quote(h.redirectURL),
				"{client_id}", strconv.Quote(h.clientID),
				"{auth_method}", strconv.Quote(h.authMethod),
			).Replace(oh.hint)
		}
	}
	return ""
}

// Fix-it texts of refusals, completed by fmt with the values their
// comments name.
const (
	// hintIssuerMismatch: the issuer the discovery document names, the one
	// given, how they differ, the one to use.
	hintIssuerMismatch = "the OP's discovery document names issuer %q but the issuer given to rp.Discover is " +
		"%q (%s): the two must be identical, so use exactly %q as the issuer (tokens carry that string in iss, " +
		"and every app sharing the sign-in must use it)"
	// hintTokenIssuer: the token's iss, the issuer expected, how they differ.
	hintTokenIssuer = "iss is %q, expected %q (%s): the token comes from another issuer or OP environment; " +
		"every app that shares the sign-in must use the same issuer URL, and the OP must be configured with " +
		"that issuer URL"
	// hintClockAhead: by how much the clock would be ahead.
	hintClockAhead = "if the OP issued it just now, this server's clock is at least %v ahead of the OP's: " +
		"synchronise it (NTP), `multiapp doctor` measures the offset; otherwise the token is simply old: refresh it"
	// hintClockBehind: by how much the clock is behind.
	hintClockBehind = "this server's clock is behind the OP's by at least %v; synchronise it (NTP), " +
		"`multiapp doctor` measures the offset"
	// hintLogoutTokenAge: (no value).
	hintLogoutTokenAge = "the OP sends logout tokens as it issues them, so if this one was just delivered, this " +
		"server's clock is ahead of the OP's: synchronise it (NTP), `multiapp doctor` measures the offset"
	// hintNotAnAccessToken: (no value).
	hintNotAnAccessToken = "the token carries the claims of an ID token (nonce, at_hash, c_hash, s_hash, or " +
		"typ ID) or of a logout token (events): an ID token tells a client who signed in, it does not " +
		"authorize API calls; send the access token instead (AccessTokenConfig.InsecureAcceptIDTokens " +
		"accepts such tokens, for an OP that puts a nonce in its access tokens)"
	// hintSenderConstrained: (no value).
	hintSenderConstrained = "the token is sender-constrained (cnf): it needs a DPoP or mTLS proof, which a " +
		"bearer API does not check"
	// hintSecretInClear: the endpoint's name and URL.
	hintSecretInClear = "the OP's %s %q is plain http outside loopback: the client secret would cross the " +
		"network in clear text, so it is never sent there; serve the OP over https"
	// hintOtherMethodAccepted: the method the OP accepts, three times.
	hintOtherMethodAccepted = " but accepts %s: the client is registered for %s; set the auth method to %s, " +
		"or leave it empty so the library detects it"
	// hintPublicRefused: (no value).
	hintPublicRefused = ": the client is registered as a confidential client (set ClientSecret), or is unknown " +
		"in this OP environment"
	// hintKeyRefused: (no value).
	hintKeyRefused = ": check that the client is registered for private_key_jwt with the public half of " +
		"Config.Key (its jwks or jwks_uri, same kid: rp.JWKS prints it), that the OP allows the assertion's " +
		"alg, and that this server's clock is right (assertions live 60 s; `multiapp doctor` measures the offset)"
	// hintCredentialsRefused: (no value).
	hintCredentialsRefused = " and with the other secret method too: check that ClientSecret is the client's " +
		"current secret in this OP environment (secrets differ per environment and change when rotated) and " +
		"that the client id exists there"
)
