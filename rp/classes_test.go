package rp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// assertClass checks that err belongs to class want and to no other: by
// ClassOf, and by errors.Is on every class sentinel.
func assertClass(t *testing.T, err error, want rp.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one of class %v", want)
	}
	if got := rp.ClassOf(err); got != want {
		t.Errorf("ClassOf = %v, want %v (%v)", got, want, err)
	}
	for class, sentinel := range map[rp.Class]error{
		rp.ClassInvalid: rp.ErrInvalidToken, rp.ClassTemporary: rp.ErrTemporary,
		rp.ClassRevoked: rp.ErrSessionRevoked, rp.ClassMisconfigured: rp.ErrConfig,
	} {
		if errors.Is(err, sentinel) != (class == want) {
			t.Errorf("errors.Is(err, %v sentinel) = %v for an error of class %v: %v", class, !(class == want), want, err)
		}
	}
}

// classCase is one error path and the class it must have.
type classCase struct {
	name  string
	class rp.Class
	err   func(t *testing.T) error
}

// TestEveryErrorHasOneClass walks every error path of the package that a
// test can reach and checks that each error belongs to exactly one class.
// The consumers (middleware, backchannel, bearer) decide from the class
// alone: signing a user out on an error that is also temporary, or
// answering 400 to a logout token that could not be checked, were the bugs.
func TestEveryErrorHasOneClass(t *testing.T) {
	ctx := context.Background()
	op := oidctest.New(t)
	c := newClient(t, op, func(c *setup) { c.TrustedAudiences = []string{"api"} })
	// tokenAnswer makes the next token request answer status and body.
	tokenAnswer := func(status int, body any) {
		op.SetTokenHook(func(url.Values) (int, any) { return status, body })
	}
	t.Cleanup(func() { op.SetTokenHook(nil) })
	// refreshAnswered refreshes a fresh login's tokens at a token endpoint
	// that answers status and body.
	refreshAnswered := func(status int, body any) func(t *testing.T) error {
		return func(t *testing.T) error {
			prev := loggedIn(t, op, c)
			tokenAnswer(status, body)
			defer op.SetTokenHook(nil)
			_, err := c.Refresh(ctx, prev)
			return err
		}
	}
	refreshGrant := func(mut func(map[string]any)) func(t *testing.T) error {
		return func(t *testing.T) error {
			prev := loggedIn(t, op, c)
			claims := op.IDClaims(clientID, "usr_1", "")
			mut(claims)
			op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims, RefreshToken: "rt-next"})
			_, err := c.Refresh(ctx, prev)
			return err
		}
	}
	exchange := func(mut func(map[string]any)) func(t *testing.T) error {
		return func(t *testing.T) error {
			tx, resp := login(op, c, "code-"+t.Name(), mut)
			_, err := c.Exchange(ctx, tx, resp)
			return err
		}
	}
	authError := func(code string) func(t *testing.T) error {
		return func(t *testing.T) error {
			tx := pkce.NewTransaction(c.Issuer(), "/")
			_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State, Error: code})
			return err
		}
	}
	newFails := func(s setup) func(t *testing.T) error {
		return func(t *testing.T) error { _, err := s.client(ctx); return err }
	}
	// keysDown is a fresh OP and client whose JWKS endpoint is down before
	// any key was fetched: a token cannot be checked at all.
	keysDown := func(t *testing.T) (*oidctest.OP, *rp.Client) {
		op := oidctest.New(t)
		c := newClient(t, op, nil)
		op.JWKSDown.Store(true)
		return op, c
	}
	bare := oidctest.New(t)
	for _, m := range []string{"end_session_endpoint", "revocation_endpoint", "userinfo_endpoint"} {
		bare.SetMeta(m, nil)
	}
	bareClient := newClient(t, bare, nil)
	down := oidctest.New(t)
	downURL := down.Issuer
	down.Server.Close()

	cases := []classCase{
		// Misconfigured: the app, its registration or its calls must change.
		{"Discover/Client: no issuer", rp.ClassMisconfigured, newFails(setup{Config: rp.Config{ClientID: "c"}})},
		{"Discover/Client: plain http off loopback", rp.ClassMisconfigured, newFails(setup{Issuer: "http://op.example.com", Config: rp.Config{ClientID: "c"}})},
		{"Discover/Client: no client id", rp.ClassMisconfigured, newFails(setup{Issuer: op.Issuer})},
		{"Discover/Client: relative redirect", rp.ClassMisconfigured, newFails(setup{Issuer: op.Issuer, Config: rp.Config{ClientID: "c", RedirectURL: "/cb"}})},
		{"Discover/Client: none with a secret", rp.ClassMisconfigured, newFails(setup{Issuer: op.Issuer, Config: rp.Config{ClientID: "c", ClientSecret: "s", AuthMethod: rp.AuthNone}})},
		{"Discover/Client: HMAC alg", rp.ClassMisconfigured, newFails(setup{Issuer: op.Issuer, ProviderOptions: rp.ProviderOptions{SigningAlgs: []string{"HS256"}}, Config: rp.Config{ClientID: "c"}})},
		{"Discover/Client: issuer mismatch", rp.ClassMisconfigured, newFails(setup{Issuer: op.Issuer + "/", Config: rp.Config{ClientID: "c"}})},
		{"Discover/Client: no discovery document", rp.ClassMisconfigured, func(t *testing.T) error {
			_, err := rp.Discover(ctx, newServer(t, http.NotFoundHandler()), nil)
			return err
		}},
		{"AuthCodeURL: no transaction", rp.ClassMisconfigured, func(t *testing.T) error { _, err := c.AuthCodeURL(context.Background(), nil, nil); return err }},
		{"AuthCodeURL: another issuer's transaction", rp.ClassMisconfigured, func(t *testing.T) error {
			_, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction("https://other", "/"), nil)
			return err
		}},
		{"AuthCodeURL: reserved parameter", rp.ClassMisconfigured, func(t *testing.T) error {
			_, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction(c.Issuer(), "/"), url.Values{"state": {"x"}})
			return err
		}},
		{"AuthCodeURL: max_age not a number", rp.ClassMisconfigured, func(t *testing.T) error {
			_, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction(c.Issuer(), "/"), url.Values{"max_age": {"soon"}})
			return err
		}},
		{"Refresh: no refresh token", rp.ClassMisconfigured, func(t *testing.T) error { _, err := c.Refresh(ctx, &rp.Tokens{}); return err }},
		{"Refresh: invalid_client", rp.ClassMisconfigured, refreshAnswered(401, map[string]any{"error": "invalid_client"})},
		{"Refresh: unauthorized_client", rp.ClassMisconfigured, refreshAnswered(400, map[string]any{"error": "unauthorized_client"})},
		{"Exchange: invalid_client", rp.ClassMisconfigured, func(t *testing.T) error {
			tokenAnswer(401, map[string]any{"error": "invalid_client"})
			defer op.SetTokenHook(nil)
			return exchange(nil)(t)
		}},
		{"callback: invalid_request", rp.ClassMisconfigured, authError("invalid_request")},
		{"callback: invalid_scope", rp.ClassMisconfigured, authError("invalid_scope")},
		{"EndSessionURL: not offered", rp.ClassMisconfigured, func(t *testing.T) error { _, err := bareClient.EndSessionURL("", ""); return err }},
		{"Revoke: not offered", rp.ClassMisconfigured, func(t *testing.T) error { return bareClient.Revoke(ctx, "t", "") }},
		{"UserInfo: not offered", rp.ClassMisconfigured, func(t *testing.T) error { _, err := bareClient.UserInfo(ctx, "t", "s"); return err }},
		{"AccessTokenVerifier: no audience", rp.ClassMisconfigured, func(t *testing.T) error {
			_, err := c.Provider().AccessTokenVerifier(rp.AccessTokenConfig{})
			return err
		}},
		{"Claims.Decode without payload", rp.ClassMisconfigured, func(t *testing.T) error { return (&rp.Claims{}).Decode(&struct{}{}) }},

		// Invalid: refuse the input.
		{"ParseAuthResponse: duplicate", rp.ClassInvalid, func(t *testing.T) error { _, err := rp.ParseAuthResponse("code=a&code=b"); return err }},
		{"ParseAuthResponse: malformed", rp.ClassInvalid, func(t *testing.T) error { _, err := rp.ParseAuthResponse("code=%zz"); return err }},
		{"Exchange: wrong state", rp.ClassInvalid, func(t *testing.T) error {
			_, err := c.Exchange(ctx, pkce.NewTransaction(c.Issuer(), "/"), &rp.AuthResponse{Code: "x", State: "forged"})
			return err
		}},
		{"Exchange: no code", rp.ClassInvalid, func(t *testing.T) error {
			tx := pkce.NewTransaction(c.Issuer(), "/")
			_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State})
			return err
		}},
		{"callback: access_denied", rp.ClassInvalid, authError("access_denied")},
		{"callback: login_required", rp.ClassInvalid, authError("login_required")},
		{"Exchange: code refused (invalid_grant)", rp.ClassInvalid, func(t *testing.T) error {
			tx := pkce.NewTransaction(c.Issuer(), "/")
			_, err := c.Exchange(ctx, tx, &rp.AuthResponse{Code: "unknown", State: tx.State})
			return err
		}},
		{"Exchange: wrong nonce", rp.ClassInvalid, exchange(func(m map[string]any) { m["nonce"] = "other" })},
		{"Exchange: expired ID token", rp.ClassInvalid, exchange(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() })},
		{"Exchange: another audience", rp.ClassInvalid, exchange(func(m map[string]any) { m["aud"] = "webc_other" })},
		{"Exchange: at_hash", rp.ClassInvalid, exchange(func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" })},
		{"Refresh: refreshed ID token from another issuer", rp.ClassInvalid, refreshGrant(func(m map[string]any) { m["iss"] = "https://evil" })},
		{"Refresh: refreshed ID token with a wrong nonce", rp.ClassInvalid, refreshGrant(func(m map[string]any) { m["nonce"] = "other" })},
		{"VerifyIDToken: no nonce given", rp.ClassInvalid, func(t *testing.T) error { _, err := c.VerifyIDToken(ctx, "x.y.z", ""); return err }},
		{"VerifyIDToken: alg none", rp.ClassInvalid, func(t *testing.T) error {
			_, err := c.VerifyIDToken(ctx, oidctest.Unsigned(op.IDClaims(clientID, "u", "n")), "n")
			return err
		}},
		{"VerifyLogoutToken: garbage", rp.ClassInvalid, func(t *testing.T) error { _, err := c.VerifyLogoutToken(ctx, "garbage"); return err }},
		{"VerifyLogoutToken: an ID token", rp.ClassInvalid, func(t *testing.T) error {
			_, err := c.VerifyLogoutToken(ctx, op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil))
			return err
		}},
		{"KeySet.VerifySignature: bad signature", rp.ClassInvalid, func(t *testing.T) error {
			_, err := c.Provider().KeySet().VerifySignature(ctx, tamper(op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil)))
			return err
		}},
		{"DecodeUnverified: garbage", rp.ClassInvalid, func(t *testing.T) error { _, _, err := rp.DecodeUnverified("x"); return err }},
		{"ParseClaims: not an object", rp.ClassInvalid, func(t *testing.T) error { _, err := rp.ParseClaims([]byte("[1]")); return err }},

		// Temporary: keep everything, retry later.
		{"Discover/Client: OP unreachable", rp.ClassTemporary, newFails(setup{Issuer: downURL, Config: rp.Config{ClientID: "c"}})},
		{"Refresh: 503", rp.ClassTemporary, refreshAnswered(503, "<html>maintenance</html>")},
		{"Refresh: 429", rp.ClassTemporary, refreshAnswered(429, map[string]any{"error": "slow_down"})},
		{"Refresh: temporarily_unavailable", rp.ClassTemporary, refreshAnswered(400, map[string]any{"error": "temporarily_unavailable"})},
		{"Refresh: 200 with a body that is not JSON", rp.ClassTemporary, refreshAnswered(200, "<html>login</html>")},
		{"Refresh: 400 with a body that is not JSON", rp.ClassTemporary, refreshAnswered(400, "<html>oops</html>")},
		{"Refresh: OP unreachable", rp.ClassTemporary, func(t *testing.T) error {
			op2 := oidctest.New(t)
			c2 := newClient(t, op2, nil)
			op2.Server.Close()
			_, err := c2.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
			return err
		}},
		{"Refresh: cancelled", rp.ClassTemporary, func(t *testing.T) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := c.Refresh(cctx, &rp.Tokens{RefreshToken: "rt"})
			return err
		}},
		{"Exchange: OP's keys unreachable", rp.ClassTemporary, func(t *testing.T) error {
			op, c := keysDown(t)
			tx := pkce.NewTransaction(c.Issuer(), "/")
			op.AddGrant("k", oidctest.Grant{Claims: op.IDClaims(clientID, "usr_1", tx.Nonce), Challenge: tx.Challenge()})
			_, err := c.Exchange(ctx, tx, &rp.AuthResponse{Code: "k", State: tx.State})
			return err
		}},
		{"Refresh: refreshed ID token while the OP's keys are unreachable", rp.ClassTemporary, func(t *testing.T) error {
			op, c := keysDown(t)
			op.AddGrant("rt", oidctest.Grant{Claims: op.IDClaims(clientID, "usr_1", ""), RefreshToken: "rt-2"})
			_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
			return err
		}},
		{"VerifyLogoutToken: OP's keys unreachable", rp.ClassTemporary, func(t *testing.T) error {
			op, c := keysDown(t)
			now := time.Now().Unix()
			_, err := c.VerifyLogoutToken(ctx, op.Signer().Sign(map[string]any{
				"iss": op.Issuer, "aud": clientID, "iat": now, "jti": "j", "sid": "s",
				"events": map[string]any{backchannelEvent: map[string]any{}},
			}, oidctest.Header{"typ": "logout+jwt"}))
			return err
		}},
		{"AccessTokenVerifier: OP's keys unreachable", rp.ClassTemporary, func(t *testing.T) error {
			op, c := keysDown(t)
			v, err := c.Provider().AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().Unix()
			_, err = v.Verify(ctx, op.Signer().Sign(map[string]any{"iss": op.Issuer, "aud": "api", "sub": "u", "iat": now, "exp": now + 60}, nil))
			return err
		}},
		{"AccessTokenVerifier: revocation store down", rp.ClassTemporary, func(t *testing.T) error { return rp.ErrRevocationUnavailable }},

		// Revoked: the shared session is over.
		{"Refresh: invalid_grant", rp.ClassRevoked, func(t *testing.T) error {
			_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "unknown"})
			return err
		}},
		{"Refresh: refreshed ID token of another subject", rp.ClassRevoked, refreshGrant(func(m map[string]any) { m["sub"] = "usr_2" })},
		{"Refresh: refreshed ID token with another audience", rp.ClassRevoked, refreshGrant(func(m map[string]any) { m["aud"] = []string{clientID, "api"} })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assertClass(t, tc.err(t), tc.class) })
	}
}
