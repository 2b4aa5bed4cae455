package cli_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
	"github.com/multiapp-go/multiapp/rp"
)

// setup starts a development OP with the demo's native client and returns a
// tool whose "system browser" is a scripted browser signed in as alice.
func setup(t *testing.T) (*devop.OP, *cli.Tool, *opener) {
	t.Helper()
	o := devop.Start(t, devop.Config{Clients: []devop.Client{{
		ID: "cli", Native: true, RedirectURIs: []string{"http://127.0.0.1/callback"},
	}}})
	op := &opener{t: t, br: testbrowser.New("alice@example.com", devop.DemoPassword)}
	tool := cli.New(cli.Config{
		Issuer:       o.Issuer(),
		ClientID:     "cli",
		TokenFile:    filepath.Join(t.TempDir(), "conf", "tokens.json"),
		OpenBrowser:  op.open,
		LoginTimeout: 10 * time.Second,
	})
	return o, tool, op
}

// opener plays the system browser: it loads the URL, signs in at the OP's
// form and follows the redirect back to the tool's loopback listener.
type opener struct {
	t      *testing.T
	br     *testbrowser.Browser
	opened []*url.URL
	last   *testbrowser.Page
}

func (o *opener) open(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	o.opened = append(o.opened, u)
	p, err := o.br.Get(raw)
	if err != nil {
		o.t.Errorf("browser: %v", err)
		return err
	}
	o.last = p
	return nil
}

func TestLoginUsesALoopbackRedirectOnARandomPort(t *testing.T) {
	_, tool, op := setup(t)
	ctx := context.Background()
	s, err := tool.Login(ctx, cli.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessToken == "" || s.RefreshToken == "" || s.IDToken == "" {
		t.Fatalf("tokens missing: %+v", s)
	}
	if _, err := tool.Login(ctx, cli.LoginOptions{Prompt: "login"}); err != nil {
		t.Fatal(err)
	}
	if op.br.LoginForms != 2 {
		t.Errorf("%d login forms, want 2 (the second login asked prompt=login)", op.br.LoginForms)
	}
	ports := map[string]bool{}
	for _, u := range op.opened {
		q := u.Query()
		r, err := url.Parse(q.Get("redirect_uri"))
		if err != nil {
			t.Fatal(err)
		}
		// RFC 8252 §7.3 and §8.3: the loopback IP literal, an OS-chosen
		// port, http; PKCE S256 and no secret.
		if r.Scheme != "http" || r.Hostname() != "127.0.0.1" || r.Port() == "" || r.Port() == "0" || r.Path != "/callback" {
			t.Errorf("redirect_uri %s", r)
		}
		ports[r.Port()] = true
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_secret") != "" {
			t.Errorf("authorization request without PKCE S256: %s", u)
		}
		if !strings.Contains(q.Get("scope"), "offline_access") {
			t.Errorf("scope %q: no refresh token", q.Get("scope"))
		}
	}
	if len(ports) != 2 {
		t.Errorf("two logins used the ports %v: want a new random port each time", ports)
	}
	if op.last.Status != 200 || !strings.Contains(op.last.Body, "Signed in") {
		t.Errorf("the browser's last page: %d %s", op.last.Status, op.last.Body)
	}
}

func TestTokenFileIsPrivate(t *testing.T) {
	_, tool, _ := setup(t)
	if _, err := tool.Login(context.Background(), cli.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tool.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(tool.TokenFile()))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("token directory mode %04o, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(tool.TokenFile()))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	// A file others can read is refused, as ssh refuses such keys.
	if err := os.Chmod(tool.TokenFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Load(); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("Load of a 0644 file: %v", err)
	}
}

func TestRefresh(t *testing.T) {
	o, tool, _ := setup(t)
	ctx := context.Background()
	first, err := tool.Login(ctx, cli.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh token is used as it is.
	same, err := tool.Token(ctx)
	if err != nil || same.AccessToken != first.AccessToken {
		t.Fatalf("Token refreshed a fresh token: %v", err)
	}
	second, err := tool.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Error("refresh returned the same tokens")
	}
	if loaded, _ := tool.Load(); loaded.RefreshToken != second.RefreshToken {
		t.Error("the refreshed tokens were not saved")
	}
	if got := o.Stats(); got.TokenRequests["refresh_token"] != 1 {
		t.Errorf("refresh requests %v", got.TokenRequests)
	}

	// Token refreshes by itself when the access token is about to expire.
	later := cli.New(cli.Config{Issuer: o.Issuer(), ClientID: "cli", TokenFile: tool.TokenFile(),
		Now: func() time.Time { return second.Expiry.Add(-10 * time.Second) }})
	third, err := later.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if third.AccessToken == second.AccessToken {
		t.Error("Token did not refresh a token expiring in 10 seconds")
	}

	// The session ends at the OP (an admin, a logout at another app): the
	// next refresh is refused and the tokens are forgotten.
	o.EndUserSessions(ctx, "usr_alice")
	if _, err := tool.Refresh(ctx); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("refresh after the session ended: %v", err)
	}
	if _, err := tool.Load(); !errors.Is(err, cli.ErrNotSignedIn) {
		t.Errorf("tokens kept after the session ended: %v", err)
	}
}

