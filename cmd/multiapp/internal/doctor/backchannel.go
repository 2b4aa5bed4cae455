package doctor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// backchannelURL is the endpoint to check: the configured one, or the
// web middleware's default route at the redirect URL's origin.
func (r *appRun) backchannelURL() string {
	if r.app.BackchannelURL != "" {
		return r.app.BackchannelURL
	}
	u, err := url.Parse(r.app.RedirectURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: DefaultBackchannelPath}).String()
}

// backchannel POSTs a logout token with a forged signature to the app's
// back-channel logout endpoint: a correct endpoint is reachable and answers
// 400 (Back-Channel Logout 1.0 §2.8). The token names no real session
// (sid and sub "multiapp-doctor-probe"), so even an endpoint that wrongly
// accepts it ends nothing.
func (r *appRun) backchannel(ctx context.Context) {
	if !r.app.CheckBackchannel && r.app.BackchannelURL == "" {
		return
	}
	target := r.backchannelURL()
	if target == "" {
		r.add("backchannel_url", Skip, "no back-channel URL, and none can be derived without a redirect URL", "pass --backchannel-url")
		return
	}
	tu, err := url.Parse(target)
	if err != nil || tu.Host == "" || (tu.Scheme != "http" && tu.Scheme != "https") {
		r.add("backchannel_url", Fail, fmt.Sprintf("%q is not an absolute http(s) URL", target), "set the back-channel URL to the app's full https URL of "+DefaultBackchannelPath)
		return
	}
	form := url.Values{"logout_token": {r.forgedLogoutToken()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		r.add("backchannel_url", Fail, err.Error(), "")
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "multiapp-doctor")
	a, err := r.d.do(req)
	if err != nil {
		msg, _ := explainNetError(err, target)
		r.add("backchannel_url", Fail, fmt.Sprintf("%s is not reachable from this machine: %s", target, msg), "start the app, or fix the back-channel URL (the web middleware serves "+DefaultBackchannelPath+")")
		return
	}
	st := a.resp.StatusCode
	switch {
	case st == http.StatusBadRequest:
		var notes []string
		if !strings.Contains(strings.ToLower(a.resp.Header.Get("Cache-Control")), "no-store") {
			notes = append(notes, "it does not send Cache-Control: no-store (Back-Channel Logout 1.0 §2.8)")
		}
		if reach := r.reachableByOP(tu); reach != "" {
			notes = append(notes, reach)
		}
		if tu.Scheme == "http" && !isLoopbackHost(tu.Hostname()) {
			notes = append(notes, "it uses plain http outside localhost, so logout tokens cross the network in clear text")
		}
		msg := fmt.Sprintf("%s is reachable and refuses a logout token with a forged signature (HTTP 400)", target)
		if len(notes) > 0 {
			r.add("backchannel_url", Warn, msg+"; but "+strings.Join(notes, "; "), "serve the back-channel endpoint over https at a URL the OP can reach (a tunnel in development), and register that URL for the client")
			return
		}
		r.add("backchannel_url", OK, msg+"; the OP must have exactly this URL registered for the client", "")
	case st == http.StatusOK || st == http.StatusNoContent:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s ACCEPTED a logout token with a forged signature (HTTP %d): it does not verify logout tokens, so anyone can sign users out (or it ignores the token and logs no one out)", target, st),
			"validate logout tokens with rp.VerifyLogoutToken (multiapp's back-channel handler does) and answer 400 when validation fails")
	case st >= 300 && st < 400:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s redirects (HTTP %d to %s): the OP does not follow redirects, so every logout token is lost", target, st, a.resp.Header.Get("Location")),
			"serve the back-channel route directly: not behind a login-required middleware, not behind an http→https or trailing-slash redirect; register the final URL")
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s refuses the request before looking at the token (HTTP %d): CSRF protection or an authentication middleware guards it, so the OP's valid logout tokens are refused too", target, st),
			"exempt the back-channel route from CSRF and session checks: the signed logout token is its authentication")
	case st == http.StatusNotFound:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s: no such route (HTTP 404)", target), "mount multiapp's back-channel handler there (web middleware default "+DefaultBackchannelPath+"), or pass the right URL with --backchannel-url")
	case st == http.StatusMethodNotAllowed:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s does not accept POST (HTTP 405): the OP POSTs logout tokens", target), "route POST "+tu.Path+" to the back-channel handler")
	case st == http.StatusUnsupportedMediaType:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s refuses application/x-www-form-urlencoded (HTTP 415), the only form the OP sends", target), "read the logout_token form field")
	case st >= 500:
		r.add("backchannel_url", Fail, fmt.Sprintf("%s fails with HTTP %d on an invalid logout token: the OP counts that as a failed delivery", target, st), "answer 400 to an invalid token; check the app's logs")
	default:
		r.add("backchannel_url", Warn, fmt.Sprintf("%s answered HTTP %d to a logout token with a forged signature, not 400", target, st), "answer 400 when validation fails and 200 when it succeeds (Back-Channel Logout 1.0 §2.8)")
	}
}

// reachableByOP warns when a hosted OP cannot reach a local endpoint.
func (r *appRun) reachableByOP(tu *url.URL) string {
	iu, err := url.Parse(r.issuer)
	if err != nil || !isPrivateHost(tu.Hostname()) || isPrivateHost(iu.Hostname()) {
		return ""
	}
	return fmt.Sprintf("the OP at %s cannot reach %s, a local or private address, from the internet", iu.Host, tu.Host)
}

// forgedLogoutToken is a well-formed logout token for this app with the
// kid and alg of one of the OP's real keys and a random signature: an
// endpoint that does not verify signatures accepts it.
func (r *appRun) forgedLogoutToken() string {
	alg, kid := r.alg, r.kid
	if alg == "" {
		alg, kid = "RS256", "multiapp-doctor"
	}
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "logout+jwt"})
	now := r.d.now().Unix()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c, _ := json.Marshal(map[string]any{
		"iss": r.issuer, "aud": r.app.ClientID, "iat": now, "exp": now + int64(2*time.Minute/time.Second),
		"jti": b64(jti), "sub": "multiapp-doctor-probe", "sid": "multiapp-doctor-probe",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	size := 256
	switch alg {
	case "ES256", "EdDSA":
		size = 64
	case "ES384":
		size = 96
	case "ES512":
		size = 132
	}
	sig := make([]byte, size)
	_, _ = rand.Read(sig)
	return b64(h) + "." + b64(c) + "." + b64(sig)
}
