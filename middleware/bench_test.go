package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/multiapp-go/multiapp/internal/cookie"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// BenchmarkRequire measures the per-request overhead of Require on a warm
// session (cookie decode + store lookup + context), and reports it as a
// ratio to gorilla/sessions' CookieStore load of a comparable session, the
// cost of the usual cookie-session approach, measured in the same run.
func BenchmarkRequire(b *testing.B) {
	op := oidctest.New(b)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: "webc_a", ClientSecret: "s", RedirectURL: "http://localhost:8080/auth/callback"})
	if err != nil {
		b.Fatal(err)
	}
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()
	web, err := middleware.NewWeb(middleware.WebConfig{Client: c, Store: store, CookieKeys: [][]byte{testKey}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s := &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: op.Issuer, Subject: "usr_1", SID: "ses_1", ClientID: "webc_a",
		IDToken: "x", AccessToken: "y", AccessTokenExpiry: now.Add(time.Hour), RefreshToken: "z", RefreshedAt: now,
		Claims:    []byte(`{"sub":"usr_1","sid":"ses_1","email":"a@example.com","roles":["admin"]}`),
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
	if err := store.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	codecs, _ := cookie.Codecs([][]byte{testKey}, 24*time.Hour)
	value, _ := securecookie.EncodeMulti("ma-webc_a", s.ID, codecs...)
	served := 0
	h := web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := middleware.SessionFrom(r.Context()); ok {
			served++
		}
	}))
	req := httptest.NewRequest("GET", "/me", nil)
	req.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: value})
	w := httptest.NewRecorder()

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if served != b.N {
		b.Fatalf("served %d of %d", served, b.N)
	}
	// The peer, the same number of times, in the same run (timed by hand:
	// testing.Benchmark cannot nest).
	load := gorillaLoader(b)
	start := time.Now()
	for range b.N {
		load()
	}
	peer := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(peer, "gorilla-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peer, "x-gorilla")
}

// gorillaLoader returns one load of gorilla/sessions' CookieStore,
// decoding a session that holds what multiapp keeps server-side for
// identity (sub, sid, email). A new request each time: gorilla caches
// sessions per request.
func gorillaLoader(b *testing.B) func() {
	cs := sessions.NewCookieStore(testKey, testKey)
	rec := httptest.NewRecorder()
	r0 := httptest.NewRequest("GET", "/", nil)
	sess, _ := cs.New(r0, "app")
	sess.Values["sub"], sess.Values["sid"], sess.Values["email"] = "usr_1", "ses_1", "a@example.com"
	if err := sess.Save(r0, rec); err != nil {
		b.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	return func() {
		r := httptest.NewRequest("GET", "/me", nil)
		r.AddCookie(c)
		s, err := cs.Get(r, "app")
		if err != nil || s.Values["sub"] != "usr_1" {
			b.Fatal(err)
		}
	}
}

// BenchmarkGorillaCookieStoreLoad is the peer alone.
func BenchmarkGorillaCookieStoreLoad(b *testing.B) {
	load := gorillaLoader(b)
	b.ReportAllocs()
	for range b.N {
		load()
	}
}
