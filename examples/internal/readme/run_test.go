package readme

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/examples/demo"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser/chrome"
)

// The addresses the README's programs use, as written.
const (
	readmeIssuer = "http://127.0.0.1:9000"
	readmeWebApp = "localhost:8085"
	readmeAPI    = "localhost:8086"
)

// readmeProgram returns the README's program that contains marker.
func readmeProgram(t *testing.T, root, marker string) block {
	t.Helper()
	for _, b := range codeBlocks(t, root, "README.md") {
		if b.program() && strings.Contains(b.code, marker) {
			return b
		}
	}
	t.Fatalf("README.md has no program with %q", marker)
	return block{}
}

// free reports whether addr can be listened on.
func free(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// startProgram runs a built program with env until the test ends and
// waits until it answers at base.
func startProgram(t *testing.T, bin, base string, env ...string) {
	t.Helper()
	var out strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%s printed:\n%s", bin, out.String())
	})
	c := &http.Client{Timeout: time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-exited:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s exited:\n%s", bin, out.String())
		default:
		}
		if resp, err := c.Get(base); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer at %s", bin, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestProgramsAgainstTheDemo does what the README tells a newcomer: start
// the demo, run the README's web app and API as written, sign in to the web
// app in a browser (headless Chromium), get an access token with the demo's
// command-line client and call the API with it, then sign out everywhere.
//
// It uses the demo's own addresses (OP on 127.0.0.1:9000, the programs on
// localhost:8085 and :8086) when they are free, as in CI; when one is taken
// (the demo running, another test), it moves the demo and the programs to
// free ports (demo -yourapp and the programs' addresses rewritten).
func TestProgramsAgainstTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the README's programs with a browser")
	}
	chrome.Path(t) // skip early without Chromium (fail in CI)
	root := repoRoot(t)
	web := readmeProgram(t, root, "middleware.NewWeb(")
	api := readmeProgram(t, root, ".AccessTokenVerifier(rp.AccessTokenConfig{")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The demo, where the README's programs expect it.
	webAddr, apiAddr := readmeWebApp, readmeAPI
	var rewrite func(string) string
	d, err := demo.Start(ctx, demo.DefaultConfig())
	if err == nil && (!free(webAddr) || !free(apiAddr)) {
		d.Close()
		err = fmt.Errorf("%s or %s is taken", webAddr, apiAddr)
	}
	if err != nil {
		t.Logf("%v: the demo and the programs run on free ports", err)
		webAddr, apiAddr = "localhost:"+freePort(t), "localhost:"+freePort(t)
		any := "127.0.0.1:0"
		d, err = demo.Start(ctx, demo.Config{OP: any, Dashboard: any, Docs: any, SPA: any, API: any, YourApp: "http://" + webAddr})
		if err != nil {
			t.Fatal(err)
		}
		issuer := d.URLs.Issuer
		rewrite = strings.NewReplacer(readmeIssuer, issuer, readmeWebApp, webAddr, readmeAPI, apiAddr).Replace
	}
	defer d.Close()
	u := d.URLs
	webURL, apiURL := "http://"+webAddr, "http://"+apiAddr

	bins := buildPrograms(t, root, []block{web, api}, rewrite)
	key := make([]byte, 32)
	rand.Read(key)
	// The README's command line: MULTIAPP_CLIENT_SECRET=yourapp-secret MULTIAPP_COOKIE_KEY=$(openssl rand -hex 32)
	startProgram(t, bins[web.String()], webURL+"/", "MULTIAPP_CLIENT_SECRET=yourapp-secret", "MULTIAPP_COOKIE_KEY="+hex.EncodeToString(key))
	startProgram(t, bins[api.String()], apiURL+"/orders")

	br := chrome.Start(t, ctx)
	do := br.Do
	text := br.Text
	tab := br.Tab
	visible := func(id string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.ID(id)) }

	// Your web app: anonymous home page (after the silent check at the OP),
	// the sign-in link, the OP's form, the protected page.
	a := tab()
	do(a, "open your web app", chromedp.Navigate(webURL+"/"), visible("sign-in"))
	do(a, "sign in on your web app",
		chromedp.Click(chromedp.ID("sign-in")),
		visible("username"),
		chromedp.SendKeys(chromedp.ID("username"), "bob@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), devop.DemoPassword),
		chromedp.Submit(chromedp.ID("password")),
		visible("email"),
	)
	if e := text(a, "#email"); e != "bob@example.com" {
		t.Fatalf("your web app's /account shows %q", e)
	}
	if home := text(a, "body"); home == "" {
		t.Fatal("empty account page")
	}
	do(a, "your web app's home, signed in", chromedp.Navigate(webURL+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/account"]`)))

	// One sign-in for every app: the demo's dashboard, without a form.
	b := tab()
	do(b, "the dashboard, signed in by single sign-on", chromedp.Navigate(u.Dashboard+"/"), visible("signed-in"))

	// Your API, with a token of the demo's command-line client, signed in
	// through the same browser (no form: the OP session is shared).
	cliTab := tab()
	tool := cli.New(cli.Config{
		Issuer:    u.Issuer,
		TokenFile: t.TempDir() + "/tokens.json",
		OpenBrowser: func(authURL string) error {
			go func() { // the CLI waits for the browser's redirect meanwhile
				sc, cancel := context.WithTimeout(cliTab, 20*time.Second)
				defer cancel()
				_ = chromedp.Do(sc, chromedp.Navigate(authURL))
			}()
			return nil
		},
	})
	if _, err := tool.Login(ctx, cli.LoginOptions{}); err != nil {
		t.Fatalf("cli login: %v", err)
	}
	call := func(path string) (int, string, string) {
		t.Helper()
		resp, err := tool.Call(ctx, apiURL+path)
		if err != nil {
			t.Fatalf("call %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("WWW-Authenticate")
	}
	if status, body, _ := call("/orders"); status != 200 || !strings.Contains(body, `"user":"usr_bob"`) || !strings.Contains(body, `"client":"cli"`) {
		t.Errorf("GET /orders with bob's token: %d %s", status, body)
	}
	if status, body, www := call("/admin/orders"); status != 403 || !strings.Contains(www, `error="insufficient_scope"`) {
		t.Errorf("GET /admin/orders with bob's token: %d %q %s", status, www, body)
	}
	resp, err := http.Get(apiURL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="orders"`) {
		t.Errorf("GET /orders without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Sign out everywhere, from your web app: back on its home page signed
	// out, and the dashboard signed out too (back-channel logout).
	do(a, "sign out everywhere on your web app",
		chromedp.Navigate(webURL+"/account"),
		visible("sign-out"),
		chromedp.Click(chromedp.ID("sign-out")),
		visible("sign-in"),
	)
	do(b, "the dashboard after the sign-out", chromedp.Reload(), visible("signed-out"))
	if n := br.Pages(u.Issuer + "/login"); n != 1 {
		t.Errorf("%d login forms shown, want 1", n)
	}
}
