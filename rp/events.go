package rp

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/multiapp-go/multiapp/event"
)

// The events of rp (package event), all to ProviderOptions.Observer: JWKS
// fetches and cooldown hits, client-authentication checks (next to
// OnClientAuth), access-token checks with their duration and cache hits.
// Without an Observer rp emits nothing.

// clientAuthHook returns the hook told the outcome of a client
// authentication check: on (Config.OnClientAuth or
// IntrospectionConfig.OnClientAuth) and an event.ClientAuth for obs.
func clientAuthHook(on func(ClientAuth, error), obs event.Observer, clientID, issuer string) func(ClientAuth, error) {
	if obs == nil {
		return on
	}
	return func(a ClientAuth, err error) {
		if on != nil {
			on(a, err)
		}
		level := slog.LevelInfo
		if err != nil {
			level = slog.LevelError
		}
		event.Emit(context.Background(), obs, event.Event{Name: event.ClientAuth, Level: level, ClientID: clientID, Issuer: issuer, Err: err,
			Attrs: []slog.Attr{slog.String("method", a.Method), slog.String("source", string(a.Source)), slog.Bool("confirmed", a.Confirmed)}})
	}
}

// fetched tells the observer of a JWKS fetch that took d and failed with
// err (nil: the keys were stored).
func (ks *KeySet) fetched(ctx context.Context, d time.Duration, err error) {
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	event.Emit(ctx, ks.obs, event.Event{Name: event.JWKSFetch, Level: level, Duration: d, Err: err,
		Attrs: []slog.Attr{slog.String("jwks_uri", ks.url)}})
}

// verifyObserved is Verify for an observer that wants event.AccessToken.
func (v *AccessTokenVerifier) verifyObserved(ctx context.Context, raw string) (*Claims, error) {
	start := time.Now()
	h, cl := v.cached(raw)
	hit := cl != nil
	var err error
	if hit {
		cl, err = v.hit(ctx, h, raw, cl)
	} else {
		cl, err = v.verifyUncached(ctx, h, raw, raw, false)
	}
	e := event.Event{Name: event.AccessToken, Level: slog.LevelDebug, Issuer: v.p.meta.Issuer, CacheHit: hit, Duration: time.Since(start), Err: err}
	if ve := (*ValidationError)(nil); errors.As(err, &ve) {
		e.Reason = string(ve.Code)
	}
	event.Emit(ctx, v.p.obs, e)
	return cl, err
}
