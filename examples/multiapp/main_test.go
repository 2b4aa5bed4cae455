package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCommand runs the command as `go run ./examples/multiapp` does (on
// free ports): it prints every app's URL and the tour, every app answers,
// and it stops when its context ends (Ctrl-C).
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-op", "127.0.0.1:0", "-dashboard", "127.0.0.1:0", "-docs", "127.0.0.1:0", "-spa", "127.0.0.1:0", "-api", "127.0.0.1:0", "-quiet"}, pw, io.Discard)
		pw.Close()
	}()
	var guide strings.Builder
	urls := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		guide.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], "http://") {
			urls[f[0]] = f[1]
		}
		if strings.Contains(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	t.Logf("guide:\n%s", guide.String())
	for _, name := range []string{"OP", "dashboard", "docs", "SPA", "API"} {
		if urls[name] == "" {
			t.Fatalf("no URL for %s in the guide", name)
		}
	}
	for _, want := range []string{"Try this", "bob@example.com", "alice@example.com", "examples/cli/cmd/cli login"} {
		if !strings.Contains(guide.String(), want) {
			t.Errorf("guide lacks %q", want)
		}
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for name, want := range map[string]int{"OP": 200, "dashboard": 302, "docs": 302, "SPA": 200} {
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
