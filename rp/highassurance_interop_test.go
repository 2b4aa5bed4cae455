package rp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// haSignIn runs one login of c through the browser b and returns the
// tokens.
func haSignIn(t *testing.T, b *nodeop.Browser, c *rp.Client, path string) *rp.Tokens {
	t.Helper()
	tx := pkce.NewTransaction(c.Issuer(), "/")
	authURL, err := c.AuthCodeURL(context.Background(), tx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb, _, err := b.Navigate(authURL, func(u *url.URL) bool { return u.Path == path })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rp.ParseAuthResponse(cb.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := c.Exchange(context.Background(), tx, resp)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tokens
}

// TestInteropPrivateKeyJWT: against node-oidc-provider, clients
// registered for private_key_jwt with an RSA (PS256) and an EC (ES256) key
// sign in, refresh (rotating: every request a fresh assertion), introspect
// and revoke; a client whose key the OP does not hold is refused by the
// start-up check, as misconfigured.
func TestInteropPrivateKeyJWT(t *testing.T) {
	app := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(app.Close)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := map[string]*rp.ClientKey{
		"webc_rsa": {Signer: rsaKey, KeyID: "rsa-1"},
		"webc_ec":  {Signer: ecKey},
	}
	var clients []nodeop.Client
	for id, k := range keys {
		jwks, err := rp.JWKS(k)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, nodeop.Client{ID: id, AuthMethod: rp.AuthPrivateKeyJWT, JWKS: jwks,
			RedirectURIs: []string{app.URL + "/" + id + "/callback"}})
	}
	op := nodeop.Start(t, nodeop.Config{Clients: clients, RotateRefreshTokens: true,
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}}})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := nodeop.NewBrowser(t, "alice@example.test", "pw")
	for id, key := range keys {
		t.Run(id, func(t *testing.T) {
			c, err := p.Client(rp.Config{ClientID: id, Key: key, RedirectURL: app.URL + "/" + id + "/callback"})
			if err != nil {
				t.Fatal(err)
			}
			if a := c.ClientAuth(); a.Method != rp.AuthPrivateKeyJWT {
				t.Fatalf("ClientAuth %+v", a)
			}
			if err := c.CheckClientAuth(ctx); err != nil {
				t.Fatalf("check: %v", err)
			}
			tokens := haSignIn(t, b, c, "/"+id+"/callback")
			if tokens.Claims.Subject != "usr_alice" || tokens.RefreshToken == "" {
				t.Fatalf("claims %+v", tokens.Claims)
			}
			next, err := c.Refresh(ctx, tokens)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if next.RefreshToken == tokens.RefreshToken || next.Claims.Subject != "usr_alice" {
				t.Fatal("not rotated")
			}
			v, err := p.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{id},
				Introspection: &rp.IntrospectionConfig{ClientID: id, Key: key, InsecureAllowNoAudience: true}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, next.AccessToken); err != nil {
				t.Fatalf("introspection: %v", err)
			}
			if err := c.Revoke(ctx, next.RefreshToken, "refresh_token"); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if _, err := c.Refresh(ctx, next); !errors.Is(err, rp.ErrSessionRevoked) {
				t.Fatalf("refresh after revocation: %v", err)
			}
		})
	}
	if n := op.Count(func(e nodeop.Event) bool { return e.Status >= 400 && e.Error == "invalid_client" }); n != 0 {
		t.Fatalf("%d requests refused with invalid_client", n)
	}
	t.Run("key the OP does not hold", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c, err := p.Client(rp.Config{ClientID: "webc_ec", Key: &rp.ClientKey{Signer: other}, RedirectURL: app.URL + "/webc_ec/callback"})
		if err != nil {
			t.Fatal(err)
		}
		err = c.CheckClientAuth(ctx)
		var cae *rp.ClientAuthError
		if !errors.As(err, &cae) || rp.ClassOf(err) != rp.ClassMisconfigured {
			t.Fatalf("check with a foreign key: %v", err)
		}
		t.Log(err)
	})
}

