package rp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/pkce"
)

// endpointPAR names the PAR endpoint in OPError.Endpoint.
const endpointPAR = "pushed_authorization"

// reservedParams are set by AuthCodeURL itself and cannot be overridden.
var reservedParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "state": true,
	"nonce": true, "code_challenge": true, "code_challenge_method": true,
	"scope": false, // may be overridden deliberately
}

// AuthCodeURL returns the OP's authorization URL for the login transaction
// tx: response_type=code, the configured scopes, state, nonce and a PKCE S256
// challenge (for confidential clients too, RFC 9700 §2.1.1).
//
// With Pushed Authorization Requests (Config.PAR, or an OP whose discovery
// says require_pushed_authorization_requests; RFC 9126) the parameters are
// first POSTed to the OP's pushed_authorization_request_endpoint,
// authenticated like token requests, and the URL carries only client_id
// and the request_uri the OP answered: the browser never sees the request.
// ctx bounds that request; an OP refusal is an *OPError (Endpoint
// "pushed_authorization", with a Hint), an outage ErrTemporary. Without
// PAR no request is made.
//
// extra passes further parameters through: prompt ("none", "login",
// "select_account"), login_hint, max_age, organization_id, connection_id,
// ui_locales, or a "scope" that replaces the configured scopes. Parameters
// that carry the protocol's own state (state, nonce, PKCE, client_id,
// redirect_uri, response_type) cannot be overridden: passing one is an
// error. A max_age (a number of seconds) is recorded in tx, so Exchange then
// requires the ID token's auth_time and checks it (OpenID Connect Core
// §3.1.2.1); so are acr_values (space-separated), and Exchange then requires
// the ID token's acr to be one of them (step-up authentication, RFC 9470):
// save tx after this call.
func (c *Client) AuthCodeURL(ctx context.Context, tx *pkce.Transaction, extra url.Values) (string, error) {
	if c.cfg.RedirectURL == "" {
		return "", configError("RedirectURL is empty: the login flow needs the callback URL registered at the OP")
	}
	if tx == nil || tx.State == "" || tx.Nonce == "" || !pkce.ValidVerifier(tx.Verifier) {
		return "", fmt.Errorf("%w: AuthCodeURL needs a transaction from pkce.NewTransaction", ErrConfig)
	}
	if tx.Issuer != c.p.meta.Issuer {
		return "", fmt.Errorf("%w: the transaction was started for issuer %q, not %q", ErrConfig, tx.Issuer, c.p.meta.Issuer)
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("nonce", tx.Nonce),
		oauth2.SetAuthURLParam("code_challenge", tx.Challenge()),
		oauth2.SetAuthURLParam("code_challenge_method", pkce.Method),
	}
	for k, vs := range extra {
		if reservedParams[k] {
			return "", fmt.Errorf("%w: parameter %q is set by the library and cannot be overridden", ErrConfig, k)
		}
		if len(vs) != 1 {
			return "", fmt.Errorf("%w: parameter %q must have exactly one value", ErrConfig, k)
		}
		if k == "max_age" {
			n, err := strconv.ParseInt(vs[0], 10, 64)
			if err != nil || n < 0 {
				return "", fmt.Errorf("%w: max_age %q is not a number of seconds", ErrConfig, vs[0])
			}
			tx.MaxAge = &n
		}
		if k == "acr_values" {
			if tx.ACRValues = strings.Fields(vs[0]); len(tx.ACRValues) == 0 {
				return "", fmt.Errorf("%w: acr_values is empty", ErrConfig)
			}
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
	}
	authURL := c.oauth.AuthCodeURL(tx.State, opts...)
	if !c.par {
		return authURL, nil
	}
	return c.push(ctx, authURL)
}

// push sends the authorization request authURL carries to the OP's PAR
// endpoint (RFC 9126 §2) and returns the URL that refers to it.
func (c *Client) push(ctx context.Context, authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", configError("the authorization URL does not parse: %v", err)
	}
	params := u.Query()
	endpoint := c.p.meta.PushedAuthorizationRequestEndpoint
	resp, body, err := c.auth.send(ctx, c.p.http, endpoint, nil, params)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		err := answerError(endpointPAR, resp, body)
		var oe *OPError
		if errors.As(err, &oe) {
			return "", oe.withHint(c.hintContext(""))
		}
		return "", err
	}
	var answer struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.RequestURI == "" || answer.ExpiresIn <= 0 {
		return "", temporaryAnswer(resp, fmt.Errorf("the pushed authorization request endpoint answered HTTP %d without a request_uri and a positive expires_in (RFC 9126 §2.2)", resp.StatusCode))
	}
	if !validRequestURI(answer.RequestURI) {
		return "", temporaryAnswer(resp, fmt.Errorf("the pushed authorization request endpoint answered a request_uri that is not an absolute URI of at most %d bytes (RFC 9126 §2.2)", maxRequestURI))
	}
	// RFC 9126 §4: client_id and request_uri only; the authorization
	// endpoint's own query (some OPs put a tenant there) stays.
	base, err := url.Parse(c.p.meta.AuthorizationEndpoint)
	if err != nil {
		return "", configError("the OP's authorization_endpoint does not parse: %v", err)
	}
	q := base.Query()
	q.Set("client_id", c.cfg.ClientID)
	q.Set("request_uri", answer.RequestURI)
	base.RawQuery = q.Encode()
	return base.String(), nil
}

