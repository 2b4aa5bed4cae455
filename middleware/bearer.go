// Package middleware is multiapp's net/http glue: Web for web apps
// (sign-in routes and server-side sessions) and Bearer for API services.
//
// For API services, Bearer authenticates every request by its OAuth 2.0
// bearer access token (RFC 6750): it takes the token from the
// Authorization header, validates it with an rp.AccessTokenVerifier (or an
// rp.MultiIssuerVerifier), puts its claims in the request context
// (BearerClaims), checks required scopes, permissions and roles, and
// answers failures with the RFC 6750 status and WWW-Authenticate
// challenge:
//
//   - no credentials: 401, WWW-Authenticate: Bearer realm="api" (no error);
//   - a malformed request (token in the query string, sent two ways,
//     empty, several parts, two Authorization headers): 400 invalid_request;
//   - an invalid, expired or revoked token: 401 error="invalid_token";
//   - a missing scope, permission or role: 403 error="insufficient_scope"
//     with scope="...";
//   - the OP or the revocation store unreachable: 503 with Retry-After
//     (the token may be fine: clients retry, they do not sign in again).
//
// The token is never echoed back or logged; Bearer.OnError receives the
// typed reason (*rp.ValidationError, ...) for logs and metrics.
package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/rp"
)

// TokenVerifier validates a bearer access token and returns its claims.
// *rp.AccessTokenVerifier and *rp.MultiIssuerVerifier implement it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*rp.Claims, error)
}

// Errors Bearer gives OnError for requests refused before validation.
var (
	// ErrNoBearerToken: the request carries no bearer token (401 without
	// an error attribute, RFC 6750 §3.1).
	ErrNoBearerToken = errors.New("middleware: no bearer token")
	// ErrBadBearerRequest: the token is sent in a way RFC 6750 does not
	// allow or this API refuses (400 invalid_request).
	ErrBadBearerRequest = errors.New("middleware: malformed bearer token request")
)

// DefaultRetryAfter is the Retry-After of 503 answers when
// Bearer.RetryAfter is zero.
const DefaultRetryAfter = 5 * time.Second

// Bearer authenticates API requests by their bearer access token. Set its
// fields, then wrap handlers with Authenticate or Require; do not change
// the fields afterwards. It is safe for concurrent use.
type Bearer struct {
	// Verifier validates the tokens. Required. Configure revocation
	// awareness (rp.AccessTokenConfig.Revocations) there.
	Verifier TokenVerifier
	// Realm names the protection space in WWW-Authenticate. Empty: "api".
	Realm string
	// InsecureAllowQueryToken accepts the token in the access_token query
	// parameter (RFC 6750 §2.3) when there is no Authorization header.
	// URLs end up in logs, browser history and Referer headers: leave it
	// off unless a client cannot send headers (e.g. EventSource).
	InsecureAllowQueryToken bool
	// RetryAfter is announced with 503 answers. Zero: DefaultRetryAfter.
	RetryAfter time.Duration
	// OnError, when set, is called for every refused request with the
	// status answered and the reason: ErrNoBearerToken,
	// ErrBadBearerRequest, a *rp.ValidationError (errors.As; Code says why;
	// rp.CodeScope for a missing scope, permission or role),
	// rp.ErrRevocationUnavailable, rp.ErrTemporary, or another error of the
	// verifier. It never contains the token.
	OnError func(r *http.Request, status int, err error)
}

type bearerKey struct{}

// bearerCtx is the request context inside a Bearer layer: the claims and
// the Bearer that verified them. It replaces context.WithValue (same single
// allocation) so that an inner layer can tell whether its own Bearer
// verified the token.
type bearerCtx struct {
	context.Context
	by     *Bearer
	claims *rp.Claims
}

