// Package otel is an [event.Observer] that feeds OpenTelemetry: counters
// of sign-ins, refreshes, logouts and refusals by outcome, token-cache hits
// and misses, histograms of how long token validation, session-store calls
// and calls to the OP take, and a span for each of those calls.
//
//	metrics, err := otel.New(otel.Config{MeterProvider: mp, TracerProvider: tp})
//	...
//	events := event.Join(event.Log(logger), metrics) // the audit log and OpenTelemetry
//	provider, err := rp.Discover(ctx, issuer, &rp.ProviderOptions{Observer: events})
//	web, err := middleware.NewWeb(middleware.WebConfig{Client: client, Observer: events, ...})
//	api, err := bearer.New(bearer.Config{Verifier: verifier, Observer: events})
//
// It is its own Go module, so that the library itself does not depend on
// OpenTelemetry; it uses the OpenTelemetry API only: the SDK and the
// exporters (OTLP, Prometheus) are the application's choice.
//
// # Metrics
//
// Every instrument is named multiapp.*; the Prometheus exporter writes
// multiapp_logins_total, multiapp_op_duration_seconds and so on. Durations
// are in seconds. The table of instruments and their attributes is in
// docs/observability.md.
//
// # Cardinality
//
// Every attribute value comes from a closed set: the outcome (from the
// event's name), the error class (error.type), silent, cache hit, the
// operation, the HTTP status of a refusal, and the reason, which is one of
// the codes the library emits (a validation code, a stable reason, an
// OAuth error code of RFC 6749 or OpenID Connect) or "other". The reason
// needs that rule: one source of reasons is the error code in an
// authorization response, which whoever crafts a callback URL chooses.
// The app's client id becomes an attribute only with
// [Config.ClientIDAttribute]. A user (Subject), an OP session (SID), a
// local session (Session), the issuer or a URL, a token and an error's
// text never become attributes, of a metric or a span: they stay in the
// audit log (event.Log).
//
// # Spans
//
// The library reports a call after it ended, with its Duration: a call to
// the OP (code exchange, refresh, JWKS fetch), a session-store call, a
// token validation or the store work of a back-channel logout. Each becomes
// a span with explicit timestamps: it ends when the event arrives and
// starts Duration earlier. It is a child of the recording span in the
// event's context (e.g. the server span of an otelhttp-wrapped handler);
// without one (no traced request, or one its sampler left out) no span is
// made, so untraced work makes no orphan root spans. Since the span is
// made after the call, it is not the parent of spans made during the call
// (an instrumented HTTP client's): those are its siblings. An event without
// a Duration (a refused request, a failed sign-in) is added as a span event
// to the context's recording span.
//
// # Cost
//
// An attribute set is made once per distinct set and then shared (every
// value comes from a closed set, so they are few): an access-token event,
// one per API request, costs about 0.5 µs and 2 allocations with the SDK
// meter and no recording span (BenchmarkObserve, 2 cores).
package otel

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/multiapp-go/multiapp/event"
)

// ScopeName is the instrumentation scope of the meter and the tracer, for
// views (e.g. other histogram buckets) and for filtering.
const ScopeName = "github.com/multiapp-go/multiapp/otel"

// Config says where the measurements go. The zero value uses the global
// providers (otel.GetMeterProvider, otel.GetTracerProvider), which discard
// everything until the application sets them.
type Config struct {
	// MeterProvider makes the instruments. Nil: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the spans. Nil: otel.GetTracerProvider(). For
	// metrics without spans: go.opentelemetry.io/otel/trace/noop's
	// NewTracerProvider().
	TracerProvider trace.TracerProvider
	// ClientIDAttribute adds the attribute multiapp.client_id (the app's
	// OAuth client id) to the web layer's measurements, to tell apart
	// several apps served by one process. Off by default: the client ids
	// are the application's configuration, so the set is closed, but each
	// one multiplies the series.
	ClientIDAttribute bool
}

// Observer turns events into measurements and spans. It is safe for
// concurrent use. It wants every event, including the per-request ones
// (store calls and access-token checks), which the library measures only
// for an observer that wants them.
type Observer struct {
	tracer    trace.Tracer
	routes    map[event.Name]*route
	other     *route // an event this version does not know
	hits      metric.Int64Counter
	misses    metric.Int64Counter
	clientIDs bool
	sets      sync.Map // setKey -> attribute.Set
}

