// Command webapp runs one demo web app alone, against any OP, configured by
// environment variables:
//
//	MULTIAPP_ISSUER=https://yourenv.scalekit.com \
//	MULTIAPP_CLIENT_ID=webc_... MULTIAPP_CLIENT_SECRET=... \
//	MULTIAPP_REDIRECT_URL=http://localhost:8081/auth/callback \
//	MULTIAPP_POST_LOGOUT_REDIRECT_URL=http://localhost:8081/ \
//	MULTIAPP_COOKIE_KEY=$(openssl rand -hex 32) \
//	go run ./webapp/cmd/webapp
//
// Also read: MULTIAPP_ADDR (default: the redirect URL's host and port),
// MULTIAPP_CLIENT_KEY (instead of MULTIAPP_CLIENT_SECRET: a private key for
// private_key_jwt, PEM, JWK or a file path; the app serves its public key at
// /jwks.json), MULTIAPP_AUTH_METHOD (client_secret_basic,
// client_secret_post, private_key_jwt or none; default: the library's
// choice), MULTIAPP_PAR (true: pushed authorization requests, RFC 9126),
// MULTIAPP_PROFILE (fapi2: the FAPI 2.0 Security Profile, with
// MULTIAPP_CLIENT_KEY),
// MULTIAPP_APP_NAME, MULTIAPP_API_URL,
// MULTIAPP_SCOPES. At start it checks the client's credentials at the OP and
// warns when the OP rejects them.
//
// Several instances behind a load balancer share their sessions in Redis:
// give each the same variables plus MULTIAPP_REDIS_URL (e.g.
// redis://localhost:6379/0; rediss:// for TLS, a cluster or Sentinel: see
// redisstore.NewClient) and MULTIAPP_STORE_KEY ($(openssl rand -hex 32)),
// with the public URL as MULTIAPP_REDIRECT_URL and each its own
// MULTIAPP_ADDR. An instance whose MULTIAPP_COOKIE_KEY differs from the
// running instances' refuses to start. Register
// <origin>/auth/backchannel-logout as the app's back-channel logout URL at
// the OP. It stops on SIGINT or SIGTERM.
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

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/webapp"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, addr, err := webapp.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	discover, cancel := context.WithTimeout(ctx, 15*time.Second)
	app, err := webapp.New(discover, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer app.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log.Info("web app listening", "app", app.Name(), "addr", ln.Addr().String(), "redirect_url", cfg.RedirectURL)
	if err := appenv.Serve(ctx, ln, app, log); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
