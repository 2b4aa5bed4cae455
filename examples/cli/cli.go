// Package cli is the demo's native client: a command-line tool that signs
// in like a desktop app, as a public OAuth client with PKCE (RFC 8252):
//
//   - it listens on 127.0.0.1 on a random port and uses
//     http://127.0.0.1:PORT/callback as its redirect URI (the OP accepts any
//     port on a registered loopback redirect URI, RFC 8252 §7.3);
//   - it opens the system browser at the OP's authorization URL, or prints
//     the URL, and waits for the browser to come back;
//   - it keeps the tokens in a file only its user can read (mode 0600);
//   - it refreshes the access token with the refresh token before it expires;
//   - it logs out by revoking the refresh token and deleting the file, and,
//     with --everywhere, by ending the OP session in the browser, which
//     signs the user out of every app;
//   - with --dpop, it holds a DPoP key (RFC 9449, kept in the token file):
//     the OP binds the tokens to it, so a token seen in a log, a proxy or
//     an API that leaks it is useless without the key, and it calls APIs
//     with proofs (see docs/dpop.md). The key sits in the same 0600 file as
//     the tokens: whoever copies the file has both.
//
// The commands are in [Main]; [Tool] is the same as a Go API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// DefaultIssuer is the demo's development OP (devop.DemoIssuer), and
// DefaultClientID its native client.
const (
	DefaultIssuer   = "http://127.0.0.1:9000"
	DefaultClientID = "cli"
)

// DefaultLoginTimeout bounds how long Login waits for the browser.
const DefaultLoginTimeout = 5 * time.Minute

// Config configures the tool. The zero value signs in at the demo OP.
type Config struct {
	// Issuer is the OP's issuer URL. Empty: DefaultIssuer.
	Issuer string
	// ClientID is the native app's public client id. Empty: DefaultClientID.
	ClientID string
	// Scopes requested at login. Empty: rp.DefaultScopes, with
	// offline_access for a refresh token.
	Scopes []string
	// TokenFile is where the tokens are kept. Empty: DefaultTokenFile().
	TokenFile string
	// OpenBrowser opens the system browser at a URL. Nil: [OpenSystemBrowser].
	// Tests replace it with a function that signs in with an HTTP client.
	OpenBrowser func(url string) error
	// LoginTimeout bounds the wait for the browser. Zero: DefaultLoginTimeout.
	LoginTimeout time.Duration
	// DPoP makes Login create a DPoP key, kept in the token file with the
	// tokens: the OP (which must support DPoP) binds the tokens to it, and
	// Call sends the access token with the DPoP scheme and a proof.
	DPoP bool
	// HTTPClient calls the OP and APIs. Nil: a client with a timeout.
	HTTPClient *http.Client
	// Out receives the messages for the user (the URL to open, ...). Nil:
	// discarded.
	Out io.Writer
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// DefaultTokenFile returns the default token file,
// <user config dir>/multiapp-demo/cli-tokens.json.
func DefaultTokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "multiapp-demo", "cli-tokens.json")
}

// Tool is the native client.
type Tool struct {
	cfg    Config
	mu     sync.Mutex
	client *rp.Client // for refresh, revocation and logout (no redirect URL)
}

// New returns the tool; it contacts nothing yet.
func New(cfg Config) *Tool {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = DefaultTokenFile()
	}
	if cfg.OpenBrowser == nil {
		cfg.OpenBrowser = OpenSystemBrowser
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tool{cfg: cfg}
}

// TokenFile returns the path of the token file.
func (t *Tool) TokenFile() string { return t.cfg.TokenFile }

func (t *Tool) rpConfig() rp.Config {
	return rp.Config{ClientID: t.cfg.ClientID, Scopes: t.cfg.Scopes}
}

// clientFor returns the client for the saved tokens: the shared one, or,
// for DPoP-bound tokens, one that proves possession of their key.
func (t *Tool) clientFor(ctx context.Context, s *Saved) (*rp.Client, error) {
	base, err := t.rpClient(ctx)
	if err != nil || len(s.DPoPKey) == 0 {
		return base, err
	}
	key, err := s.signer()
	if err != nil {
		return nil, err
	}
	cfg := t.rpConfig()
	cfg.DPoP = key
	return base.Provider().Client(cfg)
}

