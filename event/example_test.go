package event_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/multiapp-go/multiapp/event"
)

// counts is a metrics observer: it counts events by name and outcome,
// never by user. A real one would feed OpenTelemetry or Prometheus.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Observe(_ context.Context, e event.Event) {
	key := string(e.Name)
	switch e.Name {
	case event.Login:
		key = fmt.Sprintf("%s silent=%t", e.Name, e.Silent)
	case event.AccessToken:
		key = fmt.Sprintf("%s cache_hit=%t", e.Name, e.CacheHit)
	}
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
}

// Metrics next to the audit log: give the joined observer to every layer
// (middleware.WebConfig.Observer, bearer.Config.Observer,
// backchannel.Handler.Observer, rp.ProviderOptions.Observer).
func Example() {
	metrics := &counts{n: map[string]int{}}
	obs := event.Join(event.Log(slog.Default()), metrics)

	// What the library does when a user signs in silently, then when a
	// refresh finds the OP down:
	ctx := context.Background()
	event.Emit(ctx, obs, event.Event{Name: event.Login, Silent: true, ClientID: "dashboard"})
	event.Emit(ctx, obs, event.Event{Name: event.RefreshTemporary, ClientID: "dashboard", Reason: "op_unavailable"})

	fmt.Println(metrics.n["multiapp.login silent=true"], metrics.n["multiapp.refresh.temporary"])
	// Output: 1 1
}