func (c *bearerCtx) Value(key any) any {
	if key == (bearerKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// BearerClaims returns the claims of the request's validated access token
// (from the innermost Bearer layer), or nil outside Bearer. The claims may
// be shared between requests with the same token: treat them as read-only.
func BearerClaims(ctx context.Context) *rp.Claims {
	if c, ok := ctx.Value(bearerKey{}).(*bearerCtx); ok {
		return c.claims
	}
	return nil
}

// verifiedBy returns the claims in ctx when b itself verified them.
func (b *Bearer) verifiedBy(ctx context.Context) *rp.Claims {
	if c, ok := ctx.Value(bearerKey{}).(*bearerCtx); ok && c.by == b {
		return c.claims
	}
	return nil
}

// Authenticate calls next with the token's claims in the request context
// (BearerClaims) when the request has a valid bearer token, and answers
// with the RFC 6750 error otherwise. It panics when Verifier is nil.
func (b *Bearer) Authenticate(next http.Handler) http.Handler {
	return b.Require()(next)
}

// Require returns middleware that authenticates the request and then
// checks every requirement: all of them must hold. A missing scope,
// permission or role is answered 403 insufficient_scope, with the values of
// the first unmet requirement in the scope attribute.
//
// Layers of one Bearer verify a request once: Require inside the same
// Bearer's Authenticate uses the claims it put in the context. A layer of
// another Bearer (another API, another verifier) verifies the token again
// with its own Verifier, never trusting claims it did not check; the
// verifier's cache makes that cheap.
//
//	mux.Handle("GET /orders", bearer.Require(middleware.AnyScope("orders:read"))(listOrders))
func (b *Bearer) Require(reqs ...Requirement) func(http.Handler) http.Handler {
	if b.Verifier == nil {
		panic("middleware: Bearer.Verifier is nil")
	}
	reqs = append([]Requirement(nil), reqs...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cl := b.verifiedBy(r.Context())
			if cl == nil {
				raw, err := bearerToken(r.Header["Authorization"], r.URL.RawQuery, b.InsecureAllowQueryToken)
				if err != nil {
					b.fail(w, r, err, nil)
					return
				}
				cl, err = b.Verifier.Verify(r.Context(), raw)
				if err != nil {
					if !b64token(raw) {
						err = fmt.Errorf("%w: the token has characters RFC 6750 does not allow", ErrBadBearerRequest)
					}
					b.fail(w, r, err, nil)
					return
				}
				r = r.WithContext(&bearerCtx{Context: r.Context(), by: b, claims: cl})
			}
			for i := range reqs {
				if !reqs[i].met(cl) {
					b.fail(w, r, reqs[i].error(), &reqs[i])
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken extracts the access token from the Authorization header
// values and the raw query of a request (RFC 6750 §2.1 and §2.3).
func bearerToken(authz []string, rawQuery string, allowQuery bool) (string, error) {
	var query string
	inQuery := false
	if strings.Contains(rawQuery, "access_token") || strings.Contains(rawQuery, "%") {
		q, err := url.ParseQuery(rawQuery)
		switch v := q["access_token"]; {
		case err != nil && strings.Contains(rawQuery, "access_token"):
			return "", fmt.Errorf("%w: the query string cannot be parsed", ErrBadBearerRequest)
		case len(v) > 1:
			return "", fmt.Errorf("%w: access_token appears %d times in the query string", ErrBadBearerRequest, len(v))
		case len(v) == 1:
			query, inQuery = v[0], true
		}
	}
	if len(authz) > 1 {
		return "", fmt.Errorf("%w: %d Authorization headers", ErrBadBearerRequest, len(authz))
	}
	if len(authz) == 1 {
		scheme, rest, _ := strings.Cut(authz[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			token := strings.TrimLeft(rest, " ")
			switch {
			case inQuery:
				return "", fmt.Errorf("%w: the token is sent both in the Authorization header and in the query string", ErrBadBearerRequest)
			case token == "":
				return "", fmt.Errorf("%w: the Authorization header has no token after Bearer", ErrBadBearerRequest)
			case strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0:
				return "", fmt.Errorf("%w: the Authorization header has several values after Bearer", ErrBadBearerRequest)
			}
			return token, nil
		}
		// Another scheme (Basic, DPoP, ...): no bearer credentials.
	}
	switch {
	case !inQuery:
		return "", ErrNoBearerToken
	case !allowQuery:
		return "", fmt.Errorf("%w: a token in the query string is not accepted: send it in the Authorization header", ErrBadBearerRequest)
	case query == "":
		return "", fmt.Errorf("%w: access_token in the query string is empty", ErrBadBearerRequest)
	case !b64token(query):
		return "", fmt.Errorf("%w: the token has characters RFC 6750 does not allow", ErrBadBearerRequest)
	}
	return query, nil
}

// b64token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	i := 0
	for i < len(s) && b64tokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

var b64tokenChar = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// fail classifies err and answers with the matching RFC 6750 response.
func (b *Bearer) fail(w http.ResponseWriter, r *http.Request, err error, req *Requirement) {
	status, code, desc := bearerStatus(err)
	scope := ""
	if req != nil {
		scope = strings.Join(req.values, " ")
	}
	writeBearerError(w, b.realm(), status, code, desc, scope, b.retryAfter())
	if b.OnError != nil {
		b.OnError(r, status, err)
	}
}

func (b *Bearer) realm() string {
	if b.Realm == "" {
		return "api"
	}
	return b.Realm
}

func (b *Bearer) retryAfter() time.Duration {
	if b.RetryAfter <= 0 {
		return DefaultRetryAfter
	}
	return b.RetryAfter
}

// bearerStatus maps an error to the HTTP status, the RFC 6750 error code
// and a fixed description (never text from the request or the token).
func bearerStatus(err error) (status int, code, desc string) {
	var ve *rp.ValidationError
	switch {
	case errors.Is(err, ErrNoBearerToken):
		return http.StatusUnauthorized, "", "a bearer access token is required"
	case errors.Is(err, ErrBadBearerRequest):
		desc := "malformed bearer token request"
		if e := err.Error(); strings.HasPrefix(e, ErrBadBearerRequest.Error()+": ") {
			desc = strings.TrimPrefix(e, ErrBadBearerRequest.Error()+": ") // our own fixed texts
		}
		return http.StatusBadRequest, "invalid_request", desc
	case errors.As(err, &ve) && ve.Code == rp.CodeScope:
		return http.StatusForbidden, "insufficient_scope", "the access token lacks a required scope, permission or role"
	case errors.Is(err, rp.ErrRevocationUnavailable), errors.Is(err, rp.ErrTemporary),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "temporarily_unavailable", "the token cannot be checked right now, retry later"
	case ve != nil:
		switch ve.Code {
		case rp.CodeExpired:
			return http.StatusUnauthorized, "invalid_token", "the access token expired"
		case rp.CodeRevokedSID:
			return http.StatusUnauthorized, "invalid_token", "the sign-in session of the access token has ended"
		case rp.CodeInactive:
			return http.StatusUnauthorized, "invalid_token", "the access token is not active"
		}
		return http.StatusUnauthorized, "invalid_token", "the access token is invalid"
	}
	return http.StatusInternalServerError, "server_error", "the access token cannot be checked"
}

// writeBearerError writes every error response of Bearer: the status, the
// WWW-Authenticate challenge for 400, 401 and 403 (RFC 6750 §3), Retry-After
// for 503, no caching, and a small JSON body with the same error.
func writeBearerError(w http.ResponseWriter, realm string, status int, code, desc, scope string, retryAfter time.Duration) {
	h := w.Header()
	if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
		var c strings.Builder
		c.WriteString(`Bearer realm="`)
		c.WriteString(quoteEscape(realm))
		c.WriteByte('"')
		if code != "" {
			c.WriteString(`, error="`)
			c.WriteString(code)
			c.WriteString(`", error_description="`)
			c.WriteString(quoteEscape(desc))
			c.WriteByte('"')
		}
		if scope != "" {
			c.WriteString(`, scope="`)
			c.WriteString(quoteEscape(scope))
			c.WriteByte('"')
		}
		h.Set("WWW-Authenticate", c.String())
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if code == "" {
		code = "unauthorized"
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

// quoteEscape prepares s for an RFC 7230 quoted-string: backslash and
// double quote are escaped, control characters (and DEL) dropped.
func quoteEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
