package rp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

const (
	clientID = "webc_app"
	secret   = "s3cret"
	redirect = "http://localhost:8080/auth/callback"
)

func newClient(t *testing.T, op *oidctest.OP, mutate func(*setup)) *rp.Client {
	t.Helper()
	s := setup{Issuer: op.Issuer, Config: rp.Config{
		ClientID:              clientID,
		ClientSecret:          secret,
		RedirectURL:           redirect,
		PostLogoutRedirectURL: "http://localhost:8080/",
	}}
	if mutate != nil {
		mutate(&s)
	}
	c, err := s.client(context.Background())
	if err != nil {
		t.Fatalf("rp.Discover/Provider.Client: %v", err)
	}
	return c
}

func wantCode(t *testing.T, err error, code rp.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	var ve *rp.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError %q, got %v", code, err)
	}
	if ve.Code != code {
		t.Fatalf("want code %q, got %q (%v)", code, ve.Code, err)
	}
	if !errors.Is(err, rp.ErrInvalidToken) {
		t.Fatalf("ValidationError does not match ErrInvalidToken")
	}
}

func TestConfigErrors(t *testing.T) {
	op := oidctest.New(t)
	cases := []struct {
		name   string
		mutate func(*setup)
		meta   map[string]any
		want   string
	}{
		{"missing issuer", func(c *setup) { c.Issuer = "" }, nil, "issuer is empty"},
		{"relative issuer", func(c *setup) { c.Issuer = "/op" }, nil, "absolute"},
		{"http issuer outside localhost", func(c *setup) { c.Issuer = "http://op.example.com" }, nil, "plain http outside localhost"},
		{"missing client id", func(c *setup) { c.ClientID = "" }, nil, "ClientID is empty"},
		{"relative redirect", func(c *setup) { c.RedirectURL = "/auth/callback" }, nil, "absolute URL"},
		{"redirect with fragment", func(c *setup) { c.RedirectURL = redirect + "#x" }, nil, "fragment"},
		{"http redirect outside localhost", func(c *setup) { c.RedirectURL = "http://app.example.com/cb" }, nil, "plain http"},
		{"relative post-logout", func(c *setup) { c.PostLogoutRedirectURL = "/" }, nil, "PostLogoutRedirectURL"},
		{"unknown auth method", func(c *setup) { c.AuthMethod = "client_secret_jwt" }, nil, "not supported"},
		{"private_key_jwt without key", func(c *setup) { c.AuthMethod = rp.AuthPrivateKeyJWT }, nil, "Key is empty"},
		{"public with secret", func(c *setup) { c.AuthMethod = rp.AuthNone }, nil, "public client has no secret"},
		{"basic without secret", func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic; c.ClientSecret = "" }, nil, "ClientSecret is empty"},
		{"hmac alg", func(c *setup) { c.SigningAlgs = []string{"HS256"} }, nil, "asymmetric"},
		{"none alg", func(c *setup) { c.SigningAlgs = []string{"none"} }, nil, "asymmetric"},
		{"issuer mismatch", func(c *setup) { c.Issuer = op.Issuer + "/" }, nil, "must be identical"},
		{"public client, OP without S256", func(c *setup) { c.ClientSecret = "" }, map[string]any{"code_challenge_methods_supported": []string{"plain"}}, "without S256"},
		{"confidential client, OP without S256", nil, map[string]any{"code_challenge_methods_supported": []string{"plain"}}, "never sends plain"},
		{"auth method the OP refuses", func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic }, map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_post"}}, "does not accept"},
		{"no discovery", func(c *setup) { c.Issuer = op.Issuer + "/nothing" }, nil, "discovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.meta {
				op.SetMeta(k, v)
			}
			defer func() {
				op.SetMeta("code_challenge_methods_supported", []string{"S256"})
				op.SetMeta("token_endpoint_auth_methods_supported", []string{"client_secret_post", "client_secret_basic", "none"})
			}()
			s := setup{Issuer: op.Issuer, Config: rp.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect}}
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			_, err := s.client(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
			if !errors.Is(err, rp.ErrConfig) {
				t.Fatalf("want ErrConfig, got %v", err)
			}
		})
	}
}

func TestAuthMethodFromDiscovery(t *testing.T) {
	op := oidctest.New(t)
	cases := []struct {
		secret    string
		supported any
		want      string
	}{
		{secret, []string{"client_secret_basic", "client_secret_post"}, rp.AuthClientSecretBasic},
		{secret, []string{"client_secret_post"}, rp.AuthClientSecretPost},
		{secret, []string{"client_secret_basic"}, rp.AuthClientSecretBasic},
		{secret, nil, rp.AuthClientSecretBasic},
		{"", []string{"client_secret_post", "none"}, rp.AuthNone},
	}
	for _, tc := range cases {
		op.SetMeta("token_endpoint_auth_methods_supported", tc.supported)
		c := newClient(t, op, func(c *setup) { c.ClientSecret = tc.secret })
		if got := c.ClientAuth().Method; got != tc.want {
			t.Errorf("secret=%q supported=%v: got %q, want %q", tc.secret, tc.supported, got, tc.want)
		}
	}
}

