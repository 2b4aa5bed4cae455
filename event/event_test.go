package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/errclass"
)

func jsonLog(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})), &buf
}

// TestLogWritesTheAuditLine: the audit log's record of an event is the
// line the library wrote before events existed: the name as message, the
// session's five identity attributes, then reason, class, the event's own
// attributes, duration and error, in that order.
func TestLogWritesTheAuditLine(t *testing.T) {
	l, buf := jsonLog(slog.LevelInfo)
	event.Log(l).Observe(context.Background(), event.Event{
		Name: event.RefreshTemporary, Level: slog.LevelWarn,
		ClientID: "webc_a", Issuer: "https://op", Subject: "usr_1", SID: "", Session: "0123456789abcdef",
		Reason: "op_unavailable", Class: "temporary", Duration: 1500 * time.Millisecond,
		Attrs: []slog.Attr{slog.Duration("retry_after", 5*time.Second), slog.Bool("refresh_token_kept", true)},
		Err:   errors.New("token endpoint answered 503"),
	})
	line := strings.TrimSpace(buf.String())
	var keys []string
	dec := json.NewDecoder(strings.NewReader(line))
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		_ = dec.Decode(&v)
	}
	want := "time level msg client_id iss sub sid session reason class retry_after refresh_token_kept duration error"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("attributes %q\nwant       %q", got, want)
	}
	for _, s := range []string{`"level":"WARN"`, `"msg":"multiapp.refresh.temporary"`, `"sid":""`, `"refresh_token_kept":true`, `"error":"token endpoint answered 503"`} {
		if !strings.Contains(line, s) {
			t.Errorf("missing %s in %s", s, line)
		}
	}
}

// TestLogAttributes: who and how, per kind of event: a login says whether
// it was silent (both ways), an access-token check whether the cache
// answered; an event about no session writes only the identity it has.
func TestLogAttributes(t *testing.T) {
	for _, tc := range []struct {
		e    event.Event
		want string
	}{
		{event.Event{Name: event.Login, ClientID: "c", Issuer: "i", Subject: "s", SID: "d", Session: "h"},
			`"msg":"multiapp.login","client_id":"c","iss":"i","sub":"s","sid":"d","session":"h","silent":false}`},
		{event.Event{Name: event.Login, ClientID: "c", Issuer: "i", Subject: "s", SID: "d", Session: "h", Silent: true},
			`"session":"h","silent":true}`},
		{event.Event{Name: event.LoginError, ClientID: "c", Err: errors.New("boom")},
			`"msg":"multiapp.login.error","client_id":"c","error":"boom"}`},
		{event.Event{Name: event.BackchannelLogoutRejected, Reason: "audience"},
			`"msg":"multiapp.backchannel_logout.rejected","reason":"audience"}`},
		{event.Event{Name: event.AccessToken, Issuer: "i", CacheHit: true},
			`"msg":"multiapp.access_token","iss":"i","cache_hit":true}`},
	} {
		l, buf := jsonLog(slog.LevelDebug)
		event.Log(l).Observe(context.Background(), tc.e)
		if !strings.HasSuffix(strings.TrimSpace(buf.String()), tc.want) {
			t.Errorf("%s:\n got %s\nwant ...%s", tc.e.Name, buf.String(), tc.want)
		}
	}
}

// TestLogSkipsPerRequestEvents: at the usual Info level the audit log
// wants no per-request measurement, so emitters do not even time them;
// every other event is wanted whatever its level (the logger decides).
func TestLogSkipsPerRequestEvents(t *testing.T) {
	ctx := context.Background()
	info, _ := jsonLog(slog.LevelInfo)
	debug, _ := jsonLog(slog.LevelDebug)
	for _, n := range []event.Name{event.StoreGet, event.StoreLock, event.AccessToken, event.JWKSCooldown} {
		if event.Enabled(ctx, event.Log(info), n) {
			t.Errorf("%s enabled at Info", n)
		}
		if !event.Enabled(ctx, event.Log(debug), n) {
			t.Errorf("%s not enabled at Debug", n)
		}
	}
	for _, n := range []event.Name{event.Login, event.Refresh, event.BackchannelLogout, event.JWKSFetch, event.BearerRefused} {
		if !event.Enabled(ctx, event.Log(info), n) {
			t.Errorf("%s not enabled at Info", n)
		}
	}
	if event.Enabled(ctx, nil, event.Login) {
		t.Error("a nil observer wants events")
	}
	if !event.Enabled(ctx, event.ObserverFunc(func(context.Context, event.Event) {}), event.StoreGet) {
		t.Error("an observer without Enabled must get every event")
	}
}

// TestJoinAndEmit: Join feeds every observer (nil ones skipped) and wants
// what any of them wants; Emit fills Class from the error and does
// nothing for a nil observer.
func TestJoinAndEmit(t *testing.T) {
	ctx := context.Background()
	var n atomic.Int32
	var got event.Event
	count := event.ObserverFunc(func(_ context.Context, e event.Event) { n.Add(1); got = e })
	info, buf := jsonLog(slog.LevelInfo)
	j := event.Join(event.Log(info), nil, count)
	if !event.Enabled(ctx, j, event.StoreGet) {
		t.Error("Join: the counter wants StoreGet, so the join does")
	}
	if event.Enabled(ctx, event.Join(event.Log(info)), event.StoreGet) {
		t.Error("Join of the Info log alone wants StoreGet")
	}
	event.Emit(ctx, j, event.Event{Name: event.RefreshRevoked, Level: slog.LevelInfo, Err: errclass.ErrRevoked})
	if n.Load() != 1 || got.Class != "revoked" || !strings.Contains(buf.String(), `"class":"revoked"`) {
		t.Errorf("count %d, class %q, log %s", n.Load(), got.Class, buf.String())
	}
	event.Emit(ctx, j, event.Event{Name: event.LoginError, Err: errors.New("unclassified")})
	if got.Class != "" {
		t.Errorf("an error of no class got Class %q", got.Class)
	}
	event.Emit(ctx, nil, event.Event{Name: event.Login}) // no panic
}
