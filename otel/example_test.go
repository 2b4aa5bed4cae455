package otel_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/otel"
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
