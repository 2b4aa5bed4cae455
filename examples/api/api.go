// Package api is the demo's API service: a resource server that accepts
// bearer access tokens, validated by multiapp's bearer package.
//
//	GET /api/me     any valid access token: who is calling, as JSON
//	GET /api/admin  a token with the admin permission (default
//	                "dashboard:admin"); 403 insufficient_scope otherwise
//
// Without a token it answers 401 with `WWW-Authenticate: Bearer
// realm="api"` (and a DPoP challenge), with an invalid one 401
// error="invalid_token" (RFC 6750). It also accepts DPoP-bound tokens
// (RFC 9449: "Authorization: DPoP <token>" with a DPoP proof), and refuses
// them as bearer tokens.
// With Config.Revocations, a token of an OP session that has ended (a
// sign-out in any app) is refused too, before it expires.
// Browser apps on the allowed origins may call it cross-origin (CORS,
// without credentials: a bearer token needs no cookies).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// DefaultAdminPermission is the permission GET /api/admin requires by
// default. At the development OP alice has it and bob has not.
const DefaultAdminPermission = "dashboard:admin"

// DefaultAddr is where the API listens when MULTIAPP_ADDR is empty.
const DefaultAddr = "localhost:8084"

// Config configures the API. Issuer and Audience are required.
type Config struct {
	// Issuer is the OP's issuer URL, exactly as in its discovery document.
	Issuer string
	// Audience is the audience access tokens for this API carry ("aud").
	Audience string
	// AdminPermission is the permission /api/admin requires. Empty:
	// DefaultAdminPermission.
	AdminPermission string
	// AllowedOrigins are the browser origins (scheme://host:port) allowed to
	// call the API cross-origin, e.g. the SPA's. Never "*".
	AllowedOrigins []string
	// Revocations, when set, makes the API refuse (401) the access tokens
	// of OP sessions that have ended, before their exp: it is the store the
	// web apps' back-channel logout routes write the ended sessions to (in
	// the demo one in-memory store in the same process; in production the
	// apps' shared Redis). Nil: a token stays valid until its exp (5 minutes
	// at the development OP and at Scalekit).
	Revocations rp.RevocationChecker
	// DPoPReplay records the DPoP proofs the API accepted, so that each is
	// used once (the apps' shared store when the API runs as several
	// instances). Nil: an in-memory store of this process.
	DPoPReplay dpop.ReplayStore
	// PublicOrigin is the scheme://host[:port] clients call the API at,
	// the origin of DPoP proofs' htu. Empty: taken from each request (right
	// without a proxy in front).
	PublicOrigin string
	// HTTPClient fetches the OP's discovery document and keys. Nil: defaults.
	HTTPClient *http.Client
	// Logger receives refused requests. Nil: discarded.
	Logger *slog.Logger
	// Observer receives the library's events besides the log (e.g.
	// metrics: github.com/multiapp-go/multiapp/otel). Nil: the log only.
	Observer event.Observer
}

// ConfigFromEnv reads MULTIAPP_ISSUER, MULTIAPP_AUDIENCE,
// MULTIAPP_ADMIN_PERMISSION, MULTIAPP_CORS_ORIGINS (comma-separated
// origins) and MULTIAPP_PUBLIC_ORIGIN (Config.PublicOrigin), and returns the listen address MULTIAPP_ADDR (default
// DefaultAddr).
func ConfigFromEnv(env appenv.Env) (Config, string, error) {
	cfg := Config{
		Issuer:          env.Get(appenv.Issuer, ""),
		Audience:        env.Get(appenv.Audience, ""),
		AdminPermission: env.Get(appenv.AdminPermission, ""),
		AllowedOrigins:  env.List(appenv.CORSOrigins),
		PublicOrigin:    env.Get("MULTIAPP_PUBLIC_ORIGIN", ""),
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return cfg, "", fmt.Errorf("api: set %s and %s", appenv.Issuer, appenv.Audience)
	}
	return cfg, env.Get(appenv.Addr, DefaultAddr), nil
}

