package devop

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/loopback"
)

// Demo defaults. The demo apps of this repository listen on these addresses; the
// development OP publishes them as the registered redirect, post-logout and
// back-channel logout URIs of [DefaultClients].
const (
	// DemoIssuer is the issuer of the OP run by the demo command.
	DemoIssuer = "http://127.0.0.1:9000"
	// DemoAPIAudience is the audience the demo API service expects in access
	// tokens. [DemoConfig] adds it to every access token.
	DemoAPIAudience = "api"
	// DemoPassword is the password of every user returned by [DefaultUsers].
	DemoPassword = "password"
)

// Default lifetimes, used when the matching [Config] field is zero.
const (
	DefaultAccessTokenLifetime  = 5 * time.Minute
	DefaultIDTokenLifetime      = time.Hour
	DefaultRefreshTokenLifetime = 24 * time.Hour
	DefaultSessionLifetime      = 8 * time.Hour
	DefaultCodeLifetime         = 2 * time.Minute
	DefaultBackChannelTimeout   = 2 * time.Second
)

// LogoutTokenLifetime is exp minus iat of the logout tokens the OP sends.
const LogoutTokenLifetime = 2 * time.Minute

// DefaultScopes are the scopes a client may request when its [Client.Scopes]
// is empty.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Config configures a development OP. Its zero value is usable with [Start];
// [New] needs an Issuer. Zero durations take the Default… constants, nil Clients
// and Users take [DefaultClients] and [DefaultUsers].
type Config struct {
	// Issuer is the OP's issuer URL, for example "http://127.0.0.1:9000". It must
	// be an absolute http or https URL without query or fragment; plain http is
	// accepted because this is a development OP. [Start] sets it to the address
	// of the test server it starts.
	Issuer string `json:"issuer,omitempty"`

	// Clients are the registered relying parties.
	Clients []Client `json:"clients,omitempty"`
	// Users are the accounts that can sign in with the login form.
	Users []User `json:"users,omitempty"`

	// AccessTokenAudience lists audiences added to the `aud` of every access
	// token, after the client id (for example an API identifier such as
	// [DemoAPIAudience]). ID tokens are never given these audiences.
	AccessTokenAudience []string `json:"access_token_audience,omitempty"`

	// AccessTokenLifetime is the lifetime of access tokens (default 5 minutes,
	// as at Scalekit).
	AccessTokenLifetime time.Duration `json:"-"`
	// IDTokenLifetime is the lifetime of ID tokens (default 1 hour).
	IDTokenLifetime time.Duration `json:"-"`
	// RefreshTokenLifetime is the lifetime of one refresh token (default 24 hours).
	// Each refresh issues a new one with a fresh lifetime.
	RefreshTokenLifetime time.Duration `json:"-"`
	// SessionLifetime is the absolute lifetime of an OP session (default 8 hours).
	// A session found past it is ended like an admin logout: its tokens are
	// revoked and back-channel logout tokens are sent.
	SessionLifetime time.Duration `json:"-"`
	// CodeLifetime is how long an authorization request, and the code issued
	// for it, stays valid (default 2 minutes).
	CodeLifetime time.Duration `json:"-"`
	// BackChannelTimeout bounds each back-channel logout POST (default 2 seconds).
	BackChannelTimeout time.Duration `json:"-"`

	// AccessTokenJWTType is the "typ" header of access tokens. Empty means
	// "at+jwt" (RFC 9068); set "JWT" to mimic OPs that do not follow RFC 9068.
	AccessTokenJWTType string `json:"-"`

	// RevokeRefreshFamilyOnReuse makes a replayed (already rotated) refresh token
	// also revoke every refresh token descended from the same login, as Hydra and
	// node-oidc-provider do. By default only the replayed token is refused, as at
	// Scalekit.
	RevokeRefreshFamilyOnReuse bool `json:"-"`

	// DPoPNonces makes the token endpoint require a server nonce in DPoP
	// proofs (RFC 9449 §8): a proof without one, or with one this OP did not
	// issue within the last 5 minutes, is refused with use_dpop_nonce and a
	// DPoP-Nonce header carrying a fresh one, as node-oidc-provider can be
	// configured to do. Without it, proofs need no nonce. DPoP itself is
	// always on: see the package documentation.
	DPoPNonces bool `json:"-"`

	// SigningKey is the RSA key that signs every token (RS256). Nil means a new
	// 2048-bit key is generated; tests that start many OPs may share one key to
	// save the generation time.
	SigningKey *rsa.PrivateKey `json:"-"`

	// LoginPageNote is a line of text shown under the login form, for example a
	// reminder of the demo accounts. Empty means a note listing the demo
	// accounts when Users is nil, and no note otherwise.
	LoginPageNote string `json:"-"`

	// Logger receives the OP's log records. Nil means no logging. Tokens,
	// secrets, codes and passwords are never logged.
	Logger *slog.Logger `json:"-"`

	// OnEvent, when set, is called synchronously for every [Event]. It must be
	// safe for concurrent use and must not call back into the OP.
	OnEvent func(Event) `json:"-"`
}