// rpClient returns the client used for everything but the login.
func (t *Tool) rpClient(ctx context.Context) (*rp.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		return t.client, nil
	}
	p, err := rp.Discover(ctx, t.cfg.Issuer, &rp.ProviderOptions{HTTPClient: t.cfg.HTTPClient, Now: t.cfg.Now})
	if err != nil {
		return nil, err
	}
	c, err := p.Client(t.rpConfig())
	if err != nil {
		return nil, err
	}
	t.client = c
	return c, nil
}

// LoginOptions tune one login.
type LoginOptions struct {
	// Prompt is sent as prompt ("login" forces the login form even with an
	// OP session). Empty: none sent, so an OP session signs in at once.
	Prompt string
	// LoginHint is sent as login_hint.
	LoginHint string
}

// Login signs in through the browser and saves the tokens. It listens on
// 127.0.0.1 on a random port for the OP's redirect, opens the browser at the
// authorization URL (and prints it), and waits for the callback, at most
// LoginTimeout.
func (t *Tool) Login(ctx context.Context, opts LoginOptions) (*Saved, error) {
	// RFC 8252 §7.3: the loopback IP literal, not "localhost", on a port the
	// OS picks, only for the time of the login.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cli: listen on the loopback interface: %w", err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	base, err := t.rpClient(ctx)
	if err != nil {
		return nil, err
	}
	// This login's client, with its redirect: discovery and keys are reused.
	cfg := t.rpConfig()
	cfg.RedirectURL = redirect
	var keyJWK []byte
	if t.cfg.DPoP {
		// A new key for every login: it lives as long as these tokens.
		if cfg.DPoP, err = dpop.GenerateSigner(""); err != nil {
			return nil, err
		}
		if keyJWK, err = cfg.DPoP.MarshalPrivateJWK(); err != nil {
			return nil, err
		}
	}
	client, err := base.Provider().Client(cfg)
	if err != nil {
		return nil, err
	}
	tx := pkce.NewTransaction(client.Issuer(), "/")
	extra := url.Values{}
	if opts.Prompt != "" {
		extra.Set("prompt", opts.Prompt)
	}
	if opts.LoginHint != "" {
		extra.Set("login_hint", opts.LoginHint)
	}
	authURL, err := client.AuthCodeURL(ctx, tx, extra)
	if err != nil {
		return nil, err
	}

	type result struct {
		tokens *rp.Tokens
		err    error
	}
	done := make(chan result, 1)
	var once sync.Once
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		resp, err := rp.ParseAuthResponse(r.URL.RawQuery)
		if err == nil && resp.State != tx.State {
			// Not the answer to this login (a stale tab, another program):
			// ignore it and keep waiting.
			callbackPage(w, http.StatusBadRequest, "Unknown sign-in", "This answer is not for the sign-in the command is waiting for.")
			return
		}
		var tokens *rp.Tokens
		if err == nil {
			tokens, err = client.Exchange(r.Context(), tx, resp)
		}
		if err != nil {
			callbackPage(w, http.StatusBadRequest, "Sign-in failed", "Go back to the terminal for details.")
		} else {
			callbackPage(w, http.StatusOK, "Signed in", "You can close this window and go back to the terminal.")
		}
		once.Do(func() { done <- result{tokens, err} })
	})}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(t.cfg.Out, "Opening the browser to sign in. If it does not open, visit:\n\n  %s\n\n", authURL)
	if err := t.cfg.OpenBrowser(authURL); err != nil {
		fmt.Fprintf(t.cfg.Out, "(could not open a browser: %v)\n", err)
	}
	wait, cancel := context.WithTimeout(ctx, t.cfg.LoginTimeout)
	defer cancel()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("cli: sign-in failed: %w", res.err)
		}
		s := t.saved(res.tokens)
		s.DPoPKey = keyJWK
		if err := t.save(s); err != nil {
			return nil, err
		}
		return s, nil
	case <-wait.Done():
		return nil, fmt.Errorf("cli: no answer from the browser within %v: %w", t.cfg.LoginTimeout, wait.Err())
	}
}

func callbackPage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>%s</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2937}</style>
<h1>%s</h1><p>%s</p>`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// Saved is the content of the token file.
type Saved struct {
	Issuer       string          `json:"issuer"`
	ClientID     string          `json:"client_id"`
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type,omitempty"`
	Expiry       time.Time       `json:"expiry,omitzero"`
	RefreshToken string          `json:"refresh_token,omitempty"`
	IDToken      string          `json:"id_token,omitempty"`
	Claims       json.RawMessage `json:"id_token_claims,omitempty"`
	// DPoPKey is the private JWK of the key the tokens are bound to
	// (token_type DPoP), when there is one.
	DPoPKey json.RawMessage `json:"dpop_key,omitempty"`
}