// The attribute keys.
const (
	keyClientID  = attribute.Key("multiapp.client_id")
	keyOutcome   = attribute.Key("multiapp.outcome")
	keySilent    = attribute.Key("multiapp.silent")
	keyReason    = attribute.Key("multiapp.reason")
	keyCacheHit  = attribute.Key("multiapp.cache_hit")
	keyOperation = attribute.Key("multiapp.operation")
	// OpenTelemetry's own names (semantic conventions).
	keyErrorType = attribute.Key("error.type")
	keyStatus    = attribute.Key("http.response.status_code")
)

// fields says which attributes a measurement carries: a field that is
// empty in the event is left out.
type fields uint16

const (
	withClientID fields = 1 << iota
	withOutcome
	withSilent
	withReason
	withErrorType
	withCacheHit
	withOperation
	withStatus
)

// route is what an event name becomes.
type route struct {
	count   metric.Int64Counter     // nil: not counted
	cfields fields                  // the counter's attributes
	hist    metric.Float64Histogram // of Duration; nil: none
	hfields fields                  // the histogram's attributes
	outcome string                  // multiapp.outcome; empty: ok, or error when the event has a class
	op      string                  // multiapp.operation
	span    string                  // span name
	kind    trace.SpanKind
}

// Histogram buckets, in seconds: in-process work and store calls (a memory
// store answers in about a microsecond, Redis in tens of them), and calls
// to the OP (as OpenTelemetry's HTTP client durations).
var (
	fastBuckets = []float64{0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	opBuckets   = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30}
)

