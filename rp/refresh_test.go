package rp_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func loggedIn(t *testing.T, op *oidctest.OP, c *rp.Client) *rp.Tokens {
	t.Helper()
	tx, resp := login(op, c, "login-"+t.Name(), nil)
	tokens, err := c.Exchange(context.Background(), tx, resp)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestRefresh(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()

	t.Run("rotation and new ID token", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		claims := op.IDClaims(clientID, "usr_1", "")
		op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims, RefreshToken: "rt-2"})
		next, err := c.Refresh(ctx, prev)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken != "rt-2" || next.AccessToken == prev.AccessToken || next.IDToken == prev.IDToken {
			t.Fatalf("not rotated: %+v", next)
		}
	})
	t.Run("keeps refresh token and ID token when not returned", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		op.AddGrant(prev.RefreshToken, oidctest.Grant{NoIDToken: true})
		next, err := c.Refresh(ctx, prev)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken != prev.RefreshToken || next.IDToken != prev.IDToken || next.Claims.Subject != "usr_1" {
			t.Fatalf("previous tokens not kept: %+v", next)
		}
	})
	t.Run("previous claims recovered from the ID token", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		prev.Claims = nil
		claims := op.IDClaims(clientID, "usr_other", "")
		op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims})
		_, err := c.Refresh(ctx, prev)
		wantCode(t, err, rp.CodeSubject)
	})
	for name, mut := range map[string]func(map[string]any){
		"sub changed": func(m map[string]any) { m["sub"] = "usr_2" },
		"aud changed": func(m map[string]any) { m["aud"] = []string{clientID, "x"}; m["azp"] = clientID },
		"iss changed": func(m map[string]any) { m["iss"] = "https://evil" },
		"wrong nonce": func(m map[string]any) { m["nonce"] = "x" },
	} {
		t.Run(name, func(t *testing.T) {
			prev := loggedIn(t, op, c)
			claims := op.IDClaims(clientID, "usr_1", "")
			mut(claims)
			op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims})
			if _, err := c.Refresh(ctx, prev); !errors.Is(err, rp.ErrInvalidToken) {
				t.Fatalf("want ErrInvalidToken, got %v", err)
			}
		})
	}
	t.Run("invalid_grant is ErrSessionRevoked", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "unknown", Claims: prev.Claims})
		if !errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrTemporary) {
			t.Fatalf("want ErrSessionRevoked, got %v", err)
		}
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			t.Fatalf("OPError not reachable: %v", err)
		}
	})
	t.Run("invalid_client is neither revoked nor temporary", func(t *testing.T) {
		op.SetTokenHook(func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} })
		defer op.SetTokenHook(nil)
		_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		var oe *rp.OPError
		if !errors.As(err, &oe) || errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrTemporary) || oe.Hint == "" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		if _, err := c.Refresh(ctx, &rp.Tokens{}); err == nil {
			t.Fatal("refresh without a refresh token succeeded")
		}
	})
	t.Run("OP down is temporary", func(t *testing.T) {
		op2 := oidctest.New(t)
		c2 := newClient(t, op2, nil)
		op2.Server.Close()
		_, err := c2.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want ErrTemporary, got %v", err)
		}
	})
	t.Run("cancelled context is not a revocation", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.Refresh(cctx, &rp.Tokens{RefreshToken: "rt"})
		if errors.Is(err, rp.ErrSessionRevoked) || err == nil {
			t.Fatalf("got %v", err)
		}
	})
}
