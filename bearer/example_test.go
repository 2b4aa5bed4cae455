package bearer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

type bearerExampleT struct{ fns []func() }

func (t *bearerExampleT) Cleanup(f func()) { t.fns = append(t.fns, f) }

// The README's API: it accepts the access tokens the demo's OP issues for
// the audience "api". Here a test OP stands in for the demo's and signs a
// token like the ones the demo's OP gives bob.
func Example() {
	t := &bearerExampleT{}
	defer func() {
		for _, f := range t.fns {
			f()
		}
	}()
	op := oidctest.New(t) // stands in for the demo's OP, http://127.0.0.1:9000

	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{"api"}, // a token's aud must contain one of these
		// Revocations: store, // the web apps' store: refuse tokens of ended OP sessions
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	api, err := bearer.New(bearer.Config{Verifier: verifier, Realm: "orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	orders := func(w http.ResponseWriter, r *http.Request) {
		c, _ := bearer.ClaimsFrom(r.Context()) // the validated claims
		fmt.Fprintf(w, "orders of %s, called by %s", c.Subject, c.ClientID)
	}

	mux := http.NewServeMux()
	// Any valid token: signature, iss, aud, exp checked (401 otherwise, RFC 6750).
	mux.Handle("GET /orders", api.Authenticate(http.HandlerFunc(orders)))
	// And a permission from the token (403 insufficient_scope otherwise).
	mux.Handle("GET /admin/orders", api.Require(bearer.AnyPermission("dashboard:admin"))(http.HandlerFunc(orders)))
	// http.ListenAndServe("localhost:8086", mux) in the README.

	now := time.Now().Unix()
	bob := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": []string{"cli", "api"}, "sub": "usr_bob", "client_id": "cli", "sid": "ses_1",
		"iat": now, "exp": now + 300, "permissions": []string{"dashboard:read", "docs:read"},
	}, oidctest.Header{"typ": "at+jwt"})

	for _, c := range []struct{ path, auth string }{
		{"/orders", "Bearer " + bob},
		{"/orders", ""},
		{"/orders", "Bearer not-a-token"},
		{"/admin/orders", "Bearer " + bob},
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body)
			continue
		}
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 200 orders of usr_bob, called by cli
	// 401 Bearer realm="orders"
	// 401 Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"
	// 403 Bearer realm="orders", error="insufficient_scope", error_description="the access token lacks a required scope, permission or role", scope="dashboard:admin"
}
