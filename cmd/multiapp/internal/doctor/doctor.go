// Package doctor diagnoses a multi-app sign-in setup the way the README's
// troubleshooting section does: it asks the OP (discovery, JWKS, one
// prompt=none authorization request, token requests with a made-up code,
// the app's credentials and a deliberately wrong control, optionally the
// app's back-channel logout endpoint) and reports, check by check, OK,
// WARN or FAIL with a concrete fix. It never involves a user, follows
// redirects only within the OP's own origin (never to an app) and never
// prints secrets or tokens.
//
// The multiapp command (cmd/multiapp) is a thin shell around Diagnose and
// DecodeToken; tests drive this package directly.
package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/rp"
)

// Status is the outcome of one check.
type Status string

// Statuses. Only Fail makes the command exit non-zero.
const (
	OK   Status = "OK"
	Warn Status = "WARN" // works, but is likely to bite (or a feature is missing)
	Fail Status = "FAIL" // will not work as configured
	Skip Status = "SKIP" // not run: missing input, or an earlier check failed
)

// Check is the outcome of one diagnosis step.
type Check struct {
	// App is the app's name; empty for checks across apps.
	App string `json:"app,omitempty"`
	// Name identifies the check (stable, for scripts): "discovery",
	// "issuer", "clock", "authorize", ...
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Message says what was found, Fix what to do about it (for WARN and
	// FAIL).
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// App is one app (one OAuth client) to diagnose, as the example apps
// configure it with MULTIAPP_* variables.
type App struct {
	// Name labels the app's checks (default: the client id).
	Name     string
	Issuer   string
	ClientID string
	// ClientSecret is empty for a public client (SPA, mobile, CLI).
	ClientSecret string
	// AuthMethod is the token endpoint authentication method the app
	// chooses (MULTIAPP_AUTH_METHOD: client_secret_basic,
	// client_secret_post or none), as rp.Config.AuthMethod; empty: the
	// library's default. AuthMethodFrom names where it was chosen, for the
	// report (default "MULTIAPP_AUTH_METHOD").
	AuthMethod     string
	AuthMethodFrom string
	// Profile is the app's rp.Config.Profile (MULTIAPP_PROFILE: fapi2).
	Profile rp.Profile
	// ClientKey is the private key of a private_key_jwt client
	// (MULTIAPP_CLIENT_KEY: PEM, JWK, or the path of a file holding one);
	// never printed.
	ClientKey string
	// SecretEnv names the environment variable ClientSecret was read from
	// when an apps file names one; an empty secret there is suspicious.
	SecretEnv             string
	RedirectURL           string
	PostLogoutRedirectURL string
	// Addr is where the app listens (MULTIAPP_ADDR), compared with the
	// redirect URL's port in local development.
	Addr string
	// BackchannelURL is the app's back-channel logout endpoint. When it is
	// empty and CheckBackchannel is set, <redirect URL origin>/auth/backchannel-logout.
	BackchannelURL   string
	CheckBackchannel bool
	// Scopes the app requests; empty: rp.DefaultScopes.
	Scopes []string
}

// DefaultBackchannelPath is the back-channel route of multiapp's web
// middleware.
const DefaultBackchannelPath = "/auth/backchannel-logout"

// Options tune a diagnosis. The zero value is usable.
type Options struct {
	// HTTPClient makes every request. Redirects are never followed and no
	// cookies are kept, whatever it is configured to do. Nil: a client with
	// Timeout.
	HTTPClient *http.Client
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// Now is this machine's clock (tests simulate a skewed one). Nil:
	// time.Now.
	Now func() time.Time
	// ClockSkew is the tolerance the apps give rp (rp.ProviderOptions.ClockSkew).
	// Zero: rp.DefaultClockSkew.
	ClockSkew time.Duration
	// InsecureAllowHTTPIssuer mirrors rp.ProviderOptions.InsecureAllowHTTPIssuer.
	InsecureAllowHTTPIssuer bool
}

// Clock thresholds. The library tolerates ClockSkew (1 minute by default)
// on iat, nbf and exp: beyond it, tokens are refused (FAIL). A clock
// synchronised by NTP is within milliseconds, so more than WarnClockOffset
// (after subtracting the measurement's uncertainty: the Date header's
// one-second resolution and half the round trip) means no synchronisation:
// it still works but drifts towards the failure (WARN).
const WarnClockOffset = 10 * time.Second

type doctor struct {
	opts Options
	http *http.Client
	now  func() time.Time
	skew time.Duration
}

func newDoctor(opts Options) *doctor {
	d := &doctor{opts: opts, now: opts.Now, skew: opts.ClockSkew}
	if d.now == nil {
		d.now = time.Now
	}
	if d.skew == 0 {
		d.skew = rp.DefaultClockSkew
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c := &http.Client{Timeout: timeout}
	if opts.HTTPClient != nil {
		*c = *opts.HTTPClient
		if c.Timeout == 0 {
			c.Timeout = timeout
		}
	}
	// An answer is what is diagnosed: a redirect is reported, never
	// followed (least of all to the app), and no cookie is ever kept.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = nil
	d.http = c
	return d
}

// Diagnose runs every check for each app, then, with several apps, the
// checks across them (one issuer, distinct client ids, shared cookies).
func Diagnose(ctx context.Context, apps []App, opts Options) *Report {
	d := newDoctor(opts)
	r := &Report{}
	var runs []*appRun
	for _, app := range apps {
		run := d.diagnose(ctx, app)
		for _, prev := range runs {
			if collapseSameOP(run, prev) {
				break
			}
		}
		runs = append(runs, run)
		r.Checks = append(r.Checks, run.checks...)
	}
	if len(apps) > 1 {
		r.Checks = append(r.Checks, acrossApps(runs)...)
	}
	return r
}

// maxBody caps what is read from any answer.
const maxBody = 1 << 20

// answer is one HTTP exchange, timed with this machine's clock.
type answer struct {
	resp *http.Response
	body []byte
	// sent and received are d.now() before and after the exchange.
	sent, received time.Time
}

func (d *doctor) do(req *http.Request) (*answer, error) {
	a := &answer{sent: d.now()}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	a.received = d.now()
	if err != nil {
		return nil, err
	}
	a.resp = resp
	return a, nil
}

func (d *doctor) get(ctx context.Context, u string) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "multiapp-doctor")
	return d.do(req)
}

// rtt is the duration of the exchange by this machine's clock.
func (a *answer) rtt() time.Duration { return a.received.Sub(a.sent) }

// appRun is the diagnosis of one app.
type appRun struct {
	d      *doctor
	app    App
	checks []Check

	// issuer is the one the checks use: the OP's, once discovery found it.
	issuer string
	meta   *rp.Metadata
	client *rp.Client
	// key is App.ClientKey, loaded (nil when absent or unusable).
	key *rp.ClientKey
	// signingKey is a (kid, alg) of the OP's JWKS, for the back-channel
	// probe's forged token.
	kid, alg string
}

func (r *appRun) add(name string, s Status, msg, fix string) {
	r.checks = append(r.checks, Check{App: r.app.Name, Name: name, Status: s, Message: msg, Fix: fix})
}

func (d *doctor) diagnose(ctx context.Context, app App) *appRun {
	if app.Name == "" {
		app.Name = app.ClientID
	}
	if app.Name == "" {
		app.Name = "app"
	}
	r := &appRun{d: d, app: app, issuer: app.Issuer}
	if !r.config() {
		return r
	}
	if !r.discovery(ctx) {
		r.skipRest("discovery failed")
		r.backchannel(ctx) // the app's endpoint can still be checked
		return r
	}
	r.features()
	r.jwks(ctx)
	r.clientKey()
	r.redirectURL()
	r.library(ctx)
	r.authMethod()
	r.authorize(ctx)
	r.postLogout(ctx)
	r.clientAuth(ctx)
	r.backchannel(ctx)
	return r
}

// skipRest reports the checks that need discovery as skipped.
func (r *appRun) skipRest(why string) {
	for _, name := range []string{"jwks", "library", "auth_method", "authorize", "client_auth"} {
		r.add(name, Skip, "not run: "+why, "")
	}
}

func (r *appRun) scopes() []string {
	if len(r.app.Scopes) > 0 {
		return r.app.Scopes
	}
	return rp.DefaultScopes
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = `"` + s + `"`
	}
	return strings.Join(q, ", ")
}

