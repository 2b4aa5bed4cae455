package rp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// TestInteropNodeOIDCProvider runs the whole relying-party protocol against
// node-oidc-provider 9.13.3, a certified OP: discovery, login for a
// confidential and a public client through a scripted browser, SSO, refresh
// with rotation, RP-initiated logout, the back-channel logout token it sends,
// and "session revoked" on refresh after logout.
func TestInteropNodeOIDCProvider(t *testing.T) {
	var (
		mu           sync.Mutex
		logoutTokens []string
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/backchannel" {
			_ = r.ParseForm()
			mu.Lock()
			logoutTokens = append(logoutTokens, r.PostForm.Get("logout_token"))
			mu.Unlock()
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{
			{ID: "webc_web", Secret: "web-secret", AuthMethod: "client_secret_post",
				RedirectURIs: []string{app.URL + "/web/callback"}, PostLogoutRedirectURIs: []string{app.URL + "/web/bye"},
				BackchannelLogoutURI: app.URL + "/backchannel"},
			{ID: "spac_spa", AuthMethod: "none", RedirectURIs: []string{app.URL + "/spa/callback"}},
		},
		Users:               []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
		RotateRefreshTokens: true,
	})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, err := p.Client(rp.Config{
		ClientID: "webc_web", ClientSecret: "web-secret",
		RedirectURL: app.URL + "/web/callback", PostLogoutRedirectURL: app.URL + "/web/bye",
	})
	if err != nil {
		t.Fatal(err)
	}
	spa, err := p.Client(rp.Config{ClientID: "spac_spa", RedirectURL: app.URL + "/spa/callback"})
	if err != nil {
		t.Fatal(err)
	}
	if web.ClientAuth().Method != rp.AuthClientSecretBasic || spa.ClientAuth().Method != rp.AuthNone {
		t.Fatalf("auth methods: web %s, spa %s", web.ClientAuth().Method, spa.ClientAuth().Method)
	}
	if m := p.Metadata(); m.EndSessionEndpoint == "" || !m.BackchannelLogoutSupported || !m.AuthorizationResponseIssParameterSupported {
		t.Fatalf("discovery: %+v", m)
	}

	b := nodeop.NewBrowser(t, "alice@example.test", "pw")
	signIn := func(c *rp.Client, path string) *rp.Tokens { return b.SignIn(t, c, path) }

	webTokens := signIn(web, "/web/callback")
	if b.LoginForms() != 1 || webTokens.Claims.Subject != "usr_alice" || webTokens.Claims.SessionID == "" || webTokens.RefreshToken == "" {
		t.Fatalf("web login: forms=%d claims=%+v", b.LoginForms(), webTokens.Claims)
	}
	spaTokens := signIn(spa, "/spa/callback")
	if b.LoginForms() != 1 {
		t.Fatalf("the public client saw a login form: no SSO")
	}
	if spaTokens.Claims.Subject != "usr_alice" {
		t.Fatalf("spa claims %+v", spaTokens.Claims)
	}

	t.Run("refresh rotates", func(t *testing.T) {
		next, err := web.Refresh(ctx, webTokens)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == webTokens.RefreshToken || next.AccessToken == webTokens.AccessToken || next.Claims.Subject != "usr_alice" {
			t.Fatalf("not rotated")
		}
		webTokens = next
	})
	t.Run("public client refreshes", func(t *testing.T) {
		next, err := spa.Refresh(ctx, spaTokens)
		if err != nil {
			t.Fatal(err)
		}
		spaTokens = next
	})
	t.Run("userinfo", func(t *testing.T) {
		info, err := web.UserInfo(ctx, webTokens.AccessToken, "usr_alice")
		if err != nil || info.Email != "alice@example.test" {
			t.Fatalf("%+v %v", info, err)
		}
		if _, err := web.UserInfo(ctx, webTokens.AccessToken, "usr_mallory"); !errors.Is(err, rp.ErrInvalidToken) {
			t.Fatalf("userinfo of another sub accepted: %v", err)
		}
	})
	t.Run("end session and back-channel logout", func(t *testing.T) {
		endURL, err := web.EndSessionURL(webTokens.IDToken, "st-1")
		if err != nil {
			t.Fatal(err)
		}
		final, _, err := b.Navigate(endURL, func(u *url.URL) bool { return u.Path == "/web/bye" })
		if err != nil {
			t.Fatal(err)
		}
		if final == nil || final.Path != "/web/bye" || final.Query().Get("state") != "st-1" {
			t.Fatalf("post-logout redirect %v", final)
		}
		mu.Lock()
		tokens := append([]string(nil), logoutTokens...)
		mu.Unlock()
		if len(tokens) != 1 {
			t.Fatalf("%d logout tokens delivered, want 1", len(tokens))
		}
		lt, err := web.VerifyLogoutToken(ctx, tokens[0])
		if err != nil {
			t.Fatalf("node-oidc-provider's logout token refused: %v", err)
		}
		if lt.Subject != "usr_alice" || lt.SessionID != webTokens.Claims.SessionID {
			t.Fatalf("logout token %+v, session %q", lt.Claims, webTokens.Claims.SessionID)
		}
		if _, err := spa.VerifyLogoutToken(ctx, tokens[0]); !errors.Is(err, rp.ErrInvalidToken) {
			t.Fatal("a logout token for another client was accepted")
		}
	})
	t.Run("refresh after logout is session revoked", func(t *testing.T) {
		for name, c := range map[string]struct {
			c *rp.Client
			t *rp.Tokens
		}{"web": {web, webTokens}, "spa": {spa, spaTokens}} {
			_, err := c.c.Refresh(ctx, c.t)
			if !errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrTemporary) {
				t.Fatalf("%s: want ErrSessionRevoked, got %v", name, err)
			}
		}
	})
	t.Run("login again shows the form", func(t *testing.T) {
		signIn(web, "/web/callback")
		if b.LoginForms() != 2 {
			t.Fatalf("login forms %d, want 2 after logout", b.LoginForms())
		}
	})
}