// TestInteropPAR: node-oidc-provider requiring pushed authorization
// requests of every client (discovery says
// require_pushed_authorization_requests): a confidential client with a
// secret and one with private_key_jwt sign in through the PAR endpoint
// without any configuration, SSO works across them, and a request that
// skips PAR is refused with a hint that names Config.PAR.
func TestInteropPAR(t *testing.T) {
	app := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(app.Close)
	key := &rp.ClientKey{Signer: mustEC(t)}
	jwks, err := rp.JWKS(key)
	if err != nil {
		t.Fatal(err)
	}
	op := nodeop.Start(t, nodeop.Config{
		RequirePAR: true,
		Clients: []nodeop.Client{
			{ID: "webc_secret", Secret: "s3cret", RedirectURIs: []string{app.URL + "/secret/callback"}},
			{ID: "webc_key", AuthMethod: rp.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{app.URL + "/key/callback"}},
		},
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
	})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Metadata(); !m.RequirePushedAuthorizationRequests || m.PushedAuthorizationRequestEndpoint == "" {
		t.Fatalf("discovery: %+v", m)
	}
	secret, err := p.Client(rp.Config{ClientID: "webc_secret", ClientSecret: "s3cret", RedirectURL: app.URL + "/secret/callback"})
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := p.Client(rp.Config{ClientID: "webc_key", Key: key, RedirectURL: app.URL + "/key/callback"})
	if err != nil {
		t.Fatal(err)
	}
	b := nodeop.NewBrowser(t, "alice@example.test", "pw")
	tokens := haSignIn(t, b, secret, "/secret/callback")
	if tokens.Claims.Subject != "usr_alice" {
		t.Fatalf("claims %+v", tokens.Claims)
	}
	tokens = haSignIn(t, b, keyed, "/key/callback")
	if tokens.Claims.Subject != "usr_alice" || b.LoginForms() != 1 {
		t.Fatalf("second app: claims %+v, %d login forms", tokens.Claims, b.LoginForms())
	}
	if _, err := keyed.Refresh(ctx, tokens); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if n := op.Count(func(e nodeop.Event) bool { return e.Route == "pushed_authorization_request" && e.Status == 201 }); n != 2 {
		t.Fatalf("%d pushed requests", n)
	}

	// A request that skips PAR, as an RP without PAR would send it.
	tx := pkce.NewTransaction(p.Metadata().Issuer, "/")
	q := url.Values{"client_id": {"webc_secret"}, "response_type": {"code"}, "scope": {"openid"}, "state": {tx.State},
		"nonce": {tx.Nonce}, "redirect_uri": {app.URL + "/secret/callback"}, "code_challenge": {tx.Challenge()}, "code_challenge_method": {"S256"}}
	cb, _, err := b.Navigate(p.Metadata().AuthorizationEndpoint+"?"+q.Encode(), func(u *url.URL) bool { return u.Path == "/secret/callback" })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rp.ParseAuthResponse(cb.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	_, err = secret.Exchange(ctx, tx, resp)
	var oe *rp.OPError
	if !errors.As(err, &oe) || oe.Code != "invalid_request" || !strings.Contains(oe.Hint, "Config.PAR") {
		t.Fatalf("a request without PAR: %v", err)
	}

	t.Run("PAR endpoint refuses a redirect URL", func(t *testing.T) {
		c, err := p.Client(rp.Config{ClientID: "webc_secret", ClientSecret: "s3cret", RedirectURL: app.URL + "/elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AuthCodeURL(ctx, pkce.NewTransaction(c.Issuer(), "/"), nil)
		if !errors.As(err, &oe) || oe.Endpoint != "pushed_authorization" || rp.ClassOf(err) != rp.ClassMisconfigured || !strings.Contains(oe.Hint, "not registered") {
			t.Fatalf("%v", err)
		}
	})
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
