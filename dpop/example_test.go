package dpop_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// A client makes a proof for each request; a server checks it.
func Example() {
	key, err := dpop.GenerateSigner("") // ES256
	if err != nil {
		panic(err)
	}
	accessToken := "the DPoP-bound access token"
	proof, err := key.Proof("GET", "https://api.example.com/orders?page=2", accessToken, "")
	if err != nil {
		panic(err)
	}

	// The server: one replay store shared by every instance.
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: store})
	if err != nil {
		panic(err)
	}
	req := dpop.Request{Method: "GET", URI: "https://api.example.com/orders", AccessToken: accessToken, Thumbprint: key.Thumbprint()}
	p, err := v.Verify(context.Background(), proof, req)
	fmt.Println(err == nil, p.URI)
	_, err = v.Verify(context.Background(), proof, req)
	fmt.Println(err)
	// Output:
	// true https://api.example.com/orders
	// dpop: invalid proof (replay): the proof was used before: make a new proof for every request
}

// Transport sends a DPoP-bound access token to an API with a fresh proof
// on every request (and the API's nonce, when it asks for one).
func ExampleTransport() {
	key, _ := dpop.GenerateSigner("")
	var accessToken string // from a token response with token_type DPoP (rp.Config.DPoP: key)
	client := &http.Client{Transport: &dpop.Transport{
		Signer:      key,
		AccessToken: func(*http.Request) (string, error) { return accessToken, nil },
	}}
	_ = client // client.Get("https://api.example.com/orders")
}
