package otel

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/rp"
)

// harness is an Observer whose metrics are read back with a ManualReader
// and whose spans are recorded.
type harness struct {
	obs    *Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	cfg.TracerProvider = h.tp
	obs, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.obs = obs
	return h
}

// point is one data point read back: its instrument, attributes, and the
// counter's value or the histogram's count and sum.
type point struct {
	instrument string
	unit       string
	attrs      attribute.Set
	value      int64
	count      uint64
	sum        float64
}

func (h *harness) collect(t *testing.T) []point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var ps []point
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", m.Name)
				}
				for _, dp := range d.DataPoints {
					ps = append(ps, point{instrument: m.Name, unit: m.Unit, attrs: dp.Attributes, value: dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					ps = append(ps, point{instrument: m.Name, unit: m.Unit, attrs: dp.Attributes, count: dp.Count, sum: dp.Sum})
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return ps
}

// attrString renders a set as k=v,k=v (sorted), for comparisons.
func attrString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

var errOP = errors.New("the OP said no to alice@example.com (sid 8f3a) at https://op.example/token?x=1")

// TestInstruments emits one event of each kind and reads every instrument
// back: its name, unit, attributes and value.
func TestInstruments(t *testing.T) {
	ms := 40 * time.Millisecond
	status := func(s int) []slog.Attr { return []slog.Attr{slog.Int("status", s)} }
	for _, c := range []struct {
		e     event.Event
		want  []string // instrument unit attrs value (value: n for counters, count/sum for histograms)
		spans []string // span name, kind
	}{
		{event.Event{Name: event.Login, Silent: true, ClientID: "dashboard", Subject: "alice", Duration: ms},
			[]string{"multiapp.logins {login} multiapp.outcome=ok,multiapp.silent=true 1",
				"multiapp.op.duration s multiapp.operation=code_exchange,multiapp.outcome=ok 1/0.04"},
			[]string{"multiapp.login client"}},
		{event.Event{Name: event.Login, ClientID: "dashboard", Duration: ms},
			[]string{"multiapp.logins {login} multiapp.outcome=ok,multiapp.silent=false 1",
				"multiapp.op.duration s multiapp.operation=code_exchange,multiapp.outcome=ok 1/0.04"},
			[]string{"multiapp.login client"}},
		{event.Event{Name: event.LoginFailed, Reason: "login_expired", Class: "invalid", Err: errOP},
			[]string{"multiapp.logins {login} error.type=invalid,multiapp.outcome=failed,multiapp.reason=login_expired,multiapp.silent=false 1"}, nil},
		{event.Event{Name: event.LoginSilentFailed, Silent: true, Reason: "login_required"},
			[]string{"multiapp.logins {login} multiapp.outcome=failed,multiapp.reason=login_required,multiapp.silent=true 1"}, nil},
		{event.Event{Name: event.LoginError, Class: "misconfigured"},
			[]string{"multiapp.logins {login} error.type=misconfigured,multiapp.outcome=error,multiapp.silent=false 1"}, nil},
		{event.Event{Name: event.StepUp, Reason: "acr", Subject: "alice"},
			[]string{"multiapp.step_ups {step_up} multiapp.reason=acr 1"}, nil},
		{event.Event{Name: event.Logout, Reason: "no_live_session"},
			[]string{"multiapp.logouts {logout} multiapp.reason=no_live_session 1"}, nil},
		{event.Event{Name: event.LogoutRevokeFailed, Class: "temporary"},
			[]string{"multiapp.logout.revoke_failures {failure} error.type=temporary 1"}, nil},
		{event.Event{Name: event.SessionExpired, Reason: "idle"},
			[]string{"multiapp.sessions.ended {session} multiapp.outcome=expired,multiapp.reason=idle 1"}, nil},
		{event.Event{Name: event.SessionInvalid, Reason: "claims_unreadable", Class: "invalid"},
			[]string{"multiapp.sessions.ended {session} error.type=invalid,multiapp.outcome=invalid,multiapp.reason=claims_unreadable 1"}, nil},
		{event.Event{Name: event.Refresh, Duration: ms},
			[]string{"multiapp.refreshes {refresh} multiapp.outcome=ok 1",
				"multiapp.op.duration s multiapp.operation=refresh,multiapp.outcome=ok 1/0.04"},
			[]string{"multiapp.refresh client"}},
		{event.Event{Name: event.RefreshRevoked, Reason: "grant_refused", Class: "revoked", Duration: ms},
			[]string{"multiapp.refreshes {refresh} error.type=revoked,multiapp.outcome=revoked,multiapp.reason=grant_refused 1",
				"multiapp.op.duration s error.type=revoked,multiapp.operation=refresh,multiapp.outcome=revoked 1/0.04"},
			[]string{"multiapp.refresh client"}},
		{event.Event{Name: event.RefreshTemporary, Reason: "op_timeout", Class: "temporary", Duration: ms},
			[]string{"multiapp.refreshes {refresh} error.type=temporary,multiapp.outcome=temporary,multiapp.reason=op_timeout 1",
				"multiapp.op.duration s error.type=temporary,multiapp.operation=refresh,multiapp.outcome=temporary 1/0.04"},
			[]string{"multiapp.refresh client"}},
		{event.Event{Name: event.RefreshMisconfigured, Reason: "client_rejected", Class: "misconfigured", Duration: ms},
			[]string{"multiapp.refreshes {refresh} error.type=misconfigured,multiapp.outcome=misconfigured,multiapp.reason=client_rejected 1",
				"multiapp.op.duration s error.type=misconfigured,multiapp.operation=refresh,multiapp.outcome=misconfigured 1/0.04"},
			[]string{"multiapp.refresh client"}},
		{event.Event{Name: event.RefreshInvalid, Reason: "invalid_id_token", Class: "invalid", Duration: ms},
			[]string{"multiapp.refreshes {refresh} error.type=invalid,multiapp.outcome=invalid,multiapp.reason=invalid_id_token 1",
				"multiapp.op.duration s error.type=invalid,multiapp.operation=refresh,multiapp.outcome=invalid 1/0.04"},
			[]string{"multiapp.refresh client"}},
		{event.Event{Name: event.StoreGet, Duration: ms},
			[]string{"multiapp.store.duration s multiapp.operation=get 1/0.04"}, []string{"multiapp.store.get client"}},
		{event.Event{Name: event.StoreCreate, Duration: ms},
			[]string{"multiapp.store.duration s multiapp.operation=create 1/0.04"}, []string{"multiapp.store.create client"}},
		{event.Event{Name: event.StoreUpdate, Duration: ms},
			[]string{"multiapp.store.duration s multiapp.operation=update 1/0.04"}, []string{"multiapp.store.update client"}},
		{event.Event{Name: event.StoreDelete, Duration: ms, Class: "temporary", Err: errOP},
			[]string{"multiapp.store.duration s error.type=temporary,multiapp.operation=delete 1/0.04"}, []string{"multiapp.store.delete client"}},
		{event.Event{Name: event.StoreLock, Duration: ms},
			[]string{"multiapp.store.duration s multiapp.operation=lock 1/0.04"}, []string{"multiapp.store.lock client"}},
		{event.Event{Name: event.StoreUnavailable, Class: "temporary", Err: errOP},
			[]string{"multiapp.store.unavailable {request}  1"}, nil},
		{event.Event{Name: event.BackchannelLogout, Issuer: "https://op.example", Subject: "alice", SID: "8f3a", Duration: ms},
			[]string{"multiapp.backchannel_logouts {logout} multiapp.outcome=ok 1",
				"multiapp.backchannel_logout.duration s  1/0.04"},
			[]string{"multiapp.backchannel_logout internal"}},
		{event.Event{Name: event.BackchannelLogoutRejected, Reason: "replay"},
			[]string{"multiapp.backchannel_logouts {logout} multiapp.outcome=rejected,multiapp.reason=replay 1"}, nil},
		{event.Event{Name: event.BackchannelLogoutUnavailable, Reason: "op_unavailable", Class: "temporary"},
			[]string{"multiapp.backchannel_logouts {logout} error.type=temporary,multiapp.outcome=unavailable,multiapp.reason=op_unavailable 1"}, nil},
		{event.Event{Name: event.BackchannelLogoutError, Reason: "verifier_error"},
			[]string{"multiapp.backchannel_logouts {logout} multiapp.outcome=error,multiapp.reason=verifier_error 1"}, nil},
		{event.Event{Name: event.BackchannelLogoutHeld, Class: "temporary"},
			[]string{"multiapp.backchannel_logouts {logout} error.type=temporary,multiapp.outcome=held 1"}, nil},
		{event.Event{Name: event.BackchannelLogoutDropped},
			[]string{"multiapp.backchannel_logouts {logout} multiapp.outcome=dropped 1"}, nil},
		{event.Event{Name: event.BearerRefused, Reason: "expired", Class: "invalid", Attrs: status(401)},
			[]string{"multiapp.bearer.refusals {request} error.type=invalid,http.response.status_code=401,multiapp.reason=expired 1"}, nil},
		{event.Event{Name: event.AccessToken, CacheHit: true, Issuer: "https://op.example", Duration: ms},
			[]string{"multiapp.access_token.duration s multiapp.cache_hit=true,multiapp.outcome=ok 1/0.04",
				"multiapp.token_cache.hits {token}  1"},
			[]string{"multiapp.access_token internal"}},
		{event.Event{Name: event.AccessToken, Reason: "audience", Class: "invalid", Duration: ms},
			[]string{"multiapp.access_token.duration s error.type=invalid,multiapp.cache_hit=false,multiapp.outcome=error 1/0.04",
				"multiapp.token_cache.misses {token}  1"},
			[]string{"multiapp.access_token internal"}},
		{event.Event{Name: event.JWKSFetch, Duration: ms},
			[]string{"multiapp.jwks.fetches {fetch} multiapp.outcome=ok 1",
				"multiapp.op.duration s multiapp.operation=jwks_fetch,multiapp.outcome=ok 1/0.04"},
			[]string{"multiapp.jwks.fetch client"}},
		{event.Event{Name: event.JWKSFetch, Class: "temporary", Err: errOP, Duration: ms},
			[]string{"multiapp.jwks.fetches {fetch} error.type=temporary,multiapp.outcome=error 1",
				"multiapp.op.duration s error.type=temporary,multiapp.operation=jwks_fetch,multiapp.outcome=error 1/0.04"},
			[]string{"multiapp.jwks.fetch client"}},
		{event.Event{Name: event.JWKSCooldown},
			[]string{"multiapp.jwks.cooldowns {token}  1"}, nil},
		{event.Event{Name: event.ClientAuth, ClientID: "dashboard"},
			[]string{"multiapp.client_auth.checks {check} multiapp.outcome=ok 1"}, nil},
		{event.Event{Name: event.ClientAuth, Class: "misconfigured", Err: errOP},
			[]string{"multiapp.client_auth.checks {check} error.type=misconfigured,multiapp.outcome=error 1"}, nil},
		{event.Event{Name: "multiapp.from.a.newer.library", Duration: ms},
			[]string{"multiapp.events.other {event}  1"}, []string{"multiapp.event internal"}},
	} {
		t.Run(string(c.e.Name), func(t *testing.T) {
			h := newHarness(t, Config{})
			ctx, request := h.tp.Tracer("test").Start(context.Background(), "request")
			event.Emit(ctx, h.obs, c.e)
			request.End()
			var got []string
			for _, p := range h.collect(t) {
				v := strconv.FormatInt(p.value, 10)
				if p.count > 0 {
					v = fmt.Sprintf("%d/%g", p.count, p.sum)
				}
				got = append(got, fmt.Sprintf("%s %s %s %s", p.instrument, p.unit, attrString(p.attrs), v))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("metrics:\n got %q\nwant %q", got, want)
			}
			var spans []string
			for _, s := range h.spans.Ended() {
				if s.Name() == "request" {
					continue
				}
				spans = append(spans, s.Name()+" "+s.SpanKind().String())
				if d := s.EndTime().Sub(s.StartTime()); d != c.e.Duration {
					t.Errorf("span %s lasts %v, want the event's %v", s.Name(), d, c.e.Duration)
				}
			}
			if !slices.Equal(spans, c.spans) {
				t.Errorf("spans %q, want %q", spans, c.spans)
			}
		})
	}
}

// TestEveryEventRouted reads the event package's source: every Name
// constant has an instrument here, so that an event added to the library
// without one fails this test, not an operator's dashboard.
func TestEveryEventRouted(t *testing.T) {
	files, err := filepath.Glob("../event/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("the event package's source: %v", err)
	}
	o := newHarness(t, Config{}).obs
	n := 0
	declared := map[event.Name]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Name" {
					continue
				}
				for i, name := range vs.Names {
					v, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
					n++
					declared[event.Name(v)] = true
					if o.routes[event.Name(v)] == nil {
						t.Errorf("event.%s (%q) has no instrument in package otel", name.Name, v)
					}
				}
			}
		}
	}
	// Routed ahead of package event: names landing on other branches.
	ahead := 0
	if o.routes[event.StepUp] != nil && !declared[event.StepUp] {
		ahead++
	}
	if n < 30 || n+ahead != len(o.routes) {
		t.Errorf("%d event names in package event (+%d landing), %d routed", n, ahead, len(o.routes))
	}
}

