package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"

	"github.com/multiapp-go/multiapp/internal/urldiff"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// What an OP did with a request the doctor sent it.
type outcome int

const (
	backToApp   outcome = iota + 1 // redirected to the URL under test
	elsewhere                      // redirected somewhere else
	errorPage                      // answered with an error (a page or JSON) instead of redirecting
	loginPage                      // showed a login form
	okPage                         // answered 2xx with a page that is neither
	opFailed                       // 5xx
	unreachable                    // transport error
)

type probeResult struct {
	outcome outcome
	status  int
	// to is the redirect target (back to the app or elsewhere) without its
	// query, for display: the OP's error is in text, a code never shown.
	to *url.URL
	// query is the redirect target's query (back to the app).
	query string
	// text is the OP's explanation: error and error_description, or the
	// visible text of its page.
	text string
	err  error
}

// maxHops bounds the redirects followed on the OP's own origin.
const maxHops = 5

// send GETs u without cookies and sorts the answer; target is the URL the
// OP is expected to redirect to. Redirects within the OP's own origin (its
// login page, say) are followed, up to maxHops, unless they carry an OAuth
// error (that is the OP's answer); a redirect anywhere else is the answer.
func (r *appRun) send(ctx context.Context, u, target string, redact ...string) probeResult {
	origin := originOf(u)
	for hop := 0; ; hop++ {
		a, err := r.d.get(ctx, u)
		if err != nil {
			return probeResult{outcome: unreachable, err: err}
		}
		if st := a.resp.StatusCode; st >= 300 && st < 400 && hop < maxHops {
			loc, err := a.resp.Request.URL.Parse(a.resp.Header.Get("Location"))
			if err == nil && !sameEndpoint(loc, target) && originOf(loc.String()) == origin && !loc.Query().Has("error") {
				u = loc.String()
				continue
			}
		}
		return classify(a, target, redact)
	}
}

// originOf is scheme://host of u, lowercased ("" when u does not parse).
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	return strings.ToLower(p.Scheme + "://" + p.Host)
}

// classify sorts one answer of the OP.
func classify(a *answer, target string, redact []string) probeResult {
	res := probeResult{status: a.resp.StatusCode}
	st := a.resp.StatusCode
	switch {
	case st >= 300 && st < 400:
		loc, err := a.resp.Request.URL.Parse(a.resp.Header.Get("Location"))
		if err != nil {
			res.outcome, res.text = errorPage, "an unparsable Location header"
			return res
		}
		q := loc.Query()
		res.text = errorText(q.Get("error"), q.Get("error_description"))
		res.to = displayURL(loc)
		if sameEndpoint(loc, target) {
			res.outcome, res.query = backToApp, loc.RawQuery
		} else {
			res.outcome = elsewhere
		}
	case st >= 500:
		res.outcome, res.text = opFailed, pageText(a.body, redact...)
	default:
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		switch {
		case json.Unmarshal(a.body, &e) == nil && e.Error != "":
			res.outcome, res.text = errorPage, errorText(e.Error, e.Description)
		case passwordField.Match(a.body):
			res.outcome, res.text = loginPage, pageText(a.body, redact...)
		case st >= 400:
			res.outcome, res.text = errorPage, pageText(a.body, redact...)
		default:
			res.text = pageText(a.body, redact...)
			res.outcome = okPage
			if strings.Contains(strings.ToLower(res.text), "error") {
				res.outcome = errorPage
			}
		}
	}
	return res
}

var (
	passwordField = regexp.MustCompile(`(?i)<input[^>]+type=["']?password`)
	scriptOrStyle = regexp.MustCompile(`(?is)<(script|style|head|nav)\b.*?</(script|style|head|nav)>`)
	tag           = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces        = regexp.MustCompile(`\s+`)
)

// errorFields finds the OAuth error parameters an error page lists
// ("error invalid_client error_description client is invalid state ...").
var errorFields = regexp.MustCompile(`(?i)\berror\W+([a-z_]+)\W+error_description\W+(.+?)(?:\s+(?:state|iss|error_uri)\b|$)`)

// pageText is the visible text of an HTML page (or a body): the OAuth
// error it names when it lists one, else the text of its body, shortened,
// without repeated words and without secrets.
func pageText(body []byte, redact ...string) string {
	s := scriptOrStyle.ReplaceAllString(string(body), " ")
	s = tag.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
	if m := errorFields.FindStringSubmatch(s); m != nil {
		s = errorText(m[1], m[2])
	}
	for _, r := range redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "…")
		}
	}
	var words []string
	for _, w := range strings.Fields(s) {
		if n := len(words); n > 0 && strings.EqualFold(words[n-1], w) {
			continue
		}
		words = append(words, w)
	}
	s = strings.Join(words, " ")
	if r := []rune(s); len(r) > 240 {
		s = string(r[:240]) + "…"
	}
	return s
}

