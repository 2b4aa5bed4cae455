// Package devop is an in-process development OpenID Provider for the demo of
// multiapp and for the tests of applications built with it.
//
// It is built on the op package of zitadel/oidc and mimics Scalekit where it
// matters to a relying party: the endpoint paths (/oauth/authorize,
// /oauth/token, /oidc/logout, /keys), JWT access tokens with `sid`, `roles`,
// `permissions`, `scope` and `client_id`, refresh tokens only with
// offline_access and rotated on every use, and OpenID Connect Back-Channel
// Logout 1.0 to every client of an OP session when it ends. One OP session
// (a cookie at the OP) is shared by all clients, so the second app signs in
// without a login page.
//
// DPoP (RFC 9449) is always on, used by a client that sends a DPoP proof to
// the token endpoint: the proof is checked with multiapp's dpop.Verifier
// after client authentication and before the grant (a bad one answers 400
// invalid_dpop_proof), the access token is bound to the proof's key
// (cnf.jkt, token_type DPoP), and so is a public client's refresh token,
// which then cannot be refreshed without a proof by that key
// (invalid_grant). [Config.DPoPNonces] requires server nonces. Without a
// proof, tokens are Bearer tokens as before.
//
// In a test:
//
//	o := devop.Start(t, devop.Config{Clients: []devop.Client{{
//		ID: "web", Secret: "s3cret",
//		RedirectURIs:           []string{app.URL + "/auth/callback"},
//		PostLogoutRedirectURIs: []string{app.URL + "/"},
//		BackChannelLogoutURI:   app.URL + "/auth/backchannel-logout",
//	}}})
//	// point the app at o.Issuer()
//
// For the demo, [DemoConfig] with [New] and [OP.ListenAndServe], or the
// command in cmd/devop.
//
// It is a development tool: state lives in memory, passwords are compared in
// plain text, plain http issuers and loopback back-channel URIs are allowed.
package devop
