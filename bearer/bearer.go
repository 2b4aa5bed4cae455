// Package bearer is the net/http layer of API services: it authenticates
// every request by its OAuth 2.0 bearer access token (RFC 6750). It takes
// the token from the Authorization header, validates it with a Verifier
// (an rp.AccessTokenVerifier or rp.MultiIssuerVerifier), puts its claims in
// the request context (ClaimsFrom), checks required scopes, permissions and
// roles (Require), and answers every failure, in one place, with the RFC
// 6750 status and WWW-Authenticate challenge:
//
//   - no credentials: 401, WWW-Authenticate: Bearer realm="api" (no error);
//   - a malformed request (token in the query string, sent two ways,
//     empty, several parts, two Authorization headers): 400 invalid_request;
//   - an invalid, expired or revoked token: 401 error="invalid_token";
//   - a missing scope, permission or role: 403 error="insufficient_scope"
//     with scope="...";
//   - a token whose sign-in is not strong or recent enough (AnyACR,
//     MaxAuthAge): 401 error="insufficient_user_authentication" with
//     acr_values="..." and max_age=N (RFC 9470 step-up);
//   - the OP or the revocation store unreachable: 503 with Retry-After
//     (the token may be fine: clients retry, they do not sign in again).
//
// With Config.DPoP it also accepts DPoP-bound tokens (RFC 9449:
// "Authorization: DPoP <token>" with a proof in the DPoP header), refuses
// them as bearer tokens, and answers with the Bearer and DPoP challenges
// (see DPoPConfig).
//
// The token is never echoed back or logged. Each refusal is an
// event.BearerRefused for the Observer, with the typed reason.
//
// The package depends on rp for the claims and the verifier, and on
// nothing of the web session layer (package middleware): an API service
// compiles in no cookies, sessions or session store.
package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/rp"
)

// Verifier validates a bearer access token and returns its claims.
// *rp.AccessTokenVerifier and *rp.MultiIssuerVerifier implement it.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*rp.Claims, error)
}

// Errors of requests refused before validation (rp.ClassInvalid), as the
// Observer gets them in event.BearerRefused.
var (
	// ErrNoToken: the request carries no bearer token (401 without an
	// error attribute, RFC 6750 §3.1).
	ErrNoToken error = errclass.New("bearer: no bearer token", errclass.Invalid)
	// ErrBadRequest: the token is sent in a way RFC 6750 does not allow or
	// this API refuses (400 invalid_request).
	ErrBadRequest error = errclass.New("bearer: malformed bearer token request", errclass.Invalid)
)

// Defaults.
const (
	// DefaultRealm names the protection space when Config.Realm is empty.
	DefaultRealm = "api"
	// DefaultRetryAfter is the Retry-After of 503 answers when
	// Config.RetryAfter is zero.
	DefaultRetryAfter = 5 * time.Second
)

// Config configures the bearer layer of one API. Verifier is required;
// everything else has a safe default.
type Config struct {
	// Verifier validates the tokens. Configure revocation awareness
	// (rp.AccessTokenConfig.Revocations) there.
	Verifier Verifier
	// Realm names the protection space in WWW-Authenticate. Empty:
	// DefaultRealm.
	Realm string
	// InsecureAllowQueryToken accepts the token in the access_token query
	// parameter (RFC 6750 §2.3) when there is no Authorization header.
	// URLs end up in logs, browser history and Referer headers: leave it
	// off unless a client cannot send headers (e.g. EventSource).
	InsecureAllowQueryToken bool
	// RetryAfter is announced with 503 answers. Zero: DefaultRetryAfter.
	RetryAfter time.Duration
	// ClockSkew is tolerated on auth_time by MaxAuthAge. Zero:
	// rp.DefaultClockSkew (give it the verifier's Provider's,
	// provider.ClockSkew()).
	ClockSkew time.Duration
	// DPoP, when set, also accepts DPoP-bound access tokens presented with
	// a proof (RFC 9449); see DPoPConfig. Verifier must then be a
	// BoundVerifier.
	DPoP *DPoPConfig
	// Observer gets an event.BearerRefused for every refused request, with
	// the reason (Err: ErrNoToken, ErrBadRequest, a *rp.ValidationError,
	// rp.ErrRevocationUnavailable, rp.ErrTemporary...; Reason: its stable
	// code). Nil: the audit log on slog.Default(), where a request without
	// a token is a debug record. Token checks themselves (durations, cache
	// hits) are events of the verifier's Provider: rp.ProviderOptions.Observer.
	Observer event.Observer
}

