package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Session is the signed-in user of a request, as Require and Optional put
// it in the request context. Read it with SessionFrom.
type Session struct {
	web *Web

	ctx *sessionContext // the request context holding this session

	mu     sync.Mutex
	rec    *tokenstore.Session
	claims *rp.Claims // rec's, replaced with it
}

type sessionKey struct{}

// SessionFrom returns the session Require or Optional attached to ctx.
func SessionFrom(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}

// sessionContext is a request's context with its session: the session and
// the context value holding it are one allocation (context.WithValue would
// be a second one on every request). Everything but the session is the
// request context's: Done, Err and Deadline are its own, and so are the
// values, including the one through which context.WithCancel and friends
// find their parent's cancellation (no goroutine per derived context).
type sessionContext struct {
	context.Context
	s Session
}

func (c *sessionContext) Value(key any) any {
	if _, ok := key.(sessionKey); ok {
		return &c.s
	}
	return c.Context.Value(key)
}

// withSession returns r with s in its context. s must come from load.
func withSession(r *http.Request, s *Session) *http.Request {
	return r.WithContext(s.ctx)
}

// Claims returns the validated ID token's claims (sub, sid, email, oid,
// roles, permissions; Raw/Decode for custom claims). It is never nil: a
// session whose record holds no claims that parse is not a session (Require
// and Optional treat it as signed out). After a refresh in this request
// (TokenContext, Client) they are the refreshed ID token's.
//
// The claims are parsed once per token set and shared by the session's
// requests: read them, never modify them.
func (s *Session) Claims() *rp.Claims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}

// AccessTokenClaims decodes the claims of the current access token, when
// it is a JWT (Scalekit puts roles and permissions there, not in the ID
// token). The token came to this server straight from the OP's token
// endpoint, so its claims are as trustworthy as the ID token's for this
// app's own decisions; it is not re-verified here. An opaque access token
// gives an error wrapping rp.ErrInvalidToken.
func (s *Session) AccessTokenClaims() (*rp.Claims, error) {
	_, cl, err := rp.DecodeUnverified(s.AccessToken())
	return cl, err
}

// record returns the current session record. TokenContext replaces it
// (never modifies it) after a refresh, so the record itself needs no lock.
func (s *Session) record() *tokenstore.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// claimsOf returns the claims of rec (see recordClaims), or false when they
// do not parse, which it logs: a record that the web layer did not write
// from a validated ID token, or one a custom store damaged. Such a record
// is not a session.
func (w *Web) claimsOf(ctx context.Context, rec *tokenstore.Session) (*rp.Claims, bool) {
	claims, err := recordClaims(rec)
	if err != nil {
		w.audit(ctx, rec, event.Event{Name: event.SessionInvalid, Level: slog.LevelError, Reason: "claims_unreadable", Err: err})
		return nil, false
	}
	return claims, true
}

// IDToken returns the raw ID token.
func (s *Session) IDToken() string { return s.record().IDToken }

// AccessToken returns the current access token. Require refreshed it
// before the handler ran if it was about to expire.
func (s *Session) AccessToken() string { return s.record().AccessToken }

// Expiry returns when the access token expires (zero when unknown).
func (s *Session) Expiry() time.Time { return s.record().Tokens.Expiry }

// IDHash returns a stable, non-secret identifier of the local session,
// for logs and metrics.
func (s *Session) IDHash() string { return tokenstore.HashID(s.record().ID)[:16] }

