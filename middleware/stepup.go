package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/acr"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// StepUp is what a route needs of the user's sign-in beyond a session:
// step-up authentication (OpenID Connect Core acr_values and max_age, RFC
// 9470). RequireStepUp checks it against the session's ID token and, when
// it is not met, signs the user in again asking the OP for it.
type StepUp struct {
	// ACR lists Authentication Context Class References, in order of
	// preference: the ID token's "acr" must be one of them (exactly).
	// They are the OP's values (its discovery document lists them as
	// acr_values_supported), e.g. "urn:example:mfa". Nil: any acr.
	ACR []string
	// MaxAge is how long ago the user may have authenticated at most: the
	// ID token's "auth_time" must be present and that recent (with the
	// Provider's clock skew tolerated, ProviderOptions.ClockSkew, as the
	// callback does). It is sent as max_age in whole
	// seconds (rounded down), and the OP then makes the user authenticate
	// anew. Zero: any age.
	MaxAge time.Duration
}

// validate reports what is wrong with su, for a developer: its acr values
// follow the one rule of package acr, which bearer.AnyACR follows too, so
// a web app can follow every challenge an API of this library sends.
func (su StepUp) validate() error {
	if len(su.ACR) > 0 {
		if err := acr.Check(su.ACR); err != nil {
			return err
		}
	}
	if su.MaxAge < 0 {
		return fmt.Errorf("MaxAge %v is negative", su.MaxAge)
	}
	return nil
}

// unmet returns what the claims lack ("acr" or "max_age"), or "" when they
// meet su at now, with skew tolerated on auth_time (the Provider's, so a
// sign-in the callback accepted is not sent back to the OP).
func (su StepUp) unmet(cl *rp.Claims, now time.Time, skew time.Duration) string {
	if len(su.ACR) > 0 && (cl.ACR == "" || !slices.Contains(su.ACR, cl.ACR)) {
		return "acr"
	}
	if su.MaxAge > 0 && !cl.AuthenticatedWithin(su.MaxAge/time.Second*time.Second, now, skew) {
		return "max_age"
	}
	return ""
}

// query adds su to a login route's query: acr_values and max_age.
func (su StepUp) query(q url.Values) {
	if len(su.ACR) > 0 {
		q.Set("acr_values", strings.Join(su.ACR, " "))
	}
	if su.MaxAge > 0 {
		q.Set("max_age", strconv.FormatInt(int64(su.MaxAge/time.Second), 10))
	}
}

// RequireStepUp is Require with su: it lets through signed-in users whose
// sign-in meets su (the session's ID token has one of su.ACR as acr, and an
// auth_time within su.MaxAge). Any other signed-in user is signed in again:
// a browser navigation is redirected to the login route with acr_values
// and max_age, which go to the OP (it authenticates the user as asked,
// asking for a second factor or the password again) and are then checked
// in the new ID token; the user comes back to the same page, with a new
// session that meets su. A step-up the OP could not do (it answers with a
// weaker acr, or an old auth_time) ends on an error page, and the user
// stays signed in as before: no redirect loop. Other requests (fetch, XHR,
// POST) get 401 insufficient_user_authentication with the challenge (see
// StartStepUp).
//
// Protect the page that shows a form with the same StepUp as the route
// the form posts to: the user then steps up before filling it in, not
// after (a redirect cannot carry a POST).
//
// RequireStepUp panics when su is invalid (an acr value that is empty or
// has a space, quote or control character; more than 128 bytes of them; a
// negative MaxAge) or asks for acr values that WebConfig.AuthParams'
// acr_values do not list (the login route only lets a sign-in narrow
// them): a route set up wrong fails at start-up.
//
//	mux.Handle("GET /settings/security", web.RequireStepUp(middleware.StepUp{
//		ACR: []string{"urn:example:mfa"}, MaxAge: 10 * time.Minute,
//	})(securitySettings))
func (w *Web) RequireStepUp(su StepUp) func(http.Handler) http.Handler {
	if err := w.checkStepUp(su); err != nil {
		panic("middleware: RequireStepUp: " + err.Error())
	}
	su.ACR = slices.Clone(su.ACR)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			s, err := w.load(r)
			switch {
			case err != nil:
				w.unavailable(rw, r, err)
			case s == nil && isNavigation(r):
				// Signed out: one sign-in that meets su, not a plain one
				// and then a step-up.
				noStore(rw)
				http.Redirect(rw, r, w.stepUpURL(returnPath(r), su), http.StatusFound)
			case s == nil:
				w.signInRequired(rw, r, "")
			default:
				if why := su.unmet(s.Claims(), w.now(), w.client.Provider().ClockSkew()); why != "" {
					w.stepUp(rw, r, su, why, s.record())
					return
				}
				next.ServeHTTP(rw, withSession(r, s))
			}
		})
	}
}

