package middleware

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/sync/singleflight"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/cookie"
	"github.com/multiapp-go/multiapp/middleware/internal/loginjar"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Web defaults.
const (
	DefaultPrefix          = "/auth"
	DefaultSessionLifetime = 24 * time.Hour
	DefaultRefreshLeeway   = time.Minute
	DefaultSilentRetry     = 2 * time.Minute
	// DefaultRefreshTimeout bounds one refresh, from waiting for the
	// session's lock to saving the new tokens. It runs detached from the
	// request that started it, so a rotated refresh token is never lost
	// because a browser went away, and it replaces the HTTP client's own
	// timeout for the token request: a slow OP gets the time to answer.
	DefaultRefreshTimeout = 30 * time.Second
	// DefaultRefreshWait is how long a request waits for a refresh in
	// progress before it is served with the current access token (if still
	// valid) or answered 503 with Retry-After.
	DefaultRefreshWait = 2 * time.Second
	// DefaultRefreshBackoff is how long a session is not refreshed again on
	// an instance after a failed refresh, when the OP gave no Retry-After.
	DefaultRefreshBackoff = 5 * time.Second
	// MaxRefreshBackoff caps the OP's Retry-After.
	MaxRefreshBackoff = 5 * time.Minute
	// DefaultActivityInterval caps the interval at which a session's
	// activity is recorded when WebConfig.ActivityInterval is zero.
	DefaultActivityInterval = time.Minute
)

