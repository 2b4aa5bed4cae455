package rp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// TestInteropGuidance: node-oidc-provider's real refusals come back with
// the guidance of the troubleshooting section.
func TestInteropGuidance(t *testing.T) {
	app := newServer(t, http.NotFoundHandler())
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{{ID: "webc_web", Secret: "s", AuthMethod: "client_secret_post",
			RedirectURIs: []string{app + "/auth/callback", app + "/other/callback"}}},
	})
	ctx := context.Background()

	t.Run("issuer with a trailing slash", func(t *testing.T) {
		_, err := rp.Discover(ctx, op.Issuer+"/", nil)
		if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "only a trailing slash differs") || !strings.Contains(err.Error(), `exactly "`+op.Issuer+`"`) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("code redeemed with another redirect URL", func(t *testing.T) {
		p := discover(t, op.Issuer, nil)
		login, err := p.Client(rp.Config{ClientID: "webc_web", ClientSecret: "s", RedirectURL: app + "/auth/callback"})
		if err != nil {
			t.Fatal(err)
		}
		// Another instance of the app, configured with another callback.
		other, err := discover(t, op.Issuer, nil).Client(rp.Config{ClientID: "webc_web", ClientSecret: "s", RedirectURL: app + "/other/callback"})
		if err != nil {
			t.Fatal(err)
		}
		tx := pkce.NewTransaction(login.Issuer(), "/")
		authURL, _ := login.AuthCodeURL(context.Background(), tx, nil)
		cb, _, err := nodeop.NewBrowser(t, "bob", "any").Navigate(authURL, func(u *url.URL) bool { return u.Path == "/auth/callback" })
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := rp.ParseAuthResponse(cb.RawQuery)
		_, err = other.Exchange(ctx, tx, resp)
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" || errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want invalid_grant, got %v", err)
		}
		if !strings.Contains(oe.Hint, "redirect_uri differs from the authorization request") {
			t.Errorf("hint %q does not name the redirect URL", oe.Hint)
		}
	})
}
