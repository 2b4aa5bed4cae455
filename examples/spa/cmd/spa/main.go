// Command spa serves the demo's single-page app alone, against any OP,
// configured by environment variables:
//
//	MULTIAPP_ISSUER=https://yourenv.scalekit.com MULTIAPP_CLIENT_ID=spac_... \
//	MULTIAPP_REDIRECT_URL=http://localhost:8083/auth/callback \
//	MULTIAPP_POST_LOGOUT_REDIRECT_URL=http://localhost:8083/ \
//	MULTIAPP_API_URL=http://localhost:8084 \
//	go run ./spa/cmd/spa
//
// Also read: MULTIAPP_ADDR (default: the redirect URL's host and port) and
// MULTIAPP_SCOPES. The SPA is a public client: MULTIAPP_CLIENT_SECRET must
// be empty. The OP must allow the SPA's origin to call its token endpoint
// (CORS). It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/spa"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, addr, err := spa.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	h, err := spa.Handler(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("single-page app listening", "addr", ln.Addr().String(), "redirect_url", cfg.RedirectURL)
	if err := appenv.Serve(ctx, ln, h, log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