// opChecks are the checks whose outcome depends on the OP alone (and the
// issuer string), not on the app.
var opChecks = map[string]bool{
	"discovery": true, "clock": true, "issuer": true, "https": true, "endpoints": true,
	"end_session": true, "backchannel_logout": true, "pkce": true, "iss_parameter": true,
	"revocation": true, "jwks": true,
}

// collapseSameOP replaces run's OP checks by one line when prev, an app
// with the same issuer string, got the same outcomes: several apps of one
// OP would otherwise repeat them all.
func collapseSameOP(run, prev *appRun) bool {
	if run.app.Issuer != prev.app.Issuer {
		return false
	}
	before := map[string]Status{}
	for _, c := range prev.checks {
		if opChecks[c.Name] {
			before[c.Name] = c.Status
		}
	}
	n, worst := 0, OK
	for _, c := range run.checks {
		if !opChecks[c.Name] {
			continue
		}
		if st, ok := before[c.Name]; !ok || st != c.Status {
			return false
		}
		n++
		worst = worse(worst, c.Status)
	}
	if n == 0 || n != len(before) {
		return false
	}
	var out []Check
	for _, c := range run.checks {
		switch {
		case !opChecks[c.Name]:
			out = append(out, c)
		case c.Name == "discovery":
			fix := ""
			if worst != OK {
				fix = fmt.Sprintf("see the checks of %s", prev.app.Name)
			}
			out = append(out, Check{App: run.app.Name, Name: "op", Status: worst,
				Message: fmt.Sprintf("the same OP as %s, with the same outcomes (%d checks: discovery, clock, issuer, https, features, JWKS)", prev.app.Name, n), Fix: fix})
		}
	}
	run.checks = out
	return true
}

func worse(a, b Status) Status {
	rank := map[Status]int{Skip: 0, OK: 1, Warn: 2, Fail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
