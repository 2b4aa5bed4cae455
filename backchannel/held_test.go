package backchannel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// flakyStore is a store whose backend can be taken down: every call then
// fails with ErrUnavailable, as the Redis store's do.
type flakyStore struct {
	tokenstore.Store
	down atomic.Bool
}

var errDown = fmt.Errorf("test backend: %w", tokenstore.ErrUnavailable)

func (s *flakyStore) Get(ctx context.Context, id string) (*tokenstore.Session, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *flakyStore) Create(ctx context.Context, sess *tokenstore.Session) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Create(ctx, sess)
}

func (s *flakyStore) DeleteBySID(ctx context.Context, issuer, sid, subject string) (int, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.DeleteBySID(ctx, issuer, sid, subject)
}

func (s *flakyStore) DeleteBySubject(ctx context.Context, issuer, subject string) (int, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.DeleteBySubject(ctx, issuer, subject)
}

func (s *flakyStore) UseOnce(ctx context.Context, namespace, scope, key string, ttl time.Duration) (bool, error) {
	if s.down.Load() {
		return false, errDown
	}
	return s.Store.UseOnce(ctx, namespace, scope, key, ttl)
}

func (s *flakyStore) RevokeSID(ctx context.Context, issuer, sid string, ttl time.Duration) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.RevokeSID(ctx, issuer, sid, ttl)
}

func (s *flakyStore) RevokeSubject(ctx context.Context, issuer, subject string, at time.Time, ttl time.Duration) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.RevokeSubject(ctx, issuer, subject, at, ttl)
}

func (s *flakyStore) SIDRevoked(ctx context.Context, issuer, sid string) (bool, error) {
	if s.down.Load() {
		return false, errDown
	}
	return s.Store.SIDRevoked(ctx, issuer, sid)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A verified logout that the store could not apply (it was down) is not
// lost: the handler answers 503 (an OP that retries will deliver it again),
// keeps it, refuses the matching sessions on this instance meanwhile, and
// applies it as soon as the store answers again.
func TestLogoutHeldWhileStoreIsDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims func(map[string]any)
	}{
		{"by sid", nil},
		{"by subject", func(m map[string]any) { delete(m, "sid") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			flaky := &flakyStore{Store: f.store}
			f.h.Store = flaky
			f.h.RetryInterval = time.Hour // only the store's answers trigger the retry
			view := f.h.Guard(flaky)
			ctx := context.Background()
			doomed := f.session(t, "usr_1", "ses_1")
			other := f.session(t, "usr_2", "ses_2")

			flaky.down.Store(true)
			w := post(f.h, "logout_token="+f.token(tc.claims))
			if w.Code != 503 || w.Header().Get("Retry-After") == "" {
				t.Fatalf("logout with the store down: %d %s, want 503 with Retry-After", w.Code, w.Body)
			}
			if !strings.Contains(f.logs.String(), "multiapp.backchannel_logout.held") {
				t.Fatalf("no held event: %s", f.logs.String())
			}
			if _, err := view.Get(ctx, other); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Get with the store down: %v", err)
			}

			// The store answers again. Until the logout is applied, this
			// instance refuses the sessions it ends.
			flaky.down.Store(false)
			if _, err := view.Get(ctx, doomed); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatalf("Get of a session of the held logout: %v, want ErrNotFound", err)
			}
			late := &tokenstore.Session{ID: tokenstore.NewID(), Issuer: f.op.Issuer, Subject: "usr_1", SID: "ses_1",
				IssuedAt: time.Now().Add(-time.Hour), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			if err := view.Create(ctx, late); !errors.Is(err, tokenstore.ErrRevoked) {
				t.Fatalf("Create of a session the held logout ends: %v, want ErrRevoked", err)
			}
			if s, err := view.Get(ctx, other); err != nil || s.Subject != "usr_2" {
				t.Fatalf("Get of another user's session: %v", err)
			}
			// The store's answer triggered the retry: applied in the store,
			// for every instance.
			eventually(t, "the held logout applied", func() bool { return !f.alive(doomed) })
			if !f.alive(other) {
				t.Fatal("another user's session ended")
			}
			eventually(t, "the applied event", func() bool {
				return strings.Contains(f.logs.String(), `"held":true`) && strings.Contains(f.logs.String(), `"sessions_ended":1`)
			})
			if tc.claims == nil {
				if revoked, _ := f.store.SIDRevoked(ctx, f.op.Issuer, "ses_1"); !revoked {
					t.Fatal("the sid is not revoked in the store")
				}
			}
			if strings.Contains(f.logs.String(), "eyJ") {
				t.Fatal("a token was logged")
			}
		})
	}
}