// Client is a registered relying party.
type Client struct {
	// ID is the client id.
	ID string `json:"id"`
	// Secret is the client secret. Empty makes a public client, which must use
	// PKCE with S256 and authenticates with token_endpoint_auth_method "none".
	Secret string `json:"secret,omitempty"`
	// AuthMethod is the token_endpoint_auth_method the client is registered
	// with: [AuthMethodBasic] (the default for a confidential client, as in
	// RFC 7591), [AuthMethodPost], or [AuthMethodNone] (the only one, and the
	// default, for a public client). Like Ory Hydra, the OP refuses a token or
	// revocation request that authenticates the client any other way with
	// invalid_client, before it looks at the code or token.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// Name is shown on the login page. Empty means the ID.
	Name string `json:"name,omitempty"`
	// Native marks a native (desktop or CLI) public client: a registered
	// loopback redirect URI such as "http://127.0.0.1/callback" then matches any
	// port (RFC 8252, section 7.3), and custom URI schemes are accepted.
	Native bool `json:"native,omitempty"`
	// RedirectURIs are matched exactly (scheme, host, port, path, query).
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are the absolute URIs accepted as
	// post_logout_redirect_uri at the end-session endpoint, matched exactly.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// BackChannelLogoutURI receives an OpenID Connect Back-Channel Logout 1.0
	// logout token when a session this client took part in ends. Empty means
	// none. Loopback URIs are allowed.
	BackChannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// Scopes are the scopes the client may request; others are dropped from
	// its requests. Empty means [DefaultScopes]. A refresh token is issued only
	// when offline_access is both allowed and requested.
	Scopes []string `json:"scopes,omitempty"`
}

// Public reports whether c is a public client (no secret).
func (c Client) Public() bool { return c.Secret == "" }

// User is an account of the development OP.
type User struct {
	// ID is the subject (`sub`), in Scalekit's style, for example "usr_alice".
	ID string `json:"id"`
	// Email is the login name and the `email` claim. The part before "@" is
	// accepted as login name too.
	Email string `json:"email"`
	// Name is the `name` claim.
	Name string `json:"name,omitempty"`
	// Password is compared in constant time. It is never logged.
	Password string `json:"password"`
	// Roles are put in access tokens as the `roles` array.
	Roles []string `json:"roles,omitempty"`
	// Permissions are put in access tokens as the `permissions` array, in
	// "resource:action" style.
	Permissions []string `json:"permissions,omitempty"`
}

// DefaultClients returns the demo clients, freshly allocated so callers may
// change them:
//
//   - "dashboard": confidential web app at http://localhost:8081
//   - "docs": confidential web app at http://localhost:8082
//   - "yourapp": confidential web app at http://localhost:8085, secret
//     "yourapp-secret": a spare client for a newcomer's own app
//   - "spa": public browser app at http://localhost:8083 (PKCE S256 required)
//   - "cli": public native app with the loopback redirect
//     http://127.0.0.1/callback on any port
//
// Web apps use the paths /auth/callback (redirect), / (post-logout) and
// /auth/backchannel-logout (back-channel logout), and are registered for
// client_secret_basic (the RFC 7591 default), which the OP enforces.
func DefaultClients() []Client {
	return []Client{
		webClient("dashboard", "Dashboard", "dashboard-secret", "http://localhost:8081"),
		webClient("docs", "Docs", "docs-secret", "http://localhost:8082"),
		webClient("yourapp", "Your app", "yourapp-secret", "http://localhost:8085"),
		webClient("spa", "Single-page app", "", "http://localhost:8083"),
		{
			ID:           "cli",
			Name:         "Command-line tool",
			Native:       true,
			RedirectURIs: []string{"http://127.0.0.1/callback"},
		},
	}
}