// allowed is every attribute key a measurement or span may carry, with the
// closed set of its values (nil: checked by the function).
var allowed = map[attribute.Key]func(string) bool{
	keyOutcome: oneOf("ok", "error", "failed", "expired", "invalid", "revoked", "temporary", "misconfigured",
		"rejected", "unavailable", "held", "dropped"),
	keySilent:    oneOf("true", "false"),
	keyCacheHit:  oneOf("true", "false"),
	keyOperation: oneOf("code_exchange", "refresh", "jwks_fetch", "get", "create", "update", "delete", "lock"),
	keyErrorType: oneOf("invalid", "temporary", "revoked", "misconfigured", "none", "other"),
	keyStatus:    func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= 100 && n <= 599 },
	keyReason:    func(v string) bool { _, ok := reasons[v]; return ok || v == "other" },
	keyClientID:  oneOf("dashboard"), // only with ClientIDAttribute
}

func oneOf(vs ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(vs, v) }
}

// TestBoundedAttributes gives the Observer every event the library has,
// with every field set to what an attacker or a user controls (a subject,
// a session id, a token, a URL with a query, an error text, reasons never
// seen), many times over: every attribute of every measurement, span and
// span event has a known key and a value from that key's closed set, the
// number of series stays fixed, and nothing the events carried about a
// user shows up.
func TestBoundedAttributes(t *testing.T) {
	for _, withClientID := range []bool{false, true} {
		t.Run(fmt.Sprint("ClientIDAttribute=", withClientID), func(t *testing.T) {
			h := newHarness(t, Config{ClientIDAttribute: withClientID})
			ctx, parent := h.tp.Tracer("test").Start(context.Background(), "request")
			secrets := []string{"alice-sub", "sid-8f3a", "session-hash", "eyJhbGciOi", "https://op.example", "?code=", "t0p-secret"}
			names := slices.Collect(func(yield func(event.Name) bool) {
				for n := range h.obs.routes {
					if !yield(n) {
						return
					}
				}
			})
			names = append(names, "multiapp.unknown?code=t0p-secret")
			emit := func(round int) {
				for _, n := range names {
					for _, dur := range []time.Duration{0, time.Millisecond} {
						event.Emit(ctx, h.obs, event.Event{
							Name: n, ClientID: "dashboard", Issuer: "https://op.example/tenant?x=" + strconv.Itoa(round),
							Subject: "alice-sub" + strconv.Itoa(round), SID: "sid-8f3a" + strconv.Itoa(round), Session: "session-hash",
							Reason: []string{"evil_" + strconv.Itoa(round), "op_error_x" + strconv.Itoa(round), "https://op.example/?code=1", "expired"}[round%4],
							Class:  []string{"", "invalid", "class-" + strconv.Itoa(round)}[round%3],
							Silent: round%2 == 0, CacheHit: round%2 == 1, Duration: dur,
							Err: fmt.Errorf("token eyJhbGciOi for alice-sub: %w", errOP),
							Attrs: []slog.Attr{slog.Int("status", 400+round), slog.String("jwks_uri", "https://op.example/jwks?t0p-secret"),
								slog.String("sub", "alice-sub")},
						})
					}
				}
			}
			// The series without the status (400+round: a closed range,
			// 100-599, which a long run would exhaust).
			series := func(ps []point) map[string]bool {
				m := map[string]bool{}
				for _, p := range ps {
					var kvs []string
					for _, kv := range p.attrs.ToSlice() {
						if kv.Key != keyStatus {
							kvs = append(kvs, string(kv.Key)+"="+kv.Value.Emit())
						}
					}
					m[p.instrument+" "+strings.Join(kvs, ",")] = true
				}
				return m
			}
			// Twelve rounds take every combination of the fields above.
			for round := range 12 {
				emit(round)
			}
			first := len(series(h.collect(t)))
			for round := 12; round < 300; round++ {
				emit(round)
			}
			parent.End()
			ps := h.collect(t)
			if n := len(series(ps)); n != first {
				t.Errorf("%d series after 300 rounds of hostile events, %d after 12: unbounded", n, first)
			}
			check := func(where string, kvs []attribute.KeyValue) {
				for _, kv := range kvs {
					ok := allowed[kv.Key]
					if ok == nil {
						t.Errorf("%s: attribute %s is not an allowed key", where, kv.Key)
						continue
					}
					if kv.Key == keyClientID && !withClientID {
						t.Errorf("%s: client id without ClientIDAttribute", where)
					}
					if !ok(kv.Value.Emit()) {
						t.Errorf("%s: %s=%q is not in its closed set", where, kv.Key, kv.Value.Emit())
					}
					for _, s := range secrets {
						if strings.Contains(kv.Value.Emit(), s) {
							t.Errorf("%s: %s=%q carries %q", where, kv.Key, kv.Value.Emit(), s)
						}
					}
				}
			}
			for _, p := range ps {
				check(p.instrument, p.attrs.ToSlice())
			}
			for _, s := range h.spans.Ended() {
				if !strings.HasPrefix(s.Name(), "multiapp.") && s.Name() != "request" || strings.Contains(s.Name(), "?") {
					t.Errorf("span name %q", s.Name())
				}
				check("span "+s.Name(), s.Attributes())
				if s.Status().Code == codes.Error && !allowed[keyReason](s.Status().Description) && !allowed[keyErrorType](s.Status().Description) && s.Status().Description != "error" {
					t.Errorf("span %s: status description %q is not a bounded value", s.Name(), s.Status().Description)
				}
				for _, ev := range s.Events() {
					if _, known := h.obs.routes[event.Name(ev.Name)]; !known && ev.Name != "multiapp.event" {
						t.Errorf("span event %q is not a known event name", ev.Name)
					}
					check("span event "+ev.Name, ev.Attributes)
				}
			}
		})
	}
}

