package middleware_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
)

// TestSessionMethodsAreSafeConcurrently: a handler hands its Session to
// goroutines (one calls an API with TokenContext, another logs IDHash).
// Run with -race: every accessor must be safe against TokenContext, which
// replaces the session record after a refresh.
func TestSessionMethodsAreSafeConcurrently(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	a.login(b, "/", "usr_1", nil)
	h := a.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := s.TokenContext(r.Context()); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() { _ = s.IDHash() })
			wg.Go(func() { _ = s.AccessToken() + s.IDToken() })
			wg.Go(func() { _ = s.Claims() })
		}
		wg.Wait()
	}))
	req, _ := http.NewRequest("GET", a.srv.URL+"/", nil)
	req.AddCookie(a.sessionCookie(b))
	h.ServeHTTP(&discard{h: http.Header{}}, req)
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