// Token implements oauth2.TokenSource: the current access token,
// refreshed (once across concurrent callers and instances) when it is
// about to expire. See TokenContext for the errors.
func (s *Session) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token with a context. The token's TokenType is "DPoP"
// for a session bound to a DPoP key (WebConfig.DPoP): such a token is
// refused without a proof, so send it through Client, not an
// oauth2.Transport. Its errors have a class (see
// rp.Class): ClassRevoked (ErrSignedOut) when the OP ended the shared
// session; otherwise the session is kept and the error is one a refresh
// met (ClassTemporary with a RetryAfter in *rp.TemporaryError,
// ClassMisconfigured when the OP refuses this client). A failed refresh
// still returns the current token while it is valid.
func (s *Session) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	rec, err := s.web.fresh(ctx, s.record())
	if rec == nil {
		return nil, err
	}
	// A refreshed record's claims were parsed when rp validated its ID
	// token (storedTokens): this is a cache hit.
	claims, ok := s.web.claimsOf(ctx, rec)
	if !ok {
		return nil, ErrSignedOut
	}
	s.mu.Lock()
	s.rec, s.claims = rec, claims
	s.mu.Unlock()
	if !s.web.usable(rec, s.web.now()) {
		if err == nil {
			err = ErrSignedOut // expired, and no refresh token to renew it
		}
		return nil, err
	}
	return &oauth2.Token{AccessToken: rec.AccessToken, TokenType: tokenType(rec), Expiry: rec.Tokens.Expiry}, nil
}

type ctxTokenSource struct {
	ctx context.Context
	s   *Session
}

func (t ctxTokenSource) Token() (*oauth2.Token, error) { return t.s.TokenContext(t.ctx) }

// Client returns an HTTP client that calls APIs as the user, with the
// access token refreshed as needed: a Bearer token, or for a session bound
// to a DPoP key (WebConfig.DPoP) the DPoP scheme with a fresh proof by the
// session's key on every request, retried once when the API asks for its
// nonce (dpop.Transport). The transport of an *http.Client in ctx under
// oauth2.HTTPClient sends the requests.
func (s *Session) Client(ctx context.Context) *http.Client {
	if rec := s.record(); len(rec.DPoPKey) > 0 {
		return s.dpopClient(ctx, rec)
	}
	return oauth2.NewClient(ctx, ctxTokenSource{ctx: ctx, s: s})
}

// ErrSignedOut (rp.ClassRevoked): the OP ended the shared session
// (invalid_grant on refresh, a refreshed ID token of another user, or a
// back-channel logout), or the session expired with no way to renew it:
// the local session is gone.
var ErrSignedOut error = errclass.New("middleware: signed out at the OP", errclass.Revoked)

// Errors of a refresh the request did not wait for.
var (
	errRefreshPending = errors.New("middleware: the session's tokens are being renewed")
)

// storeError gives a store failure its class: a revoked OP session signs
// the user out; anything else (ErrUnavailable, a lock wait cut short) is
// temporary: the session is out of reach, not lost.
func storeError(err error) error {
	switch {
	case errors.Is(err, tokenstore.ErrRevoked):
		return ErrSignedOut
	}
	return &rp.TemporaryError{Err: &storeFailure{err}}
}

// load finds the request's session and makes sure its access token is
// usable, refreshing it if needed. It returns (nil, nil) when there is no
// session, and an error only when the request cannot be served now.
func (w *Web) load(r *http.Request) (*Session, error) {
	id, ok := w.sessionID(r)
	if !ok {
		return nil, nil
	}
	ctx := r.Context()
	rec, err := w.store.Get(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		w.expired(ctx, err)
		return nil, nil
	case err != nil:
		return nil, storeError(err)
	}
	now := w.now() // one reading for the checks of a warm session
	if rec.RefreshToken != "" && w.needsRefresh(rec, now) {
		rec, err = w.fresh(ctx, rec)
		now = w.now() // a renewal ran, or was waited for
	}
	switch {
	case rp.ClassOf(err) == rp.ClassRevoked:
		return nil, nil
	case rec != nil && w.usable(rec, now):
		claims, ok := w.claimsOf(ctx, rec)
		if !ok {
			return nil, nil
		}
		w.touch(ctx, rec, now)
		sc := &sessionContext{Context: ctx, s: Session{web: w, rec: rec, claims: claims}}
		sc.s.ctx = sc
		return &sc.s, nil
	case err != nil:
		return nil, err
	default: // no refresh token and the access token expired: sign in again
		return nil, nil
	}
}