// TestReasons: the reasons the library emits are reported as they are;
// anything else, including an OP's own error codes and what a crafted
// callback URL carries, is "other".
func TestReasons(t *testing.T) {
	for r, want := range map[string]string{
		"expired": "expired", string(rp.CodeRevokedSID): "revoked_session", "login_required": "login_required",
		"op_error_invalid_scope": "op_error_invalid_scope", "store_unavailable": "store_unavailable", "idle": "idle",
		"invalid_id_token": "invalid_id_token", "no_token": "no_token", "body_too_large": "body_too_large",
		"": "other", "my_own_code": "other", "op_error_whatever": "other", "<script>": "other", "login_required ": "other",
	} {
		if got := reason(r); got != want {
			t.Errorf("reason(%q) = %q, want %q", r, got, want)
		}
	}
}

// TestSpanParent: a call's span is a child of the request's span, starts
// Duration before it ends, and a failed call's status says why by its
// reason; an event without a Duration is an event of the request's span.
func TestSpanParent(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, parent := h.tp.Tracer("test").Start(context.Background(), "GET /orders")
	before := time.Now()
	event.Emit(ctx, h.obs, event.Event{Name: event.RefreshRevoked, Reason: "grant_refused", Class: "revoked", Duration: 250 * time.Millisecond, Err: errOP})
	event.Emit(ctx, h.obs, event.Event{Name: event.BearerRefused, Reason: "expired", Class: "invalid", Attrs: []slog.Attr{slog.Int("status", 401)}})
	parent.End()
	var refresh, request sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		switch s.Name() {
		case "multiapp.refresh":
			refresh = s
		case "GET /orders":
			request = s
		}
	}
	if refresh == nil || request == nil {
		t.Fatalf("spans: %v", h.spans.Ended())
	}
	if refresh.Parent().SpanID() != request.SpanContext().SpanID() || refresh.SpanContext().TraceID() != request.SpanContext().TraceID() {
		t.Error("the refresh span is not a child of the request's span")
	}
	if refresh.SpanKind() != trace.SpanKindClient {
		t.Errorf("kind %v", refresh.SpanKind())
	}
	if refresh.EndTime().Before(before) || refresh.EndTime().Sub(refresh.StartTime()) != 250*time.Millisecond {
		t.Errorf("span %v..%v, want it to end at the event and start 250ms earlier", refresh.StartTime(), refresh.EndTime())
	}
	if st := refresh.Status(); st.Code != codes.Error || st.Description != "grant_refused" {
		t.Errorf("status %+v, want Error grant_refused (never the error's text)", st)
	}
	evs := request.Events()
	if len(evs) != 1 || evs[0].Name != string(event.BearerRefused) {
		t.Fatalf("request span events %v, want one %s", evs, event.BearerRefused)
	}
	if got := attrString(attribute.NewSet(evs[0].Attributes...)); got != "error.type=invalid,http.response.status_code=401,multiapp.reason=expired" {
		t.Errorf("span event attributes %s", got)
	}
}