// Without traffic, the periodic retry applies a held logout.
func TestHeldLogoutRetriedPeriodically(t *testing.T) {
	f := newFixture(t)
	flaky := &flakyStore{Store: f.store}
	f.h.Store = flaky
	f.h.RetryInterval = 20 * time.Millisecond
	doomed := f.session(t, "usr_1", "ses_1")
	flaky.down.Store(true)
	if w := post(f.h, "logout_token="+f.token(nil)); w.Code != 503 {
		t.Fatalf("%d", w.Code)
	}
	time.Sleep(100 * time.Millisecond) // several failed retries
	if !f.alive(doomed) {
		t.Fatal("applied while the store was down?")
	}
	flaky.down.Store(false)
	eventually(t, "the held logout applied", func() bool { return !f.alive(doomed) })
}

// A store that fails half-way (the sid revoked, the deletes failed): the
// logout is held and finished later.
func TestPartialFailureIsFinishedLater(t *testing.T) {
	f := newFixture(t)
	f.h.Store = &deleteFailsOnce{Store: f.store}
	f.h.RetryInterval = 10 * time.Millisecond
	s := f.session(t, "usr_1", "ses_1")
	noSID := f.session(t, "usr_1", "")
	if w := post(f.h, "logout_token="+f.token(nil)); w.Code != 503 {
		t.Fatalf("%d", w.Code)
	}
	if f.alive(s) {
		t.Fatal("session readable after its OP session was revoked")
	}
	eventually(t, "the sid-less session of the subject deleted", func() bool { return !f.alive(noSID) })
}

type deleteFailsOnce struct {
	tokenstore.Store
	once sync.Once
}

func (d *deleteFailsOnce) DeleteBySID(ctx context.Context, issuer, sid, subject string) (int, error) {
	failed := false
	d.once.Do(func() { failed = true })
	if failed {
		return 0, errDown
	}
	return d.Store.DeleteBySID(ctx, issuer, sid, subject)
}

// The OP delivering the same token again while it is held does not hold
// it twice, and the number of held logouts is bounded (oldest dropped,
// with an error event).
func TestHeldLogoutsDeduplicatedAndBounded(t *testing.T) {
	f := newFixture(t)
	flaky := &flakyStore{Store: f.store}
	flaky.down.Store(true)
	f.h.Store = flaky
	f.h.RetryInterval = time.Hour
	f.h.MaxHeld = 2
	tok := f.token(nil)
	for range 3 {
		if w := post(f.h, "logout_token="+tok); w.Code != 503 {
			t.Fatalf("%d", w.Code)
		}
	}
	if n := f.h.Held(); n != 1 {
		t.Fatalf("%d logouts held after 3 deliveries of one token, want 1", n)
	}
	for i := range 3 {
		post(f.h, "logout_token="+f.token(func(m map[string]any) { m["sid"] = fmt.Sprintf("ses_%d", 10+i) }))
	}
	if n := f.h.Held(); n != 2 {
		t.Fatalf("%d logouts held, want MaxHeld (2)", n)
	}
	if !strings.Contains(f.logs.String(), "multiapp.backchannel_logout.dropped") {
		t.Fatal("dropping a held logout was not logged")
	}
}