// maxRequestURI bounds the request_uri a PAR endpoint hands back (OPs send
// a urn:ietf:params:oauth:request_uri: of a few dozen bytes): it goes into
// the browser's Location header.
const maxRequestURI = 2048

// validRequestURI: an absolute URI (scheme:rest), printable ASCII, bounded.
func validRequestURI(s string) bool {
	if len(s) > maxRequestURI {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Opaque+u.Host+u.Path != ""
}

// AuthResponse is the authorization response the OP sent to the redirect
// URI, parsed but not yet validated.
type AuthResponse struct {
	Code  string
	State string
	// Iss is the RFC 9207 issuer identifier, when sent.
	Iss string
	// Error and ErrorDescription are set when the OP answered
	// with an error instead of a code.
	Error            string
	ErrorDescription string
}

// maxAuthParam bounds code, state and iss in an authorization response:
// OPs send a few dozen to a few hundred bytes; anything of several KB is an
// attack or a broken proxy, and is never forwarded to the token endpoint.
const maxAuthParam = 4096

// oversized refuses code, state or iss values longer than maxAuthParam.
func (r *AuthResponse) oversized() error {
	for _, p := range []struct{ name, v string }{{"code", r.Code}, {"state", r.State}, {"iss", r.Iss}} {
		if len(p.v) > maxAuthParam {
			return invalid(whatAuthResp, CodeMalformed, "%s is %d bytes, more than the %d an OP sends", p.name, len(p.v), maxAuthParam)
		}
	}
	return nil
}

// ParseAuthResponse parses the query of the redirect URI. A parameter that
// appears more than once makes the whole response invalid (RFC 6749 §3.1),
// and so does a code, state or iss longer than 4 KiB.
func ParseAuthResponse(rawQuery string) (*AuthResponse, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, &ValidationError{What: whatAuthResp, Code: CodeMalformed, Err: err}
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, invalid(whatAuthResp, CodeMalformed, "parameter %q appears %d times", k, len(vs))
		}
	}
	r := &AuthResponse{
		Code:             q.Get("code"),
		State:            q.Get("state"),
		Iss:              q.Get("iss"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
	}
	if err := r.oversized(); err != nil {
		return nil, err
	}
	return r, nil
}

