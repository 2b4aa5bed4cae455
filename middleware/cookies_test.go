package middleware_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware/internal/loginjar"
)

// cookieHeader is the Cookie header the browser sends to path.
func (b *browser) cookieHeader(rawURL string) string {
	u, _ := url.Parse(rawURL)
	var parts []string
	for _, c := range b.c.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// TestParallelLoginStartsKeepTheSiteUsable is the attack of issue 12: 50
// login starts at once from one browser (restored tabs, a crawler, a retry
// loop). Each used to add a 550-byte Path=/ cookie, 27.5 KB on every
// request of the site, more than proxies accept (8 KB): the whole site
// broke for that browser until the cookies expired.
func TestParallelLoginStartsKeepTheSiteUsable(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if resp := b.get(a.srv.URL + "/auth/login?return_to=%2Freports%3Fpage%3D2"); resp.StatusCode != http.StatusFound {
				t.Errorf("login start: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if h := b.cookieHeader(a.srv.URL + "/"); len(h) > loginjar.CookieBudget {
		t.Fatalf("after 50 parallel login starts the browser sends a %d-byte Cookie header on every page, want at most %d", len(h), loginjar.CookieBudget)
	}
	// The latest login still completes.
	if resp := a.login(b, "/me", "usr_1", nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/me" {
		t.Fatalf("login after the storm: %d %s", resp.StatusCode, body(resp))
	}
}

// TestLongReturnPath: a 2 KB return_to made a 4,148-byte transaction
// cookie, which browsers drop: the login then failed at the callback. A
// link with such a return_to is refused up front with a clear 400; a
// protected page with a long query still signs the user in, back to its
// path.
func TestLongReturnPath(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	long := "/reports?filter=" + strings.Repeat("x", 2048)
	b := newBrowser(t)
	resp := b.get(a.srv.URL + "/auth/login?return_to=" + url.QueryEscape(long))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body(resp), "too long") || len(resp.Cookies()) != 0 {
		t.Fatalf("2 KB return_to: %d %q, want 400 saying it is too long, and no cookie", resp.StatusCode, body(resp))
	}
	resp = b.get(a.srv.URL + "/me?filter=" + strings.Repeat("x", 2048))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || len(loc) > 2*loginjar.MaxReturnTo {
		t.Fatalf("protected page with a long query: %d, Location %d bytes", resp.StatusCode, len(loc))
	}
	login, _ := url.Parse(loc)
	if rt := login.Query().Get("return_to"); rt != "/me" {
		t.Fatalf("return_to %q, want the page's path /me", rt)
	}
	for _, c := range b.c.Jar.Cookies(login) {
		if len(c.Name)+len(c.Value) > 4096 {
			t.Fatalf("cookie %s is %d bytes", c.Name, len(c.Name)+len(c.Value))
		}
	}
}
