package loginjar_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/middleware/internal/loginjar"
	"github.com/multiapp-go/multiapp/pkce"
)

func codecs(keys ...string) []securecookie.Codec {
	var pairs [][]byte
	for _, k := range keys {
		pairs = append(pairs, []byte(strings.Repeat(k, 32)[:32]), []byte(strings.Repeat(k, 32)[:32]))
	}
	return securecookie.CodecsFromPairs(pairs...)
}

type browser struct{ cookies map[string]*http.Cookie }

func (b *browser) request() *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	return r
}

func (b *browser) store(w *httptest.ResponseRecorder) {
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
}

func TestJarRoundTripAndSingleUse(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a")}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/x")
	w := httptest.NewRecorder()
	if err := jar.Save(w, b.request(), tx); err != nil {
		t.Fatal(err)
	}
	b.store(w)
	c := w.Result().Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 || !c.Secure {
		t.Fatalf("cookie attributes %+v", c)
	}
	if strings.Contains(c.Value, tx.Verifier) || strings.Contains(c.Name, tx.State) {
		t.Fatal("transaction readable from the cookie")
	}
	w = httptest.NewRecorder()
	got, err := jar.Take(context.Background(), w, b.request(), tx.State)
	if err != nil || got.Verifier != tx.Verifier || got.Nonce != tx.Nonce || got.ReturnTo != "/x" {
		t.Fatalf("%+v %v", got, err)
	}
	b.store(w)
	if got, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, loginjar.ErrReplayed) || got.Verifier != "" {
		t.Fatalf("second take: %+v %v, want ErrReplayed without the secrets", got, err)
	}
}

type replay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *replay) UseOnce(_ context.Context, ns, iss, state string, _ time.Duration) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := ns + "\x00" + iss + "\x00" + state
	if r.seen[k] {
		return false, nil
	}
	r.seen[k] = true
	return true, nil
}

func TestJarReplayedCookie(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), Replay: &replay{seen: map[string]bool{}}}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	w := httptest.NewRecorder()
	_ = jar.Save(w, b.request(), tx)
	b.store(w)
	stolen := b.request() // an attacker keeps a copy of the cookie
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); err != nil {
		t.Fatal(err)
	}
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), stolen, tx.State); !errors.Is(err, loginjar.ErrReplayed) {
		t.Fatalf("replayed cookie: %v", err)
	}
}

func TestJarRejects(t *testing.T) {
	now := time.Now()
	jar := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), Now: func() time.Time { return now }}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	tx.Created = now
	w := httptest.NewRecorder()
	_ = jar.Save(w, b.request(), tx)
	b.store(w)

	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), "other-state"); !errors.Is(err, loginjar.ErrNoTransaction) {
		t.Errorf("wrong state: %v", err)
	}
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), ""); !errors.Is(err, loginjar.ErrNoTransaction) {
		t.Errorf("empty state: %v", err)
	}
	other := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("b")}
	if _, err := other.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, loginjar.ErrNoTransaction) {
		t.Errorf("foreign key: %v", err)
	}
	for _, c := range b.cookies {
		tampered := &browser{cookies: map[string]*http.Cookie{c.Name: {Name: c.Name, Value: c.Value[:len(c.Value)-3] + "AAA"}}}
		if _, err := jar.Take(context.Background(), httptest.NewRecorder(), tampered.request(), tx.State); !errors.Is(err, loginjar.ErrNoTransaction) {
			t.Errorf("tampered: %v", err)
		}
		truncated := &browser{cookies: map[string]*http.Cookie{c.Name: {Name: c.Name, Value: c.Value[:10]}}}
		if _, err := jar.Take(context.Background(), httptest.NewRecorder(), truncated.request(), tx.State); !errors.Is(err, loginjar.ErrNoTransaction) {
			t.Errorf("truncated: %v", err)
		}
	}
	now = now.Add(11 * time.Minute)
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, loginjar.ErrExpired) {
		t.Errorf("expired: %v", err)
	}
}

func TestJarKeyRotation(t *testing.T) {
	old := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a")}
	rotated := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("b", "a")}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	w := httptest.NewRecorder()
	_ = old.Save(w, b.request(), tx)
	b.store(w)
	if _, err := rotated.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); err != nil {
		t.Fatalf("old key no longer decodes: %v", err)
	}
}

func TestJarParallelTabsAndCap(t *testing.T) {
	jar := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), MaxPending: 3}
	b := &browser{cookies: map[string]*http.Cookie{}}
	var txs []*pkce.Transaction
	for i := range 5 {
		tx := pkce.NewTransaction("https://op", "/")
		tx.Created = time.Now().Add(time.Duration(i) * time.Second)
		w := httptest.NewRecorder()
		if err := jar.Save(w, b.request(), tx); err != nil {
			t.Fatal(err)
		}
		b.store(w)
		txs = append(txs, tx)
	}
	if len(b.cookies) != 3 {
		t.Fatalf("%d transaction cookies, want the cap 3", len(b.cookies))
	}
	// The newest three complete in any order; the oldest two are gone.
	for _, i := range []int{4, 2, 3} {
		w := httptest.NewRecorder()
		if _, err := jar.Take(context.Background(), w, b.request(), txs[i].State); err != nil {
			t.Fatalf("tab %d: %v", i, err)
		}
		b.store(w)
	}
	for _, i := range []int{0, 1} {
		if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), txs[i].State); err == nil {
			t.Fatalf("evicted tab %d still completes", i)
		}
	}
}

// TestErrorClasses: every error of the jar has one class: a jar that
// cannot work is misconfigured, a login to start over is invalid, a
// replay cache out of reach is temporary.
func TestErrorClasses(t *testing.T) {
	save := func(j *loginjar.Jar) error {
		return j.Save(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), pkce.NewTransaction("https://op", "/"))
	}
	down := &loginjar.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), Replay: downCache{}}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	w := httptest.NewRecorder()
	_ = down.Save(w, b.request(), tx)
	b.store(w)
	_, replayErr := down.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State)
	for _, c := range []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"no RedirectURL", save(&loginjar.Jar{Name: "x", Codecs: codecs("a")}), errclass.Misconfigured},
		{"no codecs", save(&loginjar.Jar{Name: "x", RedirectURL: redirect}), errclass.Misconfigured},
		{"no transaction", loginjar.ErrNoTransaction, errclass.Invalid},
		{"expired", loginjar.ErrExpired, errclass.Invalid},
		{"replayed", loginjar.ErrReplayed, errclass.Invalid},
		{"too large", loginjar.ErrTooLarge, errclass.Invalid},
		{"replay cache down", replayErr, errclass.Temporary},
	} {
		if got := errclass.Of(c.err); got != c.want {
			t.Errorf("%s: %v is %s, want %s", c.name, c.err, got, c.want)
		}
	}
}

type downCache struct{}

func (downCache) UseOnce(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, errors.New("store unreachable")
}