// expired ends a session that the store reports over its own lifetime
// (idle, or past its absolute end) while it still holds it: one audit
// event, and the record is deleted, so the next request finds nothing.
func (w *Web) expired(ctx context.Context, err error) {
	var ee *tokenstore.ExpiredError
	if !errors.As(err, &ee) || ee.Session == nil {
		return
	}
	_ = w.store.Delete(ctx, ee.Session.ID)
	w.audit(ctx, ee.Session, event.Event{Name: event.SessionExpired, Level: slog.LevelInfo, Reason: ee.Reason,
		Attrs: []slog.Attr{slog.Time("last_seen", ee.Session.LastSeen), slog.Time("expires_at", ee.Session.ExpiresAt)}})
}

// touch records the activity of a session with an idle timeout once its
// last recorded activity is older than the activity interval: at most
// once per interval, so the hot path does not write to the store on every
// request. Concurrent requests of this process share one touch. A failure
// is not the request's: the session lives until its idle timeout, and the
// next request tries again.
func (w *Web) touch(ctx context.Context, rec *tokenstore.Session, now time.Time) {
	if rec.IdleTimeout <= 0 {
		return
	}
	every := w.cfg.ActivityInterval
	if every == 0 || every >= rec.IdleTimeout {
		every = min(DefaultActivityInterval, rec.IdleTimeout/10)
	}
	if now.Sub(rec.LastSeen) < every {
		return
	}
	_, _, _ = w.flight.Do("touch "+rec.ID, func() (any, error) {
		return nil, w.store.Touch(ctx, rec.ID, now)
	})
}

// usable: the access token is not expired at now (refresh leeway aside).
func (w *Web) usable(s *tokenstore.Session, now time.Time) bool {
	return s.AccessToken != "" && (s.Tokens.Expiry.IsZero() || now.Before(s.Tokens.Expiry))
}

// needsRefresh: at now, the access token expires within the leeway. The leeway
// is capped at half the token's lifetime, so an OP issuing tokens shorter
// than the leeway does not cause a refresh on every request.
func (w *Web) needsRefresh(s *tokenstore.Session, now time.Time) bool {
	exp := s.Tokens.Expiry
	if exp.IsZero() {
		return false
	}
	leeway := w.cfg.RefreshLeeway
	if !s.RefreshedAt.IsZero() {
		if half := exp.Sub(s.RefreshedAt) / 2; half < leeway {
			leeway = half
		}
	}
	return !now.Add(leeway).Before(exp)
}

// fresh returns s with an access token that is not about to expire, or s
// and the reason it could not be renewed; nil with ErrSignedOut when the
// session ended.
//
// A refresh runs detached from the request that starts it, under its own
// deadline (RefreshTimeout), so a slow OP is given the time to answer and
// the rotated refresh token it sends is never dropped because a browser
// went away. Exactly one refresh per session runs at a time: concurrent
// requests of this process share it (singleflight), and the store's lock
// serialises processes; whoever gets the lock second re-reads the session
// and finds it already refreshed, so a rotated refresh token is never sent
// twice. A request waits for the refresh at most RefreshWait; then it is
// served with the current access token if that is still valid, or gets a
// temporary error with a RetryAfter.
//
// After a failed refresh, the session is not refreshed again on this
// instance before the OP's Retry-After (at most MaxRefreshBackoff) or, when
// it gave none, DefaultRefreshBackoff; meanwhile fresh returns that
// failure with the time left.
func (w *Web) fresh(ctx context.Context, s *tokenstore.Session) (*tokenstore.Session, error) {
	if s.RefreshToken == "" || !w.needsRefresh(s, w.now()) {
		return s, nil
	}
	if err, wait := w.backoff.get(s.ID, w.now()); wait > 0 {
		return s, &rp.TemporaryError{Err: err, RetryAfter: wait}
	}
	ch := w.flight.DoChan(s.ID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RefreshTimeout)
		defer cancel()
		return w.refresh(ctx, s.ID)
	})
	wait := time.NewTimer(w.cfg.RefreshWait)
	defer wait.Stop()
	select {
	case r := <-ch:
		if rp.ClassOf(r.Err) == rp.ClassRevoked {
			return nil, r.Err
		}
		if rec, ok := r.Val.(*tokenstore.Session); ok && rec != nil {
			return rec, r.Err
		}
		return s, r.Err
	case <-wait.C:
		return s, &rp.TemporaryError{Err: errRefreshPending, RetryAfter: max(w.cfg.RefreshWait, time.Second)}
	case <-ctx.Done():
		return s, &rp.TemporaryError{Err: ctx.Err()}
	}
}

