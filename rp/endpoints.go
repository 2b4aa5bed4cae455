package rp

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// EndSessionURL returns the OP's RP-initiated logout URL (OpenID Connect
// RP-Initiated Logout 1.0; /oidc/logout at Scalekit). Send the browser
// there with a top-level redirect: the OP finds its session by its own
// cookie. ErrNotSupported when the OP advertises no end_session_endpoint.
//
// With idTokenHint (the ID token of the session being ended) it carries
// id_token_hint, client_id, post_logout_redirect_uri
// (Config.PostLogoutRedirectURL, when set) and state (when not empty): the
// OP can tell which client asks and send the browser back to the app. Keep
// the ID token for this after it expires: §2 says the OP SHOULD accept an
// expired ID token as the hint when the RP has, or recently had, a session
// at the OP.
//
// Without idTokenHint it carries client_id only (§2: client_id identifies
// the client when there is no hint). post_logout_redirect_uri and state are
// left out: §2 recommends id_token_hint whenever post_logout_redirect_uri
// is sent, and OPs refuse them without one (Ory Hydra shows the user an
// error page). The OP then ends its session, usually after asking the
// user, and shows its own page rather than returning to the app. The web
// middleware never sends a browser there: without an ID token it ends the
// local session only (see middleware.Web).
func (c *Client) EndSessionURL(idTokenHint, state string) (string, error) {
	if c.p.meta.EndSessionEndpoint == "" {
		return "", fmt.Errorf("%w: the OP advertises no end_session_endpoint, so it cannot end its session from here; clear the local session only", ErrNotSupported)
	}
	u, err := url.Parse(c.p.meta.EndSessionEndpoint)
	if err != nil {
		return "", fmt.Errorf("%w: the OP advertises an unusable end_session_endpoint: %v", ErrConfig, err)
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
		if c.cfg.PostLogoutRedirectURL != "" {
			q.Set("post_logout_redirect_uri", c.cfg.PostLogoutRedirectURL)
		}
		if state != "" {
			q.Set("state", state)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Revoke revokes a token at the OP (RFC 7009), authenticated as the token
// requests are, unless the OP's revocation_endpoint_auth_methods_supported
// lists only the other secret method (then that one). hint is
// "refresh_token", "access_token" or "".
// ErrNotSupported when the OP has no revocation_endpoint.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	if c.p.meta.RevocationEndpoint == "" {
		return fmt.Errorf("%w: no revocation_endpoint", ErrNotSupported)
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, body, err := c.auth.send(ctx, c.p.http, c.p.meta.RevocationEndpoint, c.p.meta.RevocationEndpointAuthMethods, form)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return answerError("revocation", resp, body)
}

// UserInfo calls the OP's userinfo endpoint with accessToken and returns
// its claims. The answer's sub must equal subject (OpenID Connect Core
// §5.3.2), so a token of another user cannot swap identities.
func (c *Client) UserInfo(ctx context.Context, accessToken, subject string) (*Claims, error) {
	if c.p.meta.UserinfoEndpoint == "" {
		return nil, fmt.Errorf("%w: no userinfo_endpoint", ErrNotSupported)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.p.meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo request: %v", ErrConfig, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, body, err := doRequest(c.p.http, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError("userinfo", resp, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/jwt" {
		return nil, fmt.Errorf("%w: signed userinfo responses (application/jwt)", ErrNotSupported)
	}
	cl, err := ParseClaims(body)
	if err != nil {
		return nil, temporary(fmt.Errorf("userinfo is not a JSON object: %w", err))
	}
	if cl.Subject == "" || cl.Subject != subject {
		return nil, invalid("userinfo", CodeSubject, "userinfo sub %q is not the ID token's %q", cl.Subject, subject)
	}
	return cl, nil
}

// answerError turns a non-success answer into *OPError, or ErrTemporary
// when it is not a proper OAuth error.
func answerError(endpoint string, resp *http.Response, body []byte) error {
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if resp.StatusCode == http.StatusUnauthorized && len(body) == 0 {
		if endpoint != "userinfo" {
			// The client authenticated to this endpoint (RFC 6749 §5.2:
			// a 401 is invalid_client), not with a token.
			return &OPError{Endpoint: endpoint, Code: "invalid_client", Status: resp.StatusCode, Description: resp.Header.Get("WWW-Authenticate")}
		}
		// RFC 6750 §3: the error is in WWW-Authenticate, the token is bad.
		return &OPError{Endpoint: endpoint, Code: "invalid_token", Status: resp.StatusCode, Description: resp.Header.Get("WWW-Authenticate")}
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || json.Unmarshal(body, &e) != nil || e.Error == "" {
		return temporaryAnswer(resp, fmt.Errorf("%s endpoint answered HTTP %d", endpoint, resp.StatusCode))
	}
	return &OPError{Endpoint: endpoint, Code: e.Error, Description: e.ErrorDescription, Status: resp.StatusCode}
}
