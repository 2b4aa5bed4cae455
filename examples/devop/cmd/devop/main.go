// Command devop runs the development OpenID Provider of multiapp's demo.
//
//	go run ./devop/cmd/devop                      # demo clients and users at http://127.0.0.1:9000
//	go run ./devop/cmd/devop -config devop.json   # clients and users from a JSON file
//	go run ./devop/cmd/devop -client id=shop,secret=shop-secret,origin=http://localhost:8086
//
// At start it prints its clients (ids, secrets, redirect URIs, auth methods)
// and users. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/multiapp-go/multiapp/examples/devop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, without os.Exit: 0 after a clean stop, 1 when
// the OP cannot serve, 2 on a usage or configuration error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", devop.DemoIssuer, "issuer URL; the OP listens on its host and port")
	config := fs.String("config", "", "JSON file with clients, users and access_token_audience (default: the demo's)")
	debug := fs.Bool("debug", false, "log at debug level")
	var extra devop.ClientFlag
	fs.Var(&extra, "client", devop.ClientFlagUsage)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devop: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// zitadel/oidc logs request errors to the default logger.
	slog.SetDefault(logger)

	cfg := devop.DemoConfig()
	if *config != "" {
		fc, err := devop.LoadConfigFile(*config)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
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
	cfg.Clients = append(cfg.Clients, extra...)
	cfg.Logger = logger

	o, err := devop.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	u, _ := url.Parse(o.Issuer())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		fmt.Fprintf(stderr, "devop: cannot listen for %s: %v (is another OP or the demo running? choose another port with -issuer)\n", o.Issuer(), err)
		return 1
	}
	if err := o.WriteSummary(stdout); err != nil {
		ln.Close()
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "\nAdd your own app with -client id=NAME,secret=SECRET,origin=http://localhost:PORT (repeatable).")
	if err := o.Serve(ctx, ln); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