// TestInteropRefreshReuseRevokes: replaying a rotated-out refresh token is
// refused as a revoked session (and node-oidc-provider revokes the grant).
func TestInteropRefreshReuseRevokes(t *testing.T) {
	app := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(app.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients:             []nodeop.Client{{ID: "webc_web", Secret: "s", AuthMethod: "client_secret_basic", RedirectURIs: []string{app.URL + "/cb"}}},
		RotateRefreshTokens: true,
	})
	ctx := context.Background()
	c, err := discover(t, op.Issuer, nil).Client(rp.Config{ClientID: "webc_web", ClientSecret: "s", AuthMethod: rp.AuthClientSecretBasic, RedirectURL: app.URL + "/cb"})
	if err != nil {
		t.Fatal(err)
	}
	b := nodeop.NewBrowser(t, "bob", "any")
	tx := pkce.NewTransaction(c.Issuer(), "/")
	authURL, _ := c.AuthCodeURL(context.Background(), tx, url.Values{"prompt": {"login"}})
	cb, _, err := b.Navigate(authURL, func(u *url.URL) bool { return u.Path == "/cb" })
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := rp.ParseAuthResponse(cb.RawQuery)
	first, err := c.Exchange(ctx, tx, resp)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Refresh(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, first); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := c.Refresh(ctx, second); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("after reuse the grant should be revoked: %v", err)
	}
	// The code itself is single use.
	if _, err := c.Exchange(ctx, tx, resp); err == nil {
		t.Fatal("code redeemed twice")
	}
}

// TestInteropRevoke: RFC 7009 revocation of the refresh token ends the
// grant; a refresh then reports the session as revoked.
func TestInteropRevoke(t *testing.T) {
	app := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(app.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{{ID: "webc_web", Secret: "s", AuthMethod: "client_secret_post", RedirectURIs: []string{app.URL + "/cb"}}},
	})
	ctx := context.Background()
	c, err := discover(t, op.Issuer, nil).Client(rp.Config{ClientID: "webc_web", ClientSecret: "s", RedirectURL: app.URL + "/cb"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := nodeop.NewBrowser(t, "erin", "any").SignIn(t, c, "/cb")
	if err := c.Revoke(ctx, tokens.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := c.Refresh(ctx, tokens); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("refresh after revocation: %v", err)
	}
}
