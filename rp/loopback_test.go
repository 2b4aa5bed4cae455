package rp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// TestPlainHTTPOnlyOnLoopback: plain http is tolerated for the issuer and
// the redirect URLs only on this machine. A DNS name that starts with
// "127." resolves wherever its owner points it, so it gets no exemption:
// the config is refused before any request is made.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	ctx := context.Background()
	for _, issuer := range []string{"http://127.0.0.1.nip.io:9000", "http://127.attacker.test", "http://127.0.0.1.example.com"} {
		_, err := rp.Discover(ctx, issuer, nil)
		if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
			t.Errorf("issuer %s: %v, want a configuration error about plain http", issuer, err)
		}
	}
	p := discover(t, oidctest.New(t).Issuer, nil)
	for name, cfg := range map[string]rp.Config{
		"redirect":    {ClientID: "c", RedirectURL: "http://127.0.0.1.example.com/auth/callback"},
		"post-logout": {ClientID: "c", PostLogoutRedirectURL: "http://127.example.com/"},
	} {
		_, err := p.Client(cfg)
		if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
			t.Errorf("%s: %v, want a configuration error about plain http", name, err)
		}
	}
}
