// Package spa serves the demo's single-page app: static HTML, CSS and plain
// JavaScript (no build step, no npm) that signs in as a public client with
// the Authorization Code flow and PKCE S256 from the browser, refreshes its
// tokens with the refresh_token grant, and calls the demo API with its
// access token. The Go side only serves the files and /config.json; it
// never sees a token.
//
// Every page is served with a strict Content-Security-Policy: scripts and
// styles from this origin only (no inline code), network calls to this
// origin, the OP and the API only, no frames, no forms, Trusted Types.
package spa

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
)

//go:embed static
var static embed.FS

// DefaultScopes are requested when Config.Scopes is empty. offline_access
// asks for a refresh token.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access"}

// Config configures the SPA. Issuer, ClientID and RedirectURL are required.
type Config struct {
	// Issuer is the OP's issuer URL, exactly as in its discovery document.
	Issuer string `json:"issuer"`
	// ClientID is the SPA's public client id (no secret: a browser cannot
	// keep one).
	ClientID string `json:"client_id"`
	// RedirectURL is this app's /auth/callback, registered at the OP.
	RedirectURL string `json:"redirect_uri"`
	// PostLogoutRedirectURL is where the OP sends the browser after logout.
	PostLogoutRedirectURL string `json:"post_logout_redirect_uri,omitempty"`
	// APIURL is the base URL of the API the SPA calls (its /api/me and
	// /api/admin). Empty: no API calls.
	APIURL string `json:"api_url,omitempty"`
	// Scopes requested at login. Empty: DefaultScopes.
	Scopes []string `json:"scopes"`
	// Links are other apps shown in the page header.
	Links []Link `json:"links,omitempty"`
	// ConnectOrigins are further origins the page may call, when the OP's
	// endpoints (token, JWKS) are not on the issuer's origin.
	ConnectOrigins []string `json:"-"`
}

// Link is a link to another app in the page header.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// ConfigFromEnv reads MULTIAPP_ISSUER, MULTIAPP_CLIENT_ID,
// MULTIAPP_REDIRECT_URL, MULTIAPP_POST_LOGOUT_REDIRECT_URL, MULTIAPP_API_URL
// and MULTIAPP_SCOPES, and returns the listen address: MULTIAPP_ADDR, or
// the redirect URL's host and port. MULTIAPP_CLIENT_SECRET must be empty:
// the SPA is a public client.
func ConfigFromEnv(env appenv.Env) (Config, string, error) {
	cfg := Config{
		Issuer:                env.Get(appenv.Issuer, ""),
		ClientID:              env.Get(appenv.ClientID, ""),
		RedirectURL:           env.Get(appenv.RedirectURL, ""),
		PostLogoutRedirectURL: env.Get(appenv.PostLogoutRedirectURL, ""),
		APIURL:                env.Get(appenv.APIURL, ""),
		Scopes:                env.List(appenv.Scopes),
	}
	if env.Get(appenv.ClientSecret, "") != "" {
		return cfg, "", fmt.Errorf("spa: %s is set, but code in a browser cannot keep a secret: register the SPA as a public client (PKCE) and unset it", appenv.ClientSecret)
	}
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return cfg, "", fmt.Errorf("spa: set %s, %s and %s", appenv.Issuer, appenv.ClientID, appenv.RedirectURL)
	}
	addr := env.Get(appenv.Addr, "")
	if addr == "" {
		u, err := url.Parse(cfg.RedirectURL)
		if err != nil || u.Host == "" || u.Port() == "" {
			return cfg, "", fmt.Errorf("spa: set %s (the redirect URL %q names no port)", appenv.Addr, cfg.RedirectURL)
		}
		addr = u.Host
	}
	return cfg, addr, nil
}

// Handler returns the SPA's handler: the page at / and at the callback path,
// its script and style sheet, and /config.json.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("spa: Issuer, ClientID and RedirectURL are required")
	}
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil || !redirect.IsAbs() {
		return nil, fmt.Errorf("spa: RedirectURL %q is not absolute", cfg.RedirectURL)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	connect := []string{"'self'"}
	for _, raw := range append([]string{cfg.Issuer, cfg.APIURL}, cfg.ConnectOrigins...) {
		if raw == "" {
			continue
		}
		o, err := originOf(raw)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(connect, o) {
			connect = append(connect, o)
		}
	}
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"connect-src " + strings.Join(connect, " "),
		"img-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
	conf, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	files, _ := fs.Sub(static, "static")
	page, _ := fs.ReadFile(files, "index.html")

	mux := http.NewServeMux()
	serve := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Cache-Control", "no-cache")
			w.Write(body)
		}
	}
	mux.Handle("GET /{$}", serve("text/html; charset=utf-8", page))
	if redirect.Path != "/" {
		mux.Handle("GET "+redirect.Path, serve("text/html; charset=utf-8", page))
	}
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
		b, _ := fs.ReadFile(files, name)
		mux.Handle("GET /"+name, serve(ctype, b))
	}
	mux.Handle("GET /config.json", serve("application/json", conf))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// The callback URL carries the code: never send it as a Referer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		mux.ServeHTTP(w, r)
	}), nil
}

func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("spa: %q is not an absolute URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
