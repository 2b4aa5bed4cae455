// Package demo starts the whole multi-app demo in one process: the
// development OP and every example app, each on its own port, sharing one
// sign-in. The command in ../multiapp-demo runs it until Ctrl-C; tests start it
// the same way, with [Start].
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/spa"
	"github.com/multiapp-go/multiapp/examples/webapp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Config says where the demo listens. Each address is host:port; port 0
// picks a free port (tests). The zero value of a field takes the default
// of [DefaultConfig].
type Config struct {
	// OP is where the development OP listens; its issuer is
	// http://OP (default 127.0.0.1:9000, devop.DemoIssuer).
	OP string
	// Dashboard, Docs, SPA and API are where the apps listen (defaults
	// 127.0.0.1:8081 to :8084). Their URLs use AppHost.
	Dashboard, Docs, SPA, API string
	// AppHost is the host name of the apps' URLs (default "localhost"). The
	// OP is on 127.0.0.1, a different cookie host, as the devop README
	// explains.
	AppHost string
	// YourApp is the origin (scheme://host:port) of your own app, which
	// the demo does not run: the OP registers the spare client "yourapp"
	// (secret "yourapp-secret") with its redirect, post-logout and
	// back-channel logout URLs there (default http://localhost:8085).
	YourApp string
	// Clients are registered at the OP besides the demo's own (the
	// -client flag of multiapp-demo), e.g. for a second app of yours.
	Clients []devop.Client
	// Logger receives the logs of the OP and the apps. Nil: discarded.
	Logger *slog.Logger
	// Observer receives the library's events of the web apps and the API
	// besides the logs (multiapp-demo: OpenTelemetry metrics). Nil: none.
	Observer event.Observer
}

// DefaultConfig returns the demo's addresses: the OP on 127.0.0.1:9000, the
// dashboard on :8081, docs on :8082, the single-page app on :8083 and the
// API on :8084, as registered in devop.DefaultClients.
func DefaultConfig() Config {
	return Config{
		OP:        "127.0.0.1:9000",
		Dashboard: "127.0.0.1:8081",
		Docs:      "127.0.0.1:8082",
		SPA:       "127.0.0.1:8083",
		API:       "127.0.0.1:8084",
		AppHost:   "localhost",
		YourApp:   DefaultYourApp,
	}
}

// URLs are the addresses of the running demo.
type URLs struct {
	Issuer    string
	Dashboard string
	Docs      string
	SPA       string
	API       string
	// YourApp is the origin registered for the spare client "yourapp".
	YourApp string
	// Metrics is the metrics page, when the command serves one (Guide
	// lists it); Start leaves it empty.
	Metrics string
}

// Demo is the running demo.
type Demo struct {
	// OP is the development OP, for tests (sessions, stats, admin logout).
	OP *devop.OP
	// URLs of the OP and the apps.
	URLs URLs
	// Clients are the clients registered at the OP, with the URLs the apps
	// listen on (see [Clients]).
	Clients []devop.Client
	// Audiences are added to the aud of every access token the OP issues
	// (devop.DemoAPIAudience: the API's).
	Audiences []string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closed []func()
}

