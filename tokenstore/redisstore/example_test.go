package redisstore_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"

	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
)

// An app running as several instances: each instance runs this, with the
// same client, cookie keys and store keys.
func Example() {
	ctx := context.Background()
	// redis://host:6379/0, rediss:// for TLS, a cluster or Sentinel (see
	// NewClient); requests fail fast (503) while Redis is down.
	store, err := redisstore.NewFromURL(ctx, os.Getenv("REDIS_URL"), redisstore.Options{
		Keys: [][]byte{[]byte(os.Getenv("SESSION_KEY"))}, // 32 random bytes
	})
	switch {
	case errors.Is(err, tokenstore.ErrUnavailable):
		log.Fatalf("Redis is unreachable: %v", err)
	case err != nil: // redisstore.ErrWrongKey, redisstore.ErrConfig
		log.Fatal(err)
	}
	defer store.Close()
	cookieKeys := [][]byte{[]byte(os.Getenv("COOKIE_KEY"))}
	// Refuse to start when a running instance seals cookies with another
	// key: it and this one would answer 401 to each other's users.
	stop, err := store.CheckCookieKeys(ctx, cookieKeys)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	provider, err := rp.Discover(ctx, os.Getenv("MULTIAPP_ISSUER"), nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := provider.Client(rp.Config{
		ClientID:     os.Getenv("MULTIAPP_CLIENT_ID"),
		ClientSecret: os.Getenv("MULTIAPP_CLIENT_SECRET"),
		RedirectURL:  "https://shop.example.com/auth/callback", // the public URL, not an instance's
	})
	if err != nil {
		log.Fatal(err)
	}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		Store:      store,
		CookieKeys: cookieKeys,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	log.Fatal(http.ListenAndServe(":8080", mux))
}
