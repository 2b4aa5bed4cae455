package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/demo"
	"github.com/multiapp-go/multiapp/examples/devop"
)

// TestCommand runs the command as `go run ./examples/multiapp-demo` does (on
// free ports): it prints every app's URL and the tour, every app answers,
// and it stops when its context ends (Ctrl-C).
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	guide, urls, done := startCommand(t, ctx, "-client", "id=shop,secret=shop-secret,origin=http://localhost:8086")
	t.Logf("guide:\n%s", guide)
	for _, name := range []string{"OP", "dashboard", "docs", "SPA", "API", "metrics"} {
		if urls[name] == "" {
			t.Fatalf("no URL for %s in the guide", name)
		}
	}
	for _, want := range []string{"Try this", "bob@example.com", "alice@example.com", "examples/cli/cmd/cli login"} {
		if !strings.Contains(guide, want) {
			t.Errorf("guide lacks %q", want)
		}
	}
	// Every client registered at the OP, with its secret and redirect URI,
	// and the API's audience: what a newcomer needs to add their own app.
	for _, cl := range devop.DefaultClients() {
		found := false
		_, clients, _ := strings.Cut(guide, "Clients registered")
		for _, line := range strings.Split(clients, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == cl.ID {
				found = true
				if cl.Secret != "" && f[1] != cl.Secret {
					t.Errorf("client %s: the guide shows %q, not its secret", cl.ID, line)
				}
				if !strings.Contains(line, "/callback") {
					t.Errorf("client %s: no redirect URI in %q", cl.ID, line)
				}
			}
		}
		if !found {
			t.Errorf("the guide does not list the client %s", cl.ID)
		}
	}
	// A client added with -client is registered and shown like the others.
	if !strings.Contains(guide, "shop-secret") || !strings.Contains(guide, "http://localhost:8086/auth/callback") {
		t.Error("the guide does not show the client added with -client")
	}
	if !strings.Contains(guide, "http://localhost:8085/auth/callback") {
		t.Error("the guide does not show yourapp's redirect URI")
	}
	if !strings.Contains(guide, `aud "`+devop.DemoAPIAudience+`"`) {
		t.Errorf("the guide does not name the API audience %q", devop.DemoAPIAudience)
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for name, want := range map[string]int{"OP": 200, "dashboard": 302, "docs": 302, "SPA": 200, "metrics": 200} {
		resp, err := c.Get(urls[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d, want %d", name, urls[name], resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop")
	}
}

// startCommand runs the command as `go run ./examples/multiapp-demo`
// does, on free ports with extra args, until ctx ends: it returns the
// guide it printed, the URLs listed there by name, and the command's end.
func startCommand(t *testing.T, ctx context.Context, extra ...string) (guide string, urls map[string]string, done chan error) {
	t.Helper()
	free := "127.0.0.1:0"
	args := append([]string{"-op", free, "-dashboard", free, "-docs", free, "-spa", free, "-api", free, "-metrics", free, "-quiet"}, extra...)
	pr, pw := io.Pipe()
	done = make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	var b strings.Builder
	urls = map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		b.WriteString(line + "\n")
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "http://") {
			urls[f[0]] = f[1]
		}
		if strings.Contains(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	return b.String(), urls, done
}

// TestMain lets a test run the command itself, as a separate process: with
// MULTIAPP_DEMO_MAIN=1 the test binary is the demo command.
func TestMain(m *testing.M) {
	if os.Getenv("MULTIAPP_DEMO_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStartTwice starts the demo, then the command again on ports the first
// one holds: the second exits with status 1 and the demo's own message
// naming the port, never a panic. Once with every port taken, once with only
// an app's port taken (the OP's listener, already open, must be released).
func TestStartTwice(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	free := "127.0.0.1:0"
	d, err := demo.Start(ctx, demo.Config{OP: free, Dashboard: free, Docs: free, SPA: free, API: free})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hostPort := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + u.Port()
	}
	freePort := func() string {
		ln, err := net.Listen("tcp", free)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	for _, c := range []struct {
		name, op, want string
	}{
		{"every port taken", hostPort(d.URLs.Issuer), "demo: the OP cannot listen on " + hostPort(d.URLs.Issuer)},
		{"an app's port taken", freePort(), "demo: the dashboard cannot listen on " + hostPort(d.URLs.Dashboard)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-op", c.op, "-dashboard", hostPort(d.URLs.Dashboard), "-docs", hostPort(d.URLs.Docs),
				"-spa", hostPort(d.URLs.SPA), "-api", hostPort(d.URLs.API), "-quiet")
			cmd.Env = append(os.Environ(), "MULTIAPP_DEMO_MAIN=1")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the second demo did not exit; stdout:\n%s", stdout.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit: %v, want status 1", err)
			}
			if !strings.HasPrefix(stderr.String(), c.want) || strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("stderr:\n%s\nwant it to start with %q, without a panic", stderr.String(), c.want)
			}
			if strings.Contains(stdout.String(), "Try this") {
				t.Errorf("the guide was printed although the demo did not start:\n%s", stdout.String())
			}
			// The OP's port, opened before the failure, is free again.
			if ln, err := net.Listen("tcp", c.op); c.op != hostPort(d.URLs.Issuer) && err != nil {
				t.Errorf("the OP's port %s is still taken after the failed start: %v", c.op, err)
			} else if err == nil {
				ln.Close()
			}
		})
	}
	// The first demo still works.
	resp, err := http.Get(d.URLs.SPA + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the first demo's SPA: %d", resp.StatusCode)
	}
}