// webClient is a web app at origin with the routes of multiapp's web
// middleware: /auth/callback (redirect), / (post-logout) and, for a
// confidential client, /auth/backchannel-logout (back-channel logout).
func webClient(id, name, secret, origin string) Client {
	c := Client{
		ID:                     id,
		Secret:                 secret,
		Name:                   name,
		RedirectURIs:           []string{origin + "/auth/callback"},
		PostLogoutRedirectURIs: []string{origin + "/"},
	}
	if secret != "" {
		c.BackChannelLogoutURI = origin + "/auth/backchannel-logout"
	}
	return c
}

// DefaultUsers returns the demo users, freshly allocated. Both have the
// password [DemoPassword]:
//
//   - alice@example.com (usr_alice): roles admin and member, with the
//     permissions dashboard:read, dashboard:admin, docs:read, docs:write
//   - bob@example.com (usr_bob): role member, with the permissions
//     dashboard:read and docs:read (no admin permission)
func DefaultUsers() []User {
	return []User{
		{
			ID:          "usr_alice",
			Email:       "alice@example.com",
			Name:        "Alice Admin",
			Password:    DemoPassword,
			Roles:       []string{"admin", "member"},
			Permissions: []string{"dashboard:read", "dashboard:admin", "docs:read", "docs:write"},
		},
		{
			ID:          "usr_bob",
			Email:       "bob@example.com",
			Name:        "Bob Member",
			Password:    DemoPassword,
			Roles:       []string{"member"},
			Permissions: []string{"dashboard:read", "docs:read"},
		},
	}
}

// DemoConfig returns the configuration of the demo: [DemoIssuer],
// [DefaultClients], [DefaultUsers], [DemoAPIAudience] in every access token,
// and a note on the login page naming the demo accounts.
func DemoConfig() Config {
	return Config{
		Issuer:              DemoIssuer,
		Clients:             DefaultClients(),
		Users:               DefaultUsers(),
		AccessTokenAudience: []string{DemoAPIAudience},
		LoginPageNote:       demoLoginNote,
	}
}

const demoLoginNote = "Demo accounts: alice@example.com (admin) and bob@example.com, password \u201c" + DemoPassword + "\u201d."

// LoadConfigFile reads a JSON file with the fields issuer, clients, users and
// access_token_audience of [Config], for example:
//
//	{"clients": [{"id": "shop", "secret": "s3cret",
//	  "redirect_uris": ["http://localhost:8085/auth/callback"],
//	  "post_logout_redirect_uris": ["http://localhost:8085/"],
//	  "backchannel_logout_uri": "http://localhost:8085/auth/backchannel-logout"}]}
//
// Unknown fields are an error. Fields left out stay zero, so defaults apply.
func LoadConfigFile(path string) (Config, error) {
	var cfg Config
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("devop: %s: %w", path, err)
	}
	return cfg, nil
}

