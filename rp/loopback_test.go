package rp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/rp"
)

// TestPlainHTTPOnlyOnLoopback: plain http is tolerated for the issuer and
// the redirect URLs only on this machine. A DNS name that starts with
// "127." resolves wherever its owner points it, so it gets no exemption:
// the config is refused before any request is made.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]rp.Config{
		"issuer":       {Issuer: "http://127.0.0.1.nip.io:9000", ClientID: "c"},
		"issuer 127.x": {Issuer: "http://127.attacker.test", ClientID: "c"},
		"redirect":     {Issuer: "http://localhost:1", ClientID: "c", RedirectURL: "http://127.0.0.1.example.com/auth/callback"},
		"post-logout":  {Issuer: "http://localhost:1", ClientID: "c", PostLogoutRedirectURL: "http://127.example.com/"},
	} {
		_, err := rp.New(ctx, cfg)
		if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
			t.Errorf("%s: %v, want a configuration error about plain http", name, err)
		}
	}
	_, err := rp.NewAccessTokenVerifier(ctx, rp.AccessTokenConfig{Issuer: "http://127.0.0.1.example.com", Audiences: []string{"api"}})
	if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("access token verifier: %v, want a configuration error about plain http", err)
	}
}