// StartStepUp signs the user in again as su asks and brings them back to
// r's page: the reaction of a handler to an API that answered
// insufficient_user_authentication (read the challenge with
// StepUpFromResponse). A browser navigation is redirected to the login
// route with acr_values and max_age, as RequireStepUp does; any other
// request gets 401 with a JSON body (error insufficient_user_authentication,
// and the login URL to navigate to in error_description) and the challenge
// in WWW-Authenticate:
//
//	Cookie realm="<client id>", error="insufficient_user_authentication", acr_values="...", max_age=N
//
// A zero su (a challenge that names neither) asks the OP for a fresh
// authentication (prompt=login). An su that RequireStepUp would refuse is
// answered 502: the API's challenge cannot be followed. So is an su the
// session's ID token already meets (for a zero su: a sign-in within the
// Provider's clock skew), with an event.StepUp of Reason already_met: the API does
// not see what the OP said at sign-in (its access tokens lack acr or
// auth_time), and signing in again would loop.
//
//	resp, err := sess.Client(ctx).Get(ordersAPI + "/payments")
//	if su, ok := middleware.StepUpFromResponse(resp); ok {
//		web.StartStepUp(w, r, su)
//		return
//	}
func (w *Web) StartStepUp(rw http.ResponseWriter, r *http.Request, su StepUp) {
	if err := w.checkStepUp(su); err != nil {
		w.emit(r.Context(), event.Event{Name: event.StepUp, Level: slog.LevelWarn, Reason: "invalid", Err: err})
		w.page(rw, http.StatusBadGateway, "Stronger sign-in not possible",
			"A service this page uses asked for a stronger sign-in in a way this site cannot follow; see its logs.")
		return
	}
	var rec *tokenstore.Session
	if s, ok := SessionFrom(r.Context()); ok {
		rec = s.record()
		// The sign-in already has what the API asks (a fresh one, for a
		// challenge that names nothing): signing in again would bring the
		// same answer back, page → OP → page, forever.
		guard := su
		if len(su.ACR) == 0 && su.MaxAge <= 0 {
			guard.MaxAge = time.Second // "right now", as max_age=0 is read
		}
		if guard.unmet(s.Claims(), w.now(), w.client.Provider().ClockSkew()) == "" {
			w.audit(r.Context(), rec, event.Event{Name: event.StepUp, Level: slog.LevelWarn, Reason: "already_met",
				Err: fmt.Errorf("an API asked for a sign-in (%s) that the session's ID token already meets: the API does not see it in its tokens (does the OP put acr and auth_time in access tokens?)", guard.describe())})
			w.page(rw, http.StatusBadGateway, "Stronger sign-in not possible",
				"A service this page uses asks for a stronger or more recent sign-in than you already have; signing in again would not change its answer. Try again later, or contact the site's support.")
			return
		}
	}
	w.stepUp(rw, r, su, "api", rec)
}

// describe is su for a developer: its acr_values and max_age.
func (su StepUp) describe() string {
	q := url.Values{}
	su.query(q)
	return q.Encode()
}

// stepUp sends the user to sign in again as su asks (why: what the
// session lacked). rec is the session, when there is one.
func (w *Web) stepUp(rw http.ResponseWriter, r *http.Request, su StepUp, why string, rec *tokenstore.Session) {
	target := w.stepUpURL(returnPath(r), su)
	q := url.Values{}
	su.query(q)
	e := event.Event{Name: event.StepUp, Level: slog.LevelInfo, Reason: why,
		Attrs: []slog.Attr{slog.String("acr_values", q.Get("acr_values")), slog.String("max_age", q.Get("max_age"))}}
	if rec != nil {
		w.audit(r.Context(), rec, e)
	} else {
		w.emit(r.Context(), e)
	}
	noStore(rw)
	if !isNavigation(r) {
		var c strings.Builder
		c.WriteString(`Cookie realm="` + w.client.ClientID() + `", error="insufficient_user_authentication"`)
		if v := q.Get("acr_values"); v != "" {
			c.WriteString(`, acr_values="` + v + `"`)
		}
		if v := q.Get("max_age"); v != "" {
			c.WriteString(`, max_age=` + v)
		}
		rw.Header().Set("WWW-Authenticate", c.String())
		jsonError(rw, http.StatusUnauthorized, "insufficient_user_authentication", "a stronger or more recent sign-in is required: navigate to "+target)
		return
	}
	http.Redirect(rw, r, target, http.StatusFound)
}

// stepUpURL is the login route for a sign-in that meets su and returns to
// returnTo. A zero su asks for a fresh authentication (prompt=login).
func (w *Web) stepUpURL(returnTo string, su StepUp) string {
	q := url.Values{"return_to": {returnTo}}
	su.query(q)
	if len(su.ACR) == 0 && su.MaxAge <= 0 {
		q.Set("prompt", "login")
	}
	return w.prefix + "/login?" + q.Encode()
}