// refresh runs under the session's store lock.
func (w *Web) refresh(ctx context.Context, id string) (*tokenstore.Session, error) {
	unlock, err := w.store.Lock(ctx, id)
	switch {
	case err != nil && ctx.Err() != nil:
		// Another instance's refresh held the lock past this one's deadline.
		return nil, &rp.TemporaryError{Err: errRefreshPending}
	case err != nil:
		return nil, storeError(err)
	}
	defer unlock()
	cur, err := w.store.Get(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, ErrSignedOut
	case err != nil:
		return nil, storeError(err)
	}
	if cur.RefreshToken == "" || !w.needsRefresh(cur, w.now()) {
		return cur, nil // another request or instance refreshed it meanwhile
	}
	claims, ok := w.claimsOf(ctx, cur)
	if !ok {
		return nil, ErrSignedOut // not a session: never send its refresh token
	}
	key, err := w.dpopKey(ctx, cur)
	if err != nil {
		return nil, err // bound to a key it cannot use: never send its refresh token
	}
	rctx := ctx
	if key != nil { // the refresh token is bound to the session's key
		rctx = rp.WithDPoPKey(ctx, key)
	}
	start, requested := time.Now(), w.now()
	tokens, err := w.client.Refresh(rctx, rpTokens(cur, claims))
	took := time.Since(start)
	if rp.ClassOf(err) == rp.ClassRevoked {
		// The OP ended the shared session, or answered with another
		// user's ID token: sign out here too.
		_ = w.store.Delete(ctx, id)
		w.backoff.clear(id)
		w.audit(ctx, cur, event.Event{Name: event.RefreshRevoked, Level: slog.LevelInfo, Reason: reason(err), Duration: took, Err: err})
		return nil, ErrSignedOut
	}
	next := cur.Clone()
	if err == nil {
		next.Tokens = storedTokens(tokens)
		next.RefreshedAt = requested // the lifetime counts from the request (see needsRefresh)
		next.LastSeen = w.now()
	} else {
		// The session is kept, with the refresh token Refresh hands back:
		// the one the OP just issued, or none when the previous one may
		// have been spent (see rp.Client.Refresh).
		next.RefreshToken = tokens.RefreshToken
	}
	if err != nil && next.RefreshToken == cur.RefreshToken {
		next = cur // nothing to save
	} else if serr := w.saveRefreshed(ctx, next); serr != nil {
		if errors.Is(serr, tokenstore.ErrNotFound) || errors.Is(serr, tokenstore.ErrRevoked) {
			// Logged out while refreshing: the session was deleted, or a
			// back-channel logout revoked its OP session and is deleting it.
			_ = w.store.Delete(ctx, id)
			return nil, ErrSignedOut
		}
		if err == nil {
			err = serr
		}
		next = cur
	}
	if err != nil {
		retry := DefaultRefreshBackoff
		if te := (*rp.TemporaryError)(nil); errors.As(err, &te) && te.RetryAfter > 0 {
			retry = min(te.RetryAfter, MaxRefreshBackoff)
		}
		w.backoff.set(id, err, w.now(), retry)
		w.audit(ctx, cur, event.Event{Name: refreshFailed(err), Level: slog.LevelWarn, Reason: reason(err), Duration: took, Err: err,
			Attrs: []slog.Attr{slog.Duration("retry_after", retry), slog.Bool("refresh_token_kept", next.RefreshToken != "")}})
		return next, err
	}
	w.backoff.clear(id)
	w.audit(ctx, next, event.Event{Name: event.Refresh, Level: slog.LevelInfo, Duration: took})
	return next, nil
}

