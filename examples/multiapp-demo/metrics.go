package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/multiapp-go/multiapp/event"
	multiappotel "github.com/multiapp-go/multiapp/otel"
)

// defaultMetrics is where the metrics page listens: the Prometheus
// exporter's customary port.
const defaultMetrics = "127.0.0.1:9464"

// metrics is the demo's OpenTelemetry setup: the library's events become
// metrics (multiappotel.Observer) that a Prometheus exporter serves.
type metrics struct {
	observer event.Observer
	handler  http.Handler
}

// newMetrics wires an Observer to a meter provider read by a Prometheus
// exporter with a registry of its own (no global state), served as the
// /metrics page. Spans are off: the demo has no trace backend.
func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	exporter, err := promexporter.New(promexporter.WithRegisterer(reg), promexporter.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("demo: the Prometheus exporter: %w", err)
	}
	obs, err := multiappotel.New(multiappotel.Config{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		TracerProvider: noop.NewTracerProvider(),
		// The demo's apps share one process: tell them apart.
		ClientIDAttribute: true,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/metrics", http.StatusFound) })
	return &metrics{observer: obs, handler: mux}, nil
}
