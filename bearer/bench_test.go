package bearer_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func benchBearer(b *testing.B) (*bearer.Middleware, string) {
	op := oidctest.New(b)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{bearerAud}, StrictRFC9068: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	return mustNew(b, bearer.Config{Verifier: v}), bearerToken(op, nil)
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, `{"orders":[]}`)
})

// BenchmarkBearerThroughput sends the same request, with a repeated token,
// to two httptest servers on loopback: the handler alone ("plain") and
// the handler behind Middleware.Require. Requests alternate between the two
// and are timed apart; ns/op is the authenticated request's, x-plain its
// time over the plain request's measured under the same conditions.
func BenchmarkBearerThroughput(b *testing.B) {
	api, token := benchBearer(b)
	plain := httptest.NewServer(hello)
	defer plain.Close()
	authed := httptest.NewServer(api.Require(bearer.AnyScope("orders:read"))(hello))
	defer authed.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(url string) {
		req, _ := http.NewRequest("GET", url+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get(plain.URL)
	get(authed.URL)
	var tp, ta time.Duration
	for b.Loop() {
		t0 := time.Now()
		get(plain.URL)
		t1 := time.Now()
		get(authed.URL)
		ta += time.Since(t1)
		tp += t1.Sub(t0)
	}
	b.ReportMetric(float64(ta.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tp.Nanoseconds())/float64(b.N), "plain-ns/op")
	b.ReportMetric(float64(ta)/float64(tp), "x-plain")
	b.ReportMetric(float64(b.N)/ta.Seconds(), "req/s")
}

// BenchmarkBearerCacheHit is the middleware alone on a cached token, with
// a recorder instead of a network: header parsing, cache lookup, claims in
// the context, requirement check.
func BenchmarkBearerCacheHit(b *testing.B) {
	api, token := benchBearer(b)
	h := api.Require(bearer.AnyScope("orders:read"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatal(w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