// API is the running API. It is an http.Handler.
type API struct {
	cfg     Config
	origins []string
	mux     *http.ServeMux
}

// New discovers the OP and returns the API. ctx bounds the discovery.
func New(ctx context.Context, cfg Config) (*API, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("api: Issuer and Audience are required")
	}
	if cfg.AdminPermission == "" {
		cfg.AdminPermission = DefaultAdminPermission
	}
	if cfg.Logger == nil {
		cfg.Logger = appenv.Discard()
	}
	a := &API{cfg: cfg}
	for _, o := range cfg.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" || err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("api: allowed origin %q must be scheme://host[:port] (never *)", o)
		}
		a.origins = append(a.origins, u.Scheme+"://"+u.Host)
	}
	// One observer for every layer: the audit log. Refused requests are
	// multiapp.bearer.refused records with the reason (requests without a
	// token, and each token check, are debug records); JWKS fetches are
	// multiapp.jwks.fetch.
	obs := event.Join(event.Log(cfg.Logger), cfg.Observer)
	provider, err := rp.Discover(ctx, cfg.Issuer, &rp.ProviderOptions{HTTPClient: cfg.HTTPClient, Observer: obs})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences:   []string{cfg.Audience},
		Revocations: cfg.Revocations,
	})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	replay := cfg.DPoPReplay
	if replay == nil {
		replay = tokenstore.NewMemory(tokenstore.MemoryOptions{})
	}
	proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: replay})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	api, err := bearer.New(bearer.Config{Verifier: verifier, Realm: "api", Observer: obs,
		DPoP: &bearer.DPoPConfig{Proofs: proofs, PublicOrigin: cfg.PublicOrigin}})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	a.mux = http.NewServeMux()
	a.mux.Handle("GET /api/me", api.Authenticate(http.HandlerFunc(a.me)))
	a.mux.Handle("GET /api/admin", api.Require(bearer.AnyPermission(cfg.AdminPermission))(http.HandlerFunc(a.admin)))
	a.mux.HandleFunc("GET /{$}", a.index)
	return a, nil
}

// ServeHTTP answers CORS preflights for the allowed origins, then the routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Origin")
	if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(a.origins, origin) {
		// No Access-Control-Allow-Credentials: the token travels in the
		// Authorization header, never in cookies.
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET")
			h.Set("Access-Control-Allow-Headers", "Authorization, Accept, DPoP")
			h.Set("Access-Control-Max-Age", strconv.Itoa(int((10 * time.Minute).Seconds())))
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// Caller is the JSON answer of GET /api/me: what the access token says.
type Caller struct {
	Subject     string   `json:"sub"`
	SessionID   string   `json:"sid,omitempty"`
	Issuer      string   `json:"iss"`
	ClientID    string   `json:"client_id,omitempty"`
	Audience    []string `json:"aud"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	Scopes      []string `json:"scopes"`
	ExpiresAt   string   `json:"expires_at,omitempty"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	c, _ := bearer.ClaimsFrom(r.Context())
	out := Caller{
		Subject: c.Subject, SessionID: c.SessionID, Issuer: c.Issuer, ClientID: c.ClientID,
		Audience: c.Audience, Roles: nonNil(c.Roles), Permissions: nonNil(c.Permissions), Scopes: nonNil(c.Scopes),
	}
	if exp := c.Expiry.Time(); !exp.IsZero() {
		out.ExpiresAt = exp.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) admin(w http.ResponseWriter, r *http.Request) {
	c, _ := bearer.ClaimsFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{
		"sub":     c.Subject,
		"message": "you hold " + a.cfg.AdminPermission + ": welcome to the admin API",
	})
}

func (a *API) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"routes": map[string]string{
			"GET /api/me":    "any valid access token for audience " + a.cfg.Audience,
			"GET /api/admin": "an access token with the permission " + a.cfg.AdminPermission,
		},
		"issuer": a.cfg.Issuer,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
