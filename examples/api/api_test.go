package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

const spaOrigin = "http://localhost:8083"

// setup starts a development OP that adds the API's audience to access
// tokens, and the API in front of it.
func setup(t *testing.T, audiences ...string) (*devop.OP, *httptest.Server) {
	return setupWith(t, nil, audiences...)
}

// setupWith is setup with the API's revocation store.
func setupWith(t *testing.T, revocations rp.RevocationChecker, audiences ...string) (*devop.OP, *httptest.Server) {
	t.Helper()
	o := devop.Start(t, devop.Config{
		Clients:             []devop.Client{{ID: "cli", Native: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}},
		AccessTokenAudience: audiences,
	})
	a, err := api.New(context.Background(), api.Config{Issuer: o.Issuer(), Audience: devop.DemoAPIAudience, AllowedOrigins: []string{spaOrigin}, Revocations: revocations})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return o, srv
}

func token(t *testing.T, o *devop.OP, email string) string {
	t.Helper()
	tok, err := testbrowser.New(email, devop.DemoPassword).NativeLogin(context.Background(), o.Issuer(), "cli")
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func call(t *testing.T, srv *httptest.Server, path, auth string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutes(t *testing.T) {
	o, srv := setup(t, devop.DemoAPIAudience)
	alice, bob := token(t, o, "alice@example.com"), token(t, o, "bob@example.com")

	for _, path := range []string{"/api/me", "/api/admin"} {
		// No token: 401 and a challenge without an error code (RFC 6750 §3.1).
		resp, _ := call(t, srv, path, "")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="api"` {
			t.Errorf("%s without a token: %d %q", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		// A token that is not one: 401 invalid_token.
		resp, _ = call(t, srv, path, "Bearer "+alice[:len(alice)-4]+"AAAA")
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s with a forged token: %d %q", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// Any valid token: who is calling.
	resp, body := call(t, srv, "/api/me", "Bearer "+bob)
	if resp.StatusCode != 200 {
		t.Fatalf("/api/me: %d %s", resp.StatusCode, body)
	}
	var me api.Caller
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		t.Fatal(err)
	}
	if me.Subject != "usr_bob" || me.ClientID != "cli" || !strings.HasPrefix(me.SessionID, "ses_") || strings.Join(me.Permissions, ",") != "dashboard:read,docs:read" {
		t.Errorf("/api/me: %+v", me)
	}

	// The admin route: 403 insufficient_scope without the permission.
	resp, body = call(t, srv, "/api/admin", "Bearer "+bob)
	www := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 403 || !strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="dashboard:admin"`) || !strings.HasPrefix(www, "Bearer ") {
		t.Errorf("/api/admin as bob: %d %q %s", resp.StatusCode, www, body)
	}
	resp, body = call(t, srv, "/api/admin", "Bearer "+alice)
	if resp.StatusCode != 200 || !strings.Contains(body, "usr_alice") {
		t.Errorf("/api/admin as alice: %d %s", resp.StatusCode, body)
	}
}

// TestRevocations: with the store the web apps' back-channel routes write
// to, a token of an ended OP session is refused at once, long before its
// exp; other sessions' tokens still pass.
func TestRevocations(t *testing.T) {
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()
	o, srv := setupWith(t, store, devop.DemoAPIAudience)
	alice, bob := token(t, o, "alice@example.com"), token(t, o, "bob@example.com")
	for _, tok := range []string{alice, bob} {
		if resp, body := call(t, srv, "/api/me", "Bearer "+tok); resp.StatusCode != 200 {
			t.Fatalf("before logout: %d %s", resp.StatusCode, body)
		}
	}
	var me api.Caller
	_, body := call(t, srv, "/api/me", "Bearer "+alice)
	if err := json.Unmarshal([]byte(body), &me); err != nil || me.SessionID == "" {
		t.Fatalf("no sid: %v %s", err, body)
	}
	// What backchannel.Handler does with a valid logout token for alice's session.
	if err := store.RevokeSID(context.Background(), o.Issuer(), me.SessionID, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, body := call(t, srv, "/api/me", "Bearer "+alice)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a token of an ended session: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	if resp, body := call(t, srv, "/api/me", "Bearer "+bob); resp.StatusCode != 200 {
		t.Errorf("another session's token after alice's logout: %d %s", resp.StatusCode, body)
	}
}

// TestAudience: a token of the same OP for another audience is refused.
func TestAudience(t *testing.T) {
	o, srv := setup(t) // access tokens carry only the client id
	resp, _ := call(t, srv, "/api/me", "Bearer "+token(t, o, "alice@example.com"))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a token for another audience: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestCORS: the SPA's origin may call the API from the browser (no
// credentials needed: the token is a header), other origins may not.
func TestCORS(t *testing.T) {
	_, srv := setup(t, devop.DemoAPIAudience)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/api/me", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(spaOrigin)
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != spaOrigin || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from the SPA: %d %v", resp.StatusCode, h)
	}
	if resp := preflight("http://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/me", nil)
	req.Header.Set("Origin", spaOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("a refused call must still be readable by the SPA: %d %v", resp.StatusCode, resp.Header)
	}
	if _, err := api.New(context.Background(), api.Config{Issuer: "http://127.0.0.1:1", Audience: "api", AllowedOrigins: []string{"*"}}); err == nil || !strings.Contains(err.Error(), "never *") {
		t.Errorf("a * origin: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	cfg, addr, err := api.ConfigFromEnv(appenv.Map(map[string]string{
		"MULTIAPP_ISSUER": "https://example.scalekit.dev", "MULTIAPP_AUDIENCE": "api",
		"MULTIAPP_CORS_ORIGINS": "http://localhost:8083, http://localhost:3000",
	}))
	if err != nil || addr != api.DefaultAddr || len(cfg.AllowedOrigins) != 2 || cfg.Audience != "api" {
		t.Errorf("%v %q %+v", err, addr, cfg)
	}
	if _, _, err := api.ConfigFromEnv(appenv.Map(map[string]string{"MULTIAPP_ISSUER": "https://example.scalekit.dev"})); err == nil {
		t.Error("no audience accepted")
	}
}
