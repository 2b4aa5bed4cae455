package bearer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// An API that accepts DPoP-bound access tokens (RFC 9449) next to bearer
// tokens. The client here holds the key its token is bound to and sends
// it with dpop.Transport; the same token sent as a bearer token is
// refused.
func ExampleDPoPConfig() {
	t := &bearerExampleT{}
	defer func() {
		for _, f := range t.fns {
			f()
		}
	}()
	op := oidctest.New(t) // stands in for an OP with DPoP
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	verifier, _ := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}})

	store := tokenstore.NewMemory(tokenstore.MemoryOptions{}) // in production: the apps' shared Redis store
	proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: store})
	if err != nil {
		fmt.Println(err)
		return
	}
	api, err := bearer.New(bearer.Config{Verifier: verifier, DPoP: &bearer.DPoPConfig{
		Proofs: proofs,
		// PublicOrigin: "https://api.example.com", // behind a proxy
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(api.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := bearer.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})))
	defer srv.Close()

	// The client's key, and a token the OP bound to it (cnf.jkt).
	key, _ := dpop.GenerateSigner("")
	token := op.Signer().Sign(map[string]any{"iss": op.Issuer, "aud": "api", "sub": "bob", "exp": 4102444800,
		"cnf": map[string]string{"jkt": key.Thumbprint()}}, nil)

	client := &http.Client{Transport: &dpop.Transport{Signer: key, AccessToken: func(*http.Request) (string, error) { return token, nil }}}
	resp, _ := client.Get(srv.URL + "/orders")
	resp.Body.Close()
	fmt.Println("DPoP:", resp.Status)

	req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println("Bearer:", resp.Status)
	// Output:
	// DPoP: 200 OK
	// Bearer: 401 Unauthorized
}