// WebConfig configures the web-app middleware of one app. Client and
// CookieKeys are required; everything else has a safe default.
type WebConfig struct {
	// Client is this app at the OP. Its RedirectURL must be the callback
	// route (Prefix + "/callback") at this app's public origin.
	Client *rp.Client
	// Store keeps the sessions, and with them the back-channel logouts
	// and the used login states: the web app serves the back-channel route
	// and completes logins, so it needs every role of a tokenstore.Store.
	// Nil: a tokenstore.Memory with defaults, which is only right for a
	// single instance.
	Store tokenstore.Store
	// CookieKeys seal the cookies (encrypted and authenticated): at least
	// 32 random bytes each. The first seals; all open, so a rotation keeps
	// old cookies valid: put the new key first, drop the old one later.
	CookieKeys [][]byte
	// CookieName is the base name of this app's cookies. Empty: derived
	// from the client id. Browsers share cookies across the ports of one
	// host, so two apps on localhost:8081 and :8082 must not share a name.
	CookieName string
	// Prefix is where the routes are mounted: Prefix+"/login", "/callback",
	// "/logout", "/backchannel-logout". Empty: DefaultPrefix.
	Prefix string
	// SessionLifetime is the absolute lifetime of a local session
	// (tokenstore.Session.ExpiresAt): it ends then, however active.
	// Zero: DefaultSessionLifetime.
	SessionLifetime time.Duration
	// IdleTimeout, when above zero, ends a local session unused for that
	// long (tokenstore.Session.IdleTimeout). Zero: sessions end at
	// SessionLifetime only. Both are written into a session when it signs
	// in and enforced by the store, so a change applies to the sessions
	// signed in after it. Neither ends the OP's session: docs/stores.md
	// ("Session lifetimes") says how they relate to the OP's lifetimes.
	IdleTimeout time.Duration
	// ActivityInterval: a request records its session's activity
	// (tokenstore.Store.Touch) only when the last one recorded is older
	// than this, so the store is not written on every request; an idle
	// session can therefore end up to ActivityInterval before IdleTimeout
	// has passed since its last request. Zero: a tenth of the session's
	// IdleTimeout, at most DefaultActivityInterval. It must be shorter
	// than IdleTimeout.
	ActivityInterval time.Duration
	// RefreshLeeway: the access token is refreshed this long before it
	// expires.
	RefreshLeeway time.Duration
	// RefreshTimeout: see DefaultRefreshTimeout. Keep it below the OP's
	// own patience and above its worst answer time.
	RefreshTimeout time.Duration
	// RefreshWait: see DefaultRefreshWait.
	RefreshWait time.Duration
	// SilentSSO makes Optional send a visitor without a local session to
	// the OP with prompt=none first: a user already signed in at another
	// app is signed in here without seeing a login page. When that fails
	// (no OP session, or any error) the visitor continues anonymously on
	// the same page and is not sent again for SilentRetry (default
	// DefaultSilentRetry). A browser that signed out here is never sent
	// until its user asks to sign in.
	SilentSSO   bool
	SilentRetry time.Duration
	// DPoP binds each session's tokens to a DPoP key of its own (RFC
	// 9449): a new ES256 key is made for every login, just before the code
	// exchange, and sealed in the session record
	// (tokenstore.Session.DPoPKey), never sent to the browser; the
	// exchange and every refresh prove possession of it, and
	// Session.Client calls APIs with the DPoP scheme and proofs by it. A
	// token copied out of the store, a log or an API is useless without
	// the key. The OP must accept ES256 DPoP proofs (NewWeb checks its
	// dpop_signing_alg_values_supported). Sessions signed in before it
	// was turned on keep their bearer tokens; sessions with a key keep
	// using it after it is turned off. NewWeb refuses a Client with a
	// key of its own (rp.Config.DPoP), whose tokens no session could send.
	DPoP bool
	// AuthParams are passed to every authorization request, e.g.
	// organization_id or connection_id. The login route's query may
	// tighten acr_values, max_age and prompt, never loosen them (see
	// docs/step-up.md).
	AuthParams url.Values
	// AfterLogout is where the browser lands after a logout that does not
	// go through the OP (default "/"): the OP has no end-session endpoint,
	// or the session has no ID token to send as id_token_hint (it was
	// already ended, e.g. by a back-channel logout). The logout
	// confirmation page links back to it too.
	AfterLogout string
	// Observer receives the events of the app's sign-ins, refreshes,
	// logouts, back-channel logouts and session store calls (package
	// event). Nil: the audit log, event.Log(Logger). To keep the audit log
	// and add metrics: event.Join(event.Log(logger), metrics).
	Observer event.Observer
	// Logger is where the audit log writes when Observer is nil. Nil:
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// Web is the net/http middleware of a web app (a confidential or public
// client whose server keeps the tokens): login, callback, logout and
// back-channel routes, Require and Optional wrappers, server-side sessions
// with automatic refresh.
type Web struct {
	cfg      WebConfig
	client   *rp.Client
	store    tokenstore.Store
	codecs   []securecookie.Codec
	opened   openedCookies // session cookies already opened: value -> session id
	policy   cookie.Policy
	name     string // session cookie name
	anon     string // "tried silent SSO" marker cookie name
	jar      *loginjar.Jar
	bc       *backchannel.Handler
	obs      event.Observer
	flight   singleflight.Group
	prefix   string
	origin   string // this app's origin, from its redirect URL
	opOrigin string // the OP's origin, for CSP form-action
	now      func() time.Time
	backoff  backoffs
	dev      bool // plain-http loopback development: failure pages explain themselves

	// crossOrigin refuses state-changing requests from pages of other
	// origins (net/http's CrossOriginProtection): Sec-Fetch-Site decides
	// when present ("same-origin", or "none" for a user's own navigation,
	// pass; "same-site" is another app of this site, refused); otherwise
	// the Origin header must be the request's host or this app's origin; a
	// request with neither (a non-browser client, which another site
	// cannot make a browser send) passes. Origin alone is not enough for
	// browsers: a page with Referrer-Policy no-referrer sends "Origin:
	// null" on same-origin POSTs.
	crossOrigin *http.CrossOriginProtection

	// apiNonces are the DPoP nonces of the APIs sessions call
	// (Session.Client with WebConfig.DPoP).
	apiNonces dpop.Nonces
}

var cookieUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// NewWeb checks cfg and returns the middleware.
func NewWeb(cfg WebConfig) (*Web, error) {
	if cfg.Client == nil {
		return nil, configError("WebConfig.Client is nil: create it with rp.Discover and Provider.Client")
	}
	if err := checkDPoP(&cfg); err != nil {
		return nil, err
	}
	w := &Web{cfg: cfg, client: cfg.Client, store: cfg.Store, obs: cfg.Observer, now: cfg.Now, prefix: cfg.Prefix}
	if w.store == nil {
		w.store = tokenstore.NewMemory(tokenstore.MemoryOptions{})
	}
	if w.obs == nil {
		w.obs = event.Log(cfg.Logger)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.prefix == "" {
		w.prefix = DefaultPrefix
	}
	w.prefix = "/" + strings.Trim(w.prefix, "/")
	if w.cfg.SessionLifetime <= 0 {
		w.cfg.SessionLifetime = DefaultSessionLifetime
	}
	switch {
	case cfg.IdleTimeout < 0 || cfg.ActivityInterval < 0:
		return nil, configError("WebConfig.IdleTimeout (%v) and ActivityInterval (%v) cannot be negative", cfg.IdleTimeout, cfg.ActivityInterval)
	case cfg.IdleTimeout > 0 && cfg.ActivityInterval >= cfg.IdleTimeout:
		return nil, configError("WebConfig.ActivityInterval (%v) must be shorter than IdleTimeout (%v): activity is recorded at most once per interval", cfg.ActivityInterval, cfg.IdleTimeout)
	}
	if w.cfg.RefreshLeeway <= 0 {
		w.cfg.RefreshLeeway = DefaultRefreshLeeway
	}
	if w.cfg.RefreshTimeout <= 0 {
		w.cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	if w.cfg.RefreshWait <= 0 {
		w.cfg.RefreshWait = DefaultRefreshWait
	}
	if w.cfg.SilentRetry <= 0 {
		w.cfg.SilentRetry = DefaultSilentRetry
	}
	if w.cfg.AfterLogout == "" {
		w.cfg.AfterLogout = "/"
	}
	codecs, err := cookie.Codecs(cfg.CookieKeys, w.cfg.SessionLifetime)
	if err != nil {
		return nil, configError("WebConfig.CookieKeys: %v", err)
	}
	w.codecs = codecs
	w.opened = newOpenedCookies(w.cfg.SessionLifetime)
	redirect, err := url.Parse(cfg.Client.RedirectURL())
	if err != nil || redirect.Host == "" {
		return nil, configError("the rp.Client has no absolute RedirectURL; set it to this app's %s/callback", w.prefix)
	}
	if redirect.Path != w.prefix+"/callback" {
		return nil, configError("the rp.Client's RedirectURL path is %q but the callback route is %q: make them the same", redirect.Path, w.prefix+"/callback")
	}
	w.origin = redirect.Scheme + "://" + redirect.Host
	w.crossOrigin = http.NewCrossOriginProtection()
	// Behind a proxy that rewrites Host, the public origin still passes.
	if err := w.crossOrigin.AddTrustedOrigin(w.origin); err != nil {
		return nil, configError("the rp.Client's RedirectURL does not give an origin: %v", err)
	}
	if op, err := url.Parse(cfg.Client.Issuer()); err == nil {
		w.opOrigin = op.Scheme + "://" + op.Host
	}
	// Secure cookies everywhere but plain-http localhost development.
	w.policy = cookie.PolicyFor(cfg.Client.RedirectURL())
	w.dev = !w.policy.Secure
	base := cfg.CookieName
	if base == "" {
		base = "ma-" + cookieUnsafe.ReplaceAllString(cfg.Client.ClientID(), "_")
	}
	w.name = w.policy.Name(base)
	w.anon = w.policy.Name(base + "-anon")
	w.jar = &loginjar.Jar{Name: base + "-login", Codecs: codecs, RedirectURL: cfg.Client.RedirectURL(), Replay: w.store, Now: cfg.Now}
	w.bc = &backchannel.Handler{Verifier: cfg.Client, Store: w.store, Observer: w.obs, Now: cfg.Now}
	// Sessions are read through the back-channel handler's guard: a logout
	// it holds while the store is unreachable ends them here meanwhile.
	// Every call is timed for the observer (event.StoreGet...).
	w.store = timedStore{Store: w.bc.Guard(w.store), obs: w.obs}
	return w, nil
}

// Store returns the session store.
func (w *Web) Store() tokenstore.Store { return w.store }

// LoginURL returns the login route for a return path.
func (w *Web) LoginURL(returnTo string) string {
	return w.prefix + "/login?return_to=" + url.QueryEscape(returnTo)
}

// Routes returns the handler of the auth routes under Prefix: GET login,
// GET callback, GET (confirmation page) and POST logout, POST
// backchannel-logout. Mount it at Prefix+"/":
//
//	mux.Handle("/auth/", web.Routes())
func (w *Web) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+w.prefix+"/login", w.login)
	mux.HandleFunc("GET "+w.prefix+"/callback", w.callback)
	mux.HandleFunc("GET "+w.prefix+"/logout", w.logoutPage)
	mux.HandleFunc("POST "+w.prefix+"/logout", w.logout)
	mux.Handle(w.prefix+"/backchannel-logout", w.bc)
	return mux
}

// login starts a login: GET Prefix/login?return_to=/path[&prompt=none].
func (w *Web) login(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnTo := "/"
	if raw := q.Get("return_to"); raw != "" {
		if len(raw) > loginjar.MaxReturnTo {
			w.returnToTooLong(rw, len(raw))
			return
		}
		rt, ok := safeReturnTo(raw)
		if !ok {
			w.page(rw, http.StatusBadRequest, "Invalid return address", "The return_to parameter must be a path on this site.")
			return
		}
		returnTo = rt
	}
	tx := pkce.NewTransaction(w.client.Issuer(), returnTo)
	tx.Created = w.now() // the jar judges its age by the same clock
	params := url.Values{}
	for k, v := range w.cfg.AuthParams {
		params[k] = v
	}
	switch p := q.Get("prompt"); p {
	case "", "login", "select_account":
		if p != "" {
			addPrompt(params, p) // AuthParams' prompt stays
			tx.Prompt = p
		}
		// The user asks to sign in: an explicit logout no longer holds
		// silent sign-ins back.
		if w.marker(r).signedOut {
			w.policy.Clear(rw, w.anon)
		}
	case "none":
		if w.marker(r).signedOut {
			// Signed out on purpose: no silent sign-in until the user asks.
			noStore(rw)
			http.Redirect(rw, r, returnTo, http.StatusFound)
			return
		}
		if params.Has("prompt") {
			w.silentFailed(rw, r, tx, errSilentNotAllowed)
			return
		}
		params.Set("prompt", p)
		tx.Prompt = p
	default:
		w.page(rw, http.StatusBadRequest, "Invalid prompt", "prompt must be none, login or select_account.")
		return
	}
	if msg := stepUpParams(q, params); msg != "" { // RequireStepUp, StartStepUp
		w.page(rw, http.StatusBadRequest, "Invalid sign-in request", msg)
		return
	}
	authURL, err := w.client.AuthCodeURL(r.Context(), tx, params)
	if err != nil {
		w.emit(r.Context(), event.Event{Name: event.LoginError, Level: slog.LevelError, Err: err})
		if rp.ClassOf(err) == rp.ClassTemporary { // the OP's PAR endpoint is out of reach
			w.unavailable(rw, r, err)
			return
		}
		w.page(rw, http.StatusInternalServerError, "Login is misconfigured", "The server could not build the sign-in request; see its logs.")
		return
	}
	switch err := w.jar.Save(rw, r, tx); {
	case errors.Is(err, loginjar.ErrTooLarge):
		w.returnToTooLong(rw, len(returnTo))
		return
	case err != nil:
		w.emit(r.Context(), event.Event{Name: event.LoginError, Level: slog.LevelError, Err: err})
		w.page(rw, http.StatusInternalServerError, "Login failed", "The login transaction could not be saved.")
		return
	}
	noStore(rw)
	http.Redirect(rw, r, authURL, http.StatusFound)
}

// returnToTooLong refuses a login whose return path cannot be carried in
// the transaction cookie: browsers drop cookies over 4 KB, and the login
// would fail at the callback instead.
func (w *Web) returnToTooLong(rw http.ResponseWriter, n int) {
	w.page(rw, http.StatusBadRequest, "Return address too long",
		fmt.Sprintf("The return_to path is %d bytes; a sign-in can carry at most %d. Link to a shorter path.", n, loginjar.MaxReturnTo))
}

// callback completes a login.
//
// A failed silent sign-in (prompt=none), whatever the error, sends the
// browser back to its page anonymously and is not tried again for
// SilentRetry: with SilentSSO an error page must never replace a public
// page. A callback whose transaction is spent or missing while the browser
// has a live session (a reloaded callback, a login completed in another
// tab) goes on to the return path. Any other failure shows a page with the
// reason (and, in plain-http development, the log event to look for).
func (w *Web) callback(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	resp, err := rp.ParseAuthResponse(r.URL.RawQuery)
	if err != nil {
		w.loginFailed(rw, r, nil, err)
		return
	}
	tx, err := w.jar.Take(ctx, rw, r, resp.State)
	if err != nil {
		switch s, _ := w.load(r); {
		case s != nil:
			noStore(rw)
			http.Redirect(rw, r, returnToOf(tx), http.StatusFound)
		case (tx != nil && tx.Prompt == "none") || (tx == nil && promptNoneAnswer(resp)):
			w.silentFailed(rw, r, tx, err)
		case rp.ClassOf(err) == rp.ClassTemporary:
			w.unavailable(rw, r, err)
		default:
			w.loginFailed(rw, r, tx, err)
		}
		return
	}
	start := time.Now()
	s, err := w.completeLogin(ctx, tx, resp)
	took := time.Since(start)
	switch {
	case err != nil && tx.Prompt == "none":
		w.silentFailed(rw, r, tx, err)
		return
	case err != nil && rp.ClassOf(err) == rp.ClassTemporary && reason(err) == "store_unavailable":
		w.unavailable(rw, r, err)
		return
	case err != nil:
		w.loginFailed(rw, r, tx, err)
		return
	}
	// A new id at every login: whatever session this browser had before
	// (possibly planted) is gone.
	if old, ok := w.sessionID(r); ok {
		_ = w.store.Delete(ctx, old)
	}
	w.setSession(rw, s)
	if _, err := r.Cookie(w.anon); err == nil {
		w.policy.Clear(rw, w.anon)
	}
	w.audit(ctx, s, event.Event{Name: event.Login, Level: slog.LevelInfo, Silent: tx.Prompt == "none", Duration: took, Attrs: w.stepUpAttrs(ctx, tx, s)})
	noStore(rw)
	http.Redirect(rw, r, tx.ReturnTo, http.StatusFound)
}

// completeLogin redeems the authorization response and stores the new
// session.
func (w *Web) completeLogin(ctx context.Context, tx *pkce.Transaction, resp *rp.AuthResponse) (*tokenstore.Session, error) {
	// The tokens' lifetime counts from the request: a slow exchange must
	// not make them look shorter-lived (see needsRefresh).
	requested := w.now()
	ctx, dpopKey, err := w.newDPoPKey(ctx)
	if err != nil {
		return nil, err
	}
	tokens, err := w.client.Exchange(ctx, tx, resp)
	if err != nil {
		return nil, err
	}
	now := w.now()
	s := &tokenstore.Session{
		ID:          tokenstore.NewID(),
		Issuer:      tokens.Claims.Issuer,
		Subject:     tokens.Claims.Subject,
		SID:         tokens.Claims.SessionID,
		ClientID:    w.client.ClientID(),
		Tokens:      storedTokens(tokens),
		RefreshedAt: requested,
		IssuedAt:    tokens.Claims.IssuedAt.Time(),
		CreatedAt:   now,
		LastSeen:    now,
		ExpiresAt:   now.Add(w.cfg.SessionLifetime),
		IdleTimeout: w.cfg.IdleTimeout,
		DPoPKey:     dpopKey,
	}
	if err := w.store.Create(ctx, s); err != nil {
		return nil, storeError(err)
	}
	return s, nil
}

// promptNoneAnswer: an error only a prompt=none request gets (OpenID
// Connect Core §3.1.2.6), for a callback whose transaction is gone.
func promptNoneAnswer(resp *rp.AuthResponse) bool {
	return errors.Is(&rp.OPError{Endpoint: "authorization", Code: resp.Error}, rp.ErrLoginRequired)
}

func returnToOf(tx *pkce.Transaction) string {
	if tx != nil && tx.ReturnTo != "" {
		return tx.ReturnTo
	}
	return "/"
}

// silentFailed sends a browser whose silent sign-in failed back to its
// page, anonymous, and holds further silent attempts back for SilentRetry.
func (w *Web) silentFailed(rw http.ResponseWriter, r *http.Request, tx *pkce.Transaction, err error) {
	level := slog.LevelInfo
	if !errors.Is(err, rp.ErrLoginRequired) {
		level = slog.LevelWarn // not the usual "no OP session": worth a look
	}
	w.emit(r.Context(), event.Event{Name: event.LoginSilentFailed, Level: level, Silent: true, Reason: loginReason(err), Err: err})
	if !w.marker(r).signedOut {
		w.policy.Set(rw, w.anon, "t"+strconv.FormatInt(w.now().Unix(), 10), w.cfg.SilentRetry)
	}
	noStore(rw)
	http.Redirect(rw, r, returnToOf(tx), http.StatusFound)
}

// loginStatus maps a failed login to an HTTP status.
func loginStatus(err error) int {
	if why, _ := stepUpFailure(err); why != "" {
		return http.StatusForbidden // signed in, not as strongly as asked
	}
	var oe *rp.OPError
	switch {
	case rp.ClassOf(err) == rp.ClassTemporary:
		return http.StatusServiceUnavailable
	case errors.As(err, &oe) && oe.Endpoint == "authorization" && oe.Code == "access_denied":
		return http.StatusForbidden
	case rp.ClassOf(err) == rp.ClassRevoked:
		return http.StatusUnauthorized
	case rp.ClassOf(err) == rp.ClassMisconfigured:
		return http.StatusBadGateway
	}
	return http.StatusBadRequest
}

// loginReason is the reason code of a failed login.
func loginReason(err error) string {
	var oe *rp.OPError
	switch {
	case errors.Is(err, loginjar.ErrNoTransaction):
		return "no_transaction"
	case errors.Is(err, loginjar.ErrExpired):
		return "login_expired"
	case errors.Is(err, loginjar.ErrReplayed):
		return "login_replayed"
	case errors.Is(err, ErrSignedOut):
		return "session_revoked"
	case errors.As(err, &oe) && oe.Endpoint == "authorization":
		return oe.Code
	}
	if why, _ := stepUpFailure(err); why != "" {
		return why
	}
	return reason(err)
}

func (w *Web) loginFailed(rw http.ResponseWriter, r *http.Request, tx *pkce.Transaction, err error) {
	why := loginReason(err)
	w.emit(r.Context(), event.Event{Name: event.LoginFailed, Level: slog.LevelWarn, Reason: why, Err: err})
	msg := "Sign-in could not be completed. Please try again."
	var oe *rp.OPError
	switch {
	case errors.As(err, &oe) && oe.Endpoint == "authorization":
		msg = "The sign-in service answered: " + oe.Code
		if oe.Description != "" {
			msg += " (" + oe.Description + ")"
		}
	case rp.ClassOf(err) == rp.ClassMisconfigured:
		msg = "The sign-in service refused this site's request, so signing in cannot work until the site's operators fix its configuration."
	case errors.Is(err, loginjar.ErrNoTransaction), errors.Is(err, loginjar.ErrExpired), errors.Is(err, loginjar.ErrReplayed):
		msg = "This sign-in link is expired or was already used. Please sign in again."
	}
	if _, text := stepUpFailure(err); text != "" {
		msg = text
	}
	status := loginStatus(err)
	if status == http.StatusServiceUnavailable {
		setRetryAfter(rw, err)
	}
	w.page(rw, status, "Sign-in failed", msg, w.devDetails(why, event.LoginFailed))
}

// logoutPage answers GET logout with a confirmation form: logging out
// changes state, so it takes a POST (a cross-site GET cannot sign anyone out).
func (w *Web) logoutPage(rw http.ResponseWriter, r *http.Request) {
	noStore(rw)
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// form-action also governs the redirects after the submission
	// (Chromium): the OP's end-session endpoint must be allowed.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self' "+w.opOrigin)
	rw.WriteHeader(http.StatusOK)
	fmt.Fprintf(rw, logoutForm, html.EscapeString(w.prefix+"/logout"), html.EscapeString(w.cfg.AfterLogout))
}

// logout ends the local session and, when it still has its ID token,
// sends the browser to the OP's end-session endpoint with that token as
// id_token_hint (expired or not: RP-Initiated Logout 1.0 §2 has OPs accept
// it), which ends the shared session, notifies every other app through
// back-channel logout, and returns the browser to PostLogoutRedirectURL.
//
// Without an ID token there is no OP round trip: the browser lands on
// AfterLogout. That is the case when the local session is already gone (a
// back-channel logout ended it, so the OP session is over too; a stale tab
// whose session was signed out earlier; an expired session), or, for a
// custom store, holds no ID token. A hint-less end-session request could
// not bring the browser back (OPs refuse post_logout_redirect_uri without
// id_token_hint, Hydra with an error page), and the user must land on the
// app.
//
// Either way the browser keeps a signed-out marker: no silent sign-in
// (SilentSSO, prompt=none) until the user asks to sign in, so a surviving
// OP session (the user cancelled at the OP, or the OP has no end-session
// endpoint) does not sign them straight back in.
func (w *Web) logout(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if w.crossOrigin.Check(r) != nil {
		// A form on another site (or another app of the same host) must not
		// sign the user out everywhere: the OP would end its session by its
		// own cookie even though ours is not sent.
		w.page(rw, http.StatusForbidden, "Sign-out refused", "Sign out from this site's own page.")
		return
	}
	var idToken string
	live := false
	if id, ok := w.sessionID(r); ok {
		s, err := w.store.Get(ctx, id)
		switch {
		case err == nil:
			live, idToken = true, s.IDToken
			if err := w.store.Delete(ctx, id); err != nil {
				w.unavailable(rw, r, storeError(err))
				return
			}
			w.revokeRefreshToken(ctx, s)
			w.audit(ctx, s, event.Event{Name: event.Logout, Level: slog.LevelInfo, Attrs: []slog.Attr{slog.Bool("op_logout", idToken != "")}})
		case !errors.Is(err, tokenstore.ErrNotFound):
			w.unavailable(rw, r, storeError(err))
			return
		}
	}
	if !live {
		w.emit(ctx, event.Event{Name: event.Logout, Level: slog.LevelInfo, Reason: "no_live_session", Attrs: []slog.Attr{slog.Bool("op_logout", false)}})
	}
	w.policy.Clear(rw, w.name)
	w.policy.Set(rw, w.anon, markerSignedOut, signedOutFor)
	noStore(rw)
	target := w.cfg.AfterLogout
	if idToken != "" {
		if endURL, err := w.client.EndSessionURL(idToken, ""); err == nil {
			target = endURL
		}
	}
	http.Redirect(rw, r, target, http.StatusSeeOther)
}

// The marker cookie (w.anon) holds back silent sign-ins: markerSignedOut
// after an explicit logout, until the user asks to sign in (signedOutFor is
// the longest browsers keep a cookie); "t<unix time>" after a silent
// attempt failed, for SilentRetry.
const (
	markerSignedOut = "out"
	signedOutFor    = 400 * 24 * time.Hour
)

type marker struct{ signedOut, triedRecently bool }

func (w *Web) marker(r *http.Request) marker {
	c, err := r.Cookie(w.anon)
	if err != nil {
		return marker{}
	}
	if c.Value == markerSignedOut {
		return marker{signedOut: true}
	}
	at, err := strconv.ParseInt(strings.TrimPrefix(c.Value, "t"), 10, 64)
	return marker{triedRecently: err == nil && w.now().Before(time.Unix(at, 0).Add(w.cfg.SilentRetry))}
}

// revokeRefreshToken asks the OP to revoke the refresh token (RFC 7009),
// best effort and bounded: some OPs (Hydra) keep refresh tokens alive
// after an end-session. The local logout happens either way.
func (w *Web) revokeRefreshToken(ctx context.Context, s *tokenstore.Session) {
	if s.RefreshToken == "" || w.client.Provider().Metadata().RevocationEndpoint == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := w.client.Revoke(ctx, s.RefreshToken, "refresh_token"); err != nil {
		w.emit(ctx, event.Event{Name: event.LogoutRevokeFailed, Level: slog.LevelWarn, ClientID: s.ClientID, Err: err})
	}
}

// sessionID reads and opens the session cookie (once per cookie value:
// see openedCookies). A missing, tampered, truncated or foreign cookie is
// simply "no session".
func (w *Web) sessionID(r *http.Request) (string, bool) {
	value, ok := cookieValue(r.Header, w.name)
	if !ok || value == "" {
		return "", false
	}
	if id, ok := w.opened.get(value); ok {
		return id, true
	}
	var id string
	if securecookie.DecodeMulti(w.name, value, &id, w.codecs...) != nil || len(id) != 43 {
		return "", false
	}
	w.opened.put(value, id)
	return id, true
}

func (w *Web) setSession(rw http.ResponseWriter, s *tokenstore.Session) {
	v, err := securecookie.EncodeMulti(w.name, s.ID, w.codecs...)
	if err != nil {
		return
	}
	w.policy.Set(rw, w.name, v, s.ExpiresAt.Sub(w.now()))
}

// emit gives e to the observer, as an event of this app.
func (w *Web) emit(ctx context.Context, e event.Event) {
	if e.ClientID == "" {
		e.ClientID = w.client.ClientID()
	}
	event.Emit(ctx, w.obs, e)
}

// audit gives e, an event about session s, to the observer.
func (w *Web) audit(ctx context.Context, s *tokenstore.Session, e event.Event) {
	e.ClientID, e.Issuer, e.Subject, e.SID, e.Session = s.ClientID, s.Issuer, s.Subject, s.SID, tokenstore.HashID(s.ID)[:16]
	event.Emit(ctx, w.obs, e)
}

// unavailable answers 503 with Retry-After to a request that cannot be
// served now: the session is kept, something it needs is out of reach or
// refuses. The page (or JSON body) says what happened.
func (w *Web) unavailable(rw http.ResponseWriter, r *http.Request, err error) {
	why := reason(err)
	if why == "store_unavailable" {
		w.emit(r.Context(), event.Event{Name: event.StoreUnavailable, Level: slog.LevelError, Err: err})
	}
	setRetryAfter(rw, err)
	msg := unavailableText(why)
	if wantsJSON(r) {
		jsonError(rw, http.StatusServiceUnavailable, "temporarily_unavailable", msg)
		return
	}
	w.page(rw, http.StatusServiceUnavailable, "Temporarily unavailable", msg, w.devDetails(why, failureEvent(err)))
}

// setRetryAfter tells the client when to come back: the error's
// RetryAfter (rounded up to whole seconds), or DefaultRefreshBackoff.
func setRetryAfter(rw http.ResponseWriter, err error) {
	retry := DefaultRefreshBackoff
	if te := (*rp.TemporaryError)(nil); errors.As(err, &te) && te.RetryAfter > 0 {
		retry = te.RetryAfter
	}
	rw.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
}

func noStore(rw http.ResponseWriter) { rw.Header().Set("Cache-Control", "no-store") }

// configError is a ClassMisconfigured error of NewWeb.
func configError(format string, args ...any) error {
	return fmt.Errorf("middleware: %w: "+format, append([]any{rp.ErrConfig}, args...)...)
}
