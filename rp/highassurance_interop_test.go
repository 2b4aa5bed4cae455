package rp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

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
			tokens := b.SignIn(t, c, "/"+id+"/callback")
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
	tokens := b.SignIn(t, secret, "/secret/callback")
	if tokens.Claims.Subject != "usr_alice" {
		t.Fatalf("claims %+v", tokens.Claims)
	}
	tokens = b.SignIn(t, keyed, "/key/callback")
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

// TestInteropFAPI2 runs the multi-app story with node-oidc-provider's FAPI
// 2.0 profile enabled (features.fapi profile 2.0: PKCE required, assertion
// aud exactly the issuer, ES256 ID tokens) and both clients on rp.FAPI2:
// PAR without configuring it, private_key_jwt with an RSA (PS256) and an
// EC key, iss required, login, SSO, refresh, RP-initiated logout and the
// back-channel logout tokens, then refresh refused as revoked. Access
// tokens are DPoP-bound (each app holds a DPoP key), as the profile requires.
func TestInteropFAPI2(t *testing.T) {
	var (
		mu           sync.Mutex
		logoutTokens = map[string][]string{}
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/backchannel") {
			_ = r.ParseForm()
			mu.Lock()
			logoutTokens[strings.TrimSuffix(r.URL.Path, "/backchannel")] = append(logoutTokens[strings.TrimSuffix(r.URL.Path, "/backchannel")], r.PostForm.Get("logout_token"))
			mu.Unlock()
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys := map[string]*rp.ClientKey{"/a": {Signer: rsaKey}, "/b": {Signer: mustEC(t)}}
	var clients []nodeop.Client
	for path, k := range keys {
		jwks, err := rp.JWKS(k)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, nodeop.Client{ID: "webc" + strings.ReplaceAll(path, "/", "_"), AuthMethod: rp.AuthPrivateKeyJWT, JWKS: jwks,
			RedirectURIs: []string{app.URL + path + "/callback"}, PostLogoutRedirectURIs: []string{app.URL + path + "/bye"},
			BackchannelLogoutURI: app.URL + path + "/backchannel"})
	}
	op := nodeop.Start(t, nodeop.Config{FAPI2: true, Clients: clients, RotateRefreshTokens: true,
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}}})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]*rp.Client{}
	for path, k := range keys {
		proofKey, err := dpop.GenerateSigner("ES256")
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.Client(rp.Config{ClientID: "webc" + strings.ReplaceAll(path, "/", "_"), Key: k, Profile: rp.FAPI2, DPoP: proofKey,
			RedirectURL: app.URL + path + "/callback", PostLogoutRedirectURL: app.URL + path + "/bye"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckClientAuth(ctx); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		apps[path] = c
	}
	b := nodeop.NewBrowser(t, "alice@example.test", "pw")
	tokens := map[string]*rp.Tokens{}
	for _, path := range []string{"/a", "/b"} {
		tokens[path] = b.SignIn(t, apps[path], path+"/callback")
		if tokens[path].Claims.Subject != "usr_alice" {
			t.Fatalf("%s: %+v", path, tokens[path].Claims)
		}
		// Sender-constrained, as FAPI 2.0 requires: bound to the app's
		// DPoP key (the OP's JWT or opaque token says so in cnf).
		if tokens[path].TokenType != "DPoP" {
			t.Fatalf("%s: token_type %q, want DPoP", path, tokens[path].TokenType)
		}
	}
	if b.LoginForms() != 1 {
		t.Fatalf("%d login forms: no SSO", b.LoginForms())
	}
	if n := op.Count(func(e nodeop.Event) bool { return e.Route == "pushed_authorization_request" && e.Status == 201 }); n != 2 {
		t.Fatalf("%d pushed requests", n)
	}
	if hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tokens["/b"].IDToken, ".")[0]); !strings.Contains(string(hdr), `"ES256"`) {
		t.Fatalf("ID token header %s", hdr)
	}
	// The OP's FAPI 2.0 profile is on: an assertion whose aud is the token
	// endpoint (which the OP accepts otherwise) is refused.
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"iss": "webc_b", "sub": "webc_b", "aud": p.Metadata().TokenEndpoint, "jti": rand.Text(), "iat": now, "exp": now + 60})
	assertion, err := jws.Sign(claims, jws.WithKey(jwa.ES256, keys["/b"].Signer))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(p.Metadata().TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {app.URL + "/b/callback"}, "code_verifier": {rand.Text() + rand.Text()},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {string(assertion)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ev, _ := op.WaitFor(time.Second, func(e nodeop.Event) bool { return e.Route == "token" && e.Status == 401 }); resp.StatusCode != 401 || !strings.Contains(ev.Detail, "must equal the issuer identifier") {
		t.Fatalf("assertion with aud = token endpoint under FAPI 2.0: %d %s", resp.StatusCode, body)
	}
	next, err := apps["/a"].Refresh(ctx, tokens["/a"])
	if err != nil || next.TokenType != "DPoP" {
		t.Fatalf("refresh: %v (token_type %q, want DPoP)", err, next.TokenType)
	}
	tokens["/a"] = next

	endURL, err := apps["/a"].EndSessionURL(tokens["/a"].IDToken, "st")
	if err != nil {
		t.Fatal(err)
	}
	final, _, err := b.Navigate(endURL, func(u *url.URL) bool { return u.Path == "/a/bye" })
	if err != nil || final.Path != "/a/bye" {
		t.Fatalf("logout: %v %v", final, err)
	}
	for path, c := range apps {
		mu.Lock()
		lts := logoutTokens[path]
		mu.Unlock()
		if len(lts) != 1 {
			t.Fatalf("%s: %d logout tokens", path, len(lts))
		}
		lt, err := c.VerifyLogoutToken(ctx, lts[0])
		if err != nil || lt.SessionID != tokens[path].Claims.SessionID {
			t.Fatalf("%s: logout token %v", path, err)
		}
		if _, err := c.Refresh(ctx, tokens[path]); !errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("%s: refresh after logout: %v", path, err)
		}
	}
}
