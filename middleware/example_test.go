package middleware_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// The README's web app (the demo OP's spare client "yourapp"): a home page
// with a sign-in link, a protected page with a sign-out button. Here a test
// OP stands in for the demo's, and requests are sent without a server.
func ExampleNewWeb() {
	op, stop := oidctest.ForExample() // stands in for the demo's OP, http://127.0.0.1:9000
	defer stop()

	// In the README: hex.DecodeString(os.Getenv("MULTIAPP_COOKIE_KEY")), 32 random bytes.
	cookieKey := bytes.Repeat([]byte{7}, 32)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil) // the demo's OP, http://127.0.0.1:9000
	if err != nil {
		fmt.Println(err) // says what to fix, or that the OP is out of reach
		return
	}
	client, err := provider.Client(rp.Config{
		ClientID:              "yourapp",
		ClientSecret:          "yourapp-secret",                  // os.Getenv("MULTIAPP_CLIENT_SECRET")
		AuthMethod:            os.Getenv("MULTIAPP_AUTH_METHOD"), // empty: the library chooses
		RedirectURL:           "http://localhost:8085/auth/callback",
		PostLogoutRedirectURL: "http://localhost:8085/",
	})
	if err != nil {
		fmt.Println(err) // says what to fix
		return
	}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		CookieKeys: [][]byte{cookieKey},
		SilentSSO:  true, // signed in at another app? Then here too, without a click.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	home := func(w http.ResponseWriter, r *http.Request) {
		if s, ok := middleware.SessionFrom(r.Context()); ok {
			fmt.Fprintf(w, `<p>Hello %s. <a href="/account">Your account</a></p>`, html.EscapeString(s.Claims().Email))
			return
		}
		fmt.Fprint(w, `<p><a href="/auth/login?return_to=/account">Sign in</a></p>`)
	}
	account := func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context()) // Require lets only signed-in users in
		fmt.Fprintf(w, `<h1>%s</h1><form method="post" action="/auth/logout"><button>Sign out everywhere</button></form>`,
			html.EscapeString(s.Claims().Email))
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes()) // login, callback, logout, back-channel logout
	mux.Handle("GET /{$}", web.Optional(http.HandlerFunc(home)))
	mux.Handle("GET /account", web.Require(http.HandlerFunc(account)))
	// http.ListenAndServe("localhost:8085", mux) in the README.

	get := func(path string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	// A first visit to the home page asks the OP silently (prompt=none).
	w := get("/")
	fmt.Println(w.Code, w.Header().Get("Location"))
	// The protected page sends a page navigation to the login route...
	w = get("/account")
	fmt.Println(w.Code, w.Header().Get("Location"))
	// ...which sends the browser to the OP's login form.
	w = get("/auth/login?return_to=/account")
	loc, _ := url.Parse(w.Header().Get("Location"))
	fmt.Println(w.Code, strings.HasPrefix(loc.String(), op.Issuer), loc.Query().Get("client_id"), loc.Query().Get("code_challenge_method"))
	// A script without a session gets 401 JSON instead of a redirect.
	w = get("/account", "Accept", "application/json")
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 302 /auth/login?return_to=%2F&prompt=none
	// 302 /auth/login?return_to=%2Faccount
	// 302 true yourapp S256
	// 401 {"error":"login_required","error_description":"sign in at /auth/login"}
}
