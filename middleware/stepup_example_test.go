package middleware_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// A page that needs a second factor and a sign-in of the last ten
// minutes, and a page that pays through an API which may ask for a
// stronger sign-in (RFC 9470). Here a test OP stands in for the real one,
// and requests are sent without a server.
func ExampleWeb_RequireStepUp() {
	op, stop := oidctest.ForExample()
	defer stop()
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := provider.Client(rp.Config{ClientID: "yourapp", ClientSecret: "yourapp-secret",
		RedirectURL: "http://localhost:8085/auth/callback"})
	if err != nil {
		fmt.Println(err)
		return
	}
	web, err := middleware.NewWeb(middleware.WebConfig{Client: client, CookieKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	security := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "security settings") }
	pay := func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Post("https://api.example.com/payments", "application/json", r.Body)
		if err != nil {
			http.Error(w, "the payments API is out of reach", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if su, ok := middleware.StepUpFromResponse(resp); ok {
			web.StartStepUp(w, r, su) // sign in again as the API asks, then back here
			return
		}
		fmt.Fprint(w, "paid")
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("GET /settings/security", web.RequireStepUp(middleware.StepUp{
		ACR:    []string{"urn:example:mfa"},
		MaxAge: 10 * time.Minute,
	})(http.HandlerFunc(security)))
	mux.Handle("GET /pay", web.Require(http.HandlerFunc(pay)))

	// Not signed in: one sign-in that meets the page, straight away.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/settings/security", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// The login route passes acr_values and max_age on to the OP.
	login := w.Header().Get("Location")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", login, nil))
	loc, _ := url.Parse(w.Header().Get("Location"))
	fmt.Println(loc.Query().Get("acr_values"), loc.Query().Get("max_age"))
	// Output:
	// 302 /auth/login?acr_values=urn%3Aexample%3Amfa&max_age=600&return_to=%2Fsettings%2Fsecurity
	// urn:example:mfa 600
}
