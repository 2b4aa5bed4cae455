package rp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
)

func newSigner(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch kind {
	case "RSA":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA1024":
		s, err = rsa.GenerateKey(rand.Reader, 1024)
	case "P256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || s == nil {
		t.Fatalf("key %s: %v", kind, err)
	}
	return s
}

func mustJWKS(t testing.TB, keys ...*ClientKey) []byte {
	t.Helper()
	b, err := JWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyOP is a test OP with a private_key_jwt client "web" registered with
// key's public half.
func keyOP(t *testing.T, key *ClientKey, opts *ProviderOptions) (*oidctest.OP, *Client) {
	t.Helper()
	op := oidctest.New(t)
	op.SetMeta("introspection_endpoint", op.Issuer+"/oauth/introspect")
	op.AddClient(oidctest.Client{ID: "web", AuthMethod: AuthPrivateKeyJWT, JWKS: mustJWKS(t, key)})
	p, err := Discover(context.Background(), op.Issuer, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client(Config{ClientID: "web", Key: key, RedirectURL: "http://localhost:8080/cb"})
	if err != nil {
		t.Fatal(err)
	}
	return op, c
}

// TestPrivateKeyJWT: every request that authenticates the client (code
// exchange, refresh, revocation, introspection) carries a fresh assertion
// the strict fake OP accepts (it refuses a jti it has seen), with each kind
// of key; ClientAuth says private_key_jwt and which alg and kid.
func TestPrivateKeyJWT(t *testing.T) {
	for _, tc := range []struct{ kind, alg string }{
		{"RSA", "PS256"}, {"P256", "ES256"}, {"Ed25519", "EdDSA"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			key := &ClientKey{Signer: newSigner(t, tc.kind), KeyID: "k-" + tc.kind}
			op, c := keyOP(t, key, nil)
			a := c.ClientAuth()
			if a.Method != AuthPrivateKeyJWT || a.Source != AuthFromConfig || !strings.Contains(a.Why, tc.alg) || !strings.Contains(a.Why, key.KeyID) {
				t.Fatalf("ClientAuth %+v", a)
			}
			ctx := context.Background()
			if err := c.CheckClientAuth(ctx); err != nil {
				t.Fatalf("check: %v", err)
			}
			sendEveryClientRequest(t, op, c)
			v, err := c.Provider().AccessTokenVerifier(AccessTokenConfig{Audiences: []string{"api"},
				Introspection: &IntrospectionConfig{ClientID: "web", Key: key}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, "opaque"); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("introspection of an inactive token: %v", err)
			}
			if n := op.IntrospectionRequests.Load(); n != 1 {
				t.Fatalf("%d introspection requests", n)
			}
		})
	}
}

// TestPrivateKeyJWTRefused: the OP refuses assertions signed with a key it
// does not know, and an expired one (this server's clock is behind): the
// check is a *ClientAuthError and an exchange an *OPError, both
// ClassMisconfigured, and both say what to check.
func TestPrivateKeyJWTRefused(t *testing.T) {
	registered := &ClientKey{Signer: newSigner(t, "P256"), KeyID: "k1"}
	for _, tc := range []struct {
		name string
		key  *ClientKey
		now  func() time.Time
	}{
		{"wrong key", &ClientKey{Signer: newSigner(t, "P256"), KeyID: "k1"}, nil},
		{"expired", registered, func() time.Time { return time.Now().Add(-2 * time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := oidctest.New(t)
			op.AddClient(oidctest.Client{ID: "web", JWKS: mustJWKS(t, registered)})
			p, err := Discover(context.Background(), op.Issuer, &ProviderOptions{Now: tc.now})
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Client(Config{ClientID: "web", Key: tc.key, RedirectURL: "http://localhost:8080/cb"})
			if err != nil {
				t.Fatal(err)
			}
			err = c.CheckClientAuth(context.Background())
			var cae *ClientAuthError
			if !errors.As(err, &cae) || ClassOf(err) != ClassMisconfigured || !strings.Contains(err.Error(), "registered for private_key_jwt") {
				t.Fatalf("check: %v", err)
			}
			tx := pkce.NewTransaction(c.Issuer(), "/")
			_, err = c.Exchange(context.Background(), tx, &AuthResponse{Code: "c", State: tx.State})
			var ope *OPError
			if !errors.As(err, &ope) || ope.Code != "invalid_client" || ClassOf(err) != ClassMisconfigured || !strings.Contains(ope.Hint, "Config.Key") {
				t.Fatalf("exchange: %v", err)
			}
		})
	}
}

// TestAssertionForgeries: the fake OP is as strict as node-oidc-provider's
// FAPI 2.0 profile, so a forged or replayed assertion never passes: one
// whose aud is not exactly the issuer, a replayed jti, an expired one, one
// for another client, and one without the assertion type.
func TestAssertionForgeries(t *testing.T) {
	key := &ClientKey{Signer: newSigner(t, "P256"), KeyID: "k1"}
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: "web", JWKS: mustJWKS(t, key)})
	op.AddClient(oidctest.Client{ID: "other", JWKS: mustJWKS(t, &ClientKey{Signer: newSigner(t, "P256")})})
	s, err := key.prepare(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	sign := func(claims map[string]any) string {
		base := map[string]any{"iss": "web", "sub": "web", "aud": op.Issuer, "jti": rand.Text(), "iat": now, "exp": now + 60}
		for k, v := range claims {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		a, err := s.sign(base, "")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	post := func(assertion, typ string) (int, string) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_assertion": {assertion}, "client_assertion_type": {typ}}
		resp, err := http.PostForm(op.Issuer+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	replayed := sign(nil)
	if status, body := post(replayed, assertionType); status != 400 || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("a good assertion: %d %s", status, body)
	}
	for _, tc := range []struct{ name, assertion, typ string }{
		{"aud token endpoint", sign(map[string]any{"aud": op.Issuer + "/oauth/token"}), assertionType},
		{"aud array", sign(map[string]any{"aud": []string{op.Issuer}}), assertionType},
		{"aud elsewhere", sign(map[string]any{"aud": "https://evil.example"}), assertionType},
		{"replayed jti", replayed, assertionType},
		{"expired", sign(map[string]any{"iat": now - 120, "exp": now - 60}), assertionType},
		{"no exp", sign(map[string]any{"exp": nil}), assertionType},
		{"no jti", sign(map[string]any{"jti": nil}), assertionType},
		{"iss other", sign(map[string]any{"iss": "other"}), assertionType},
		{"another client's name", sign(map[string]any{"iss": "other", "sub": "other"}), assertionType},
		{"wrong type", sign(nil), "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := post(tc.assertion, tc.typ); status != 401 || !strings.Contains(body, "invalid_client") {
				t.Fatalf("accepted: %d %s", status, body)
			}
		})
	}
}

// TestClientKeyAlg: the algorithm follows the key and the OP's list.
func TestClientKeyAlg(t *testing.T) {
	rsaKey, ec, ed := newSigner(t, "RSA"), newSigner(t, "P256"), newSigner(t, "Ed25519")
	for _, tc := range []struct {
		name     string
		key      *ClientKey
		allowed  []string
		listed   []string
		want     string
		errMatch string
	}{
		{"rsa, OP silent", &ClientKey{Signer: rsaKey}, nil, nil, "RS256", ""},
		{"rsa, OP lists PS256", &ClientKey{Signer: rsaKey}, nil, []string{"RS256", "PS256"}, "PS256", ""},
		{"rsa, OP lists RS256", &ClientKey{Signer: rsaKey}, nil, []string{"RS256", "ES256"}, "RS256", ""},
		{"rsa, FAPI", &ClientKey{Signer: rsaKey}, fapiAlgs, nil, "PS256", ""},
		{"rsa RS256 under FAPI", &ClientKey{Signer: rsaKey, Alg: "RS256"}, fapiAlgs, nil, "", "does not fit"},
		{"rsa configured RS256", &ClientKey{Signer: rsaKey, Alg: "RS256"}, nil, []string{"PS256", "RS256"}, "RS256", ""},
		{"ec", &ClientKey{Signer: ec}, nil, nil, "ES256", ""},
		{"ec, OP lists RSA only", &ClientKey{Signer: ec}, nil, []string{"RS256"}, "", "use another key"},
		{"ed25519 named Ed25519 by the OP", &ClientKey{Signer: ed}, nil, []string{"Ed25519"}, "EdDSA", ""},
		{"alg does not fit", &ClientKey{Signer: ec, Alg: "RS256"}, nil, nil, "", "does not fit"},
		{"small rsa", &ClientKey{Signer: newSigner(t, "RSA1024")}, nil, nil, "", "2048"},
		{"P-384", &ClientKey{Signer: newSigner(t, "P384")}, nil, nil, "", "P-256"},
		{"no signer", &ClientKey{}, nil, nil, "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.key.prepare(tc.allowed, tc.listed)
			switch {
			case tc.errMatch != "":
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("want error with %q, got %v", tc.errMatch, err)
				}
			case err != nil:
				t.Fatal(err)
			case s.alg != tc.want:
				t.Fatalf("alg %s, want %s", s.alg, tc.want)
			case s.kid == "":
				t.Fatal("no kid")
			}
		})
	}
}

