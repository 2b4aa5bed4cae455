// Package webapp is the demo's server-side web app: a confidential OAuth
// client that signs users in with multiapp's web middleware. The demo runs
// it twice, as "dashboard" and "docs", two apps with their own client ids
// that share one sign-in at the OP.
//
// Routes:
//
//	GET  /                          home page; signs in silently (prompt=none) when the OP has a session
//	GET  /me                        the signed-in session as JSON; 401 JSON for Accept: application/json,
//	                                otherwise a redirect to the login
//	GET  /auth/login                start a login (return_to, prompt)
//	GET  /auth/callback             the registered redirect URI
//	GET  /auth/logout               a confirmation form; POST signs out here, at the OP and so everywhere
//	POST /auth/backchannel-logout   the OP's back-channel logout (OpenID Connect Back-Channel Logout 1.0)
//
// Run it alone against any OP with the MULTIAPP_* variables (see
// [ConfigFromEnv] and the command in cmd/webapp).
package webapp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
)

// Config configures one web app. Issuer, ClientID and RedirectURL are
// required.
type Config struct {
	// Name is the app's title on its pages. Empty: the client id.
	Name string
	// Issuer is the OP's issuer URL, exactly as in its discovery document.
	Issuer string
	// ClientID and ClientSecret identify the app at the OP. An empty secret
	// makes a public client, which still uses PKCE.
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of this app's /auth/callback, as
	// registered at the OP.
	RedirectURL string
	// PostLogoutRedirectURL is where the OP sends the browser after logout
	// (registered at the OP). Empty: none is sent.
	PostLogoutRedirectURL string
	// Scopes requested at login. Empty: rp.DefaultScopes (with
	// offline_access, for a refresh token).
	Scopes []string
	// ClientKey, instead of ClientSecret, authenticates the app with
	// private_key_jwt (rp.ClientKey); the app then serves its public key at
	// /jwks.json, a jwks_uri to register at the OP.
	ClientKey *rp.ClientKey
	// PAR pushes the authorization requests (rp.Config.PAR).
	PAR bool
	// Profile is rp.Config.Profile: rp.FAPI2 for the FAPI 2.0 Security
	// Profile (needs ClientKey; turns DPoP on).
	Profile rp.Profile
	// DPoP gives each session its own DPoP key (middleware.WebConfig.DPoP):
	// its tokens are bound to it.
	DPoP bool
	// AuthMethod is the client authentication registered at the OP
	// (rp.AuthClientSecretBasic, rp.AuthClientSecretPost,
	// rp.AuthPrivateKeyJWT, rp.AuthNone).
	// Empty: the library's choice (see rp.Config.AuthMethod).
	AuthMethod string
	// CookieKey seals the session and login cookies: at least 32 random
	// bytes. Nil: a random key, so sessions do not survive a restart.
	CookieKey []byte
	// APIURL, when set, is the base URL of the demo API: the home page then
	// calls its /api/me as the signed-in user, with the session's access
	// token.
	APIURL string
	// Links are other apps shown in the page header (the demo's apps).
	Links []Link
	// Accent is the CSS colour of the header. Empty: derived from the name.
	Accent string
	// Store keeps the sessions. Nil: a Redis store when RedisURL is set, an
	// in-memory store (one instance) otherwise.
	Store tokenstore.Store
	// RedisURL, when Store is nil, keeps the sessions in Redis
	// (redisstore.NewFromURL), shared by every instance of the app that has
	// the same URL, StoreKeys and CookieKey. At start the app refuses to
	// run when a running instance seals cookies with another key
	// (redisstore.Store.CheckCookieKeys).
	RedisURL string
	// StoreKeys seal the session records in Redis: 32 random bytes each,
	// the same on every instance (redisstore.Options.Keys).
	StoreKeys [][]byte
	// HTTPClient makes the calls to the OP and the API. Nil: defaults.
	HTTPClient *http.Client
	// Logger receives the app's and the middleware's logs. Nil: discarded.
	Logger *slog.Logger
	// Observer receives the library's events besides the log (e.g.
	// metrics: github.com/multiapp-go/multiapp/otel). Nil: the log only.
	Observer event.Observer
}

// Link is a link to another app in the page header.
type Link struct {
	Name string
	URL  string
}

