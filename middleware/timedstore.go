package middleware

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// timedStore is the web layer's session store as the observer sees it:
// each session call is an event (event.StoreGet...) with its duration,
// measured only when the observer wants it (the audit log does at debug
// level only), so the request path pays one check otherwise.
type timedStore struct {
	tokenstore.Store
	obs event.Observer
}

func (s timedStore) Get(ctx context.Context, id string) (*tokenstore.Session, error) {
	if !event.Enabled(ctx, s.obs, event.StoreGet) {
		return s.Store.Get(ctx, id)
	}
	start := time.Now()
	rec, err := s.Store.Get(ctx, id)
	s.done(ctx, event.StoreGet, start, err)
	return rec, err
}

func (s timedStore) Create(ctx context.Context, rec *tokenstore.Session) error {
	if !event.Enabled(ctx, s.obs, event.StoreCreate) {
		return s.Store.Create(ctx, rec)
	}
	start := time.Now()
	err := s.Store.Create(ctx, rec)
	s.done(ctx, event.StoreCreate, start, err)
	return err
}

func (s timedStore) Update(ctx context.Context, rec *tokenstore.Session) error {
	if !event.Enabled(ctx, s.obs, event.StoreUpdate) {
		return s.Store.Update(ctx, rec)
	}
	start := time.Now()
	err := s.Store.Update(ctx, rec)
	s.done(ctx, event.StoreUpdate, start, err)
	return err
}

func (s timedStore) Delete(ctx context.Context, id string) error {
	if !event.Enabled(ctx, s.obs, event.StoreDelete) {
		return s.Store.Delete(ctx, id)
	}
	start := time.Now()
	err := s.Store.Delete(ctx, id)
	s.done(ctx, event.StoreDelete, start, err)
	return err
}

func (s timedStore) Lock(ctx context.Context, id string) (func(), error) {
	if !event.Enabled(ctx, s.obs, event.StoreLock) {
		return s.Store.Lock(ctx, id)
	}
	start := time.Now()
	unlock, err := s.Store.Lock(ctx, id)
	s.done(ctx, event.StoreLock, start, err)
	return unlock, err
}

// done emits the event of a store call. A missing session is an answer,
// not a failure; a failure has the class the web layer gives it.
func (s timedStore) done(ctx context.Context, name event.Name, start time.Time, err error) {
	e := event.Event{Name: name, Level: slog.LevelDebug, Duration: time.Since(start)}
	if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		e.Err, e.Class = err, rp.ClassOf(storeError(err)).String()
	}
	event.Emit(ctx, s.obs, e)
}
