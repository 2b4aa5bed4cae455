// Command multiapp-demo runs the whole multi-app demo in one process: a
// development OpenID Provider and every example app, sharing one sign-in.
// No accounts, no configuration, no Docker:
//
//	go run ./examples/multiapp-demo
//
// It prints the apps' URLs, every client registered at the OP (id, secret,
// redirect URI), the API's audience, the demo users and a short tour, and
// runs until Ctrl-C. Flags move the apps to other addresses (the OP's
// clients follow) and register more clients (-client id=...,secret=...,
// origin=http://localhost:8086). When it cannot start (a port taken, ...) it prints why
// and exits with status 1.
//
// The apps' metrics (sign-ins, refreshes, back-channel logouts, token-cache
// hits, OP and store latencies: github.com/multiapp-go/multiapp/otel) are
// on a Prometheus page, http://localhost:9464/metrics (-metrics moves it,
// -metrics "" turns it off).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/multiapp-go/multiapp/examples/demo"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
)

func main() {
	// zitadel/oidc logs every refused authorization request to slog's
	// default logger, including the expected login_required answer to each
	// silent sign-in: keep only its errors.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run starts the demo as configured by args, prints the guide to stdout and
// the logs to stderr, and runs until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := demo.DefaultConfig()
	fs := flag.NewFlagSet("multiapp-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := def
	fs.StringVar(&cfg.OP, "op", def.OP, "address of the development OP (its issuer is http://ADDR)")
	fs.StringVar(&cfg.Dashboard, "dashboard", def.Dashboard, "address of the dashboard web app")
	fs.StringVar(&cfg.Docs, "docs", def.Docs, "address of the docs web app")
	fs.StringVar(&cfg.SPA, "spa", def.SPA, "address of the single-page app")
	fs.StringVar(&cfg.API, "api", def.API, "address of the API")
	fs.StringVar(&cfg.YourApp, "yourapp", def.YourApp, `origin of your own app, where the OP registers the spare client "yourapp"`)
	var extra devop.ClientFlag
	fs.Var(&extra, "client", devop.ClientFlagUsage)
	quiet := fs.Bool("quiet", false, "log warnings only (default: every login, refresh and logout)")
	metricsAddr := fs.String("metrics", defaultMetrics, `address of the Prometheus metrics page, /metrics ("": none)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	cfg.Clients = extra

	var m *metrics
	if *metricsAddr != "" {
		var err error
		if m, err = newMetrics(); err != nil {
			return err
		}
		cfg.Observer = m.observer
	}
	d, err := demo.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if m != nil {
		// Listen once the demo runs: a taken demo port is the first thing
		// to report.
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			d.Close()
			return fmt.Errorf("demo: the metrics page cannot listen on %s: %w\n(choose another address with -metrics, or -metrics \"\" for none)", *metricsAddr, err)
		}
		go appenv.Serve(ctx, ln, m.handler, log.With("app", "metrics"))
		d.URLs.Metrics = "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) + "/metrics"
	}
	fmt.Fprintln(stdout, d.Guide())
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	return d.Close()
}
