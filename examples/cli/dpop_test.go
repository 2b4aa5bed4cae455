package cli_test

import (
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/internal/nodeop"
)

// With --dpop, the CLI signs in at node-oidc-provider (which supports
// DPoP) with a new key kept in the token file, gets DPoP-bound tokens,
// refreshes them with the same key, and calls the example API with proofs.
func TestDPoPLoginRefreshCall(t *testing.T) {
	const audience = "https://api.example.test"
	op := nodeop.Start(t, nodeop.Config{
		Clients:             []nodeop.Client{{ID: "cli", AuthMethod: "none", ApplicationType: "native", RedirectURIs: []string{"http://127.0.0.1/callback"}}},
		Users:               []nodeop.User{{ID: "usr_alice", Email: "alice@example.com", Password: "pw"}},
		Resource:            &nodeop.Resource{Audience: audience},
		RotateRefreshTokens: true,
		DPoPNonces:          true,
	})
	ctx := context.Background()
	a, err := api.New(ctx, api.Config{Issuer: op.Issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	browser := nodeop.NewBrowser(t, "alice@example.com", "pw")
	tool := cli.New(cli.Config{
		Issuer: op.Issuer, ClientID: "cli", DPoP: true, LoginTimeout: 10 * time.Second,
		TokenFile: filepath.Join(t.TempDir(), "tokens.json"),
		OpenBrowser: func(u string) error {
			// Follow the redirects back to the tool's loopback listener.
			_, _, err := browser.Navigate(u, func(*url.URL) bool { return false })
			return err
		},
	})
	s, err := tool.Login(ctx, cli.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.TokenType != "DPoP" || len(s.DPoPKey) == 0 || s.RefreshToken == "" {
		t.Fatalf("login: token_type %q, key %v, refresh token %v", s.TokenType, len(s.DPoPKey) > 0, s.RefreshToken != "")
	}
	call := func() {
		t.Helper()
		resp, err := tool.Call(ctx, srv.URL+"/api/me")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call: %d %s %v", resp.StatusCode, b, resp.Header)
		}
	}
	call()
	r, err := tool.Refresh(ctx)
	if err != nil || r.TokenType != "DPoP" || r.AccessToken == s.AccessToken || thumbprint(t, r.DPoPKey) != thumbprint(t, s.DPoPKey) {
		t.Fatalf("refresh: %v, token_type %q, new access token %v, same key %v", err, r.TokenType, r.AccessToken != s.AccessToken,
			thumbprint(t, r.DPoPKey) == thumbprint(t, s.DPoPKey))
	}
	call()
	if err := tool.Logout(ctx, cli.LogoutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func thumbprint(t *testing.T, jwk []byte) string {
	t.Helper()
	k, err := dpop.ParseSigner(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return k.Thumbprint()
}
