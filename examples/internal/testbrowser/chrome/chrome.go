// Package chrome starts a headless Chromium for the examples' browser
// tests (chromedp), the one way every such test finds and starts it.
package chrome

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Path finds Debian's chromium ($CHROMIUM first). Without it the test
// skips, except in CI (CI=true), where it fails: scripts/test installs it.
func Path(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/test installs it)")
	}
	t.Skip("chromium is not installed; run ./scripts/test, which installs it")
	return ""
}

// Browser is a headless Chromium for one test. It records the pages its
// tabs show (top-level navigations), so a test can count the OP's login
// forms and show where it was when a step fails.
type Browser struct {
	t   testing.TB
	ctx context.Context // the browser's

	mu    sync.Mutex
	pages []string
}

// Start starts a headless Chromium with a fresh profile for the life of ctx
// (and of the test). It skips (or fails in CI) the test when Chromium is
// missing.
func Start(t testing.TB, ctx context.Context) *Browser {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 940),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil { // starts the browser, without a step timeout
		t.Fatalf("start chromium: %v", err)
	}
	return &Browser{t: t, ctx: browser}
}

// Tab opens a tab, closed when the test ends, and returns its context.
func (b *Browser) Tab() context.Context {
	b.t.Helper()
	c, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			b.mu.Lock()
			b.pages = append(b.pages, e.Frame.URL)
			b.mu.Unlock()
		}
	}))
	b.t.Cleanup(cancel)
	// Open the tab now: the first Do binds the tab's life to its context,
	// which must not be a step's timeout.
	if err := chromedp.Do(c); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	return c
}

// Pages counts the pages shown whose URL starts with prefix (the OP's
// login form: issuer + "/login").
func (b *Browser) Pages(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, u := range b.pages {
		if strings.HasPrefix(u, prefix) {
			n++
		}
	}
	return n
}

// Do runs the steps of one part of a story in tab, within 20 seconds. On
// failure it ends the test, saying where the tab was and which pages were
// shown.
func (b *Browser) Do(tab context.Context, step string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sc, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sc, steps...); err != nil {
		b.Fail(tab, step, err)
	}
}

// Fail ends the test after a failed step, saying where tab was and which
// pages were shown.
func (b *Browser) Fail(tab context.Context, step string, err error) {
	b.t.Helper()
	lc, cancel := context.WithTimeout(tab, 2*time.Second)
	defer cancel()
	where, _ := chromedp.Run(lc, chromedp.Location())
	b.mu.Lock()
	b.t.Logf("pages shown:\n  %s", strings.Join(b.pages, "\n  "))
	b.mu.Unlock()
	b.t.Fatalf("%s: %v (page: %s)", step, err, where)
}

// Text returns the trimmed text of the first element matching the CSS
// selector in tab.
func (b *Browser) Text(tab context.Context, css string) string {
	b.t.Helper()
	sc, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(sc, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.Fail(tab, "read "+css, err)
	}
	return strings.TrimSpace(s)
}
