package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

func ExampleNewWeb() {
	op, stop := oidctest.ForExample() // stands in for https://yourenv.scalekit.com
	defer stop()

	client, err := rp.New(context.Background(), rp.Config{
		Issuer:                op.Issuer,
		ClientID:              "webc_dashboard",
		ClientSecret:          "dashboard-secret",
		RedirectURL:           "http://localhost:8081/auth/callback",
		PostLogoutRedirectURL: "http://localhost:8081/",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		CookieKeys: [][]byte{[]byte("use 32+ random bytes from a secret store")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/me", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		fmt.Fprintln(w, "hello", s.Claims().Subject)
	})))

	// Not signed in: a page navigation goes to the login route...
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/me", nil))
	fmt.Println(rec.Code, rec.Header().Get("Location"))

	// ...which sends the browser to the OP.
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/auth/login?return_to=/me", nil))
	fmt.Println(rec.Code, rec.Header().Get("Location")[:len(op.Issuer)] == op.Issuer)

	// An API call without a session gets 401 JSON instead of a redirect.
	req := httptest.NewRequest("GET", "/me", nil)
	req.Header.Set("Accept", "application/json")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 302 /auth/login?return_to=%2Fme
	// 302 true
	// 401 {"error":"login_required","error_description":"sign in at /auth/login"}
}