// Middleware authenticates API requests by their bearer access token: wrap
// handlers with Authenticate or Require. It is safe for concurrent use.
type Middleware struct {
	verifier   Verifier
	challenge  string // `Bearer realm="..."`
	allowQuery bool
	retryAfter string // whole seconds
	skew       time.Duration
	obs        event.Observer
	dpop       *dpopLayer // nil: bearer tokens only
}

// New checks cfg and returns the middleware.
func New(cfg Config) (*Middleware, error) {
	if cfg.Verifier == nil {
		return nil, fmt.Errorf("bearer: %w: Config.Verifier is nil: create it with rp.Discover and Provider.AccessTokenVerifier", rp.ErrConfig)
	}
	realm := cfg.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	retry := cfg.RetryAfter
	if retry <= 0 {
		retry = DefaultRetryAfter
	}
	m := &Middleware{
		verifier:   cfg.Verifier,
		challenge:  `Bearer realm="` + quoteEscape(realm) + `"`,
		allowQuery: cfg.InsecureAllowQueryToken,
		retryAfter: strconv.Itoa(int((retry + time.Second - 1) / time.Second)),
		skew:       cfg.ClockSkew,
		obs:        cfg.Observer,
	}
	if m.obs == nil {
		m.obs = event.Log(nil)
	}
	var err error
	if m.dpop, err = newDPoPLayer(cfg.DPoP, cfg.Verifier, realm); err != nil {
		return nil, err
	}
	return m, nil
}

type claimsKey struct{}

// claimsCtx is the request context inside a bearer layer: the claims and
// the Middleware that verified them. It replaces context.WithValue (same
// single allocation) so that an inner layer can tell whether its own
// Middleware verified the token.
type claimsCtx struct {
	context.Context
	by     *Middleware
	claims *rp.Claims
	proof  *checkedProof // the DPoP proof this layer checked; nil: none
}