// signer returns the DPoP key of the saved tokens.
func (s *Saved) signer() (*dpop.Signer, error) {
	key, err := dpop.ParseSigner(s.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf("cli: the DPoP key in the token file: %w", err)
	}
	return key, nil
}

func (t *Tool) saved(tok *rp.Tokens) *Saved {
	s := &Saved{
		Issuer: t.cfg.Issuer, ClientID: t.cfg.ClientID,
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry,
		RefreshToken: tok.RefreshToken, IDToken: tok.IDToken,
	}
	if tok.Claims != nil {
		s.Claims = tok.Claims.Raw
	}
	return s
}

// ErrNotSignedIn: there is no token file, or it was for another OP or client.
var ErrNotSignedIn = errors.New("not signed in: run the login command")

// save writes the file atomically with mode 0600, in a directory only the
// user can enter (0700).
func (t *Tool) save(s *Saved) error {
	dir := filepath.Dir(t.cfg.TokenFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".cli-tokens-*") // created 0600
	if err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("cli: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("cli: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	if err := os.Rename(f.Name(), t.cfg.TokenFile); err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	return nil
}

// Load reads the token file. It refuses a file that others may read, as
// ssh does with private keys.
func (t *Tool) Load() (*Saved, error) {
	f, err := os.Open(t.cfg.TokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotSignedIn
	}
	if err != nil {
		return nil, fmt.Errorf("cli: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cli: %s is readable by others (mode %04o): it holds your tokens; run chmod 600 on it, or log in again", t.cfg.TokenFile, fi.Mode().Perm())
	}
	var s Saved
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("cli: %s: %w", t.cfg.TokenFile, err)
	}
	if s.Issuer != t.cfg.Issuer || s.ClientID != t.cfg.ClientID {
		return nil, fmt.Errorf("cli: the tokens in %s are for client %q at %s: %w", t.cfg.TokenFile, s.ClientID, s.Issuer, ErrNotSignedIn)
	}
	return &s, nil
}

// refreshLeeway: an access token expiring within it is refreshed first.
const refreshLeeway = 30 * time.Second

// Token returns a usable access token, refreshing it first when it expires
// within 30 seconds.
func (t *Tool) Token(ctx context.Context) (*Saved, error) {
	s, err := t.Load()
	if err != nil {
		return nil, err
	}
	if s.Expiry.IsZero() || t.cfg.Now().Add(refreshLeeway).Before(s.Expiry) {
		return s, nil
	}
	return t.refresh(ctx, s)
}

// Refresh redeems the refresh token now and saves the new tokens. When the
// OP refuses it (the session ended: logout at any app, an admin, expiry),
// the token file is deleted and the error wraps rp.ErrSessionRevoked.
func (t *Tool) Refresh(ctx context.Context) (*Saved, error) {
	s, err := t.Load()
	if err != nil {
		return nil, err
	}
	return t.refresh(ctx, s)
}