// TestNoOrphanSpans: outside a recording span (no traced request, or one
// its sampler left out) a call makes no span of its own; the metrics are
// recorded all the same.
func TestNoOrphanSpans(t *testing.T) {
	h := newHarness(t, Config{})
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx, request := unsampled.Tracer("test").Start(context.Background(), "request")
	for _, ctx := range []context.Context{context.Background(), ctx} {
		event.Emit(ctx, h.obs, event.Event{Name: event.StoreGet, Duration: time.Millisecond})
		event.Emit(ctx, h.obs, event.Event{Name: event.BearerRefused, Reason: "no_token"})
	}
	request.End()
	if n := len(h.spans.Ended()); n != 0 {
		t.Errorf("%d spans without a recording parent", n)
	}
	if n := len(h.collect(t)); n != 2 {
		t.Errorf("%d metric series, want the store histogram and the refusals", n)
	}
}

// TestClientIDAttribute: with the option, the web layer's measurements
// tell the apps apart; without it (the default) they do not.
func TestClientIDAttribute(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := newHarness(t, Config{ClientIDAttribute: on})
		for _, id := range []string{"dashboard", "docs", "docs"} {
			event.Emit(context.Background(), h.obs, event.Event{Name: event.Login, ClientID: id, Duration: time.Millisecond})
		}
		got := map[string]int64{}
		for _, p := range h.collect(t) {
			if p.instrument == "multiapp.logins" {
				v, _ := p.attrs.Value(keyClientID)
				got[v.Emit()] += p.value
			}
		}
		want := map[string]int64{"": 3}
		if on {
			want = map[string]int64{"dashboard": 1, "docs": 2}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ClientIDAttribute=%t: logins by client id %v, want %v", on, got, want)
		}
	}
}

