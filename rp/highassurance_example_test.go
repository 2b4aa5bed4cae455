package rp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// A web app that authenticates with a private key instead of a secret
// (private_key_jwt), and serves its public key for the OP at a jwks_uri.
func ExampleClientKey() {
	op, done := exampleOP()
	defer done()

	// In production: key, err := rp.LoadClientKey(os.Getenv("MULTIAPP_CLIENT_KEY"))
	// (PEM, a private JWK, or the path of a file holding one); or any
	// crypto.Signer, e.g. a KMS key.
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := &rp.ClientKey{Signer: signer, KeyID: "2026-12"}
	jwks, _ := rp.JWKS(key) // register this at the OP (or serve it, below)
	op.AddClient(oidctest.Client{ID: "webc_bank", JWKS: jwks})

	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, err := provider.Client(rp.Config{
		ClientID:    "webc_bank",
		Key:         key, // AuthMethod: rp.AuthPrivateKeyJWT, implied
		RedirectURL: "https://bank.example.com/auth/callback",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(client.ClientAuth().Method)
	fmt.Println(client.CheckClientAuth(context.Background())) // the OP accepts the assertion

	handler, _ := rp.JWKSHandler(key)
	mux := http.NewServeMux()
	mux.Handle("GET /jwks.json", handler) // the client's jwks_uri
	// Output:
	// private_key_jwt
	// <nil>
}

// The FAPI 2.0 Security Profile in one switch: PAR, private_key_jwt,
// PKCE S256, iss required, PS256/ES256/EdDSA only.
func ExampleFAPI2() {
	op, done := exampleOP()
	defer done()
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := &rp.ClientKey{Signer: signer}
	jwks, _ := rp.JWKS(key)
	op.AddClient(oidctest.Client{ID: "webc_bank", JWKS: jwks})

	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	if _, err := provider.Client(rp.Config{ClientID: "webc_bank", ClientSecret: "s", Profile: rp.FAPI2}); err != nil {
		fmt.Println(rp.ClassOf(err)) // a secret breaks the profile
	}
	client, _ := provider.Client(rp.Config{
		ClientID: "webc_bank", Key: key, Profile: rp.FAPI2,
		RedirectURL: "https://bank.example.com/auth/callback",
	})
	tx := pkce.NewTransaction(client.Issuer(), "/")
	authURL, _ := client.AuthCodeURL(context.Background(), tx, nil)
	u, _ := url.Parse(authURL)
	fmt.Println(len(u.Query()), u.Query().Has("request_uri")) // pushed: client_id and request_uri only
	// Output:
	// misconfigured
	// 2 true
}
