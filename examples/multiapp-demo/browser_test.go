package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/multiapp-go/multiapp/examples/demo"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser/chrome"
)

// startDemo starts the demo with the command's own configuration, so the
// test runs it exactly as `go run ./examples/multiapp-demo` does; when one of its
// ports is taken (a demo already running, another test), the same code on
// free ports.
func startDemo(t *testing.T, ctx context.Context) *demo.Demo {
	d, err := demo.Start(ctx, demo.DefaultConfig())
	if err != nil {
		t.Logf("%v: the demo runs on free ports", err)
		free := "127.0.0.1:0"
		d, err = demo.Start(ctx, demo.Config{OP: free, Dashboard: free, Docs: free, SPA: free, API: free})
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// screenshotDir is where the screenshots go: $MULTIAPP_SCREENSHOTS when set
// (the README's come from MULTIAPP_SCREENSHOTS=$PWD/docs/screenshots), else
// a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("MULTIAPP_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserStory runs the demo as the command starts it and tells its
// whole story in a real headless Chromium, including the two paths of the
// "everywhere" promise a newcomer tries first:
//
//   - the SPA opened first is signed out (no session at the OP); sign in on
//     the dashboard (the one login form), open docs (no form), reload the
//     SPA: signed in, without a form, and it calls the API (/api/me 200,
//     /api/admin 403 for bob);
//   - sign out on docs: within one second the dashboard's /me is signed out
//     (back-channel logout), the API refuses the SPA's access token (401:
//     revocation awareness), and a reload of the SPA shows it signed out.
func TestBrowserStory(t *testing.T) {
	shots := screenshotDir(t)
	start := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d := startDemo(t, ctx)
	defer func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}()
	u := d.URLs
	t.Logf("demo started in %v: %+v", time.Since(start), u)

	br := chrome.Start(t, ctx)
	do := br.Do
	text := func(c context.Context, id string) string { t.Helper(); return br.Text(c, "#"+id) }
	loginForms := func() int { return br.Pages(u.Issuer + "/login") }
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
			png, err := chromedp.CaptureScreenshot()(c, tg)
			if err != nil {
				return err
			}
			p := filepath.Join(shots, name)
			t.Logf("screenshot %s (%d KiB)", p, len(png)>>10)
			return os.WriteFile(p, png, 0o644)
		})
	}
	visible := func(id string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.ID(id)) }
	meFetch := `fetch('/me', {headers: {Accept: 'application/json'}}).then(r => r.status)`
	meStatus := func(c context.Context) int {
		t.Helper()
		sc, cancel := context.WithTimeout(c, 5*time.Second)
		defer cancel()
		n, err := chromedp.Run(sc, chromedp.Evaluate[int](meFetch, chromedp.EvalAwaitPromise))
		if err != nil {
			br.Fail(c, "fetch /me", err)
		}
		return n
	}

	// Tab C is the SPA, opened first; tab A tells the story; tab B keeps the
	// dashboard open.
	c := br.Tab()
	do(c, "open the SPA first", chromedp.Navigate(u.SPA+"/"), visible("signed-out"), visible("no-password"))
	if reason := text(c, "signed-out-reason"); !strings.Contains(reason, "Not signed in at the OP") {
		t.Fatalf("SPA before any sign-in: %q", reason)
	}

	a := br.Tab()
	do(a, "open the dashboard",
		chromedp.Navigate(u.Dashboard+"/"),
		visible("signed-out"), // silent SSO found no session at the OP
	)

	// 1. Sign in on the dashboard: the one login form of the story.
	do(a, "sign in on the dashboard",
		chromedp.Click(chromedp.ID("sign-in")),
		visible("username"),
		shot("op-login.png"),
		chromedp.SendKeys(chromedp.ID("username"), "bob@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), devop.DemoPassword),
		chromedp.Submit(chromedp.ID("password")),
		visible("signed-in"),
		shot("dashboard-signed-in.png"),
	)
	if e := text(a, "email"); e != "bob@example.com" {
		t.Fatalf("dashboard shows %q", e)
	}

	// 2. Docs: signed in by single sign-on, no login form.
	do(a, "open docs", chromedp.Navigate(u.Docs+"/"), visible("signed-in"), shot("docs-sso.png"))
	if e := text(a, "email"); e != "bob@example.com" {
		t.Fatalf("docs shows %q", e)
	}

	// 3. The SPA, reloaded, signs in silently, then calls the API with its token.
	do(c, "reload the SPA",
		chromedp.Reload(),
		visible("signed-in"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById('api-admin-status').textContent !== ''`, chromedp.WithPollingTimeout(10*time.Second))(ctx, tg)
			return err
		}),
		shot("spa-api.png"),
	)
	if e, me, admin := text(c, "email"), text(c, "api-me-status"), text(c, "api-admin-status"); e != "bob@example.com" || me != "200" || admin != "403" {
		t.Fatalf("SPA: email %q, /api/me %s, /api/admin %s", e, me, admin)
	}
	if body := text(c, "api-admin-body"); !strings.Contains(body, "insufficient_scope") {
		t.Errorf("/api/admin's 403 does not say insufficient_scope: %s", body)
	}
	if n := loginForms(); n != 1 {
		t.Fatalf("%d login forms shown, want exactly 1", n)
	}
	// The SPA's access token, as its page holds it, for the API call below.
	apiStatus := func(c context.Context) int {
		t.Helper()
		sc, cancel := context.WithTimeout(c, 5*time.Second)
		defer cancel()
		js := `fetch(` + strconv.Quote(u.API+"/api/me") + `, {headers: {Authorization: 'Bearer ' + JSON.parse(sessionStorage.getItem('tokens')).access_token}}).then(r => r.status)`
		n, err := chromedp.Run(sc, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			br.Fail(c, "fetch the API with the SPA's token", err)
		}
		return n
	}
	if n := apiStatus(c); n != 200 {
		t.Fatalf("the API with the SPA's token before the sign-out: %d", n)
	}

	// 4. Tab B: the dashboard, signed in; the page's own fetch of /me says so.
	b := br.Tab()
	do(b, "dashboard in a second tab", chromedp.Navigate(u.Dashboard+"/"), visible("signed-in"))
	if n := meStatus(b); n != 200 {
		t.Fatalf("dashboard /me before logout: %d", n)
	}

	// 5. Sign out on docs. Within one second the dashboard's /me is signed
	// out: the OP's back-channel logout reached it.
	do(a, "back to docs", chromedp.Navigate(u.Docs+"/"), visible("sign-out"))
	clicked := time.Now()
	do(a, "sign out on docs", chromedp.Click(chromedp.ID("sign-out")))
	for {
		n := meStatus(b)
		if n == 401 {
			break
		}
		if time.Since(clicked) > time.Second {
			t.Fatalf("dashboard /me still %d one second after the sign-out on docs", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dashboard signed out %v after the click on docs", time.Since(clicked).Round(time.Millisecond))
	do(a, "docs after logout", visible("signed-out"))
	do(b, "dashboard after logout", chromedp.Reload(), visible("signed-out"), shot("dashboard-signed-out.png"))

	// 6. The API refuses the token the SPA still holds (its OP session
	// ended), and a reload of the SPA shows it signed out.
	if n := apiStatus(c); n != 401 {
		t.Fatalf("the API with the SPA's token after the sign-out on docs: %d, want 401", n)
	}
	do(c, "reload the SPA after the sign-out", chromedp.Reload(), visible("signed-out"), shot("spa-signed-out.png"))
	if reason := text(c, "signed-out-reason"); !strings.Contains(reason, "session at the OP has ended") {
		t.Fatalf("SPA after logout: %q", reason)
	}
	if n := loginForms(); n != 1 {
		t.Fatalf("%d login forms shown, want exactly 1", n)
	}
	t.Logf("OP stats: %+v", d.OP.Stats())
	t.Logf("browser story took %v", time.Since(start).Round(time.Millisecond))
}
