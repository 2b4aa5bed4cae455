// Command api runs the demo's API service alone, against any OP,
// configured by environment variables:
//
//	MULTIAPP_ISSUER=https://yourenv.scalekit.com MULTIAPP_AUDIENCE=... \
//	MULTIAPP_CORS_ORIGINS=http://localhost:8083 MULTIAPP_ADDR=localhost:8084 \
//	go run ./api/cmd/api
//
// Also read: MULTIAPP_ADMIN_PERMISSION (default dashboard:admin). It stops
// on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, addr, err := api.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	discover, cancel := context.WithTimeout(ctx, 15*time.Second)
	a, err := api.New(discover, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log.Info("API listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "audience", cfg.Audience, "cors_origins", cfg.AllowedOrigins)
	if err := appenv.Serve(ctx, ln, a, log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
