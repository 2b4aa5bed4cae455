package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
)

type bearerExampleT struct{ fns []func() }

func (t *bearerExampleT) Cleanup(f func()) { t.fns = append(t.fns, f) }

func ExampleBearer() {
	t := &bearerExampleT{}
	defer func() {
		for _, f := range t.fns {
			f()
		}
	}()
	op := oidctest.New(t) // stands in for https://yourenv.scalekit.com

	verifier, err := rp.NewAccessTokenVerifier(context.Background(), rp.AccessTokenConfig{
		Issuer:    op.Issuer,
		Audiences: []string{"https://api.example.com"},
		// Revocations: store, // tokenstore.Store: refuse tokens of logged-out sessions
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	bearer := &middleware.Bearer{Verifier: verifier, Realm: "orders"}

	mux := http.NewServeMux()
	mux.Handle("GET /orders", bearer.Require(middleware.AnyPermission("orders:read"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cl := middleware.BearerClaims(r.Context())
			fmt.Fprintf(w, "orders of %s for %s", cl.OrganizationID, cl.Subject)
		})))
	mux.Handle("DELETE /orders", bearer.Require(middleware.AllPermissions("orders:write"), middleware.AnyRole("admin"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))

	now := time.Now().Unix()
	token := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": "https://api.example.com", "sub": "usr_42", "oid": "org_1",
		"iat": now, "exp": now + 300, "permissions": []string{"orders:read"},
	}, oidctest.Header{"typ": "at+jwt"})

	for _, c := range []struct{ method, auth string }{
		{"GET", "Bearer " + token},
		{"GET", ""},
		{"GET", "Bearer not-a-token"},
		{"DELETE", "Bearer " + token},
	} {
		r := httptest.NewRequest(c.method, "/orders", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code)
			fmt.Println(w.Body)
			continue
		}
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 200
	// orders of org_1 for usr_42
	// 401 Bearer realm="orders"
	// 401 Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"
	// 403 Bearer realm="orders", error="insufficient_scope", error_description="the access token lacks a required scope, permission or role", scope="orders:write"
}