// saveRefreshed stores a refreshed session. An OP that rotates refresh
// tokens has spent the old one, so the new tokens are the session's only
// way forward: while the store is out of reach (a restart, a failover),
// keep trying until the refresh's deadline instead of dropping them.
func (w *Web) saveRefreshed(ctx context.Context, s *tokenstore.Session) error {
	pause := 20 * time.Millisecond
	for {
		err := w.store.Update(ctx, s)
		if err == nil || !errors.Is(err, tokenstore.ErrUnavailable) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// backoffs remembers, per session, the last refresh failure and when the
// next refresh may be tried. It lives in the process: another instance
// waits on its own after its own failure.
type backoffs struct {
	mu sync.Mutex
	m  map[string]backoff
}

type backoff struct {
	err   error
	until time.Time
}

func (b *backoffs) get(id string, now time.Time) (error, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[id]
	if !ok || !now.Before(e.until) {
		return nil, 0
	}
	return e.err, e.until.Sub(now)
}

func (b *backoffs) set(id string, err error, now time.Time, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]backoff)
	}
	if len(b.m) >= 1024 { // forget the waits that are over
		for k, e := range b.m {
			if !now.Before(e.until) {
				delete(b.m, k)
			}
		}
	}
	b.m[id] = backoff{err: err, until: now.Add(wait)}
}

func (b *backoffs) clear(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, id)
}

// Require lets only signed-in users through. Without a session, a browser
// navigation (GET/HEAD that does not ask for JSON) is redirected to the
// login route with a return path; any other request gets 401 with a JSON
// body (no redirect an XHR could follow into a loop). When the store or the
// OP is out of reach and the access token cannot be used, 503 with
// Retry-After.
func (w *Web) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s, err := w.load(r)
		if err != nil {
			w.unavailable(rw, r, err)
			return
		}
		if s == nil {
			w.signInRequired(rw, r, "")
			return
		}
		next.ServeHTTP(rw, withSession(r, s))
	})
}

// Optional attaches the session when there is one and serves the request
// either way. With SilentSSO, a browser navigation without a session is
// first sent to the OP with prompt=none, so a user signed in at another
// app is signed in here without a login page.
func (w *Web) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s, err := w.load(r)
		if err != nil {
			w.unavailable(rw, r, err)
			return
		}
		if s != nil {
			r = withSession(r, s)
		} else if w.cfg.SilentSSO && isNavigation(r) {
			if m := w.marker(r); !m.signedOut && !m.triedRecently {
				w.signInRequired(rw, r, "none")
				return
			}
		}
		next.ServeHTTP(rw, r)
	})
}

func (w *Web) signInRequired(rw http.ResponseWriter, r *http.Request, prompt string) {
	noStore(rw)
	if !isNavigation(r) {
		rw.Header().Set("WWW-Authenticate", `Cookie realm="`+w.client.ClientID()+`"`)
		jsonError(rw, http.StatusUnauthorized, "login_required", "sign in at "+w.prefix+"/login")
		return
	}
	target := w.LoginURL(returnPath(r))
	if prompt != "" {
		target += "&prompt=" + prompt
	}
	http.Redirect(rw, r, target, http.StatusFound)
}

// isNavigation: a browser loading a page, which may be redirected to the
// OP. XHR/fetch calls, JSON clients and non-GET requests get a 401.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return !wantsJSON(r)
}

func wantsJSON(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
		return true
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "cors", "same-origin", "no-cors":
		return true
	}
	accept := r.Header.Get("Accept")
	return containsToken(accept, "application/json") && !containsToken(accept, "text/html")
}
