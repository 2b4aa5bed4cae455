package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
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
// cost of the usual cookie-session approach, measured in the same run. The
// session is a typical one (see typicalRecord); the handler does nothing.
func BenchmarkRequire(b *testing.B) { benchRequire(b, func(*middleware.Session) bool { return true }) }

// BenchmarkRequireClaims is BenchmarkRequire with a handler that reads the
// session's ID-token claims, as most handlers do.
func BenchmarkRequireClaims(b *testing.B) {
	benchRequire(b, func(s *middleware.Session) bool { return s.Claims().Email != "" })
}

func benchRequire(b *testing.B, use func(*middleware.Session) bool) {
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
	s := typicalRecord(op.Issuer, "webc_a")
	if err := store.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	codecs, _ := cookie.Codecs([][]byte{testKey}, 24*time.Hour)
	value, _ := securecookie.EncodeMulti("ma-webc_a", s.ID, codecs...)
	served := 0
	h := web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := middleware.SessionFrom(r.Context()); ok && use(s) {
			served++
		}
	}))
	req := httptest.NewRequest("GET", "/me", nil)
	req.AddCookie(&http.Cookie{Name: "ma-webc_a", Value: value})
	w := httptest.NewRecorder()

	// One OS thread serves every request, so its CPU time is theirs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := threadCPU()
	for range b.N {
		h.ServeHTTP(w, req)
	}
	cpu = threadCPU() - cpu
	b.StopTimer()
	if served != b.N {
		b.Fatalf("served %d of %d", served, b.N)
	}
	// The peer, in the same run (timed by hand: testing.Benchmark cannot
	// nest), as many times, up to 20,000 (at 20-70 µs a load, more would
	// make the run last minutes and measure nothing more).
	load := gorillaLoader(b)
	n := min(b.N, 20_000)
	start, peerCPU := time.Now(), threadCPU()
	for range n {
		load()
	}
	peer := float64(time.Since(start).Nanoseconds()) / float64(n)
	peerCPU = threadCPU() - peerCPU
	b.ReportMetric(peer, "gorilla-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peer, "x-gorilla")
	if cpu > 0 && peerCPU > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(peerCPU.Nanoseconds())/float64(n), "gorilla-cpu-ns/op")
	}
}

// typicalRecord is the session record of a web app of a Scalekit-like OP:
// RS256-sized ID and access tokens, a refresh token and 454 bytes of ID
// token claims (the record BENCHMARKS.md describes for the stores).
func typicalRecord(issuer, clientID string) *tokenstore.Session {
	now := time.Now()
	claims := fmt.Sprintf(`{"iss":%q,"aud":[%q],"azp":%q,"sub":"usr_0000000000000000001","sid":"ses_0000000000000000001",`+
		`"oid":"org_0123456789012345678","exp":%d,"iat":%d,"at_hash":"hhhhhhhhhhhhhhhhhhhhhh","c_hash":"cccccccccccccccccccccc",`+
		`"amr":["pwd"],"email":"someone.with.a.name@example.com","email_verified":true,"name":"Someone With A Name","client_id":%q}`,
		issuer, clientID, clientID, now.Add(time.Hour).Unix(), now.Unix(), clientID)
	return &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: issuer, Subject: "usr_0000000000000000001", SID: "ses_0000000000000000001", ClientID: clientID,
		Tokens: tokenstore.Tokens{
			IDToken: strings.Repeat("i", 1030), AccessToken: strings.Repeat("a", 962), TokenType: "Bearer",
			Expiry: now.Add(time.Hour), RefreshToken: "rt_" + strings.Repeat("r", 64), Claims: []byte(claims),
		},
		RefreshedAt: now, IssuedAt: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(24 * time.Hour),
	}
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
