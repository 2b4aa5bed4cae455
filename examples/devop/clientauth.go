package devop

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Token endpoint client authentication methods (RFC 7591 names), the values
// of [Client.AuthMethod].
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// registeredAuthMethod is the method a client was registered with: its
// AuthMethod, or the RFC 7591 default (client_secret_basic) for a
// confidential client and none for a public one.
func (c *Client) registeredAuthMethod() string {
	switch {
	case c.AuthMethod != "":
		return c.AuthMethod
	case c.Public():
		return AuthMethodNone
	}
	return AuthMethodBasic
}

// clientAuthError is an RFC 6749 §5.2 error answer of the checks that run
// before the grant: the client's credentials, and the DPoP proof (RFC 9449
// §5).
type clientAuthError struct {
	status      int
	code        string
	description string
	basic       bool   // the client tried HTTP Basic: answer with a Basic challenge
	dpopNonce   string // a DPoP-Nonce header to send (RFC 9449 §8)
}

// authenticateClient checks the client authentication of a token or
// revocation request before anything else in the request is looked at, as
// Ory Hydra does: the request must use exactly one method (RFC 6749 §2.3),
// the method the client was registered with, and the right secret. A code or
// refresh token is therefore never judged for a client that failed to
// authenticate, so `invalid_grant` always means "the credentials were
// accepted". The form must be parsed.
//
// In client_secret_basic, the client id and secret are form-urlencoded before
// base64 (RFC 6749 §2.3.1): they are decoded here, so a client that skips the
// encoding fails with a secret containing ':', '%', '+' or a space.
func (o *OP) authenticateClient(r *http.Request) (*Client, *clientAuthError) {
	fail := func(format string, args ...any) *clientAuthError {
		return &clientAuthError{status: http.StatusUnauthorized, code: "invalid_client", description: fmt.Sprintf(format, args...)}
	}
	var used, id, secret string
	basicID, basicSecret, hasBasic := r.BasicAuth()
	_, hasPostSecret := r.PostForm["client_secret"]
	switch {
	case hasBasic && hasPostSecret:
		return nil, &clientAuthError{status: http.StatusBadRequest, code: "invalid_request", description: "the client authenticated with both client_secret_basic and client_secret_post; use one method (RFC 6749 section 2.3)"}
	case hasBasic:
		used = AuthMethodBasic
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			e := fail("the HTTP Basic credentials are not form-urlencoded (RFC 6749 section 2.3.1)")
			e.basic = true
			return nil, e
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return nil, &clientAuthError{status: http.StatusBadRequest, code: "invalid_request", description: "client_id in the body differs from the one in the Authorization header"}
		}
	case hasPostSecret:
		used, id, secret = AuthMethodPost, r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		used, id = AuthMethodNone, r.PostForm.Get("client_id")
	}
	if id == "" {
		e := fail("no client authentication: send the client id (and, for a confidential client, its secret)")
		e.basic = hasBasic
		return nil, e
	}
	c := o.clients[id]
	if c == nil {
		e := fail("unknown client %q", id)
		e.basic = hasBasic
		return nil, e
	}
	want := c.registeredAuthMethod()
	if used != want {
		e := fail("client %q is registered for token_endpoint_auth_method %s, but this request used %s", id, want, used)
		e.basic = hasBasic
		return nil, e
	}
	if used != AuthMethodNone && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		e := fail("wrong client secret for client %q", id)
		e.basic = hasBasic
		return nil, e
	}
	return c, nil
}

// write answers the error as RFC 6749 §5.2 JSON, with a Basic challenge
// when the client tried HTTP Basic.
func (e *clientAuthError) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if e.basic && e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="devop"`)
	}
	if e.dpopNonce != "" {
		h.Set("DPoP-Nonce", e.dpopNonce)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.description})
}