// withDefaults returns a copy of c with defaults applied.
func (c Config) withDefaults() Config {
	if c.Clients == nil {
		c.Clients = DefaultClients()
	}
	if c.Users == nil {
		c.Users = DefaultUsers()
		if c.LoginPageNote == "" {
			c.LoginPageNote = demoLoginNote
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTokenLifetime, DefaultAccessTokenLifetime)
	def(&c.IDTokenLifetime, DefaultIDTokenLifetime)
	def(&c.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
	def(&c.SessionLifetime, DefaultSessionLifetime)
	def(&c.CodeLifetime, DefaultCodeLifetime)
	def(&c.BackChannelTimeout, DefaultBackChannelTimeout)
	if c.AccessTokenJWTType == "" {
		c.AccessTokenJWTType = "at+jwt"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every configuration mistake at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(c.Issuer); c.Issuer == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
	}
	if len(c.Clients) == 0 {
		bad("no clients")
	}
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		name := fmt.Sprintf("client %d (%q)", i, cl.ID)
		if seen[cl.ID] {
			bad("%s: duplicate id", name)
		}
		seen[cl.ID] = true
		errs = append(errs, cl.problems(name)...)
	}
	seenUser, seenLogin := map[string]bool{}, map[string]bool{}
	for i, u := range c.Users {
		name := fmt.Sprintf("user %d (%q)", i, u.ID)
		if u.ID == "" || strings.ContainsAny(u.ID, ": \t\r\n") {
			bad("%s: id must be non-empty without spaces or colons", name)
		}
		if seenUser[u.ID] {
			bad("%s: duplicate id", name)
		}
		seenUser[u.ID] = true
		if u.Email == "" {
			bad("%s: no email", name)
		}
		login := strings.ToLower(u.Email)
		if seenLogin[login] {
			bad("%s: duplicate email", name)
		}
		seenLogin[login] = true
		if u.Password == "" {
			bad("%s: no password", name)
		}
	}
	if c.SigningKey != nil && c.SigningKey.N.BitLen() < 2048 {
		bad("signing key must have at least 2048 bits")
	}
	if len(errs) > 0 {
		return fmt.Errorf("devop: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// problems lists what is wrong with the client on its own, each error
// starting with name.
func (cl Client) problems(name string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(name+": "+format, args...)) }
	if cl.ID == "" || strings.ContainsAny(cl.ID, ": \t\r\n") {
		bad("id must be non-empty without spaces or colons")
	}
	if cl.Native && !cl.Public() {
		bad("a native client must be public (no secret)")
	}
	switch m := cl.AuthMethod; {
	case m == "":
	case cl.Public() && m != AuthMethodNone:
		bad("a public client (no secret) authenticates with token_endpoint_auth_method %q, not %q", AuthMethodNone, m)
	case !cl.Public() && m != AuthMethodBasic && m != AuthMethodPost:
		bad("token_endpoint_auth_method %q: a confidential client uses %q or %q", m, AuthMethodBasic, AuthMethodPost)
	}
	if len(cl.RedirectURIs) == 0 {
		bad("no redirect_uris")
	}
	for _, r := range cl.RedirectURIs {
		u, err := url.Parse(r)
		switch {
		case err != nil || u.Scheme == "" || u.Fragment != "":
			bad("redirect URI %q must be absolute without fragment", r)
		case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
			bad("redirect URI %q has no host", r)
		case u.Scheme != "http" && u.Scheme != "https" && !cl.Native:
			bad("redirect URI %q: custom schemes need a native client", r)
		}
	}
	for _, r := range cl.PostLogoutRedirectURIs {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			bad("post-logout redirect URI %q must be absolute without fragment", r)
		}
	}
	if b := cl.BackChannelLogoutURI; b != "" {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			bad("back-channel logout URI %q must be an absolute http(s) URL without fragment", b)
		}
	}
	for _, s := range cl.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			bad("invalid scope %q", s)
		}
	}
	return errs
}

// allowedScopes returns the scopes the client may request.
func (c *Client) allowedScopes() []string {
	if len(c.Scopes) == 0 {
		return DefaultScopes
	}
	return c.Scopes
}

// redirectAllowed reports whether uri is a registered redirect URI of c: an
// exact match, or for a native client a loopback URI that differs from a
// registered loopback URI only in its port (RFC 8252, section 7.3).
func (c *Client) redirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Native {
		return false
	}
	u, ok := loopbackURL(uri)
	if !ok {
		return false
	}
	for _, reg := range c.RedirectURIs {
		r, ok := loopbackURL(reg)
		if ok && r.Scheme == u.Scheme && r.Hostname() == u.Hostname() && r.Path == u.Path && r.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

func loopbackURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return nil, false
	}
	return u, loopback.Host(u.Host)
}