// Start listens on every address, then serves the OP and the apps in the
// background until ctx is done or Close is called. It returns once every
// app is ready to serve. The OP's clients are the demo clients
// (devop.DefaultClients) with the URLs the apps really listen on.
//
// The web apps and the API share one session store: the web apps'
// back-channel logout routes record there the OP sessions that ended, and
// the API refuses the access tokens of those sessions (revocation
// awareness). In production that store is the apps' shared Redis.
//
// Any error (a port already taken, the OP unreachable) stops what was
// started and is returned; it starts with "demo: ".
func Start(ctx context.Context, cfg Config) (*Demo, error) {
	def := DefaultConfig()
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&cfg.OP, def.OP}, {&cfg.Dashboard, def.Dashboard}, {&cfg.Docs, def.Docs},
		{&cfg.SPA, def.SPA}, {&cfg.API, def.API}, {&cfg.AppHost, def.AppHost}, {&cfg.YourApp, def.YourApp},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	log := cfg.Logger
	if log == nil {
		log = appenv.Discard()
	}

	ctx, cancel := context.WithCancel(ctx)
	d := &Demo{cancel: cancel}
	lns := make([]net.Listener, 5)
	started := false
	defer func() {
		if !started {
			d.Close()
			for _, l := range lns {
				if l != nil {
					l.Close() // those not served yet
				}
			}
		}
	}()
	fail := func(what string, err error) (*Demo, error) {
		return nil, fmt.Errorf("demo: %s: %w", what, err)
	}

	// Listen first: with port 0 the URLs are known only then.
	names := []string{"OP", "dashboard", "docs", "SPA", "API"}
	addrs := []string{cfg.OP, cfg.Dashboard, cfg.Docs, cfg.SPA, cfg.API}
	for i, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("demo: the %s cannot listen on %s: %w\n(is the demo already running, or another program on that port? stop it, or choose other ports with the flags: -help lists them)", names[i], a, err)
		}
		lns[i] = ln
	}
	port := func(ln net.Listener) string { return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) }
	opHost, _, _ := net.SplitHostPort(cfg.OP)
	if opHost == "" || opHost == "0.0.0.0" || opHost == "::" {
		opHost = "127.0.0.1"
	}
	d.URLs = URLs{
		Issuer:    "http://" + net.JoinHostPort(opHost, port(lns[0])),
		Dashboard: "http://" + cfg.AppHost + ":" + port(lns[1]),
		Docs:      "http://" + cfg.AppHost + ":" + port(lns[2]),
		SPA:       "http://" + cfg.AppHost + ":" + port(lns[3]),
		API:       "http://" + cfg.AppHost + ":" + port(lns[4]),
		YourApp:   strings.TrimSuffix(cfg.YourApp, "/"),
	}
	u := d.URLs

	// The OP, with the demo clients at the apps' real URLs.
	opCfg := devop.DemoConfig()
	opCfg.Issuer = u.Issuer
	opCfg.Clients = append(Clients(u), cfg.Clients...)
	opCfg.Logger = log.With("app", "op")
	d.Clients = opCfg.Clients
	d.Audiences = opCfg.AccessTokenAudience
	op, err := devop.New(opCfg)
	if err != nil {
		return fail("the development OP", err)
	}
	d.OP = op
	d.serve(ctx, "op", func(ctx context.Context) error { return op.Serve(ctx, lns[0]) })

	// One store for the web apps and the API (see above).
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	d.onClose(func() { store.Close() })

	// One random cookie key per run: the sessions live in memory anyway.
	cookieKey := make([]byte, 32)
	rand.Read(cookieKey)
	links := []webapp.Link{{Name: "Dashboard", URL: u.Dashboard + "/"}, {Name: "Docs", URL: u.Docs + "/"}, {Name: "SPA", URL: u.SPA + "/"}, {Name: "OP", URL: u.Issuer + "/"}}
	// The web apps discover the OP, which is serving now.
	for i, w := range []struct{ id, name, origin string }{
		{"dashboard", "Dashboard", u.Dashboard},
		{"docs", "Docs", u.Docs},
	} {
		discover, stop := context.WithTimeout(ctx, 10*time.Second)
		app, err := webapp.New(discover, webapp.Config{
			Name:                  w.name,
			Issuer:                u.Issuer,
			ClientID:              w.id,
			ClientSecret:          clientSecret(d.Clients, w.id),
			RedirectURL:           w.origin + "/auth/callback",
			PostLogoutRedirectURL: w.origin + "/",
			APIURL:                u.API,
			CookieKey:             cookieKey,
			Store:                 store,
			Links:                 links,
			Logger:                log.With("app", w.id),
			Observer:              cfg.Observer,
		})
		stop()
		if err != nil {
			return fail("the "+w.id+" app", err)
		}
		d.onClose(app.Close)
		ln := lns[1+i]
		d.serve(ctx, w.id, func(ctx context.Context) error { return appenv.Serve(ctx, ln, app, log.With("app", w.id)) })
	}

	spaLinks := make([]spa.Link, len(links))
	for i, l := range links {
		spaLinks[i] = spa.Link{Name: l.Name, URL: l.URL}
	}
	spaHandler, err := spa.Handler(spa.Config{
		Issuer:                u.Issuer,
		ClientID:              "spa",
		RedirectURL:           u.SPA + "/auth/callback",
		PostLogoutRedirectURL: u.SPA + "/",
		APIURL:                u.API,
		Links:                 spaLinks,
	})
	if err != nil {
		return fail("the SPA", err)
	}
	d.serve(ctx, "spa", func(ctx context.Context) error { return appenv.Serve(ctx, lns[3], spaHandler, log.With("app", "spa")) })

	discover, stop := context.WithTimeout(ctx, 10*time.Second)
	apiHandler, err := api.New(discover, api.Config{
		Issuer:         u.Issuer,
		Audience:       devop.DemoAPIAudience,
		AllowedOrigins: []string{u.SPA},
		Revocations:    store,
		Logger:         log.With("app", "api"),
		Observer:       cfg.Observer,
	})
	stop()
	if err != nil {
		return fail("the API", err)
	}
	d.serve(ctx, "api", func(ctx context.Context) error { return appenv.Serve(ctx, lns[4], apiHandler, log.With("app", "api")) })
	started = true
	return d, nil
}

// clientSecret returns the secret of the client id among cs.
func clientSecret(cs []devop.Client, id string) string {
	for _, c := range cs {
		if c.ID == id {
			return c.Secret
		}
	}
	return ""
}

// DefaultYourApp is where devop.DefaultClients registers the spare client
// "yourapp", for a newcomer's own app.
const DefaultYourApp = "http://localhost:8085"

// Clients returns the demo clients of devop.DefaultClients with the URLs of
// u: the web apps', the SPA's and yourapp's redirect, post-logout and
// back-channel logout URLs follow where they listen.
func Clients(u URLs) []devop.Client {
	your := u.YourApp
	if your == "" {
		your = DefaultYourApp
	}
	repl := strings.NewReplacer(
		"http://localhost:8081", u.Dashboard,
		"http://localhost:8082", u.Docs,
		"http://localhost:8083", u.SPA,
		DefaultYourApp, your,
	)
	cs := devop.DefaultClients()
	for i := range cs {
		c := &cs[i]
		for j := range c.RedirectURIs {
			c.RedirectURIs[j] = repl.Replace(c.RedirectURIs[j])
		}
		for j := range c.PostLogoutRedirectURIs {
			c.PostLogoutRedirectURIs[j] = repl.Replace(c.PostLogoutRedirectURIs[j])
		}
		c.BackChannelLogoutURI = repl.Replace(c.BackChannelLogoutURI)
	}
	return cs
}

func (d *Demo) serve(ctx context.Context, name string, run func(context.Context) error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := run(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.mu.Lock()
			d.errs = append(d.errs, fmt.Errorf("%s: %w", name, err))
			d.mu.Unlock()
		}
	}()
}

func (d *Demo) onClose(f func()) {
	d.mu.Lock()
	d.closed = append(d.closed, f)
	d.mu.Unlock()
}

// Close stops every server, waits for them, and returns their errors.
func (d *Demo) Close() error {
	d.cancel()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.closed {
		f()
	}
	d.closed = nil
	return errors.Join(d.errs...)
}
