package event

import (
	"context"
	"log/slog"
)

// Log returns the audit log: an Observer that writes each event to l (nil:
// slog.Default() at the time of the event) as one record whose message is
// the event's Name, at the event's Level, with the attributes client_id,
// iss, sub, sid and session (all five for an event about a session, the
// non-empty ones otherwise), then reason, class, silent (Login), cache_hit
// (AccessToken), the event's Attrs, duration and error, each when set.
//
// The per-request events (the store calls, AccessToken, JWKSCooldown) are
// LevelDebug: they are built only when l is enabled for debug.
func Log(l *slog.Logger) Observer { return logObserver{l} }

type logObserver struct{ l *slog.Logger }

func (o logObserver) logger() *slog.Logger {
	if o.l != nil {
		return o.l
	}
	return slog.Default()
}

// Enabled implements Filter.
func (o logObserver) Enabled(ctx context.Context, n Name) bool {
	return !perRequest(n) || o.logger().Enabled(ctx, slog.LevelDebug)
}

// Observe implements Observer.
func (o logObserver) Observe(ctx context.Context, e Event) {
	l := o.logger()
	if !l.Enabled(ctx, e.Level) {
		return
	}
	l.LogAttrs(ctx, e.Level, string(e.Name), attrs(e)...)
}

// attrs returns the attributes the audit log writes for e, in order.
func attrs(e Event) []slog.Attr {
	a := make([]slog.Attr, 0, 10+len(e.Attrs))
	if e.Session != "" {
		a = append(a, slog.String("client_id", e.ClientID), slog.String("iss", e.Issuer), slog.String("sub", e.Subject),
			slog.String("sid", e.SID), slog.String("session", e.Session))
	} else {
		a = appendNonEmpty(a, "client_id", e.ClientID)
		a = appendNonEmpty(a, "iss", e.Issuer)
		a = appendNonEmpty(a, "sub", e.Subject)
		a = appendNonEmpty(a, "sid", e.SID)
	}
	a = appendNonEmpty(a, "reason", e.Reason)
	a = appendNonEmpty(a, "class", e.Class)
	if e.Name == Login || e.Silent {
		a = append(a, slog.Bool("silent", e.Silent))
	}
	if e.Name == AccessToken {
		a = append(a, slog.Bool("cache_hit", e.CacheHit))
	}
	a = append(a, e.Attrs...)
	if e.Duration > 0 {
		a = append(a, slog.Duration("duration", e.Duration))
	}
	if e.Err != nil {
		a = append(a, slog.String("error", e.Err.Error()))
	}
	return a
}

func appendNonEmpty(a []slog.Attr, key, v string) []slog.Attr {
	if v == "" {
		return a
	}
	return append(a, slog.String(key, v))
}