// ConfigFromEnv reads the configuration from MULTIAPP_ISSUER,
// MULTIAPP_CLIENT_ID, MULTIAPP_CLIENT_SECRET (empty: public client with
// PKCE), MULTIAPP_REDIRECT_URL, MULTIAPP_POST_LOGOUT_REDIRECT_URL,
// MULTIAPP_COOKIE_KEY (hex or base64, 32 bytes or more; empty: a random
// key), MULTIAPP_CLIENT_KEY (a private key for private_key_jwt instead of
// a secret: PEM, JWK or a file path), MULTIAPP_AUTH_METHOD
// (client_secret_basic, client_secret_post, private_key_jwt or none; empty:
// the library's choice), MULTIAPP_PAR (true: pushed authorization
// requests), MULTIAPP_DPOP (true: a DPoP key per session),
// MULTIAPP_PROFILE (fapi2: the FAPI 2.0 Security Profile, DPoP included),
// MULTIAPP_APP_NAME, MULTIAPP_API_URL and
// MULTIAPP_SCOPES, MULTIAPP_REDIS_URL and MULTIAPP_STORE_KEY (with the
// URL, the store key and the cookie key are required: every instance needs
// the same). It also returns the listen address: MULTIAPP_ADDR, or the
// redirect URL's host and port.
func ConfigFromEnv(env appenv.Env) (Config, string, error) {
	cfg := Config{
		Name:                  env.Get(appenv.AppName, ""),
		Issuer:                env.Get(appenv.Issuer, ""),
		ClientID:              env.Get(appenv.ClientID, ""),
		ClientSecret:          env.Get(appenv.ClientSecret, ""),
		RedirectURL:           env.Get(appenv.RedirectURL, ""),
		PostLogoutRedirectURL: env.Get(appenv.PostLogoutRedirectURL, ""),
		APIURL:                env.Get(appenv.APIURL, ""),
		Scopes:                env.List(appenv.Scopes),
		AuthMethod:            env.Get(appenv.AuthMethod, ""),
		RedisURL:              env.Get(appenv.RedisURL, ""),
	}
	var missing []string
	for name, v := range map[string]string{appenv.Issuer: cfg.Issuer, appenv.ClientID: cfg.ClientID, appenv.RedirectURL: cfg.RedirectURL} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return cfg, "", fmt.Errorf("webapp: set %s", strings.Join(sorted(missing), ", "))
	}
	switch v := strings.ToLower(env.Get(appenv.PAR, "")); v {
	case "", "0", "false":
	case "1", "true":
		cfg.PAR = true
	default:
		return cfg, "", fmt.Errorf("webapp: %s is %q: use true or false", appenv.PAR, v)
	}
	switch v := env.Get(appenv.DPoP, ""); v {
	case "", "0", "false":
	case "1", "true":
		cfg.DPoP = true
	default:
		return cfg, "", fmt.Errorf("webapp: %s is %q: use true or false", appenv.DPoP, v)
	}
	switch v := env.Get(appenv.Profile, ""); v {
	case "":
	case string(rp.FAPI2):
		cfg.Profile = rp.FAPI2
	default:
		return cfg, "", fmt.Errorf("webapp: %s is %q: the only profile is %s", appenv.Profile, v, rp.FAPI2)
	}
	if k := env.Get(appenv.ClientKey, ""); k != "" {
		if cfg.ClientSecret != "" {
			return cfg, "", fmt.Errorf("webapp: both %s and %s are set: the app authenticates with one (the key: private_key_jwt)", appenv.ClientKey, appenv.ClientSecret)
		}
		key, err := rp.LoadClientKey(k)
		if err != nil {
			return cfg, "", fmt.Errorf("webapp: %s: %w", appenv.ClientKey, err)
		}
		cfg.ClientKey = key
	}
	if k := env.Get(appenv.CookieKey, ""); k != "" {
		key, err := appenv.ParseCookieKey(k)
		if err != nil {
			return cfg, "", fmt.Errorf("webapp: %w", err)
		}
		cfg.CookieKey = key
	}
	if err := storeFromEnv(env, &cfg); err != nil {
		return cfg, "", fmt.Errorf("webapp: %w", err)
	}
	addr := env.Get(appenv.Addr, "")
	if addr == "" {
		u, err := url.Parse(cfg.RedirectURL)
		if err != nil || u.Host == "" {
			return cfg, "", fmt.Errorf("webapp: %s %q is not an absolute URL", appenv.RedirectURL, cfg.RedirectURL)
		}
		addr = u.Host
		if u.Port() == "" && u.Scheme == "https" {
			addr += ":443"
		} else if u.Port() == "" {
			addr += ":80"
		}
	}
	return cfg, addr, nil
}

