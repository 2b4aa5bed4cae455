package webapp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/webapp"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
)

// keyPEM is a fresh P-256 private key in PEM, as MULTIAPP_CLIENT_KEY holds it.
func keyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestPrivateKeyJWTApp: the web app configured from MULTIAPP_CLIENT_KEY
// and MULTIAPP_PAR signs in at node-oidc-provider with private_key_jwt
// through a pushed authorization request, the OP fetching the app's public
// key from the app's own /jwks.json (its registered jwks_uri).
func TestPrivateKeyJWTApp(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{{ID: "webc_key", AuthMethod: rp.AuthPrivateKeyJWT, JWKSURI: base + "/jwks.json",
			RedirectURIs: []string{base + "/auth/callback"}, PostLogoutRedirectURIs: []string{base + "/"}}},
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
	})
	cfg, _, err := webapp.ConfigFromEnv(appenv.Map(map[string]string{
		appenv.Issuer: op.Issuer, appenv.ClientID: "webc_key", appenv.ClientKey: keyPEM(t),
		appenv.RedirectURL: base + "/auth/callback", appenv.PostLogoutRedirectURL: base + "/",
		appenv.PAR: "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.PAR {
		t.Fatalf("%s ignored", appenv.PAR)
	}
	// The app's start-up check makes the OP fetch /jwks.json before New
	// returns: until then the test serves the same JWKS itself (a first
	// instance alone would warn; see docs/high-assurance.md).
	h := &lateHandler{key: cfg.ClientKey}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	logs := &syncbuf.Buffer{}
	cfg.Logger = slogTo(logs)
	app, err := webapp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	h.set(app)
	if !strings.Contains(logs.String(), "auth_method=private_key_jwt") || strings.Contains(logs.String(), "rejects") {
		t.Fatalf("start-up check: %s", logs)
	}

	want, _ := rp.JWKS(cfg.ClientKey)
	resp, err := http.Get(base + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != string(want) || strings.Contains(string(got), `"d"`) {
		t.Fatalf("the app's /jwks.json: %s", got)
	}

	b := nodeop.NewBrowser(t, "alice@example.test", "pw")
	final, resp, err := b.Navigate(base+"/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var me webapp.Me
	if final.Path != "/me" || json.Unmarshal(body, &me) != nil || me.Subject != "usr_alice" {
		t.Fatalf("/me: %s %d %s", final, resp.StatusCode, body)
	}
	if n := op.Count(func(e nodeop.Event) bool { return e.Route == "token" && e.Status == 200 }); n != 1 {
		t.Fatalf("%d successful token requests", n)
	}
	if n := op.Count(func(e nodeop.Event) bool { return e.Route == "pushed_authorization_request" && e.Status == 201 }); n != 1 {
		t.Fatalf("%d pushed authorization requests", n)
	}

	env := map[string]string{appenv.Issuer: op.Issuer, appenv.ClientID: "c", appenv.RedirectURL: base + "/cb",
		appenv.ClientKey: keyPEM(t), appenv.ClientSecret: "s"}
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("key and secret: %v", err)
	}
	delete(env, appenv.ClientSecret)
	env[appenv.PAR] = "yes"
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), appenv.PAR) {
		t.Errorf("bad %s: %v", appenv.PAR, err)
	}
	delete(env, appenv.PAR)
	env[appenv.Profile] = "fapi1"
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), appenv.Profile) {
		t.Errorf("bad %s: %v", appenv.Profile, err)
	}
	env[appenv.Profile] = "fapi2"
	if cfg, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err != nil || cfg.Profile != rp.FAPI2 {
		t.Errorf("%s=fapi2: %v %q", appenv.Profile, err, cfg.Profile)
	}
	delete(env, appenv.Profile)
	env[appenv.ClientKey] = "/nonexistent/key.pem"
	if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), appenv.ClientKey) {
		t.Errorf("missing key file: %v", err)
	}
}

// lateHandler serves the key's JWKS, and 503 for anything else, until the
// app is set.
type lateHandler struct {
	mu  sync.Mutex
	app http.Handler
	key *rp.ClientKey
}

func (h *lateHandler) set(app http.Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.app = app
}

func (h *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	app := h.app
	h.mu.Unlock()
	if app == nil && r.URL.Path == "/jwks.json" {
		jwks, _ := rp.JWKSHandler(h.key)
		jwks.ServeHTTP(w, r)
		return
	}
	if app == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	app.ServeHTTP(w, r)
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