// Exchange completes a login. It checks resp against the transaction (state,
// RFC 9207 iss, an OP error), redeems the code with the PKCE verifier and
// validates the ID token fully, including nonce, at_hash and, when tx asked
// for a max_age, auth_time. A code, state or iss longer than 4 KiB is
// refused before any request to the OP. An OP error
// response comes back as *OPError (errors.Is ErrLoginRequired after a
// prompt=none request without OP session).
//
// The caller must have consumed tx (middleware.Web's transaction cookie
// does) so it is not used twice.
func (c *Client) Exchange(ctx context.Context, tx *pkce.Transaction, resp *AuthResponse) (*Tokens, error) {
	if tx == nil || resp == nil {
		return nil, invalid(whatAuthResp, CodeState, "no login transaction")
	}
	if err := resp.oversized(); err != nil {
		return nil, err
	}
	if resp.State == "" || subtle.ConstantTimeCompare([]byte(resp.State), []byte(tx.State)) != 1 {
		return nil, invalid(whatAuthResp, CodeState, "state does not match the login started in this browser")
	}
	if tx.Issuer != c.p.meta.Issuer {
		return nil, invalid(whatAuthResp, CodeIssuer, "transaction was started for issuer %q, not %q", tx.Issuer, c.p.meta.Issuer)
	}
	switch {
	case resp.Iss != "" && resp.Iss != c.p.meta.Issuer:
		return nil, invalid(whatAuthResp, CodeResponseIss, "iss is %q, expected %q (a mix-up attack, or another OP answered)", resp.Iss, c.p.meta.Issuer)
	case resp.Iss == "" && c.p.meta.AuthorizationResponseIssParameterSupported:
		return nil, invalid(whatAuthResp, CodeResponseIss, "iss is missing although the OP advertises authorization_response_iss_parameter_supported")
	case resp.Iss == "" && c.requireIss:
		return nil, invalid(whatAuthResp, CodeResponseIss, "iss is missing: the %s profile requires it (RFC 9207), so the OP must send it", c.cfg.Profile)
	}
	if resp.Error != "" {
		return nil, (&OPError{Endpoint: "authorization", Code: resp.Error, Description: resp.ErrorDescription}).withHint(c.hintContext(""))
	}
	if resp.Code == "" {
		return nil, invalid(whatAuthResp, CodeMalformed, "neither code nor error in the response")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {resp.Code}, "code_verifier": {tx.Verifier}}
	if c.cfg.RedirectURL != "" {
		form.Set("redirect_uri", c.cfg.RedirectURL)
	}
	ot, err := c.redeem(ctx, form)
	if err != nil {
		return nil, c.tokenError(err, "authorization_code")
	}
	t, err := c.tokens(ctx, ot, tx.Nonce, nil)
	if err != nil {
		return nil, err
	}
	if tx.MaxAge != nil {
		if err := c.checkAuthTime(t.Claims, *tx.MaxAge); err != nil {
			return nil, err
		}
	}
	if len(tx.ACRValues) > 0 && !slices.Contains(tx.ACRValues, t.Claims.ACR) {
		return nil, invalid(whatIDToken, CodeACR, "acr is %q, not one of the requested acr_values %q: the OP did not authenticate the user as asked (a step-up it could not do, or acr_values it ignores)", t.Claims.ACR, tx.ACRValues)
	}
	return t, nil
}

// checkAuthTime applies max_age (OpenID Connect Core §3.1.2.1, §3.1.3.7):
// auth_time is required, not in the future, and no older than maxAge
// seconds, with the clock skew.
func (c *Client) checkAuthTime(cl *Claims, maxAge int64) error {
	if cl.AuthTime == 0 {
		return invalid(whatIDToken, CodeAuthTime, "auth_time is missing, but max_age was requested (OpenID Connect Core §2: then it is REQUIRED)")
	}
	now, at := c.p.now(), cl.AuthTime.Time()
	switch {
	case at.After(now.Add(c.p.skew)):
		return invalid(whatIDToken, CodeAuthTime, "auth_time %s is in the future (now %s, tolerance %v)", stamp(at), stamp(now), c.p.skew)
	case !cl.AuthenticatedWithin(seconds(maxAge), now, c.p.skew):
		return invalid(whatIDToken, CodeAuthTime, "the user authenticated at %s, more than the requested max_age of %ds ago: the OP did not re-authenticate the user", stamp(at), maxAge)
	}
	return nil
}

// seconds is n seconds as a time.Duration, the largest one when n is
// beyond 292 years (a max_age that large means any age, not an overflow).
func seconds(n int64) time.Duration {
	if n > math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Second
}

// tokenError sorts a token endpoint failure: the OP's answer becomes
// *OPError; anything that is not a proper OAuth answer is ErrTemporary.
func (c *Client) tokenError(err error, grant string) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, ErrConfig), errors.Is(err, ErrTemporary):
		return err
	case !errors.As(err, &re):
		return temporary(err) // network, timeout, cancelled, unparsable 2xx body
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if re.ErrorCode == "" || status >= 500 || status == 429 || re.ErrorCode == "temporarily_unavailable" || re.ErrorCode == "server_error" {
		return temporaryAnswer(re.Response, fmt.Errorf("token endpoint answered HTTP %d %s", status, re.ErrorCode))
	}
	return (&OPError{Endpoint: "token", Code: re.ErrorCode, Description: re.ErrorDescription, Status: status}).withHint(c.hintContext(grant))
}