// storeFromEnv reads the Redis store's settings.
func storeFromEnv(env appenv.Env, cfg *Config) error {
	k := env.Get(appenv.StoreKey, "")
	switch {
	case cfg.RedisURL == "" && k != "":
		return fmt.Errorf("%s is set but %s is not: set both to keep the sessions in Redis, or neither", appenv.StoreKey, appenv.RedisURL)
	case cfg.RedisURL == "":
		return nil
	case k == "":
		return fmt.Errorf("%s needs %s: 32 random bytes, the same on every instance (try: openssl rand -hex 32)", appenv.RedisURL, appenv.StoreKey)
	case cfg.CookieKey == nil:
		return fmt.Errorf("%s needs %s, the same on every instance: with a random key each instance would answer 401 to the users the others sign in", appenv.RedisURL, appenv.CookieKey)
	}
	keys, err := appenv.ParseStoreKeys(k)
	cfg.StoreKeys = keys
	return err
}

// App is one running web app. It is an http.Handler.
type App struct {
	cfg     Config
	client  *rp.Client
	web     *middleware.Web
	mux     *http.ServeMux
	log     *slog.Logger
	http    *http.Client
	closers []func() // what New made, undone by Close in reverse
}

// New discovers the OP and returns the app. ctx bounds the discovery and a
// check of the app's client credentials at the OP (rp.Client.CheckClientAuth):
// when the OP rejects them, New logs a warning that says what to fix, since
// every sign-in would fail, but still returns the app.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.ClientID
	}
	if cfg.Logger == nil {
		cfg.Logger = appenv.Discard()
	}
	if cfg.Accent == "" {
		cfg.Accent = accentFor(cfg.Name)
	}
	provider, err := rp.Discover(ctx, cfg.Issuer, &rp.ProviderOptions{HTTPClient: cfg.HTTPClient, Observer: cfg.Observer})
	if err != nil {
		return nil, fmt.Errorf("webapp %s: %w", cfg.ClientID, err)
	}
	client, err := provider.Client(rp.Config{
		ClientID:              cfg.ClientID,
		ClientSecret:          cfg.ClientSecret,
		Key:                   cfg.ClientKey,
		PAR:                   cfg.PAR,
		Profile:               cfg.Profile,
		RedirectURL:           cfg.RedirectURL,
		PostLogoutRedirectURL: cfg.PostLogoutRedirectURL,
		Scopes:                cfg.Scopes,
		AuthMethod:            cfg.AuthMethod,
		OnClientAuth:          clientAuthLogger(cfg.Logger, cfg.ClientID),
	})
	if err != nil {
		return nil, fmt.Errorf("webapp %s: %w", cfg.ClientID, err)
	}
	// The outcome is logged by OnClientAuth; only a check the OP could not
	// answer is left to say here.
	if err := client.CheckClientAuth(ctx); errors.Is(err, rp.ErrTemporary) {
		cfg.Logger.Warn("could not check the client's credentials at the OP; sign-ins will tell", "client_id", cfg.ClientID, "err", err)
	}
	key := cfg.CookieKey
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
		cfg.Logger.Warn("no cookie key configured: using a random one, so sessions end when the app restarts", "env", appenv.CookieKey)
	}
	a := &App{cfg: cfg, client: client, log: cfg.Logger, http: cfg.HTTPClient}
	store, err := a.openStore(ctx, key)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("webapp %s: %w", cfg.ClientID, err)
	}
	a.web, err = middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		Store:      store,
		CookieKeys: [][]byte{key},
		SilentSSO:  true,
		DPoP:       cfg.DPoP || cfg.Profile == rp.FAPI2, // FAPI 2.0 requires sender-constrained tokens
		Logger:     cfg.Logger,
		Observer:   webObserver(cfg),
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("webapp %s: %w", cfg.ClientID, err)
	}
	a.mux = http.NewServeMux()
	a.mux.Handle("/auth/", a.web.Routes())
	a.mux.Handle("GET /me", a.web.Require(http.HandlerFunc(a.me)))
	a.mux.Handle("GET /{$}", a.web.Optional(http.HandlerFunc(a.home)))
	if cfg.ClientKey != nil {
		jwks, err := rp.JWKSHandler(cfg.ClientKey)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("webapp %s: %w", cfg.ClientID, err)
		}
		a.mux.Handle("GET /jwks.json", jwks)
	}
	a.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return a, nil
}

// webObserver is the web layer's Observer: nil (the audit log to Logger)
// or the audit log joined with cfg.Observer.
func webObserver(cfg Config) event.Observer {
	if cfg.Observer == nil {
		return nil
	}
	return event.Join(event.Log(cfg.Logger), cfg.Observer)
}