func TestLogoutRevokesTheRefreshToken(t *testing.T) {
	o, tool, op := setup(t)
	ctx := context.Background()
	if _, err := tool.Login(ctx, cli.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(tool.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := tool.Logout(ctx, cli.LogoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tool.TokenFile()); !os.IsNotExist(err) {
		t.Fatalf("token file still there: %v", err)
	}
	// The revoked refresh token no longer works, even from a copy.
	if err := os.WriteFile(tool.TokenFile(), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Refresh(ctx); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("refresh with a revoked token: %v", err)
	}
	// A plain logout leaves the OP session: other apps stay signed in.
	if len(o.Sessions()) != 1 {
		t.Fatalf("OP sessions after a local logout: %v", o.Sessions())
	}

	// logout --everywhere ends the OP session in the browser.
	if _, err := tool.Login(ctx, cli.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tool.Logout(ctx, cli.LogoutOptions{Everywhere: true}); err != nil {
		t.Fatal(err)
	}
	end := op.opened[len(op.opened)-1]
	if end.Path != devop.EndSessionPath || end.Query().Get("id_token_hint") == "" {
		t.Errorf("logout --everywhere opened %s", end)
	}
	if len(o.Sessions()) != 0 {
		t.Errorf("OP sessions after logout --everywhere: %v", o.Sessions())
	}
}

func TestCommandLine(t *testing.T) {
	o := devop.Start(t, devop.Config{Clients: []devop.Client{{ID: "cli", Native: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}}})
	br := testbrowser.New("bob@example.com", devop.DemoPassword)
	open := func(u string) error { _, err := br.Get(u); return err }
	env := appenv.Map(map[string]string{
		"MULTIAPP_ISSUER":     o.Issuer(),
		"MULTIAPP_CLIENT_ID":  "cli",
		"MULTIAPP_TOKEN_FILE": filepath.Join(t.TempDir(), "tokens.json"),
	})
	run := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := cli.Main(context.Background(), args, env, &out, &errs, open)
		return code, out.String(), errs.String()
	}
	if code, _, errs := run("whoami"); code != 1 || !strings.Contains(errs, "not signed in") {
		t.Errorf("whoami before login: %d %s", code, errs)
	}
	if code, out, errs := run("login"); code != 0 || !strings.Contains(out, "bob@example.com") || !strings.Contains(errs, "/oauth/authorize?") {
		t.Errorf("login: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := run("whoami"); code != 0 || !strings.Contains(out, "usr_bob") || !strings.Contains(out, "dashboard:read") {
		t.Errorf("whoami: %d %s", code, out)
	}
	if code, out, _ := run("token"); code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Errorf("token: %d %s", code, out)
	}
	if code, out, _ := run("refresh"); code != 0 || !strings.Contains(out, "Refreshed") {
		t.Errorf("refresh: %d %s", code, out)
	}
	if code, out, _ := run("logout"); code != 0 || !strings.Contains(out, "Signed out") {
		t.Errorf("logout: %d %s", code, out)
	}
	if code, _, _ := run("frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	if code, _, _ := run(); code != 2 {
		t.Errorf("no command: %d", code)
	}
	env2 := func(k string) string {
		if k == "MULTIAPP_CLIENT_SECRET" {
			return "s3cret"
		}
		return env(k)
	}
	var errs bytes.Buffer
	if code := cli.Main(context.Background(), []string{"login"}, env2, &bytes.Buffer{}, &errs, open); code != 2 || !strings.Contains(errs.String(), "cannot keep a secret") {
		t.Errorf("with a client secret: %d %s", code, errs.String())
	}
}
