package doctor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
)

// TestInteropClientKey runs the doctor against node-oidc-provider for a
// private_key_jwt client: the key loads from MULTIAPP_CLIENT_KEY (PEM text
// or a file), the OP offers the method, and the OP accepts the assertion
// while refusing the control's; a key the OP does not hold, or one that
// does not load, fails with a fix that says what to register or set.
func TestInteropClientKey(t *testing.T) {
	newPEM := func() string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	keyPEM := newPEM()
	key, err := rp.LoadClientKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := rp.JWKS(key)
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://localhost:8081/auth/callback"
	op := nodeop.Start(t, nodeop.Config{Clients: []nodeop.Client{
		{ID: "webc_key", AuthMethod: rp.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{redirect}},
	}})
	app := App{Name: "web", Issuer: op.Issuer, ClientID: "webc_key", RedirectURL: redirect, ClientKey: keyPEM}

	t.Run("registered key", func(t *testing.T) {
		r := diagnose(t, Options{}, app)
		noFailures(t, r)
		want(t, r, "web", "config", OK, "private_key_jwt")
		want(t, r, "web", "client_key", OK, "loads", "offers private_key_jwt")
		want(t, r, "web", "library", OK, "private_key_jwt", "ES256")
		want(t, r, "web", "auth_method", OK, "private_key_jwt, chosen with a client key (MULTIAPP_CLIENT_KEY)")
		want(t, r, "web", "client_auth", OK, "accepts the private_key_jwt assertions", "made-up key got invalid_client")
	})
	t.Run("key file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "client.pem")
		if err := os.WriteFile(path, []byte(keyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		a := app
		a.ClientKey = path
		want(t, diagnose(t, Options{}, a), "web", "client_auth", OK)
	})
	t.Run("key the OP does not hold", func(t *testing.T) {
		a := app
		a.ClientKey = newPEM()
		r := diagnose(t, Options{}, a)
		c := want(t, r, "web", "client_auth", Fail, "refuses the private_key_jwt assertion", `"keys"`, "register client webc_key")
		if strings.Contains(c.Message+c.Fix, "PRIVATE KEY") || strings.Contains(c.Message+c.Fix, `"d"`) {
			t.Fatalf("the private key shows: %s", c.Fix)
		}
	})
	t.Run("FAPI 2.0 profile", func(t *testing.T) {
		a := app
		a.Profile = rp.FAPI2
		// This OP signs RS256 only, which FAPI 2.0 forbids.
		want(t, diagnose(t, Options{}, a), "web", "library", Fail, "PS256 or ES256")
		fapi := nodeop.Start(t, nodeop.Config{FAPI2: true, Clients: []nodeop.Client{
			{ID: "webc_key", AuthMethod: rp.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{redirect}},
		}})
		a.Issuer = fapi.Issuer
		r := diagnose(t, Options{}, a)
		noFailures(t, r)
		want(t, r, "web", "authorize", OK, "login_required")
		want(t, r, "web", "client_auth", OK)
		a.ClientKey, a.ClientSecret = "", "s3cret"
		want(t, diagnose(t, Options{}, a), "web", "library", Fail, "no client secret")
	})
	t.Run("key does not load", func(t *testing.T) {
		a := app
		a.ClientKey = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
		r := diagnose(t, Options{}, a)
		want(t, r, "web", "client_key", Fail, "does not load", "MULTIAPP_CLIENT_KEY")
		want(t, r, "web", "library", Fail, "Key is empty")
	})
}