func (c *claimsCtx) Value(key any) any {
	if key == (claimsKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// ClaimsFrom returns the claims of the request's validated access token
// (from the innermost bearer layer), or false outside one. The claims may
// be shared between requests with the same token: treat them as
// read-only.
func ClaimsFrom(ctx context.Context) (*rp.Claims, bool) {
	if c, ok := ctx.Value(claimsKey{}).(*claimsCtx); ok {
		return c.claims, true
	}
	return nil, false
}

// verifiedBy returns the claims in ctx when m itself verified them.
func (m *Middleware) verifiedBy(ctx context.Context) *rp.Claims {
	if c, ok := ctx.Value(claimsKey{}).(*claimsCtx); ok && c.by == m {
		return c.claims
	}
	return nil
}

// Authenticate calls next with the token's claims in the request context
// (ClaimsFrom) when the request has a valid bearer token, and answers with
// the RFC 6750 error otherwise.
func (m *Middleware) Authenticate(next http.Handler) http.Handler {
	return m.Require()(next)
}

// Require returns middleware that authenticates the request and then
// checks every requirement, in order: all of them must hold. A missing
// scope, permission or role is answered 403 insufficient_scope, with the
// values of the first unmet requirement in the scope attribute; an unmet
// AnyACR or MaxAuthAge 401 insufficient_user_authentication, with the
// acr_values and max_age of the route's step-up requirements.
//
// Layers of one Middleware verify a request once: Require inside the same
// Middleware's Authenticate uses the claims it put in the context. A layer
// of another Middleware (another API, another verifier) verifies the token
// again with its own Verifier, never trusting claims it did not check; the
// verifier's cache makes that cheap.
//
//	mux.Handle("GET /orders", api.Require(bearer.AnyScope("orders:read"))(listOrders))
func (m *Middleware) Require(reqs ...Requirement) func(http.Handler) http.Handler {
	reqs = m.prepare(reqs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cl := m.verifiedBy(r.Context())
			if cl == nil && m.dpop.applies(r) {
				if r, cl = m.authenticateDPoP(w, r); cl == nil {
					return
				}
			}
			if cl == nil {
				raw, err := bearerToken(r.Header["Authorization"], r.URL.RawQuery, m.allowQuery)
				if err != nil {
					m.refuse(w, r, err, nil)
					return
				}
				cl, err = m.verifier.Verify(r.Context(), raw)
				if err != nil {
					if !b64token(raw) {
						err = fmt.Errorf("%w: the token has characters RFC 6750 does not allow", ErrBadRequest)
					}
					m.refuse(w, r, err, nil)
					return
				}
				r = r.WithContext(&claimsCtx{Context: r.Context(), by: m, claims: cl})
			}
			for i := range reqs {
				if !reqs[i].met(cl) {
					m.refuse(w, r, reqs[i].error(cl), &reqs[i])
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
			return "", fmt.Errorf("%w: the query string cannot be parsed", ErrBadRequest)
		case len(v) > 1:
			return "", fmt.Errorf("%w: access_token appears %d times in the query string", ErrBadRequest, len(v))
		case len(v) == 1:
			query, inQuery = v[0], true
		}
	}
	if len(authz) > 1 {
		return "", fmt.Errorf("%w: %d Authorization headers", ErrBadRequest, len(authz))
	}
	if len(authz) == 1 {
		scheme, rest, _ := strings.Cut(authz[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			return credentials("Bearer", rest, inQuery)
		}
		// Another scheme (Basic, DPoP, ...): no bearer credentials.
	}
	switch {
	case !inQuery:
		return "", ErrNoToken
	case !allowQuery:
		return "", fmt.Errorf("%w: a token in the query string is not accepted: send it in the Authorization header", ErrBadRequest)
	case query == "":
		return "", fmt.Errorf("%w: access_token in the query string is empty", ErrBadRequest)
	case !b64token(query):
		return "", fmt.Errorf("%w: the token has characters RFC 6750 does not allow", ErrBadRequest)
	}
	return query, nil
}

// credentials returns the token of an Authorization header, rest being
// what follows scheme: exactly one value (RFC 6750 §2.1, RFC 9449 §7.1),
// and no token in the query string too.
func credentials(scheme, rest string, inQuery bool) (string, error) {
	token := strings.TrimLeft(rest, " ")
	switch {
	case inQuery:
		return "", fmt.Errorf("%w: the token is sent both in the Authorization header and in the query string", ErrBadRequest)
	case token == "":
		return "", fmt.Errorf("%w: the Authorization header has no token after %s", ErrBadRequest, scheme)
	case strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0:
		return "", fmt.Errorf("%w: the Authorization header has several values after %s", ErrBadRequest, scheme)
	}
	return token, nil
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

// answer is how a refusal is answered: the HTTP status, the RFC 6750 error
// code (empty for a request without credentials), a fixed description
// (never text from the request or the token), and the stable reason the
// Observer gets.
type answer struct {
	status       int
	code, desc   string
	reason       string
	insufficient *authParams // what the token lacks: scope (403), acr_values and max_age (401)
}

// answerFor maps a refusal's error to its answer: the one mapping of
// errors to RFC 6750 answers.
func answerFor(err error) answer {
	if a, ok := dpopAnswer(err); ok {
		return a
	}
	var ve *rp.ValidationError
	switch {
	case errors.Is(err, ErrNoToken):
		return answer{http.StatusUnauthorized, "", "a bearer access token is required", "no_token", nil}
	case errors.Is(err, ErrBadRequest):
		desc := "malformed bearer token request"
		if e := err.Error(); strings.HasPrefix(e, ErrBadRequest.Error()+": ") {
			desc = strings.TrimPrefix(e, ErrBadRequest.Error()+": ") // our own fixed texts
		}
		return answer{http.StatusBadRequest, "invalid_request", desc, "malformed_request", nil}
	case errors.As(err, &ve) && ve.Code == rp.CodeScope:
		return answer{http.StatusForbidden, "insufficient_scope", "the access token lacks a required scope, permission or role", string(rp.CodeScope), nil}
	case errors.As(err, &ve) && (ve.Code == rp.CodeACR || ve.Code == rp.CodeAuthTime):
		// RFC 9470 §3; the Detail is Requirement.error's fixed text.
		return answer{http.StatusUnauthorized, "insufficient_user_authentication", ve.Detail, string(ve.Code), nil}
	case errors.Is(err, rp.ErrRevocationUnavailable), errors.Is(err, rp.ErrTemporary),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return answer{http.StatusServiceUnavailable, "temporarily_unavailable", "the token cannot be checked right now, retry later", "temporarily_unavailable", nil}
	case ve != nil:
		a := answer{http.StatusUnauthorized, "invalid_token", "the access token is invalid", string(ve.Code), nil}
		switch ve.Code {
		case rp.CodeExpired:
			a.desc = "the access token expired"
		case rp.CodeRevokedSID:
			a.desc = "the sign-in session of the access token has ended"
		case rp.CodeInactive:
			a.desc = "the access token is not active"
		}
		return a
	case errors.Is(err, rp.ErrInvalidToken):
		return answer{http.StatusUnauthorized, "invalid_token", "the access token is invalid", "invalid", nil}
	}
	return answer{http.StatusInternalServerError, "server_error", "the access token cannot be checked", "error", nil}
}

// refuse answers the request refused for err (req: the unmet requirement)
// and tells the Observer.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error, req *Requirement) {
	a := answerFor(err)
	if req != nil {
		a.insufficient = req.params
	}
	m.write(w, a, m.dpop.applies(r))
	level := slog.LevelInfo
	switch {
	case a.status == http.StatusUnauthorized && a.code == "":
		level = slog.LevelDebug // a client asking without credentials first
	case a.status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case a.status >= 500:
		level = slog.LevelError
	}
	event.Emit(r.Context(), m.obs, event.Event{Name: event.BearerRefused, Level: level, Reason: a.reason, Err: err,
		Attrs: []slog.Attr{slog.Int("status", a.status)}})
}

// write writes every error response of the bearer layer: the status, the
// WWW-Authenticate challenge for 400, 401 and 403 (RFC 6750 §3),
// Retry-After for 503, no caching, and a small JSON body with the same
// error. usedDPoP: the request used the DPoP scheme (see challenges).
func (m *Middleware) write(w http.ResponseWriter, a answer, usedDPoP bool) {
	h := w.Header()
	if a.status == http.StatusBadRequest || a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
		if m.dpop != nil {
			m.challenges(h, a, usedDPoP)
		} else {
			h.Set("WWW-Authenticate", challenge(m.challenge, a, true))
		}
	}
	if a.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", m.retryAfter)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	code := a.code
	if code == "" {
		code = "unauthorized"
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, a.desc})
}

// challenge is a WWW-Authenticate challenge: base (scheme and realm) and,
// withError, the error attributes of a.
func challenge(base string, a answer, withError bool) string {
	if !withError || (a.code == "" && a.insufficient == nil) {
		return base
	}
	var c strings.Builder
	c.WriteString(base)
	if a.code != "" {
		c.WriteString(`, error="`)
		c.WriteString(a.code)
		c.WriteString(`", error_description="`)
		c.WriteString(quoteEscape(a.desc))
		c.WriteByte('"')
	}
	if a.insufficient != nil {
		a.insufficient.writeTo(&c)
	}
	return c.String()
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
