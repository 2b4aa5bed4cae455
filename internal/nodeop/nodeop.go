// Package nodeop runs node-oidc-provider (npm oidc-provider, pinned in
// package.json) as a real OpenID Provider for interop tests, and drives it with
// a scripted browser.
//
// Start launches `node op.mjs` from this directory with the given Config and
// stops it when the test ends. The OP reports what happens at it (token
// requests by grant type, back-channel logout deliveries, logins, ...) as
// Events, so tests can count them. NewBrowser returns a cookie-keeping HTTP
// client that follows redirects through apps and the OP and fills in the OP's
// login form.
//
// The package needs `node` on PATH and `npm ci` run in this directory. Without
// them Start skips the test, or fails it when CI=true.
package nodeop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// StartTimeout bounds how long Start waits for the OP's ready line.
const StartTimeout = 20 * time.Second

// Config configures the OP. The zero value is a usable OP with no clients and
// an "any login works" user directory.
type Config struct {
	// Clients are registered at start. More can be added with OP.AddClient.
	Clients []Client
	// Users are the accounts the login form accepts. With none, any login is
	// accepted and becomes the subject (email: the login, or login@example.test).
	Users []User
	// Resource, when set, is an API whose access tokens are RS256 JWTs
	// (typ at+jwt) with aud = Resource.Audience. Clients it does not apply to
	// get opaque access tokens (usable at userinfo and introspection).
	Resource *Resource
	// RotateRefreshTokens makes every refresh return a new refresh token and
	// consume the old one (reusing a consumed one revokes the whole grant).
	// When false, refresh returns the same refresh token again.
	RotateRefreshTokens bool
	// AccessTokenTTL defaults to 5 minutes, IDTokenTTL to 1 hour,
	// RefreshTokenTTL and SessionTTL to 24 hours. They are rounded up to
	// whole seconds.
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	RefreshTokenTTL time.Duration
	SessionTTL      time.Duration
	// ClockTolerance is the skew the OP accepts (e.g. for id_token_hint).
	// Default 2 s; set a negative value for zero.
	ClockTolerance time.Duration
	// ACRValues are the acr values the OP advertises (acr_values_supported)
	// and puts in tokens: with none, ID tokens carry no acr (stock
	// behaviour). A login's acr is the first of the requested acr_values
	// the user can reach (User.ACRs), else the user's first; acr_values
	// that the session's acr is not among bring the login form up again
	// (step-up). Access tokens carry acr and auth_time (RFC 9470 §6).
	ACRValues []string
	// AcceptAnySecretMethod restores stock node-oidc-provider behaviour: a
	// client registered for client_secret_basic may also authenticate with
	// client_secret_post and the reverse. By default the OP enforces each
	// client's registered AuthMethod (invalid_client otherwise), as Ory Hydra
	// does.
	AcceptAnySecretMethod bool
	// RequirePAR makes the OP require Pushed Authorization Requests (RFC
	// 9126) from every client: discovery then says
	// require_pushed_authorization_requests, and an authorization request
	// without a request_uri from the PAR endpoint is refused. PAR is
	// offered (not required) either way.
	RequirePAR bool
	// FAPI2 enables the OP's FAPI 2.0 Security Profile
	// (features.fapi profile '2.0'): PKCE required, a private_key_jwt
	// assertion's aud must be exactly the issuer, redirect_uri required.
	// The OP then also holds an ES256 key, and signs ID tokens with ES256
	// for clients that set no IDTokenSigningAlg (FAPI 2.0 allows PS256,
	// ES256 and EdDSA only).
	FAPI2 bool
	// DPoPNonces makes the OP require a nonce of its own in every DPoP
	// proof (RFC 9449 §8): the first token request of a client gets 400
	// use_dpop_nonce with a DPoP-Nonce. DPoP itself is always on.
	DPoPNonces bool
}

