// Package chrome starts a headless Chromium for the examples' browser
// tests (chromedp), the one way every such test finds and starts it.
package chrome

import (
	"context"
	"os"
	"os/exec"
	"testing"

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

// Start starts a headless Chromium with a fresh profile for the life of
// ctx and returns its browser context; chromedp.NewContext on it opens
// tabs. It skips (or fails in CI) the test when Chromium is missing.
func Start(t testing.TB, ctx context.Context, opts ...chromedp.ContextOption) context.Context {
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
	browser, cancelBrowser := chromedp.NewContext(alloc, append([]chromedp.ContextOption{chromedp.WithErrorf(t.Logf)}, opts...)...)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil { // starts the browser, without a step timeout
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}
