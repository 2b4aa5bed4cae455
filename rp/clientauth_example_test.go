package rp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// At start, an app asks the OP whether it accepts its credentials, without a
// user: the OP here enforces client_secret_post, the method the client is
// registered with, and the library detects it.
func ExampleClient_CheckClientAuth() {
	op, done := exampleOP()
	defer done()
	op.AddClient(oidctest.Client{ID: "webc_dashboard", Secret: "secret", AuthMethod: "client_secret_post"})
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := provider.Client(rp.Config{
		ClientID: "webc_dashboard", ClientSecret: "secret",
		RedirectURL: "http://localhost:8081/auth/callback",
		// AuthMethod left empty: the library chooses, and checks.
		OnClientAuth: func(a rp.ClientAuth, err error) {
			log.Info("client authentication", "method", a.Method, "source", a.Source, "why", a.Why, "err", err)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = client.CheckClientAuth(context.Background())
	var refused *rp.ClientAuthError
	switch {
	case errors.As(err, &refused) && refused.Accepted != "":
		fmt.Println("register the app for", refused.Method, "or configure", refused.Accepted)
	case errors.As(err, &refused):
		fmt.Println("the OP rejects the client's credentials:", err)
	case errors.Is(err, rp.ErrTemporary):
		fmt.Println("the OP did not answer; sign-ins will tell")
	case err == nil:
		a := client.ClientAuth()
		fmt.Println(a.Method, a.Source)
	}
	// Output: client_secret_post detected
}
