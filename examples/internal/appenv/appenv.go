// Package appenv holds what the example apps share: reading the MULTIAPP_*
// environment variables and serving an http.Handler until a context ends.
package appenv

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The environment variables the example apps read.
const (
	Issuer                = "MULTIAPP_ISSUER"
	ClientID              = "MULTIAPP_CLIENT_ID"
	ClientSecret          = "MULTIAPP_CLIENT_SECRET"
	RedirectURL           = "MULTIAPP_REDIRECT_URL"
	PostLogoutRedirectURL = "MULTIAPP_POST_LOGOUT_REDIRECT_URL"
	Addr                  = "MULTIAPP_ADDR"
	CookieKey             = "MULTIAPP_COOKIE_KEY"
	Audience              = "MULTIAPP_AUDIENCE"
	APIURL                = "MULTIAPP_API_URL"
	AppName               = "MULTIAPP_APP_NAME"
	CORSOrigins           = "MULTIAPP_CORS_ORIGINS"
	AdminPermission       = "MULTIAPP_ADMIN_PERMISSION"
	Scopes                = "MULTIAPP_SCOPES"
	// AuthMethod chooses the client authentication at the OP:
	// client_secret_basic, client_secret_post or none. Empty: the library's
	// choice (see rp.Config.AuthMethod).
	AuthMethod = "MULTIAPP_AUTH_METHOD"
	// ClientKey is a web app's private key for private_key_jwt client
	// authentication, instead of a secret: PEM, a private JWK, or the path
	// of a file holding one (rp.LoadClientKey).
	ClientKey = "MULTIAPP_CLIENT_KEY"
	// PAR, "true" or "1", makes a web app push its authorization requests
	// (rp.Config.PAR); an OP that requires PAR gets them anyway.
	PAR = "MULTIAPP_PAR"
	// Profile, "fapi2", makes a web app follow the FAPI 2.0 Security
	// Profile (rp.Config.Profile; it turns DPoP on too).
	Profile = "MULTIAPP_PROFILE"
	// DPoP, "true" or "1", binds the tokens to a DPoP key (RFC 9449): one
	// per session in a web app (middleware.WebConfig.DPoP), one per login
	// in the CLI.
	DPoP = "MULTIAPP_DPOP"
	// RedisURL, when set, keeps the sessions in Redis (redisstore.NewFromURL:
	// redis://, rediss://, a cluster or Sentinel) so that several instances
	// of an app share them. It needs StoreKey and CookieKey.
	RedisURL = "MULTIAPP_REDIS_URL"
	// StoreKey seals the session records in Redis: 32 bytes, hex or base64,
	// the same on every instance (a comma-separated list rotates: the first
	// seals, all open).
	StoreKey = "MULTIAPP_STORE_KEY"
)

// Env reads variables through a getenv function (os.Getenv in a main, a map
// in tests), trimming spaces.
type Env func(string) string

// Get returns the variable's value, or def when it is empty.
func (e Env) Get(name, def string) string {
	if v := strings.TrimSpace(e(name)); v != "" {
		return v
	}
	return def
}

// List splits a comma- or space-separated variable.
func (e Env) List(name string) []string {
	return strings.FieldsFunc(e(name), func(r rune) bool { return r == ',' || r == ' ' })
}

// Map returns an Env over a map, for tests.
func Map(m map[string]string) Env { return func(k string) string { return m[k] } }

// ParseCookieKey decodes MULTIAPP_COOKIE_KEY: 32 bytes or more, written in
// hex or base64 (standard or URL alphabet, padded or not). Generate one with
// `openssl rand -hex 32`.
func ParseCookieKey(s string) ([]byte, error) {
	return parseKey(CookieKey, s)
}

// ParseStoreKeys decodes MULTIAPP_STORE_KEY: one or more comma-separated
// keys of exactly 32 bytes, each in hex or base64.
func ParseStoreKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for _, k := range strings.Split(s, ",") {
		key, err := parseKey(StoreKey, k)
		if err != nil {
			return nil, err
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("%s has a key of %d bytes; each must have exactly 32 (try: openssl rand -hex 32)", StoreKey, len(key))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// parseKey decodes the key of variable name: hex or base64, 32 bytes or
// more.
func parseKey(name, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var key []byte
	if b, err := hex.DecodeString(s); err == nil {
		key = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				key = b
				break
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%s must be hex or base64 (try: openssl rand -hex 32)", name)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%s has %d bytes; it needs at least 32 (try: openssl rand -hex 32)", name, len(key))
	}
	return key, nil
}

// Serve serves h on ln until ctx is done, then shuts the server down
// gracefully (at most 5 seconds).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
