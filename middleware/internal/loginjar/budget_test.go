package loginjar_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/middleware/internal/loginjar"
	"github.com/multiapp-go/multiapp/pkce"
)

const redirect = "https://app.example.com/auth/callback"

// loginCookies sums what the jar's cookies add to every request of the site.
func loginCookies(b *browser) (n, bytes, largest int) {
	for _, c := range b.cookies {
		if strings.Contains(c.Name, "app-login") {
			size := len(c.Name) + 1 + len(c.Value)
			n, bytes, largest = n+1, bytes+size, max(largest, size)
		}
	}
	return
}

// TestJarParallelStartsStayInBudget is the attack: 50 logins started at
// once (tabs restored together, a crawler, a retry loop) from a browser
// whose requests carry none of the others' cookies. Each used to add its
// own Path=/ cookie: 27.5 KB on every request of the site, which proxies
// refuse (8 KB), so the site broke for that browser until they expired.
func TestJarParallelStartsStayInBudget(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", Codecs: codecs("a"), RedirectURL: redirect}
	b := &browser{cookies: map[string]*http.Cookie{}}
	start := b.request()
	recs := make([]*httptest.ResponseRecorder, 50)
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() {
			recs[i] = httptest.NewRecorder()
			if err := jar.Save(recs[i], start, pkce.NewTransaction("https://op", "/reports?page=2")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	for _, w := range recs { // the answers arrive in any order
		b.store(w)
	}
	n, bytes, largest := loginCookies(b)
	if n > loginjar.DefaultMaxPending || bytes > loginjar.CookieBudget || largest > 4096 {
		t.Fatalf("50 parallel starts left %d login cookies, %d bytes (largest %d); want at most %d cookies within %d bytes",
			n, bytes, largest, loginjar.DefaultMaxPending, loginjar.CookieBudget)
	}
	// Sequential starts in a browser that sends its cookies back: still in
	// budget, and the newest logins are the ones kept.
	var states []string
	for range 20 {
		tx := pkce.NewTransaction("https://op", "/"+strings.Repeat("x", 300))
		w := httptest.NewRecorder()
		if err := jar.Save(w, b.request(), tx); err != nil {
			t.Fatal(err)
		}
		b.store(w)
		states = append(states, tx.State)
		if n, bytes, _ := loginCookies(b); n > loginjar.DefaultMaxPending || bytes > loginjar.CookieBudget {
			t.Fatalf("%d login cookies, %d bytes", n, bytes)
		}
	}
	for i, s := range states {
		_, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), s)
		if kept := i >= len(states)-loginjar.DefaultMaxPending; kept != (err == nil) {
			t.Errorf("login %d of %d: %v (the newest %d must complete, the older ones were evicted)", i+1, len(states), err, loginjar.DefaultMaxPending)
		}
	}
}

// TestJarRefusesOversizedTransaction: a 2 KB return path made a 4,148-byte
// cookie, which browsers drop silently: the login then failed at the
// callback with no clue. It is refused when the login starts instead.
func TestJarRefusesOversizedTransaction(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", Codecs: codecs("a"), RedirectURL: redirect}
	w := httptest.NewRecorder()
	err := jar.Save(w, httptest.NewRequest("GET", "/", nil), pkce.NewTransaction("https://op", "/"+strings.Repeat("a", 2047)))
	if !errors.Is(err, loginjar.ErrTooLarge) {
		t.Fatalf("2 KB return path: %v, want ErrTooLarge", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatalf("cookies written for a refused transaction: %d", len(w.Result().Cookies()))
	}
	if loginjar.MaxReturnTo < 256 {
		t.Fatalf("MaxReturnTo %d leaves no room for ordinary paths", loginjar.MaxReturnTo)
	}
	tx := pkce.NewTransaction("https://auth.example.scalekit.com/with/a/long/issuer/path", "/"+strings.Repeat("a", loginjar.MaxReturnTo-1))
	if err := jar.Save(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), tx); err != nil {
		t.Fatalf("a return path of MaxReturnTo bytes: %v", err)
	}
}

// TestJarCookiePolicyFromRedirectURL: a Jar used directly, as a low-level
// flow does, writes Secure __Host- cookies for an https app, plain ones
// only for plain-http loopback development, and refuses to guess.
func TestJarCookiePolicyFromRedirectURL(t *testing.T) {
	for url, secure := range map[string]bool{
		"https://app.example.com/auth/callback":   true,
		"http://localhost:8081/auth/callback":     false,
		"http://127.0.0.1:8081/cb":                false,
		"http://127.0.0.1.example.com/cb":         true,
		"https://localhost:8443/auth/callback":    true,
		"com.example.app:/oauth2redirect/example": true,
	} {
		jar := &loginjar.Jar{Name: "app-login", Codecs: codecs("a"), RedirectURL: url}
		w := httptest.NewRecorder()
		if err := jar.Save(w, httptest.NewRequest("GET", "/", nil), pkce.NewTransaction("https://op", "/")); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		c := w.Result().Cookies()[0]
		if c.Secure != secure || strings.HasPrefix(c.Name, "__Host-") != secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: cookie %s Secure=%v Path=%s Domain=%q, want Secure and __Host- = %v", url, c.Name, c.Secure, c.Path, c.Domain, secure)
		}
	}
	jar := &loginjar.Jar{Name: "app-login", Codecs: codecs("a")}
	if err := jar.Save(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), pkce.NewTransaction("https://op", "/")); err == nil || !strings.Contains(err.Error(), "RedirectURL") {
		t.Fatalf("a Jar without RedirectURL: %v, want an error naming RedirectURL", err)
	}
}

// TestJarReloadedCallback: the callback URL loaded a second time (a
// reload, a restored tab) finds the transaction spent, and still knows
// where the login was going.
func TestJarReloadedCallback(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", Codecs: codecs("a"), RedirectURL: redirect}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/reports")
	w := httptest.NewRecorder()
	_ = jar.Save(w, b.request(), tx)
	b.store(w)
	w = httptest.NewRecorder()
	if _, err := jar.Take(context.Background(), w, b.request(), tx.State); err != nil {
		t.Fatal(err)
	}
	b.store(w)
	got, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State)
	if !errors.Is(err, loginjar.ErrReplayed) || got == nil || got.ReturnTo != "/reports" || got.Verifier != "" || got.Nonce != "" {
		t.Fatalf("reloaded callback: %+v %v, want ErrReplayed with only the return path", got, err)
	}
}
