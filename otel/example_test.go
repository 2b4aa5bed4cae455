package otel_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/otel"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// Metrics beside the audit log: give the joined observer to every layer
// (rp.ProviderOptions.Observer, middleware.WebConfig.Observer,
// bearer.Config.Observer, backchannel.Handler.Observer). Here a
// ManualReader reads the metrics back; an application uses an exporter
// (Prometheus, OTLP) as its reader.
func Example() {
	reader := sdkmetric.NewManualReader()
	metrics, err := otel.New(otel.Config{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		TracerProvider: noop.NewTracerProvider(), // metrics only
	})
	if err != nil {
		panic(err)
	}
	events := event.Join(event.Log(slog.Default()), metrics)

	// What the library reports when a user signs in silently, then when a
	// refresh finds the OP down, and for two API requests with one token:
	ctx := context.Background()
	event.Emit(ctx, events, event.Event{Name: event.Login, Silent: true, ClientID: "dashboard", Duration: 80 * time.Millisecond})
	event.Emit(ctx, events, event.Event{Name: event.RefreshTemporary, Reason: "op_unavailable", Class: "temporary", Duration: 2 * time.Second})
	event.Emit(ctx, events, event.Event{Name: event.AccessToken, CacheHit: false, Duration: 40 * time.Microsecond})
	event.Emit(ctx, events, event.Event{Name: event.AccessToken, CacheHit: true, Duration: time.Microsecond})

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				fmt.Println(m.Name, p.Value)
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				op, _ := p.Attributes.Value("multiapp.operation")
				fmt.Println(m.Name, op.Emit(), p.Count)
			}
		}
	}
	// Unordered output:
	// multiapp.logins 1
	// multiapp.op.duration code_exchange 1
	// multiapp.op.duration refresh 1
	// multiapp.refreshes 1
	// multiapp.access_token.duration  1
	// multiapp.access_token.duration  1
	// multiapp.token_cache.misses 1
	// multiapp.token_cache.hits 1
}

// A web app and an API of one process, with the audit log and
// OpenTelemetry: one Observer for every layer. The application sets up the
// SDK and its exporter (OTLP, Prometheus...) as usual; this only wires the
// library to them.
func Example_webApp() {
	ctx := context.Background()
	logger := slog.Default()
	metrics, err := otel.New(otel.Config{}) // the global providers, set by the application's SDK setup
	if err != nil {
		log.Fatal(err)
	}
	events := event.Join(event.Log(logger), metrics)

	provider, err := rp.Discover(ctx, "https://example.scalekit.dev", &rp.ProviderOptions{Observer: events}) // JWKS fetches, access-token checks
	if err != nil {
		log.Fatal(err)
	}
	client, err := provider.Client(rp.Config{
		ClientID:     "dashboard",
		ClientSecret: os.Getenv("MULTIAPP_CLIENT_SECRET"),
		RedirectURL:  "https://dashboard.example.com/auth/callback",
	})
	if err != nil {
		log.Fatal(err)
	}
	web, err := middleware.NewWeb(middleware.WebConfig{
		Client:     client,
		Store:      tokenstore.NewMemory(tokenstore.MemoryOptions{}),
		CookieKeys: [][]byte{[]byte(os.Getenv("MULTIAPP_COOKIE_KEY"))},
		Observer:   events, // sign-ins, refreshes, logouts, back-channel logouts, store calls
	})
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}})
	if err != nil {
		log.Fatal(err)
	}
	api, err := bearer.New(bearer.Config{Verifier: verifier, Observer: events}) // refused API requests
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })))
	mux.Handle("/api/", api.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "{}") })))
	log.Fatal(http.ListenAndServe(":8081", mux))
}
