package redisstore_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
)

// An app running as several instances: each instance runs this, with the
// same client, cookie keys and store keys.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{
		Addr: os.Getenv("REDIS_ADDR"),
		// Fail fast while Redis is down: requests answer 503 at once.
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 2, DialerRetries: 1,
	})
	defer rdb.Close()
	store, err := redisstore.New(ctx, redisstore.Options{
		Client: rdb,
		Keys:   [][]byte{[]byte(os.Getenv("SESSION_KEY"))}, // 32 random bytes
	})
	switch {
	case errors.Is(err, tokenstore.ErrUnavailable):
		log.Fatalf("Redis is unreachable: %v", err)
	case err != nil: // redisstore.ErrWrongKey, redisstore.ErrConfig
		log.Fatal(err)
	}
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
		CookieKeys: [][]byte{[]byte(os.Getenv("COOKIE_KEY"))},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	log.Fatal(http.ListenAndServe(":8080", mux))
}