func (t *Tool) refresh(ctx context.Context, s *Saved) (*Saved, error) {
	if s.RefreshToken == "" {
		return nil, fmt.Errorf("cli: no refresh token (the OP did not grant offline_access): log in again: %w", ErrNotSignedIn)
	}
	client, err := t.clientFor(ctx, s)
	if err != nil {
		return nil, err
	}
	prev := &rp.Tokens{RefreshToken: s.RefreshToken, IDToken: s.IDToken}
	if len(s.Claims) > 0 {
		if c, err := rp.ParseClaims(s.Claims); err == nil {
			prev.Claims = c
		}
	}
	tok, err := client.Refresh(ctx, prev)
	if errors.Is(err, rp.ErrSessionRevoked) {
		os.Remove(t.cfg.TokenFile)
		return nil, fmt.Errorf("cli: your session has ended at the OP; log in again: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("cli: refresh: %w", err)
	}
	next := t.saved(tok)
	next.DPoPKey = s.DPoPKey
	if err := t.save(next); err != nil {
		return nil, err
	}
	return next, nil
}

// LogoutOptions tune a logout.
type LogoutOptions struct {
	// Everywhere also ends the OP session in the browser (RP-initiated
	// logout), which signs the user out of every app of that session.
	Everywhere bool
}

// Logout revokes the refresh token at the OP (RFC 7009), deletes the token
// file, and with Everywhere opens the OP's end-session URL in the browser.
// The local logout happens even when the OP cannot be reached.
func (t *Tool) Logout(ctx context.Context, opts LogoutOptions) error {
	s, err := t.Load()
	if errors.Is(err, ErrNotSignedIn) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	client, err := t.clientFor(ctx, s)
	if err != nil {
		errs = append(errs, err)
	} else if s.RefreshToken != "" {
		if err := client.Revoke(ctx, s.RefreshToken, "refresh_token"); err != nil && !errors.Is(err, rp.ErrNotSupported) {
			errs = append(errs, fmt.Errorf("revoke the refresh token: %w", err))
		}
	}
	if err := os.Remove(t.cfg.TokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cli: %w", err)
	}
	if opts.Everywhere && client != nil {
		endURL, err := client.EndSessionURL(s.IDToken, "")
		if err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(t.cfg.Out, "Ending the session at the OP in the browser. If it does not open, visit:\n\n  %s\n\n", endURL)
			if err := t.cfg.OpenBrowser(endURL); err != nil {
				fmt.Fprintf(t.cfg.Out, "(could not open a browser: %v; the OP session, and with it every other app, stays signed in until that URL is opened)\n", err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cli: signed out here, but: %w", errors.Join(errs...))
	}
	return nil
}

// Call sends a GET to url with the access token, refreshing it first when
// needed, and once more after a 401: as a Bearer token, or for DPoP-bound
// tokens with the DPoP scheme and a proof (dpop.Transport, which also
// answers the API's use_dpop_nonce).
func (t *Tool) Call(ctx context.Context, target string) (*http.Response, error) {
	s, err := t.Token(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := t.get(ctx, target, s)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || s.RefreshToken == "" {
		return resp, err
	}
	resp.Body.Close()
	if s, err = t.refresh(ctx, s); err != nil {
		return nil, err
	}
	return t.get(ctx, target, s)
}

func (t *Tool) get(ctx context.Context, target string, s *Saved) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if len(s.DPoPKey) == 0 {
		req.Header.Set("Authorization", "Bearer "+s.AccessToken)
		return t.cfg.HTTPClient.Do(req)
	}
	key, err := s.signer()
	if err != nil {
		return nil, err
	}
	hc := *t.cfg.HTTPClient
	hc.Transport = &dpop.Transport{Signer: key, Base: t.cfg.HTTPClient.Transport,
		AccessToken: func(*http.Request) (string, error) { return s.AccessToken, nil }}
	return hc.Do(req)
}

// OpenSystemBrowser opens url in the user's browser: xdg-open on Linux and
// the BSDs, open on macOS, the URL handler on Windows.
func OpenSystemBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical session")
		}
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// describe renders the saved session for whoami.
func describe(s *Saved, now time.Time) string {
	var b strings.Builder
	c := &rp.Claims{}
	if len(s.Claims) > 0 {
		if pc, err := rp.ParseClaims(s.Claims); err == nil {
			c = pc
		}
	}
	roles, perms := c.Roles, c.Permissions
	if _, at, err := rp.DecodeUnverified(s.AccessToken); err == nil {
		// The CLI received this token from the token endpoint itself; it only
		// shows what it says. The API verifies it.
		if at.Roles != nil {
			roles = at.Roles
		}
		if at.Permissions != nil {
			perms = at.Permissions
		}
	}
	fmt.Fprintf(&b, "issuer       %s\n", s.Issuer)
	fmt.Fprintf(&b, "client       %s\n", s.ClientID)
	fmt.Fprintf(&b, "sub          %s\n", c.Subject)
	fmt.Fprintf(&b, "email        %s\n", c.Email)
	fmt.Fprintf(&b, "sid          %s\n", c.SessionID)
	fmt.Fprintf(&b, "roles        %s\n", strings.Join(roles, ", "))
	fmt.Fprintf(&b, "permissions  %s\n", strings.Join(perms, ", "))
	if !s.Expiry.IsZero() {
		fmt.Fprintf(&b, "access token expires in %v\n", s.Expiry.Sub(now).Round(time.Second))
	}
	if s.RefreshToken != "" {
		b.WriteString("refresh token: yes\n")
	}
	return b.String()
}
