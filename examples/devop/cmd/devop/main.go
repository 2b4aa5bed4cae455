// Command devop runs the development OpenID Provider of multiapp's demo.
//
//	go run ./devop/cmd/devop                      # demo clients and users at http://127.0.0.1:9000
//	go run ./devop/cmd/devop -config devop.json   # clients and users from a JSON file
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/multiapp-go/multiapp/examples/devop"
)

func main() {
	issuer := flag.String("issuer", devop.DemoIssuer, "issuer URL; the OP listens on its host and port")
	config := flag.String("config", "", "JSON file with clients, users and access_token_audience (default: the demo's)")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// zitadel/oidc logs request errors to the default logger.
	slog.SetDefault(logger)

	cfg := devop.DemoConfig()
	if *config != "" {
		fc, err := devop.LoadConfigFile(*config)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if fc.Clients != nil {
			cfg.Clients = fc.Clients
		}
		if fc.Users != nil {
			cfg.Users = fc.Users
		}
		if fc.AccessTokenAudience != nil {
			cfg.AccessTokenAudience = fc.AccessTokenAudience
		}
		if fc.Issuer != "" {
			cfg.Issuer = fc.Issuer
		}
	}
	if *issuer != devop.DemoIssuer || cfg.Issuer == "" {
		cfg.Issuer = *issuer
	}
	cfg.Logger = logger

	o, err := devop.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := o.ListenAndServe(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
