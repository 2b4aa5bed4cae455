package rp_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// exampleOP stands in for a real OP (e.g. https://yourenv.scalekit.com) so
// the examples run.
func exampleOP() (*oidctest.OP, func()) { return oidctest.ForExample() }

func ExampleDiscover() {
	op, done := exampleOP()
	defer done()

	// One Provider per OP: discovery, keys, algorithms, HTTP client.
	provider, err := rp.Discover(context.Background(), op.Issuer, nil) // e.g. "https://yourenv.scalekit.com"
	if err != nil {
		fmt.Println("OP unreachable or misconfigured:", err) // rp.ErrTemporary or rp.ErrConfig
		return
	}
	// Every app (client id) and API of that OP in this process is built
	// from it, and shares its JWKS cache.
	dashboard, err := provider.Client(rp.Config{
		ClientID:              "webc_dashboard",
		ClientSecret:          os.Getenv("DASHBOARD_SECRET"), // empty: a public client
		RedirectURL:           "http://localhost:8081/auth/callback",
		PostLogoutRedirectURL: "http://localhost:8081/",
	})
	if errors.Is(err, rp.ErrConfig) {
		fmt.Println("fix the configuration:", err)
		return
	}
	api, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"https://api.example.com"}})
	if err != nil {
		fmt.Println("fix the configuration:", err)
		return
	}
	_ = api
	fmt.Println(dashboard.ClientID(), dashboard.ClientAuth().Method)
	// Output: webc_dashboard none
}

func ExampleClient_AuthCodeURL() {
	op, done := exampleOP()
	defer done()
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, _ := provider.Client(rp.Config{
		ClientID: "webc_dashboard", ClientSecret: "secret",
		RedirectURL: "http://localhost:8081/auth/callback",
	})

	// One transaction per login: keep it (middleware.Web seals it in a
	// cookie) until the callback.
	tx := pkce.NewTransaction(client.Issuer(), "/reports")
	authURL, err := client.AuthCodeURL(context.Background(), tx, url.Values{
		"prompt":          {"login"},
		"organization_id": {"org_123"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	fmt.Println(u.Path, q.Get("response_type"), q.Get("code_challenge_method"), q.Get("scope"), q.Get("organization_id"))
	// Output: /oauth/authorize code S256 openid profile email offline_access org_123
}

func ExampleClient_Exchange() {
	op, done := exampleOP()
	defer done()
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, _ := provider.Client(rp.Config{
		ClientID: "webc_dashboard", ClientSecret: "secret",
		RedirectURL: "http://localhost:8081/auth/callback",
	})
	tx := pkce.NewTransaction(client.Issuer(), "/")
	op.AddGrant("the-code", oidctest.Grant{Claims: op.IDClaims("webc_dashboard", "usr_42", tx.Nonce), Challenge: tx.Challenge()})

	// In the callback handler: parse the query, find the transaction by its
	// state (taking it, so it is used once), then exchange.
	resp, err := rp.ParseAuthResponse("code=the-code&state=" + tx.State)
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := client.Exchange(context.Background(), tx, resp)
	if errors.Is(err, rp.ErrLoginRequired) {
		fmt.Println("no session at the OP")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tokens.Claims.Subject, tokens.Claims.SessionID)
	// Output: usr_42 ses_1
}

func ExampleClient_Refresh() {
	op, done := exampleOP()
	defer done()
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, _ := provider.Client(rp.Config{ClientID: "webc_dashboard", ClientSecret: "secret"})
	op.AddGrant("rt-1", oidctest.Grant{Claims: op.IDClaims("webc_dashboard", "usr_42", ""), RefreshToken: "rt-2"})

	stored := &rp.Tokens{RefreshToken: "rt-1"}
	refresh := func() {
		next, err := client.Refresh(context.Background(), stored)
		if rp.ClassOf(err) == rp.ClassRevoked {
			fmt.Println("signed out everywhere: clear the local session")
			return
		}
		// Success or not, store what Refresh hands back: after a failure
		// it is the session with the refresh token to use next time.
		stored = next
		fmt.Println(stored.RefreshToken, rp.ClassOf(err))
	}
	refresh()
	// Another instance presents the rotated-out rt-1: the OP refuses it,
	// the shared session is over.
	stored = &rp.Tokens{RefreshToken: "rt-1"}
	refresh()
	// Output:
	// rt-2 none
	// signed out everywhere: clear the local session
}

func ExampleClient_EndSessionURL() {
	op, done := exampleOP()
	defer done()
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, _ := provider.Client(rp.Config{
		ClientID: "webc_dashboard", ClientSecret: "secret",
		PostLogoutRedirectURL: "http://localhost:8081/",
	})
	endURL, err := client.EndSessionURL("the-id-token", "xyz")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.TrimPrefix(endURL, op.Issuer))
	// Output: /oidc/logout?client_id=webc_dashboard&id_token_hint=the-id-token&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A8081%2F&state=xyz
}
