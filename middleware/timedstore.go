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
	t := s.start(ctx, event.StoreGet)
	rec, err := s.Store.Get(ctx, id)
	s.done(ctx, event.StoreGet, t, err)
	return rec, err
}

func (s timedStore) Create(ctx context.Context, rec *tokenstore.Session) error {
	t := s.start(ctx, event.StoreCreate)
	err := s.Store.Create(ctx, rec)
	s.done(ctx, event.StoreCreate, t, err)
	return err
}

func (s timedStore) Update(ctx context.Context, rec *tokenstore.Session) error {
	t := s.start(ctx, event.StoreUpdate)
	err := s.Store.Update(ctx, rec)
	s.done(ctx, event.StoreUpdate, t, err)
	return err
}

func (s timedStore) Delete(ctx context.Context, id string) error {
	t := s.start(ctx, event.StoreDelete)
	err := s.Store.Delete(ctx, id)
	s.done(ctx, event.StoreDelete, t, err)
	return err
}

func (s timedStore) Lock(ctx context.Context, id string) (func(), error) {
	t := s.start(ctx, event.StoreLock)
	unlock, err := s.Store.Lock(ctx, id)
	s.done(ctx, event.StoreLock, t, err)
	return unlock, err
}

// start returns when a call the observer wants began, or the zero time.
func (s timedStore) start(ctx context.Context, name event.Name) time.Time {
	if !event.Enabled(ctx, s.obs, name) {
		return time.Time{}
	}
	return time.Now()
}

// done emits the event of a call that began at start (nothing for the
// zero time). A missing session is an answer, not a failure; a failure has
// the class the web layer gives it.
func (s timedStore) done(ctx context.Context, name event.Name, start time.Time, err error) {
	if start.IsZero() {
		return
	}
	e := event.Event{Name: name, Level: slog.LevelDebug, Duration: time.Since(start)}
	if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		e.Err, e.Class = err, rp.ClassOf(storeError(err)).String()
	}
	event.Emit(ctx, s.obs, e)
}