func errorText(code, desc string) string {
	switch {
	case code == "":
		return ""
	case desc == "":
		return code
	}
	return code + ": " + desc
}

// displayURL keeps scheme, host and path: never a code or another
// parameter of the OP's answer (its error is in probeResult.text).
func displayURL(u *url.URL) *url.URL {
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
}

// sameEndpoint reports whether the OP redirected to target (the query the
// OP appends aside).
func sameEndpoint(loc *url.URL, target string) bool {
	t, err := url.Parse(target)
	if err != nil {
		return false
	}
	return strings.EqualFold(loc.Scheme, t.Scheme) && strings.EqualFold(loc.Host, t.Host) && loc.EscapedPath() == t.EscapedPath()
}

// withParam returns u with one query parameter replaced.
func withParam(u, name, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(name, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// authorizeProbe sends one prompt=none authorization request for the app's
// client, with redirect as redirect_uri. It never involves a user: without
// cookies the OP has no session, so a registered client and redirect URL
// come back with login_required.
func (r *appRun) authorizeProbe(ctx context.Context, redirect string) (probeResult, *pkce.Transaction) {
	tx := pkce.NewTransaction(r.client.Issuer(), "/")
	u, err := r.client.AuthCodeURL(ctx, tx, url.Values{"prompt": {"none"}})
	if err != nil {
		return probeResult{outcome: unreachable, err: err}, tx
	}
	if redirect != r.app.RedirectURL {
		u = withParam(u, "redirect_uri", redirect)
	}
	return r.send(ctx, u, redirect, tx.State, tx.Nonce, tx.Challenge()), tx
}

// signsIn reports whether the app is configured to sign users in, which
// the login checks need; otherwise it reports check name as skipped, with
// why a missing redirect URL is fine.
func (r *appRun) signsIn(name, noRedirect string) bool {
	switch {
	case r.app.ClientID == "":
		r.add(name, Skip, "no client id configured", "")
	case r.app.RedirectURL == "":
		r.add(name, Skip, "no redirect URL configured: "+noRedirect, "")
	case r.client == nil:
		r.add(name, Skip, "not run: the library refused the configuration", "")
	default:
		return true
	}
	return false
}

// authorize checks that the OP knows the client and its redirect URL.
func (r *appRun) authorize(ctx context.Context) {
	if !r.signsIn("authorize", "no login to check") {
		return
	}
	redirect := r.app.RedirectURL
	res, tx := r.authorizeProbe(ctx, redirect)
	switch res.outcome {
	case unreachable:
		msg, fix := explainNetError(res.err, r.issuer)
		r.add("authorize", Fail, "the authorization endpoint: "+msg, fix)
	case opFailed:
		r.add("authorize", Fail, fmt.Sprintf("the authorization endpoint failed (HTTP %d): %s", res.status, res.text), "the OP is broken or overloaded: retry later, check its logs")
	case backToApp:
		r.backToApp(ctx, tx, res)
	case loginPage:
		r.add("authorize", Warn, fmt.Sprintf("the OP showed a login page in answer to prompt=none (HTTP %d): it probably accepted client %s and the redirect URL (OPs check them first), but it ignores prompt=none, so silent session checks will not work", res.status, r.app.ClientID),
			"nothing to fix for sign-in; for silent checks, enable prompt=none support at the OP")
	case elsewhere:
		if res.text == "" {
			r.add("authorize", Warn, fmt.Sprintf("the OP redirected a prompt=none request to %s (its own login, or an upstream identity provider?) instead of answering it: the registration of the redirect URL cannot be confirmed this way", res.to),
				"sign in once through the app to confirm the redirect URL works")
			return
		}
		r.refused(ctx, res)
	case errorPage:
		r.refused(ctx, res)
	case okPage:
		// A page that is neither a login form nor an error: maybe a login
		// page rendered by JavaScript. Only a near miss that the OP accepts
		// proves the configured URL wrong.
		if !r.nearMiss(ctx, res) {
			r.add("authorize", Warn, fmt.Sprintf("the OP answered a prompt=none request with a page (HTTP %d: %s) instead of redirecting back: it may ignore prompt=none; the registration of client %s and the redirect URL is not confirmed", res.status, res.text, r.app.ClientID),
				"sign in once through the app to confirm the redirect URL works")
		}
	}
}

// nearMiss probes the redirect URL's near misses and reports a FAIL naming
// the one the OP accepts, if any.
func (r *appRun) nearMiss(ctx context.Context, res probeResult) bool {
	redirect := r.app.RedirectURL
	for _, v := range redirectVariants(redirect, r.app.Addr) {
		if vr, _ := r.authorizeProbe(ctx, v); vr.outcome == backToApp {
			r.add("authorize", Fail, fmt.Sprintf("the OP refused the redirect URL %s for client %s (it did not redirect back: %s), but it accepts %s: %s", redirect, r.app.ClientID, shownText(res), v, urldiff.Explain(v, redirect)),
				fmt.Sprintf("set MULTIAPP_REDIRECT_URL to %s, or register %s exactly in the client's redirect URIs at the OP", v, redirect))
			return true
		}
	}
	return false
}

func shownText(res probeResult) string {
	switch {
	case res.to != nil && res.text != "":
		return fmt.Sprintf("redirected to %s with %s", res.to, res.text)
	case res.to != nil:
		return fmt.Sprintf("redirected to %s", res.to)
	case res.text == "":
		return fmt.Sprintf("HTTP %d, no explanation", res.status)
	}
	return res.text
}

// backToApp interprets the authorization response the OP redirected to the
// app, the way the library's callback would (without redeeming anything).
func (r *appRun) backToApp(ctx context.Context, tx *pkce.Transaction, res probeResult) {
	what := fmt.Sprintf("client %s and redirect URL %s", r.app.ClientID, r.app.RedirectURL)
	resp, err := rp.ParseAuthResponse(res.query)
	if err != nil {
		r.add("authorize", Fail, fmt.Sprintf("the OP redirected to the app with an authorization response the library refuses: %v", err), "report this to the OP's administrators")
		return
	}
	if resp.Code != "" && resp.Error == "" {
		// A code without a session: never redeemed, it expires on its own.
		r.add("authorize", OK, fmt.Sprintf("%s are registered: the OP answered the prompt=none request with a code (not redeemed)", what), "")
		return
	}
	// Exchange checks state, RFC 9207 iss and the OP's error before any
	// token request: it says what the app's callback would say.
	_, err = r.client.Exchange(ctx, tx, resp)
	var oe *rp.OPError
	var ve *rp.ValidationError
	switch {
	case errors.Is(err, rp.ErrLoginRequired):
		r.add("authorize", OK, fmt.Sprintf("%s are registered: a prompt=none request came back to the redirect URL with %s (no OP session without cookies, as expected)", what, resp.Error), "")
	case errors.As(err, &ve):
		r.add("authorize", Fail, fmt.Sprintf("%s are registered, but the app's callback would refuse the OP's answer: %v", what, err), "the OP's authorization responses do not fit its discovery document (issuer, iss parameter): fix the OP's issuer setting")
	case errors.As(err, &oe) && oe.Code == "access_denied":
		r.add("authorize", Warn, fmt.Sprintf("%s are registered, but the OP answered a silent request with access_denied (%s)", what, oe.Description), "check that the client is enabled and that users may sign in to it")
	case errors.As(err, &oe):
		fix := oe.Hint
		if fix == "" {
			fix = "fix the client's settings at the OP so that it accepts this request"
		}
		if oe.Code == "invalid_scope" {
			fix = fmt.Sprintf("enable the scopes %v for the client at the OP (offline_access often needs explicit permission), or request fewer scopes", r.scopes())
		}
		r.add("authorize", Fail, fmt.Sprintf("the redirect URL is registered, but the OP refused the login request: %s", errorText(oe.Code, oe.Description)), fix)
	case err != nil:
		r.add("authorize", Fail, fmt.Sprintf("the app's callback would refuse the OP's answer: %v", err), "")
	default:
		r.add("authorize", OK, what+" are registered", "")
	}
}

// refused explains an authorization request the OP refused without
// redirecting back: it tries the redirect URL's near misses to name the
// one that is registered.
func (r *appRun) refused(ctx context.Context, res probeResult) {
	if r.nearMiss(ctx, res) {
		return
	}
	redirect, shown := r.app.RedirectURL, shownText(res)
	lower := strings.ToLower(res.text)
	mentionsRedirect := strings.Contains(lower, "redirect")
	mentionsClient := strings.Contains(lower, "client") && !mentionsRedirect
	env := r.issuer
	switch {
	case mentionsRedirect:
		r.add("authorize", Fail, fmt.Sprintf("the OP refused the redirect URL %s for client %s (%s); none of its near variants (trailing slash, http/https, localhost/127.0.0.1, port) is registered either", redirect, r.app.ClientID, shown),
			fmt.Sprintf("register %s exactly in the redirect URIs of client %s at %s (same scheme, host, port, path and trailing slash)", redirect, r.app.ClientID, env))
	case mentionsClient:
		r.add("authorize", Fail, fmt.Sprintf("the OP does not know client %s (%s): it is probably registered in another environment, or the id is mistyped", r.app.ClientID, shown),
			fmt.Sprintf("use the client id of this app as registered at %s (every app that shares the sign-in must be registered in that same environment)", env))
	default:
		r.add("authorize", Fail, fmt.Sprintf("the OP showed an error instead of redirecting back to %s (%s): the redirect URL is not registered for client %s, or the client is unknown at this OP", redirect, shown, r.app.ClientID),
			fmt.Sprintf("check that client %s exists at %s (not in another environment) and that %s is in its redirect URIs exactly (scheme, host, port, path, trailing slash)", r.app.ClientID, env, redirect))
	}
}

// postLogout checks the post-logout redirect URL's shape and, when the OP
// has an end-session endpoint, whether the OP accepts it: one end-session
// request without cookies, so no session can end.
func (r *appRun) postLogout(ctx context.Context) {
	raw := r.app.PostLogoutRedirectURL
	if raw == "" {
		r.add("post_logout_url", Skip, "no post-logout redirect URL configured: after logout the OP shows its own page", "set MULTIAPP_POST_LOGOUT_REDIRECT_URL to bring users back to the app")
		return
	}
	_, st, msg, fix := checkAppURL("the post-logout redirect URL", "MULTIAPP_POST_LOGOUT_REDIRECT_URL", raw)
	if st != OK {
		r.add("post_logout_url", st, msg, fix)
		return
	}
	if r.client == nil || r.meta.EndSessionEndpoint == "" {
		r.add("post_logout_url", OK, raw+" (registration not checked: no end-session endpoint or client)", "")
		return
	}
	endURL, err := r.client.EndSessionURL("", "")
	if err != nil {
		r.add("post_logout_url", OK, raw+" (registration not checked: "+err.Error()+")", "")
		return
	}
	// rp sends post_logout_redirect_uri only with an id_token_hint; the
	// probe has no ID token, so it adds the URL itself.
	endURL = withParam(endURL, "post_logout_redirect_uri", raw)
	res := r.send(ctx, endURL, raw)
	switch {
	case res.outcome == backToApp:
		r.add("post_logout_url", OK, raw+" is registered: the OP's end-session endpoint redirected to it", "")
	case res.outcome == okPage || res.outcome == elsewhere && res.text == "":
		r.add("post_logout_url", OK, raw+" was accepted by the OP's end-session endpoint (it answered with its logout page, not an error)", "")
	case res.outcome == errorPage && strings.Contains(strings.ToLower(res.text), "post_logout"):
		var accepted string
		for _, v := range redirectVariants(raw, "") {
			if vr := r.send(ctx, withParam(endURL, "post_logout_redirect_uri", v), v); vr.outcome == backToApp || vr.outcome == okPage {
				accepted = v
				break
			}
		}
		if accepted != "" {
			r.add("post_logout_url", Fail, fmt.Sprintf("the OP refuses %s as post-logout redirect URL for client %s (%s), but accepts %s: %s", raw, r.app.ClientID, res.text, accepted, urldiff.Explain(accepted, raw)),
				fmt.Sprintf("set MULTIAPP_POST_LOGOUT_REDIRECT_URL to %s, or register %s at the OP", accepted, raw))
			return
		}
		r.add("post_logout_url", Fail, fmt.Sprintf("the OP refuses %s as post-logout redirect URL for client %s (%s): after logout users would see an error page", raw, r.app.ClientID, res.text),
			fmt.Sprintf("register %s exactly in the post-logout redirect URIs of client %s", raw, r.app.ClientID))
	case res.outcome == unreachable:
		msg, _ := explainNetError(res.err, r.issuer)
		r.add("post_logout_url", Warn, "the end-session endpoint: "+msg, "check that the OP's end-session endpoint is reachable")
	default:
		r.add("post_logout_url", Warn, fmt.Sprintf("%s: the OP answered an end-session request without id_token_hint with HTTP %d (%s); some OPs check the post-logout URL only with an id_token_hint, so its registration is not confirmed", raw, res.status, shownText(res)),
			"sign in and out once through the app to confirm the OP sends users back to it")
	}
}
