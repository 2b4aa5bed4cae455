package rp

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
)

// TestFAPI2Refuses: the FAPI 2.0 profile refuses, as misconfigured and
// saying why, every configuration that breaks it.
func TestFAPI2Refuses(t *testing.T) {
	rs256DPoP, err := dpop.GenerateSigner("RS256")
	if err != nil {
		t.Fatal(err)
	}
	ec := &ClientKey{Signer: newSigner(t, "P256")}
	op := oidctest.New(t)
	p, err := Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	noPAR := oidctest.New(t)
	noPAR.SetMeta("pushed_authorization_request_endpoint", nil)
	pNoPAR, _ := Discover(context.Background(), noPAR.Issuer, nil)
	rs256 := oidctest.New(t)
	rs256.SetMeta("id_token_signing_alg_values_supported", []string{"RS256"})
	pRS256, _ := Discover(context.Background(), rs256.Issuer, nil)
	for _, tc := range []struct {
		name string
		p    *Provider
		cfg  Config
		want string
	}{
		{"client secret", p, Config{ClientSecret: "s"}, "no client secret"},
		{"secret method", p, Config{AuthMethod: AuthClientSecretPost, ClientSecret: "s"}, "no client secret"},
		{"public client", p, Config{AuthMethod: AuthNone}, "confidential clients"},
		{"no key", p, Config{}, "requires private_key_jwt"},
		{"RS256 assertions", p, Config{Key: &ClientKey{Signer: newSigner(t, "RSA"), Alg: "RS256"}}, "does not fit"},
		{"P-384 key", p, Config{Key: &ClientKey{Signer: newSigner(t, "P384")}}, "P-256"},
		{"OP without PAR", pNoPAR, Config{Key: ec}, "pushed_authorization_request_endpoint"},
		{"OP signing RS256 only", pRS256, Config{Key: ec}, "PS256 or ES256"},
		{"unknown profile", p, Config{Key: ec, Profile: "fapi1"}, "not known"},
		{"RS256 DPoP key", p, Config{Key: ec, DPoP: rs256DPoP}, "DPoP keys for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ClientID, tc.cfg.RedirectURL = "web", "http://localhost:8080/cb"
			if tc.cfg.Profile == "" {
				tc.cfg.Profile = FAPI2
			}
			_, err := tc.p.Client(tc.cfg)
			if ClassOf(err) != ClassMisconfigured || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a misconfiguration saying %q, got %v", tc.want, err)
			}
		})
	}
}

// TestFAPI2Login: a FAPI 2.0 client pushes its request without being told,
// signs PS256 with an RSA key, and refuses an authorization response
// without iss (the OP does not advertise it: the profile requires it) and
// an ID token signed RS256.
func TestFAPI2Login(t *testing.T) {
	key := &ClientKey{Signer: newSigner(t, "RSA")}
	op := oidctest.New(t)
	rsaKey, ecKey := oidctest.NewKey("rsa", "RS256"), oidctest.NewKey("ec", "ES256")
	op.SetKeys(ecKey, rsaKey)
	op.AddClient(oidctest.Client{ID: "web", JWKS: mustJWKS(t, key)})
	op.EnableDPoP()
	proofKey, err := dpop.GenerateSigner("ES256")
	if err != nil {
		t.Fatal(err)
	}
	c := parClient(t, op, Config{Key: key, Profile: FAPI2, DPoP: proofKey})
	if a := c.ClientAuth(); a.Method != AuthPrivateKeyJWT || !strings.Contains(a.Why, "PS256") {
		t.Fatalf("ClientAuth %+v", a)
	}
	ctx := context.Background()
	login := func(iss string) (*pkce.Transaction, *AuthResponse) {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		raw, err := c.AuthCodeURL(ctx, tx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if u, _ := url.Parse(raw); u.Query().Get("request_uri") == "" {
			t.Fatalf("not pushed: %s", raw)
		}
		op.AddGrant("code-"+tx.State, oidctest.Grant{Claims: op.IDClaims("web", "usr_1", tx.Nonce), Challenge: tx.Challenge(), RefreshToken: "rt-" + tx.State})
		return tx, &AuthResponse{Code: "code-" + tx.State, State: tx.State, Iss: iss}
	}
	tx, resp := login("")
	var ve *ValidationError
	if _, err := c.Exchange(ctx, tx, resp); !errors.As(err, &ve) || ve.Code != CodeResponseIss || !strings.Contains(err.Error(), "fapi2") {
		t.Fatalf("no iss: %v", err)
	}
	if n := op.TokenRequests.Load(); n != 0 {
		t.Fatalf("the code was sent to the OP (%d token requests)", n)
	}
	tx, resp = login(op.Issuer)
	tokens, err := c.Exchange(ctx, tx, resp)
	if err != nil {
		t.Fatal(err)
	}
	if tokens.TokenType != "DPoP" || op.DPoPBinding(tokens.AccessToken) != proofKey.Thumbprint() {
		t.Fatalf("FAPI 2.0 tokens not bound to the DPoP key: %s, bound to %q", tokens.TokenType, op.DPoPBinding(tokens.AccessToken))
	}
	op.AddGrant(tokens.RefreshToken, oidctest.Grant{Claims: op.IDClaims("web", "usr_1", ""), RefreshToken: "rt-next"})
	if _, err := c.Refresh(ctx, tokens); err != nil {
		t.Fatalf("refresh: %v", err)
	}

	// Without a DPoP key (none in Config, none for the request), a FAPI
	// 2.0 client sends no token request: its tokens would be bearer tokens.
	bare := parClient(t, op, Config{Key: key, Profile: FAPI2})
	sent := op.TokenRequests.Load()
	tx, resp = login(op.Issuer)
	if _, err := bare.Exchange(ctx, tx, resp); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DPoP") {
		t.Fatalf("FAPI 2.0 without DPoP: %v", err)
	}
	if op.TokenRequests.Load() != sent {
		t.Fatal("the code was sent without a DPoP proof")
	}
	if _, err := bare.Exchange(WithDPoPKey(ctx, proofKey), tx, resp); err != nil {
		t.Fatalf("FAPI 2.0 with a key for the request (a web session's): %v", err)
	}

	op.SetKeys(rsaKey, ecKey) // the OP now signs RS256, which it advertises
	tx, resp = login(op.Issuer)
	if _, err := c.Exchange(ctx, tx, resp); !errors.As(err, &ve) || ve.Code != CodeAlgorithm {
		t.Fatalf("RS256 ID token under FAPI 2.0: %v", err)
	}
}
