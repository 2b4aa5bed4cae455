package pkce_test

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

	"github.com/multiapp-go/multiapp/pkce"
)

func TestVerifier(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		v := pkce.NewVerifier()
		if len(v) != 43 || !pkce.ValidVerifier(v) || seen[v] {
			t.Fatalf("bad verifier %q", v)
		}
		seen[v] = true
	}
	// RFC 7636 Appendix B.
	if got := pkce.Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge %q", got)
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "/"} {
		if pkce.ValidVerifier(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if pkce.Method != "S256" {
		t.Fatal("only S256")
	}
}

func TestNewTransaction(t *testing.T) {
	tx := pkce.NewTransaction("https://op", "/back")
	if len(tx.State) < 22 || len(tx.Nonce) < 22 || !pkce.ValidVerifier(tx.Verifier) || tx.Issuer != "https://op" || tx.ReturnTo != "/back" {
		t.Fatalf("%+v", tx)
	}
	if tx.State == tx.Nonce || tx.State == pkce.NewTransaction("x", "/").State {
		t.Fatal("state not random")
	}
}

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
	jar := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a")}
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
	if got, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, pkce.ErrReplayed) || got.Verifier != "" {
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
	jar := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), Replay: &replay{seen: map[string]bool{}}}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	w := httptest.NewRecorder()
	_ = jar.Save(w, b.request(), tx)
	b.store(w)
	stolen := b.request() // an attacker keeps a copy of the cookie
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); err != nil {
		t.Fatal(err)
	}
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), stolen, tx.State); !errors.Is(err, pkce.ErrReplayed) {
		t.Fatalf("replayed cookie: %v", err)
	}
}

func TestJarRejects(t *testing.T) {
	now := time.Now()
	jar := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), Now: func() time.Time { return now }}
	b := &browser{cookies: map[string]*http.Cookie{}}
	tx := pkce.NewTransaction("https://op", "/")
	tx.Created = now
	w := httptest.NewRecorder()
	_ = jar.Save(w, b.request(), tx)
	b.store(w)

	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), "other-state"); !errors.Is(err, pkce.ErrNoTransaction) {
		t.Errorf("wrong state: %v", err)
	}
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), ""); !errors.Is(err, pkce.ErrNoTransaction) {
		t.Errorf("empty state: %v", err)
	}
	other := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("b")}
	if _, err := other.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, pkce.ErrNoTransaction) {
		t.Errorf("foreign key: %v", err)
	}
	for _, c := range b.cookies {
		tampered := &browser{cookies: map[string]*http.Cookie{c.Name: {Name: c.Name, Value: c.Value[:len(c.Value)-3] + "AAA"}}}
		if _, err := jar.Take(context.Background(), httptest.NewRecorder(), tampered.request(), tx.State); !errors.Is(err, pkce.ErrNoTransaction) {
			t.Errorf("tampered: %v", err)
		}
		truncated := &browser{cookies: map[string]*http.Cookie{c.Name: {Name: c.Name, Value: c.Value[:10]}}}
		if _, err := jar.Take(context.Background(), httptest.NewRecorder(), truncated.request(), tx.State); !errors.Is(err, pkce.ErrNoTransaction) {
			t.Errorf("truncated: %v", err)
		}
	}
	now = now.Add(11 * time.Minute)
	if _, err := jar.Take(context.Background(), httptest.NewRecorder(), b.request(), tx.State); !errors.Is(err, pkce.ErrExpired) {
		t.Errorf("expired: %v", err)
	}
}

func TestJarKeyRotation(t *testing.T) {
	old := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a")}
	rotated := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("b", "a")}
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
	jar := &pkce.Jar{Name: "app-login", RedirectURL: redirect, Codecs: codecs("a"), MaxPending: 3}
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