func TestAuthCodeURL(t *testing.T) {
	op := oidctest.New(t)
	for _, public := range []bool{false, true} {
		c := newClient(t, op, func(c *setup) {
			if public {
				c.ClientSecret = ""
			}
		})
		tx := pkce.NewTransaction(c.Issuer(), "/after")
		raw, err := c.AuthCodeURL(context.Background(), tx, url.Values{"prompt": {"login"}, "login_hint": {"a@b.c"}, "organization_id": {"org_1"}, "connection_id": {"conn_1"}, "max_age": {"60"}})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		q := u.Query()
		if u.Path != "/oauth/authorize" {
			t.Errorf("path %q", u.Path)
		}
		want := map[string]string{
			"response_type": "code", "client_id": clientID, "redirect_uri": redirect,
			"state": tx.State, "nonce": tx.Nonce, "code_challenge": pkce.Challenge(tx.Verifier),
			"code_challenge_method": "S256", "scope": "openid profile email offline_access",
			"prompt": "login", "login_hint": "a@b.c", "organization_id": "org_1", "connection_id": "conn_1", "max_age": "60",
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("public=%v %s=%q, want %q", public, k, q.Get(k), v)
			}
		}
		if q.Has("client_secret") || q.Has("code_verifier") {
			t.Error("secret or verifier leaked into the authorization URL")
		}
	}
	c := newClient(t, op, nil)
	tx := pkce.NewTransaction(c.Issuer(), "/")
	for _, k := range []string{"state", "nonce", "code_challenge", "code_challenge_method", "client_id", "redirect_uri", "response_type"} {
		if _, err := c.AuthCodeURL(context.Background(), tx, url.Values{k: {"x"}}); err == nil {
			t.Errorf("overriding %s was accepted", k)
		}
	}
	if _, err := c.AuthCodeURL(context.Background(), &pkce.Transaction{State: "s", Nonce: "n", Verifier: "short", Issuer: c.Issuer()}, nil); err == nil {
		t.Error("a transaction with an invalid verifier was accepted")
	}
	other := pkce.NewTransaction("https://other.example.com", "/")
	if _, err := c.AuthCodeURL(context.Background(), other, nil); err == nil {
		t.Error("a transaction of another issuer was accepted")
	}
}

func TestEndSessionURL(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	raw, err := c.EndSessionURL("the.id.token", "st")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	if u.Path != "/oidc/logout" || q.Get("id_token_hint") != "the.id.token" || q.Get("client_id") != clientID ||
		q.Get("post_logout_redirect_uri") != "http://localhost:8080/" || q.Get("state") != "st" {
		t.Fatalf("end-session URL %s", raw)
	}
	op.SetMeta("end_session_endpoint", nil)
	c = newClient(t, op, nil)
	if _, err := c.EndSessionURL("x", ""); !errors.Is(err, rp.ErrNotSupported) {
		t.Fatalf("want ErrNotSupported, got %v", err)
	}
}

func TestHTTPClientTimeoutDefault(t *testing.T) {
	// A hung OP must not hang Discover forever: the caller's context bounds it.
	srv := hungServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rp.Discover(ctx, srv, nil)
	if err == nil || !errors.Is(err, rp.ErrTemporary) {
		t.Fatalf("want ErrTemporary, got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("discovery ignored the context deadline")
	}
}

func hungServer(t *testing.T) string {
	done := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done) })
	return srv
}

// TestClientsOfOneProvider: a native app's Client for each login's
// loopback redirect comes from the same Provider, sharing its key set.
func TestClientsOfOneProvider(t *testing.T) {
	op := oidctest.New(t)
	p := discover(t, op.Issuer, nil)
	c, err := p.Client(rp.Config{ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	loop, err := p.Client(rp.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1:53111/callback"})
	if err != nil {
		t.Fatal(err)
	}
	tx := pkce.NewTransaction(c.Issuer(), "/")
	raw, err := loop.AuthCodeURL(context.Background(), tx, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	if u.Query().Get("redirect_uri") != "http://127.0.0.1:53111/callback" || c.RedirectURL() != "" || loop.Provider().KeySet() != c.Provider().KeySet() {
		t.Fatalf("%s", raw)
	}
	if _, err := p.Client(rp.Config{ClientID: clientID, RedirectURL: "/relative"}); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("relative redirect accepted: %v", err)
	}
}

// TestProviderMetadata: the Provider's Metadata holds every field the
// module reads, the endpoints' own client authentication methods
// included, so nothing re-reads the discovery document.
func TestProviderMetadata(t *testing.T) {
	op := oidctest.New(t)
	op.SetMeta("introspection_endpoint", op.Issuer+"/oauth/introspect")
	op.SetMeta("revocation_endpoint_auth_methods_supported", []string{"client_secret_post"})
	op.SetMeta("introspection_endpoint_auth_methods_supported", []string{"client_secret_basic"})
	p := discover(t, op.Issuer, nil)
	m := p.Metadata()
	if m.Issuer != op.Issuer || m.JWKSURI == "" || m.TokenEndpoint == "" || m.IntrospectionEndpoint != op.Issuer+"/oauth/introspect" {
		t.Fatalf("%+v", m)
	}
	if len(m.RevocationEndpointAuthMethods) != 1 || m.RevocationEndpointAuthMethods[0] != "client_secret_post" ||
		len(m.IntrospectionEndpointAuthMethods) != 1 || m.IntrospectionEndpointAuthMethods[0] != "client_secret_basic" {
		t.Fatalf("endpoint auth methods: %v %v", m.RevocationEndpointAuthMethods, m.IntrospectionEndpointAuthMethods)
	}
	// A verifier needs nothing but the issuer and the keys: an OP without a
	// token endpoint still gives one; a Client it refuses.
	op.SetMeta("token_endpoint", nil)
	p = discover(t, op.Issuer, nil)
	if _, err := p.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(rp.Config{ClientID: clientID}); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("a Client without token endpoint: %v", err)
	}
}