// stepUpParams moves a step-up's acr_values and max_age from the login
// route's query q into the authorization request's params (rp's
// AuthCodeURL records them in the transaction, and Exchange checks the new
// ID token against them). params hold the app's AuthParams, which anyone
// can try to loosen by starting the login route with a query of their own:
// the query may only tighten them. Its acr values must all be among
// AuthParams' acr_values (when there are some), and the smaller max_age
// wins. It returns a message for the user when the query is malformed or
// asks for less.
func stepUpParams(q, params url.Values) string {
	if _, ok := q["acr_values"]; ok {
		asked, err := acr.ParseList(q.Get("acr_values"))
		if len(q["acr_values"]) != 1 || err != nil {
			return "acr_values must be a short list of authentication levels separated by spaces."
		}
		if !allowedACR(params, asked) {
			return "This sign-in asks for authentication levels (acr_values) this site does not accept; it accepts only " + params.Get("acr_values") + "."
		}
		params.Set("acr_values", strings.Join(asked, " "))
	}
	if _, ok := q["max_age"]; ok {
		v := q.Get("max_age")
		n, err := strconv.ParseInt(v, 10, 64)
		if len(q["max_age"]) != 1 || err != nil || n < 0 || v[0] == '+' {
			return "max_age must be a number of seconds."
		}
		// The smaller one. A configured max_age that does not parse stays,
		// for AuthCodeURL to refuse as the configuration error it is.
		if cur, err := strconv.ParseInt(params.Get("max_age"), 10, 64); !params.Has("max_age") || err == nil && n < cur {
			params.Set("max_age", v)
		}
	}
	return ""
}

// allowedACR: every one of asked is among params' acr_values, or params
// have none (any acr is allowed).
func allowedACR(params url.Values, asked []string) bool {
	allowed := strings.Fields(params.Get("acr_values"))
	if len(allowed) == 0 {
		return true
	}
	for _, v := range asked {
		if !slices.Contains(allowed, v) {
			return false
		}
	}
	return true
}

// addPrompt adds a prompt value asked in the login route's query to
// params' prompt (the app's AuthParams may have set one, e.g. "login" to
// make every sign-in interactive): the query cannot take a configured
// value away.
func addPrompt(params url.Values, p string) {
	have := strings.Fields(params.Get("prompt"))
	if !slices.Contains(have, p) {
		have = append(have, p)
	}
	params.Set("prompt", strings.Join(have, " "))
}

// errSilentNotAllowed: a silent sign-in (prompt=none) asked of an app whose
// AuthParams set a prompt: every sign-in there must be as configured.
var errSilentNotAllowed = fmt.Errorf("%w: WebConfig.AuthParams sets prompt, so no sign-in can be silent (prompt=none); turn SilentSSO off or remove the prompt", rp.ErrConfig)

// checkStepUp reports why su cannot be carried through this app's login
// route: invalid, or acr values its AuthParams do not allow.
func (w *Web) checkStepUp(su StepUp) error {
	if err := su.validate(); err != nil {
		return err
	}
	if !allowedACR(w.cfg.AuthParams, su.ACR) {
		return fmt.Errorf("acr values %q are not among WebConfig.AuthParams' acr_values %q, which every sign-in must meet", su.ACR, w.cfg.AuthParams.Get("acr_values"))
	}
	return nil
}

// stepUpFailure tells a failed step-up login apart (the new ID token does
// not meet the acr_values or max_age asked): its reason code and a message
// for the user. Empty for other failures.
func stepUpFailure(err error) (why, msg string) {
	var ve *rp.ValidationError
	if !errors.As(err, &ve) || ve.What != "id_token" {
		return "", ""
	}
	const kept = " You are still signed in as before; pages that do not need it work as usual."
	switch ve.Code {
	case rp.CodeACR:
		return "acr_not_met", "This page needs a stronger sign-in than the sign-in service confirmed." + kept
	case rp.CodeAuthTime:
		return "auth_time_not_met", "This page needs a recent sign-in, and the sign-in service did not confirm one." + kept
	}
	return "", ""
}

// stepUpAttrs are the attributes of the Login event of a step-up: what was
// asked and the acr obtained.
func (w *Web) stepUpAttrs(ctx context.Context, tx *pkce.Transaction, s *tokenstore.Session) []slog.Attr {
	if len(tx.ACRValues) == 0 && tx.MaxAge == nil {
		return nil
	}
	attrs := []slog.Attr{slog.Bool("step_up", true)}
	if cl, ok := w.claimsOf(ctx, s); ok && cl.ACR != "" {
		attrs = append(attrs, slog.String("acr", cl.ACR))
	}
	return attrs
}