// clientAuthLogger logs the outcome of each client authentication check:
// an audit line for the method in use, a warning when the OP rejects the
// client (every sign-in would fail).
func clientAuthLogger(log *slog.Logger, clientID string) func(rp.ClientAuth, error) {
	return func(a rp.ClientAuth, err error) {
		var ce *rp.ClientAuthError
		switch {
		case errors.As(err, &ce) && ce.Accepted != "":
			log.Warn("the OP rejects this client authentication method: sign-ins will fail", "client_id", clientID, "auth_method", a.Method, "registered", ce.Accepted, "fix", "set "+appenv.AuthMethod+"="+ce.Accepted+" or leave it empty", "err", err)
		case err != nil:
			log.Warn("the OP rejects this client's credentials: sign-ins will fail", "client_id", clientID, "auth_method", a.Method, "err", err)
		default:
			log.Info("client authentication", "event", "client_auth", "client_id", clientID, "auth_method", a.Method, "source", string(a.Source), "why", a.Why)
		}
	}
}

// ServeHTTP serves the app's routes.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	a.mux.ServeHTTP(w, r)
}

// openStore returns cfg.Store, or the store New makes: Redis with
// cfg.RedisURL (after checking that the running instances seal cookies with
// the same key), memory otherwise.
func (a *App) openStore(ctx context.Context, cookieKey []byte) (tokenstore.Store, error) {
	switch {
	case a.cfg.Store != nil:
		return a.cfg.Store, nil
	case a.cfg.RedisURL == "":
		m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
		a.closers = append(a.closers, func() { m.Close() })
		return m, nil
	}
	rs, err := redisstore.NewFromURL(ctx, a.cfg.RedisURL, redisstore.Options{Keys: a.cfg.StoreKeys})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { rs.Close() })
	stop, err := rs.CheckCookieKeys(ctx, [][]byte{cookieKey})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", appenv.CookieKey, err)
	}
	a.closers = append(a.closers, stop)
	a.log.Info("sessions in Redis, shared with the app's other instances", "event", "store") // the URL may hold a password
	return rs, nil
}

// Close releases what New made: the store and its registration.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Name returns the app's title.
func (a *App) Name() string { return a.cfg.Name }

// Me is the JSON answer of GET /me.
type Me struct {
	App         string   `json:"app"`
	Subject     string   `json:"sub"`
	SessionID   string   `json:"sid"`
	Issuer      string   `json:"iss"`
	Email       string   `json:"email,omitempty"`
	Name        string   `json:"name,omitempty"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	// AccessTokenExpiry is when the session's access token expires; the
	// middleware refreshes it before.
	AccessTokenExpiry string `json:"access_token_expires_at,omitempty"`
}

func (a *App) me(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.SessionFrom(r.Context())
	writeJSON(w, http.StatusOK, a.sessionInfo(s))
}

// sessionInfo describes the session. Subject, sid, issuer and email come
// from the validated ID token. Roles and permissions are in the access token
// at Scalekit (and at the development OP), not in the ID token: the web app
// received that token itself from the OP's token endpoint, over the channel
// it authenticated the OP with, and keeps it on the server, so reading its
// claims without verifying it again is as safe as reading the ID token of
// the same answer. An opaque access token has no claims to read: roles and
// permissions then come from the ID token, when the OP puts them there.
func (a *App) sessionInfo(s *middleware.Session) Me {
	c := s.Claims()
	me := Me{
		App: a.cfg.ClientID, Subject: c.Subject, SessionID: c.SessionID, Issuer: c.Issuer,
		Email: c.Email, Name: c.Name, Roles: c.Roles, Permissions: c.Permissions,
	}
	if at, err := s.AccessTokenClaims(); err == nil {
		if at.Roles != nil {
			me.Roles = at.Roles
		}
		if at.Permissions != nil {
			me.Permissions = at.Permissions
		}
	}
	if me.Roles == nil {
		me.Roles = []string{}
	}
	if me.Permissions == nil {
		me.Permissions = []string{}
	}
	if exp := s.Expiry(); !exp.IsZero() {
		me.AccessTokenExpiry = exp.UTC().Format("2006-01-02T15:04:05Z")
	}
	return me
}

// callAPI calls the API's /api/me as the signed-in user, with the
// session's access token (refreshed when needed).
func (a *App) callAPI(ctx context.Context, s *middleware.Session) apiResult {
	if a.http != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, a.http)
	}
	c := s.Client(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.cfg.APIURL, "/")+"/api/me", nil)
	if err != nil {
		return apiResult{Err: err.Error()}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, middleware.ErrSignedOut) {
			return apiResult{Err: "signed out at the OP"}
		}
		return apiResult{Err: err.Error()}
	}
	defer resp.Body.Close()
	return readAPIResult(resp)
}