// TestLoadClientKey: PEM (PKCS #8, PKCS #1, SEC 1), a private JWK and a
// file load; a public JWK, a certificate and garbage are refused with a
// message that holds no key material.
func TestLoadClientKey(t *testing.T) {
	rsaKey := newSigner(t, "RSA").(*rsa.PrivateKey)
	ec := newSigner(t, "P256").(*ecdsa.PrivateKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	priv, _ := jwk.FromRaw(ec)
	_ = priv.Set(jwk.KeyIDKey, "from-jwk")
	_ = priv.Set(jwk.AlgorithmKey, "ES256")
	privJSON, _ := json.Marshal(priv)
	pub, _ := jwk.FromRaw(ec.Public())
	pubJSON, _ := json.Marshal(pub)
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte(pemOf("PRIVATE KEY", pkcs8)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, kid, errMatch string
	}{
		{"pkcs8", pemOf("PRIVATE KEY", pkcs8), "", ""},
		{"pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "", ""},
		{"sec1", "\n  " + pemOf("EC PRIVATE KEY", sec1), "", ""},
		{"jwk", string(privJSON), "from-jwk", ""},
		{"file", path, "", ""},
		{"public jwk", string(pubJSON), "", "public key"},
		{"certificate", pemOf("CERTIFICATE", []byte("x")), "", "CERTIFICATE"},
		{"broken pem", pemOf("PRIVATE KEY", []byte("not der")), "", "does not parse"},
		{"missing file", filepath.Join(t.TempDir(), "nope"), "", "readable file"},
		{"DER without PEM armour", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", "", "readable file"},
		{"empty", " ", "", "no client key"},
		{"jwk with a short secret", `{"kty":"hunter2!pw"}`, "", "not a valid private JWK"},
		{"jwk with a bad curve", `{"kty":"EC","crv":"s3cr3t-pass","d":"x"}`, "", "not a valid private JWK"},
		{"device", "/dev/zero", "", "not a regular file"},
		{"named pipe", fifo(t), "", "not a regular file"},
		{"directory", t.TempDir(), "", "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadClientKey(tc.value)
			if tc.errMatch != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("want error with %q, got %v", tc.errMatch, err)
				}
				if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t") || (len(tc.value) > 16 && strings.Contains(err.Error(), strings.TrimSpace(tc.value))) {
					t.Fatalf("error carries key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.KeyID != tc.kid {
				t.Fatalf("kid %q, want %q", k.KeyID, tc.kid)
			}
			if _, err := k.prepare(nil, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestJWKSHandler: the client's jwks_uri serves the public keys only, with
// kid and use, and alg when the key names one.
func TestJWKSHandler(t *testing.T) {
	a := &ClientKey{Signer: newSigner(t, "RSA"), KeyID: "old", Alg: "PS256"}
	b := &ClientKey{Signer: newSigner(t, "P256")}
	h, err := JWKSHandler(a, b)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("%v %s", err, rec.Body)
	}
	for _, k := range set.Keys {
		if _, private := k["d"]; private || k["kid"] == "" || k["use"] != "sig" {
			t.Fatalf("published key %v", k)
		}
	}
	if set.Keys[0]["kid"] != "old" || set.Keys[0]["alg"] != "PS256" || set.Keys[1]["alg"] != nil {
		t.Fatalf("keys %v", set.Keys)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/jwks.json", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
	if _, err := JWKSHandler(&ClientKey{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty key: %v", err)
	}
}

// TestKeyConfigErrors: a key and a secret, or a key with a secret method,
// are refused; the OP not listing private_key_jwt is refused.
func TestKeyConfigErrors(t *testing.T) {
	key := &ClientKey{Signer: newSigner(t, "P256")}
	op := oidctest.New(t)
	p, err := Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"key and secret", Config{ClientID: "web", Key: key, ClientSecret: "s"}, "both Key and ClientSecret"},
		{"key with basic", Config{ClientID: "web", Key: key, AuthMethod: AuthClientSecretBasic}, "ClientSecret is empty"},
		{"key with none", Config{ClientID: "web", Key: key, AuthMethod: AuthNone}, "a key authenticates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Client(tc.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
	op.SetMeta("token_endpoint_auth_methods_supported", []string{"client_secret_basic"})
	p, err = Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(Config{ClientID: "web", Key: key}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "private_key_jwt") {
		t.Fatalf("OP without private_key_jwt: %v", err)
	}
}

// fifo makes a named pipe: opening one for reading blocks until a writer
// comes, so LoadClientKey must not open it.
func fifo(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	return p
}