// Client is one registered client (relying party).
type Client struct {
	ID string
	// Secret is required unless AuthMethod is "none".
	Secret string
	// AuthMethod is the token_endpoint_auth_method: "client_secret_post",
	// "client_secret_basic" or "none" (public client). Default:
	// client_secret_basic when Secret is set, none otherwise. It is enforced
	// at the token, introspection and revocation endpoints unless
	// Config.AcceptAnySecretMethod.
	AuthMethod             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives the logout token (form field
	// logout_token); backchannel_logout_session_required is always true.
	BackchannelLogoutURI string
	// ApplicationType is "web" (default) or "native".
	ApplicationType string
	// GrantTypes default to authorization_code and refresh_token. Every
	// client allowed refresh_token gets a refresh token at code exchange,
	// without offline_access.
	GrantTypes []string
	// JWKS is the client's public JSON Web Key Set (e.g. rp.JWKS), for
	// AuthMethod "private_key_jwt".
	JWKS json.RawMessage
	// JWKSURI is where the OP fetches the client's public keys instead
	// (jwks_uri; loopback URLs work, see the fetch override in op.mjs).
	JWKSURI string
	// IDTokenSigningAlg is id_token_signed_response_alg: "RS256" (the
	// default), "PS256" or "ES256".
	IDTokenSigningAlg string
}

// User is an account of the OP.
type User struct {
	// ID is the subject (sub). The login form accepts the ID or the Email.
	ID    string
	Email string
	// Password, when empty, accepts any password.
	Password string
	// Name defaults to Email.
	Name string
	// Roles and Permissions go into access tokens (JWT claims and
	// introspection) as arrays when non-nil.
	Roles       []string
	Permissions []string
	// ACRs are the authentication levels (acr values, from
	// Config.ACRValues) this user can reach when signing in; the first is
	// the everyday one. Empty: logins have no acr.
	ACRs []string
}

// Resource is an API (RFC 8707 resource indicator) with JWT access tokens.
type Resource struct {
	// Audience is the resource indicator and the tokens' aud, an absolute URI.
	Audience string
	// Scopes the API accepts. Requested scopes among them are granted and
	// appear in the access token's scope claim (OIDC scopes do not).
	Scopes []string
	// Clients the resource applies to (as their default resource); empty
	// means every client.
	Clients []string
}

// Event is one thing the OP reported. Fields not relevant to Type are empty.
type Event struct {
	// Type is "request", "login", "backchannel_logout" or "server_error".
	Type string `json:"event"`
	// Route (request): discovery, jwks, authorization, resume, token,
	// userinfo, introspection, revocation, end_session,
	// end_session_confirm, end_session_success,
	// pushed_authorization_request.
	Route  string `json:"route,omitempty"`
	Method string `json:"method,omitempty"`
	// Status is the HTTP status the OP answered (request).
	Status    int    `json:"status,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	GrantType string `json:"grant_type,omitempty"`
	// Error is the OAuth error code of a failed request, the reason a
	// back-channel delivery failed, or a server error's message.
	Error string `json:"error,omitempty"`
	// Detail is the OP's internal reason for a failed request, e.g.
	// "refresh token already used" behind a generic invalid_grant.
	Detail string `json:"detail,omitempty"`
	// Login is what was typed into the login form (login).
	Login string `json:"login,omitempty"`
	// ACR is the authentication level the login reached (login; see
	// Config.ACRValues).
	ACR string `json:"acr,omitempty"`
	// Sub and SID identify the user and the client's session id
	// (backchannel_logout; Sub also for a successful login).
	Sub string `json:"sub,omitempty"`
	SID string `json:"sid,omitempty"`
	// OK: the login was accepted / the RP answered the logout token with
	// 200 or 204.
	OK bool `json:"ok,omitempty"`
	// Seq numbers events in the order the OP printed them, from 1.
	Seq int `json:"-"`
}

// OP is a running node-oidc-provider.
type OP struct {
	// Issuer is http://127.0.0.1:PORT; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// StartupTime is how long the process took to print its ready line.
	StartupTime time.Duration

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	exited chan struct{}

	writeMu sync.Mutex
	nextID  atomic.Int64
	stopped sync.Once

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced whenever events or replies change
	replies map[int64]reply
	lines   []string // stdout lines that were not JSON events
}

type reply struct {
	Event    string `json:"event"`
	ID       int64  `json:"id"`
	ClientID string `json:"client_id"`
	Error    string `json:"error"`
	Issuer   string `json:"issuer"`
}

// Dir returns the directory holding op.mjs and node_modules.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "internal/nodeop"
	}
	return filepath.Dir(file)
}

// InstallHint is the command that installs the OP's dependencies.
func InstallHint() string {
	return fmt.Sprintf("npm ci --prefix %s", Dir())
}

// Start runs the OP for the duration of the test (t.Cleanup stops it). If
// node or the npm packages are missing, or the OP does not come up, it skips
// the test, or fails it when the environment has CI=true.
func Start(t testing.TB, cfg Config) *OP {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("nodeop: %s", msg)
		}
		t.Skipf("nodeop: %s (skipping; the repository's test script installs what these tests need: run it, or `%s`)", msg, InstallHint())
	}
	dir := Dir()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH (install Node.js 20 or later, e.g. Debian's nodejs and npm packages): %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		unavailable("node-oidc-provider is not installed in %s/node_modules (run `npm ci` there)", dir)
	}
	wire, err := cfg.wire()
	if err != nil {
		t.Fatalf("nodeop: %v", err)
	}
	cfgFile := filepath.Join(t.TempDir(), "nodeop-config.json")
	if err := os.WriteFile(cfgFile, wire, 0o600); err != nil {
		t.Fatalf("nodeop: writing config: %v", err)
	}

	op := &OP{
		stderr:  &tail{max: 64 << 10},
		exited:  make(chan struct{}),
		changed: make(chan struct{}),
		replies: map[int64]reply{},
	}
	cmd := exec.Command(node, "op.mjs", cfgFile)
	cmd.Dir = dir
	cmd.Stderr = op.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nodeop: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodeop: %v", err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		unavailable("starting node: %v", err)
	}
	op.cmd, op.stdin = cmd, stdin
	ready := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		op.read(stdout, ready)
	}()
	go func() {
		<-readDone // Wait must not run before the pipe is drained.
		_ = cmd.Wait()
		close(op.exited)
	}()
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			if s := op.Stderr(); s != "" {
				t.Logf("nodeop: OP stderr:\n%s", s)
			}
			if n := op.serverErrors(); len(n) > 0 {
				t.Logf("nodeop: OP server errors: %q", n)
			}
		}
	})

	select {
	case iss := <-ready:
		op.Issuer = iss
		op.StartupTime = time.Since(began)
	case <-op.exited:
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			t.Fatalf("nodeop: the OP refused the configuration:\n%s", op.Stderr())
		}
		unavailable("the OP exited before it was ready (%v); stderr:\n%s", cmd.ProcessState, op.Stderr())
	case <-time.After(StartTimeout):
		op.Stop()
		unavailable("the OP was not ready after %v; stderr:\n%s", StartTimeout, op.Stderr())
	}
	return op
}

// Stop ends the OP process (closing its stdin, then killing it after 5 s).
// Start's cleanup calls it; call it earlier to test an OP that is down.
func (op *OP) Stop() {
	op.stopped.Do(func() {
		op.writeMu.Lock()
		_ = op.stdin.Close()
		op.writeMu.Unlock()
		select {
		case <-op.exited:
		case <-time.After(5 * time.Second):
			_ = op.cmd.Process.Kill()
			<-op.exited
		}
	})
}

// Stderr returns the last 64 KiB the OP wrote to stderr (its warnings).
func (op *OP) Stderr() string { return op.stderr.String() }

func (op *OP) read(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Event string `json:"event"`
		}
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &head) != nil || head.Event == "" {
			op.mu.Lock()
			op.lines = append(op.lines, string(line))
			op.mu.Unlock()
			continue
		}
		switch head.Event {
		case "ready":
			var r reply
			_ = json.Unmarshal(line, &r)
			select {
			case ready <- r.Issuer:
			default:
			}
		case "sync", "client_added", "command_error":
			var r reply
			_ = json.Unmarshal(line, &r)
			op.mu.Lock()
			op.replies[r.ID] = r
			op.notifyLocked()
			op.mu.Unlock()
		default:
			var ev Event
			if err := json.Unmarshal(line, &ev); err != nil {
				continue
			}
			op.mu.Lock()
			ev.Seq = len(op.events) + 1
			op.events = append(op.events, ev)
			op.notifyLocked()
			op.mu.Unlock()
		}
	}
	// Drain so the process never blocks on a full pipe after a scan error.
	_, _ = io.Copy(io.Discard, r)
}

func (op *OP) notifyLocked() {
	close(op.changed)
	op.changed = make(chan struct{})
}

var errStopped = errors.New("nodeop: the OP process has exited")

// command sends one command and waits for its reply.
func (op *OP) command(cmd map[string]any, timeout time.Duration) (reply, error) {
	id := op.nextID.Add(1)
	cmd["id"] = id
	b, err := json.Marshal(cmd)
	if err != nil {
		return reply{}, err
	}
	op.writeMu.Lock()
	_, err = op.stdin.Write(append(b, '\n'))
	op.writeMu.Unlock()
	if err != nil {
		return reply{}, fmt.Errorf("nodeop: writing to the OP: %w", err)
	}
	deadline := time.After(timeout)
	for {
		op.mu.Lock()
		r, ok := op.replies[id]
		if ok {
			delete(op.replies, id)
		}
		changed := op.changed
		op.mu.Unlock()
		if ok {
			if r.Event == "command_error" {
				return r, fmt.Errorf("nodeop: %s", r.Error)
			}
			return r, nil
		}
		select {
		case <-changed:
		case <-op.exited:
			return reply{}, errStopped
		case <-deadline:
			return reply{}, fmt.Errorf("nodeop: no reply from the OP within %v", timeout)
		}
	}
}

// Sync returns once every event the OP printed before the call is recorded.
// The OP prints a request's event before it sends the response, so after an
// HTTP exchange with the OP returns, Sync makes its event visible. Events,
// Count and the helpers built on them call Sync.
func (op *OP) Sync() error {
	_, err := op.command(map[string]any{"cmd": "sync"}, 5*time.Second)
	return err
}

// AddClient registers a client with the running OP (for RPs whose URLs are
// known only after the OP started). It returns the OP's validation error.
func (op *OP) AddClient(c Client) error {
	r, err := op.command(map[string]any{"cmd": "add_client", "client": c.wire()}, 5*time.Second)
	if err != nil {
		return err
	}
	if r.Error != "" {
		return fmt.Errorf("nodeop: client %q refused: %s", c.ID, r.Error)
	}
	return nil
}

// Events returns every event so far, oldest first (after a Sync; if the OP
// has exited, what it reported before).
func (op *OP) Events() []Event {
	_ = op.Sync()
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]Event(nil), op.events...)
}

// Count returns how many events so far match.
func (op *OP) Count(match func(Event) bool) int {
	n := 0
	for _, ev := range op.Events() {
		if match(ev) {
			n++
		}
	}
	return n
}

// TokenRequests counts requests to the token endpoint with that grant_type
// ("" counts all), whatever their outcome.
func (op *OP) TokenRequests(grantType string) int {
	return op.Count(func(ev Event) bool {
		return ev.Type == "request" && ev.Route == "token" && (grantType == "" || ev.GrantType == grantType)
	})
}

// Requests counts requests to a route (see Event.Route), e.g. "jwks".
func (op *OP) Requests(route string) int {
	return op.Count(func(ev Event) bool { return ev.Type == "request" && ev.Route == route })
}

// Logins counts login form submissions the OP accepted.
func (op *OP) Logins() int {
	return op.Count(func(ev Event) bool { return ev.Type == "login" && ev.OK })
}

// BackchannelLogouts returns the back-channel logout deliveries so far.
func (op *OP) BackchannelLogouts() []Event {
	var out []Event
	for _, ev := range op.Events() {
		if ev.Type == "backchannel_logout" {
			out = append(out, ev)
		}
	}
	return out
}

// WaitFor returns the first event (already recorded or still to come) that
// matches, or false after timeout.
func (op *OP) WaitFor(timeout time.Duration, match func(Event) bool) (Event, bool) {
	_ = op.Sync()
	deadline := time.After(timeout)
	seen := 0
	for {
		op.mu.Lock()
		evs := op.events[seen:]
		seen = len(op.events)
		changed := op.changed
		op.mu.Unlock()
		for _, ev := range evs {
			if match(ev) {
				return ev, true
			}
		}
		select {
		case <-changed:
		case <-deadline:
			return Event{}, false
		}
	}
}

func (op *OP) serverErrors() []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	var out []string
	for _, ev := range op.events {
		if ev.Type == "server_error" {
			out = append(out, ev.Error)
		}
	}
	return out
}

// wire formats: what op.mjs reads.

type wireClient struct {
	ClientID               string          `json:"client_id"`
	ClientSecret           string          `json:"client_secret,omitempty"`
	AuthMethod             string          `json:"token_endpoint_auth_method,omitempty"`
	RedirectURIs           []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string          `json:"backchannel_logout_uri,omitempty"`
	ApplicationType        string          `json:"application_type,omitempty"`
	GrantTypes             []string        `json:"grant_types,omitempty"`
	JWKS                   json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                string          `json:"jwks_uri,omitempty"`
	IDTokenSigningAlg      string          `json:"id_token_signed_response_alg,omitempty"`
}

func (c Client) wire() wireClient {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return wireClient{
		ClientID:               c.ID,
		ClientSecret:           c.Secret,
		AuthMethod:             c.AuthMethod,
		RedirectURIs:           nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		BackchannelLogoutURI:   c.BackchannelLogoutURI,
		ApplicationType:        c.ApplicationType,
		GrantTypes:             c.GrantTypes,
		JWKS:                   c.JWKS,
		JWKSURI:                c.JWKSURI,
		IDTokenSigningAlg:      c.IDTokenSigningAlg,
	}
}

type wireUser struct {
	ID          string   `json:"id"`
	Email       string   `json:"email,omitempty"`
	Password    string   `json:"password,omitempty"`
	Name        string   `json:"name,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	ACRs        []string `json:"acrs,omitempty"`
}

type wireResource struct {
	Audience string   `json:"audience"`
	Scopes   []string `json:"scopes"`
	Clients  []string `json:"clients,omitempty"`
}

type wireConfig struct {
	Clients             []wireClient  `json:"clients"`
	Users               []wireUser    `json:"users"`
	Resource            *wireResource `json:"resource,omitempty"`
	RotateRefreshTokens bool          `json:"rotate_refresh_tokens"`
	AccessTokenTTL      int           `json:"access_token_ttl,omitempty"`
	IDTokenTTL          int           `json:"id_token_ttl,omitempty"`
	RefreshTokenTTL     int           `json:"refresh_token_ttl,omitempty"`
	SessionTTL          int           `json:"session_ttl,omitempty"`
	ClockTolerance      *int          `json:"clock_tolerance,omitempty"`
	AcceptAnySecret     bool          `json:"accept_any_secret_method,omitempty"`
	DPoPNonces          bool          `json:"dpop_nonces,omitempty"`
	ACRValues           []string      `json:"acr_values,omitempty"`
	RequirePAR          bool          `json:"require_par,omitempty"`
	FAPI2               bool          `json:"fapi2,omitempty"`
}

func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

func (cfg Config) wire() ([]byte, error) {
	w := wireConfig{
		Clients:             []wireClient{},
		Users:               []wireUser{},
		RotateRefreshTokens: cfg.RotateRefreshTokens,
		AccessTokenTTL:      seconds(cfg.AccessTokenTTL),
		IDTokenTTL:          seconds(cfg.IDTokenTTL),
		RefreshTokenTTL:     seconds(cfg.RefreshTokenTTL),
		SessionTTL:          seconds(cfg.SessionTTL),
		AcceptAnySecret:     cfg.AcceptAnySecretMethod,
		DPoPNonces:          cfg.DPoPNonces,
		ACRValues:           cfg.ACRValues,
		RequirePAR:          cfg.RequirePAR,
		FAPI2:               cfg.FAPI2,
	}
	if cfg.ClockTolerance != 0 {
		ct := seconds(cfg.ClockTolerance)
		w.ClockTolerance = &ct
	}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("a client has no ID")
		}
		w.Clients = append(w.Clients, c.wire())
	}
	for _, u := range cfg.Users {
		if u.ID == "" {
			return nil, errors.New("a user has no ID")
		}
		w.Users = append(w.Users, wireUser(u))
	}
	if r := cfg.Resource; r != nil {
		if !strings.Contains(r.Audience, "://") {
			return nil, fmt.Errorf("resource audience %q is not an absolute URI", r.Audience)
		}
		scopes := r.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		w.Resource = &wireResource{Audience: r.Audience, Scopes: scopes, Clients: r.Clients}
	}
	return json.Marshal(w)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
