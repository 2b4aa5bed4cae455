package middleware_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

// A web app whose sessions hold DPoP-bound tokens: each login gets its own
// key, kept in the session store, and Session.Client calls APIs with the
// DPoP scheme and a proof by that key. A test OP with DPoP stands in for
// node-oidc-provider, Keycloak, Okta...
func ExampleWebConfig_dpop() {
	op, stop := oidctest.ForExample()
	defer stop()
	op.EnableDPoP()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		fmt.Fprintf(w, "API called with %s and a proof: %v", scheme, r.Header.Get("DPoP") != "")
	}))
	defer api.Close()

	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := provider.Client(rp.Config{ // no rp.Config.DPoP: the sessions hold the keys
		ClientID: "yourapp", ClientSecret: "yourapp-secret", RedirectURL: "http://localhost:8085/auth/callback",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		CookieKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		DPoP:       true, // the OP must accept ES256 DPoP proofs
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/orders", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Get(api.URL + "/orders")
		if err != nil {
			http.Error(w, "the API is out of reach", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})))

	// A browser signs in (the test OP answers the authorization request
	// for it) and opens /orders.
	login := httptest.NewRecorder()
	mux.ServeHTTP(login, httptest.NewRequest("GET", "http://localhost:8085/auth/login?return_to=/orders", nil))
	authz, _ := url.Parse(login.Header().Get("Location"))
	q := authz.Query()
	op.AddGrant("code-1", oidctest.Grant{Claims: op.IDClaims("yourapp", "usr_1", q.Get("nonce")), Challenge: q.Get("code_challenge")})
	callback := httptest.NewRequest("GET", "http://localhost:8085/auth/callback?code=code-1&state="+q.Get("state"), nil)
	for _, c := range login.Result().Cookies() {
		callback.AddCookie(c)
	}
	signedIn := httptest.NewRecorder()
	mux.ServeHTTP(signedIn, callback)
	orders := httptest.NewRequest("GET", "http://localhost:8085/orders", nil)
	for _, c := range signedIn.Result().Cookies() {
		orders.AddCookie(c)
	}
	page := httptest.NewRecorder()
	mux.ServeHTTP(page, orders)
	fmt.Println(page.Body.String())
	// Output: API called with DPoP and a proof: true
}
