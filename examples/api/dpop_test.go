package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
)

// The example API accepts the DPoP-bound access tokens node-oidc-provider
// issues to a native client holding a DPoP key, sent with dpop.Transport,
// and refuses the same token as a bearer token.
func TestDPoPAgainstNodeOIDCProvider(t *testing.T) {
	const audience = "https://api.example.test"
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(cb.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients:  []nodeop.Client{{ID: "cli", AuthMethod: "none", ApplicationType: "native", RedirectURIs: []string{cb.URL + "/callback"}}},
		Users:    []nodeop.User{{ID: "usr_alice", Email: "alice@example.com", Password: "pw", Permissions: []string{"dashboard:admin"}}},
		Resource: &nodeop.Resource{Audience: audience},
	})
	ctx := context.Background()
	a, err := api.New(ctx, api.Config{Issuer: op.Issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)

	key, _ := dpop.GenerateSigner("")
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client(rp.Config{ClientID: "cli", RedirectURL: cb.URL + "/callback", DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	tokens := nodeop.NewBrowser(t, "alice@example.com", "pw").SignIn(t, c, "/callback")
	if tokens.TokenType != "DPoP" {
		t.Fatalf("exchange: %+v", tokens)
	}

	hc := &http.Client{Transport: &dpop.Transport{Signer: key, AccessToken: func(*http.Request) (string, error) { return tokens.AccessToken, nil }}}
	for _, path := range []string{"/api/me", "/api/admin"} {
		r, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		r.Body.Close()
		if r.StatusCode != 200 || body["sub"] != "usr_alice" {
			t.Fatalf("%s with DPoP: %d %v", path, r.StatusCode, body)
		}
	}
	bearerResp, _ := call(t, srv, "/api/me", "Bearer "+tokens.AccessToken)
	if bearerResp.StatusCode != 401 {
		t.Fatalf("a DPoP-bound token as a bearer token: %d", bearerResp.StatusCode)
	}
}