// TestJoinWithLog: joined with the audit log (event.Join), the Observer
// still gets the per-request events the log does not want, and the log
// still writes the others.
func TestJoinWithLog(t *testing.T) {
	h := newHarness(t, Config{})
	var buf strings.Builder
	obs := event.Join(event.Log(slog.New(slog.NewTextHandler(&buf, nil))), h.obs)
	ctx := context.Background()
	if !event.Enabled(ctx, obs, event.StoreGet) {
		t.Fatal("the joined observer does not want store calls: the library would not measure them")
	}
	event.Emit(ctx, obs, event.Event{Name: event.StoreGet, Level: slog.LevelDebug, Duration: time.Millisecond})
	event.Emit(ctx, obs, event.Event{Name: event.Refresh, Level: slog.LevelInfo, Duration: time.Millisecond})
	n := map[string]bool{}
	for _, p := range h.collect(t) {
		n[p.instrument] = true
	}
	if !n["multiapp.store.duration"] || !n["multiapp.refreshes"] {
		t.Errorf("instruments %v", n)
	}
	if !strings.Contains(buf.String(), "multiapp.refresh") || strings.Contains(buf.String(), "multiapp.store.get") {
		t.Errorf("audit log:\n%s", buf.String())
	}
}

// TestGlobalProviders: the zero Config uses the global providers (no-ops
// until the application sets them), and Observe on them is harmless.
func TestGlobalProviders(t *testing.T) {
	obs, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	event.Emit(context.Background(), obs, event.Event{Name: event.Login, Duration: time.Millisecond})
	event.Emit(context.Background(), obs, event.Event{Name: event.BearerRefused})
}

// BenchmarkObserve is the cost of one access-token event (one per API
// request) with an SDK meter and a sampled-out tracer.
func BenchmarkObserve(b *testing.B) {
	obs, err := New(Config{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e := event.Event{Name: event.AccessToken, CacheHit: true, Duration: time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		obs.Observe(ctx, e)
	}
}