// New returns an Observer with its instruments made from cfg's providers.
func New(cfg Config) (*Observer, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(ScopeName)
	var err error
	fail := func(name string, e error) {
		if e != nil && err == nil {
			err = fmt.Errorf("otel: instrument %s: %w", name, e)
		}
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		fail(name, e)
		return c
	}
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		fail(name, e)
		return h
	}

	logins := counter("multiapp.logins", "{login}", "Sign-ins at the web apps, by outcome (ok, failed, error) and silent (prompt=none).")
	stepUps := counter("multiapp.step_ups", "{step_up}", "Users sent to sign in again for a stronger or more recent sign-in (step-up, RFC 9470), by reason (acr, max_age, api).")
	logouts := counter("multiapp.logouts", "{logout}", "Sign-outs at the web apps (reason no_live_session: there was no session to end).")
	revokeFailures := counter("multiapp.logout.revoke_failures", "{failure}", "Refresh tokens the OP did not revoke at a sign-out (the local sign-out happened).")
	ended := counter("multiapp.sessions.ended", "{session}", "Sessions ended by the library's own rules: outcome expired (reason idle or lifetime) or invalid.")
	refreshes := counter("multiapp.refreshes", "{refresh}", "Token refreshes, by outcome (ok, revoked, temporary, misconfigured, invalid).")
	opTime := hist("multiapp.op.duration", "Duration of calls to the OP, by operation: code_exchange (with the new session's creation), refresh, jwks_fetch.", opBuckets)
	storeTime := hist("multiapp.store.duration", "Duration of the web layer's session-store calls, by operation (get, create, update, delete, lock); the count counts the calls.", fastBuckets)
	storeDown := counter("multiapp.store.unavailable", "{request}", "Requests answered 503 because the session store was out of reach.")
	backchannel := counter("multiapp.backchannel_logouts", "{logout}", "Back-channel logout requests, by outcome (ok, rejected, unavailable, error, held, dropped).")
	backchannelTime := hist("multiapp.backchannel_logout.duration", "Duration of the store work of an applied back-channel logout.", fastBuckets)
	refusals := counter("multiapp.bearer.refusals", "{request}", "API requests refused by the bearer layer, by reason and HTTP status.")
	tokenTime := hist("multiapp.access_token.duration", "Duration of access-token validations, by cache hit and outcome; the count counts them.", fastBuckets)
	hits := counter("multiapp.token_cache.hits", "{token}", "Access tokens answered from the verified-token cache.")
	misses := counter("multiapp.token_cache.misses", "{token}", "Access tokens not in the verified-token cache (validated in full).")
	fetches := counter("multiapp.jwks.fetches", "{fetch}", "Fetches of the OP's JWKS, by outcome (ok, error).")
	cooldowns := counter("multiapp.jwks.cooldowns", "{token}", "Tokens whose key was not in a JWKS fetched within the cooldown, so it was not fetched again.")
	clientAuth := counter("multiapp.client_auth.checks", "{check}", "Checks of the client's authentication at the OP, by outcome (ok, error).")
	others := counter("multiapp.events.other", "{event}", "Events this version of the module has no instrument for (a newer library: update this module).")
	if err != nil {
		return nil, err
	}

	const (
		web      = withClientID | withOutcome | withReason | withErrorType
		opCall   = withOperation | withOutcome | withErrorType
		internal = trace.SpanKindInternal
		client   = trace.SpanKindClient
	)
	login := func(outcome string) *route {
		return &route{count: logins, cfields: web | withSilent, outcome: outcome}
	}
	refresh := func(outcome string) *route {
		return &route{count: refreshes, cfields: web, hist: opTime, hfields: opCall, outcome: outcome, op: "refresh", span: "multiapp.refresh", kind: client}
	}
	store := func(op string) *route {
		return &route{hist: storeTime, hfields: withOperation | withErrorType, op: op, span: "multiapp.store." + op, kind: client}
	}
	bc := func(outcome string) *route {
		return &route{count: backchannel, cfields: withOutcome | withReason | withErrorType, outcome: outcome}
	}
	o := &Observer{
		tracer:    tp.Tracer(ScopeName),
		other:     &route{count: others, span: "multiapp.event"},
		hits:      hits,
		misses:    misses,
		clientIDs: cfg.ClientIDAttribute,
		routes: map[event.Name]*route{
			event.Login:             {count: logins, cfields: web | withSilent, hist: opTime, hfields: opCall, outcome: "ok", op: "code_exchange", span: "multiapp.login", kind: client},
			event.LoginFailed:       login("failed"),
			event.LoginSilentFailed: login("failed"),
			event.LoginError:        login("error"),
			// event.StepUp, landing with step-up authentication (issue 15.4).
			event.StepUp: {count: stepUps, cfields: withClientID | withReason | withErrorType},

			event.Logout:             {count: logouts, cfields: withClientID | withReason},
			event.LogoutRevokeFailed: {count: revokeFailures, cfields: withClientID | withErrorType},
			event.SessionExpired:     {count: ended, cfields: web, outcome: "expired"},
			event.SessionInvalid:     {count: ended, cfields: web, outcome: "invalid"},

			event.Refresh:              refresh("ok"),
			event.RefreshRevoked:       refresh("revoked"),
			event.RefreshTemporary:     refresh("temporary"),
			event.RefreshMisconfigured: refresh("misconfigured"),
			event.RefreshInvalid:       refresh("invalid"),

			event.StoreGet:         store("get"),
			event.StoreCreate:      store("create"),
			event.StoreUpdate:      store("update"),
			event.StoreDelete:      store("delete"),
			event.StoreLock:        store("lock"),
			event.StoreUnavailable: {count: storeDown, cfields: withClientID},

			event.BackchannelLogout:            {count: backchannel, cfields: withOutcome | withReason | withErrorType, hist: backchannelTime, outcome: "ok", span: "multiapp.backchannel_logout", kind: internal},
			event.BackchannelLogoutRejected:    bc("rejected"),
			event.BackchannelLogoutUnavailable: bc("unavailable"),
			event.BackchannelLogoutError:       bc("error"),
			event.BackchannelLogoutHeld:        bc("held"),
			event.BackchannelLogoutDropped:     bc("dropped"),

			event.BearerRefused: {count: refusals, cfields: withReason | withErrorType | withStatus},
			event.AccessToken:   {hist: tokenTime, hfields: withCacheHit | withOutcome | withErrorType, span: "multiapp.access_token", kind: internal},

			event.JWKSFetch:    {count: fetches, cfields: withOutcome | withErrorType, hist: opTime, hfields: opCall, op: "jwks_fetch", span: "multiapp.jwks.fetch", kind: client},
			event.JWKSCooldown: {count: cooldowns},
			event.ClientAuth:   {count: clientAuth, cfields: withClientID | withOutcome | withErrorType},
		},
	}
	return o, nil
}

// Observe implements event.Observer.
func (o *Observer) Observe(ctx context.Context, e event.Event) {
	r := o.routes[e.Name]
	if r == nil {
		r = o.other
	}
	if r.count != nil && r.count.Enabled(ctx) {
		r.count.Add(ctx, 1, metric.WithAttributeSet(o.set(e, r, r.cfields)))
	}
	if e.Name == event.AccessToken {
		c := o.misses
		if e.CacheHit {
			c = o.hits
		}
		c.Add(ctx, 1)
	}
	if r.hist != nil && e.Duration > 0 && r.hist.Enabled(ctx) {
		r.hist.Record(ctx, e.Duration.Seconds(), metric.WithAttributeSet(o.set(e, r, r.hfields)))
	}
	o.trace(ctx, e, r)
}

