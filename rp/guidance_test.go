package rp_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// The library's errors name the likely misconfiguration, in the words of the
// README's troubleshooting section and of `multiapp doctor`.

func TestIssuerMismatchGuidance(t *testing.T) {
	op := oidctest.New(t)
	_, err := rp.Discover(context.Background(), op.Issuer+"/", nil)
	if !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("want ErrConfig, got %v", err)
	}
	for _, want := range []string{"only a trailing slash differs", `use exactly "` + op.Issuer + `" as the issuer`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("issuer mismatch error %q does not say %q", err, want)
		}
	}

	// A token from another environment names the difference too.
	c := newClient(t, op, nil)
	claims := op.IDClaims(clientID, "usr_1", "n")
	claims["iss"] = op.Issuer + "/"
	_, err = c.VerifyIDToken(context.Background(), op.Signer().Sign(claims, nil), "n")
	wantCode(t, err, rp.CodeIssuer)
	if !strings.Contains(err.Error(), "only a trailing slash differs") || !strings.Contains(err.Error(), "same issuer URL") {
		t.Errorf("token issuer error lacks guidance: %v", err)
	}
}

// TestClockSkewGuidance: a token refused for its times beyond the tolerance
// says that this server's clock is off, in which direction and by how much.
func TestClockSkewGuidance(t *testing.T) {
	op := oidctest.New(t)
	now := time.Unix(time.Now().Unix(), 0) // whole seconds, as in tokens
	cases := []struct {
		name string
		// clock is this server's clock relative to the OP's.
		clock time.Duration
		code  rp.Code
		says  []string
	}{
		{"clock 5 minutes behind: iat in the future", -5 * time.Minute, rp.CodeIssuedAt, []string{"in the future", "tolerance 1m0s", "this server's clock is behind the OP's by at least 5m0s", "NTP", "multiapp doctor"}},
		{"clock 10 minutes ahead: expired on arrival", 10 * time.Minute, rp.CodeExpired, []string{"5m0s ago", "if the OP issued it just now, this server's clock is at least 5m0s ahead of the OP's", "NTP"}},
		{"clock 30 seconds behind: within the tolerance", -30 * time.Second, "", nil},
		{"clock 30 seconds ahead: within the tolerance", 30 * time.Second, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, op, func(c *setup) { c.Now = func() time.Time { return now.Add(tc.clock) } })
			claims := op.IDClaims(clientID, "usr_1", "n")
			claims["iat"], claims["exp"] = now.Unix(), now.Add(5*time.Minute).Unix()
			_, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(claims, nil), "n")
			wantCode(t, err, tc.code)
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	t.Run("logout token too old for this clock", func(t *testing.T) {
		c := newClient(t, op, func(c *setup) { c.Now = func() time.Time { return now.Add(10 * time.Minute) } })
		lt := op.Signer().Sign(map[string]any{
			"iss": op.Issuer, "aud": clientID, "iat": now.Unix(), "jti": "j1", "sid": "ses_1",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}, oidctest.Header{"typ": "logout+jwt"})
		_, err := c.VerifyLogoutToken(context.Background(), lt)
		wantCode(t, err, rp.CodeIssuedAt)
		if !strings.Contains(err.Error(), "clock is ahead of the OP's") {
			t.Errorf("no clock guidance: %v", err)
		}
	})
}

// TestOPErrorGuidance: the OP's refusals that mean a misconfiguration come
// back with a Hint naming it.
func TestOPErrorGuidance(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()
	hintOf := func(t *testing.T, err error) string {
		t.Helper()
		var oe *rp.OPError
		if !errors.As(err, &oe) {
			t.Fatalf("want *rp.OPError, got %v", err)
		}
		if !strings.Contains(err.Error(), oe.Hint) {
			t.Fatalf("Error() %q lacks the hint", err)
		}
		return oe.Hint
	}
	says := func(t *testing.T, hint string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(hint, w) {
				t.Errorf("hint %q does not say %q", hint, w)
			}
		}
	}
	callback := func(code, desc string) error {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State, Error: code, ErrorDescription: desc})
		return err
	}
	tokenAnswer := func(status int, body map[string]any) {
		op.SetTokenHook(func(url.Values) (int, any) { return status, body })
	}
	exchange := func() error {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{Code: "c", State: tx.State})
		return err
	}
	defer op.SetTokenHook(nil)

	t.Run("invalid_request about redirect_uri at the authorization endpoint", func(t *testing.T) {
		h := hintOf(t, callback("invalid_request", "redirect_uri did not match any of the client's registered redirect_uris"))
		says(t, h, redirect, clientID, "not registered", "trailing slash", "localhost is not 127.0.0.1", "multiapp doctor")
	})
	t.Run("invalid_redirect_uri code", func(t *testing.T) {
		says(t, hintOf(t, callback("invalid_redirect_uri", "")), "not registered")
	})
	t.Run("invalid_grant about redirect_uri at the token endpoint", func(t *testing.T) {
		tokenAnswer(400, map[string]any{"error": "invalid_grant", "error_description": "Incorrect redirect_uri"})
		err := exchange()
		if errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatal("a code exchange is never a revoked session")
		}
		says(t, hintOf(t, err), "redirect_uri sent with the code", redirect, "same RedirectURL")
	})
	t.Run("invalid_request about redirect_uri at the token endpoint", func(t *testing.T) {
		tokenAnswer(400, map[string]any{"error": "invalid_request", "error_description": "redirect_uri mismatch"})
		says(t, hintOf(t, exchange()), "redirect_uri sent with the code")
	})
	t.Run("invalid_grant on code exchange", func(t *testing.T) {
		tokenAnswer(400, map[string]any{"error": "invalid_grant", "error_description": "grant request is invalid"})
		says(t, hintOf(t, exchange()), "code expired", "already redeemed", "PKCE verifier")
	})
	t.Run("invalid_grant on refresh", func(t *testing.T) {
		tokenAnswer(400, map[string]any{"error": "invalid_grant", "error_description": "grant request is invalid"})
		_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		if !errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want ErrSessionRevoked, got %v", err)
		}
		says(t, hintOf(t, err), "refresh token is expired, revoked", "signed out", "already used", "offline_access")
	})
	t.Run("invalid_client", func(t *testing.T) {
		tokenAnswer(401, map[string]any{"error": "invalid_client", "error_description": "client authentication failed"})
		says(t, hintOf(t, exchange()), clientID, "another environment", rp.AuthClientSecretBasic)
	})
	t.Run("invalid_scope", func(t *testing.T) {
		says(t, hintOf(t, callback("invalid_scope", "")), "offline_access", "Config.Scopes")
	})
	t.Run("login_required has no hint", func(t *testing.T) {
		var oe *rp.OPError
		if err := callback("login_required", ""); !errors.As(err, &oe) || oe.Hint != "" {
			t.Fatalf("got %v", err)
		}
	})
}