// trace makes the span of an event with a Duration, or adds the event to
// the span of ctx; nothing when ctx has no recording span (a call outside a
// traced request, or one its sampler left out).
func (o *Observer) trace(ctx context.Context, e event.Event, r *route) {
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return
	}
	end := time.Now()
	if e.Duration <= 0 || r.span == "" {
		name := string(e.Name)
		if r == o.other {
			name = r.span
		}
		sp.AddEvent(name, trace.WithTimestamp(end), trace.WithAttributes(o.attributes(e, r, r.cfields|r.hfields)...))
		return
	}
	_, sp = o.tracer.Start(ctx, r.span, trace.WithTimestamp(end.Add(-e.Duration)), trace.WithSpanKind(r.kind))
	if sp.IsRecording() {
		sp.SetAttributes(o.attributes(e, r, r.cfields|r.hfields)...)
		if e.Class != "" || e.Err != nil {
			sp.SetStatus(codes.Error, describe(e))
		}
	}
	sp.End(trace.WithTimestamp(end))
}

// describe is a failed span's status description: its reason or class,
// never the error's text (which may name a user, a URL or a claim's value).
func describe(e event.Event) string {
	switch {
	case e.Reason != "":
		return reason(e.Reason)
	case e.Class != "":
		return class(e.Class)
	}
	return "error"
}

// setKey is what an attribute set depends on: every value in it comes
// from a closed set, so the cache of sets (Observer.sets) is bounded.
type setKey struct {
	r                *route
	f                fields
	clientID         string
	reason, class    string
	failed           bool
	silent, cacheHit bool
	status           int64
}

// set returns the attribute set f of e routed by r, made once per
// distinct set and then shared: the per-request events (store calls,
// access tokens) then cost no allocation for their attributes.
func (o *Observer) set(e event.Event, r *route, f fields) attribute.Set {
	k := setKey{r: r, f: f, failed: e.Err != nil || e.Class != "", silent: e.Silent && f&withSilent != 0, cacheHit: e.CacheHit && f&withCacheHit != 0}
	if f&withClientID != 0 && o.clientIDs {
		k.clientID = e.ClientID
	}
	if f&withReason != 0 && e.Reason != "" {
		k.reason = reason(e.Reason)
	}
	if f&withErrorType != 0 && e.Class != "" {
		k.class = class(e.Class)
	}
	if f&withStatus != 0 {
		k.status = status(e.Attrs)
	}
	if s, ok := o.sets.Load(k); ok {
		return s.(attribute.Set)
	}
	s := attribute.NewSet(o.attributes(e, r, f)...)
	o.sets.Store(k, s)
	return s
}

// attributes returns the attributes f of e routed by r.
func (o *Observer) attributes(e event.Event, r *route, f fields) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 6)
	if f&withClientID != 0 && o.clientIDs && e.ClientID != "" {
		a = append(a, keyClientID.String(e.ClientID))
	}
	if f&withOperation != 0 && r.op != "" {
		a = append(a, keyOperation.String(r.op))
	}
	if f&withOutcome != 0 {
		outcome := r.outcome
		if outcome == "" { // told by the event's class: ok or error
			outcome = "ok"
			if e.Err != nil || e.Class != "" {
				outcome = "error"
			}
		}
		a = append(a, keyOutcome.String(outcome))
	}
	if f&withSilent != 0 {
		a = append(a, keySilent.Bool(e.Silent))
	}
	if f&withCacheHit != 0 {
		a = append(a, keyCacheHit.Bool(e.CacheHit))
	}
	if f&withReason != 0 && e.Reason != "" {
		a = append(a, keyReason.String(reason(e.Reason)))
	}
	if f&withErrorType != 0 && e.Class != "" {
		a = append(a, keyErrorType.String(class(e.Class)))
	}
	if f&withStatus != 0 {
		if s := status(e.Attrs); s != 0 {
			a = append(a, keyStatus.Int64(s))
		}
	}
	return a
}

// class bounds an error class to the library's names.
func class(c string) string {
	switch c {
	case "invalid", "temporary", "revoked", "misconfigured", "none":
		return c
	}
	return "other"
}

// status is the event's HTTP status (attribute status) when it is one, or
// 0.
func status(attrs []slog.Attr) int64 {
	for _, a := range attrs {
		if a.Key == "status" && a.Value.Kind() == slog.KindInt64 {
			if s := a.Value.Int64(); s >= 100 && s <= 599 {
				return s
			}
		}
	}
	return 0
}
