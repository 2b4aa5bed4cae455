package storetest

import (
	"errors"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Session lifetimes: the idle timeout (Session.IdleTimeout since
// LastSeen, moved by Touch) and the absolute one (ExpiresAt).

// expired checks that err reports session s ended for reason, as an
// *ExpiredError that is also ErrNotFound and carries who it was without
// the tokens.
func (h *harness) expired(what string, err error, s *tokenstore.Session, reason string) {
	h.t.Helper()
	var ee *tokenstore.ExpiredError
	switch {
	case !errors.Is(err, tokenstore.ErrNotFound) || !errors.Is(err, tokenstore.ErrExpired):
		h.t.Errorf("%s: error %v, want ErrNotFound and ErrExpired", what, err)
		return
	case !errors.As(err, &ee):
		h.t.Errorf("%s: error %v is not an *ExpiredError", what, err)
		return
	case ee.Reason != reason:
		h.t.Errorf("%s: Reason %q, want %q", what, ee.Reason, reason)
	}
	if ee.Session == nil {
		h.t.Errorf("%s: ExpiredError.Session is nil", what)
		return
	}
	e := ee.Session
	if e.ID != s.ID || e.Issuer != s.Issuer || e.Subject != s.Subject || e.SID != s.SID || e.ClientID != s.ClientID {
		h.t.Errorf("%s: ExpiredError.Session is (id %q, iss %q, sub %q, sid %q, client %q), want the session's", what, e.ID, e.Issuer, e.Subject, e.SID, e.ClientID)
	}
	if e.IdleTimeout != s.IdleTimeout || !e.ExpiresAt.Equal(s.ExpiresAt) {
		h.t.Errorf("%s: ExpiredError.Session has IdleTimeout %v and ExpiresAt %v, want %v and %v", what, e.IdleTimeout, e.ExpiresAt, s.IdleTimeout, s.ExpiresAt)
	}
	if e.AccessToken != "" || e.RefreshToken != "" || e.IDToken != "" || len(e.Claims) != 0 {
		h.t.Errorf("%s: ExpiredError.Session holds tokens", what)
	}
}

func (h *harness) touch(id string, at time.Time) error {
	h.t.Helper()
	return h.st.Touch(h.ctx, id, at)
}

// idle returns a new session of h's issuer that ends when unused for
// shortTTL.
func (h *harness) idle(sid, subject string) *tokenstore.Session {
	s := h.session(sid, subject)
	s.IdleTimeout = shortTTL
	return s
}

func testIdleTimeout(h *harness) {
	s := h.idle("sid-1", "alice")
	h.create(s)
	busy := h.session("sid-1", "alice") // IdleTimeout longTTL
	h.create(busy)
	h.present("before its idle timeout", s)

	sleepUntil(s.LastSeen.Add(s.IdleTimeout + margin))
	_, err := h.st.Get(h.ctx, s.ID)
	h.expired("Get after the idle timeout", err, s, tokenstore.ExpiredIdle)
	h.expired("Touch after the idle timeout", h.touch(s.ID, time.Now()), s, tokenstore.ExpiredIdle)
	h.gone("after a Touch of an idle session (a touch never revives one)", s)
	h.present("a session of the same OP session that is not idle", busy)
}

func testTouchExtendsIdle(h *harness) {
	s := h.idle("sid-1", "alice")
	h.create(s)
	sleepUntil(s.LastSeen.Add(s.IdleTimeout / 2))
	at := time.Now().Round(0)
	if err := h.touch(s.ID, at); err != nil {
		h.t.Fatalf("Touch: %v", err)
	}
	sleepUntil(s.LastSeen.Add(s.IdleTimeout + margin))
	got := h.get(s.ID)
	if !got.LastSeen.Equal(at) {
		h.t.Errorf("LastSeen = %v after Touch(%v)", got.LastSeen, at)
	}
	want := s.Clone()
	want.LastSeen = at
	h.same("after Touch", got, want)

	sleepUntil(at.Add(s.IdleTimeout + margin))
	_, err := h.st.Get(h.ctx, s.ID)
	h.expired("Get after the idle timeout since the Touch", err, want, tokenstore.ExpiredIdle)
}

// testTouchNotPastExpiresAt: activity never extends the absolute lifetime.
func testTouchNotPastExpiresAt(h *harness) {
	s := h.session("sid-1", "alice")
	s.ExpiresAt = time.Now().Add(shortTTL)
	h.create(s)
	sleepUntil(s.ExpiresAt.Add(-shortTTL / 2))
	if err := h.touch(s.ID, time.Now()); err != nil {
		h.t.Fatalf("Touch: %v", err)
	}
	sleepUntil(s.ExpiresAt.Add(margin))
	_, err := h.st.Get(h.ctx, s.ID)
	h.wantErr("Get after ExpiresAt, touched before", err, tokenstore.ErrNotFound)
	var ee *tokenstore.ExpiredError
	if errors.As(err, &ee) && ee.Reason != tokenstore.ExpiredLifetime {
		h.t.Errorf("Get after ExpiresAt: Reason %q, want %q", ee.Reason, tokenstore.ExpiredLifetime)
	}
	h.wantErr("Touch after ExpiresAt", h.touch(s.ID, time.Now()), tokenstore.ErrNotFound)
}

// testTouchOnlyMovesLastSeen: a touch changes nothing but LastSeen, never
// moves it back, and so never undoes a refresh that raced it.
func testTouchOnlyMovesLastSeen(h *harness) {
	s := h.session("sid-1", "alice")
	h.create(s)
	u := s.Clone()
	u.AccessToken, u.RefreshToken = "refreshed-access-token", "rotated-refresh-token"
	u.RefreshedAt = s.RefreshedAt.Add(time.Second)
	h.update(u) // a refresh on another instance, after this one read s
	at := s.LastSeen.Add(2 * time.Second)
	if err := h.touch(s.ID, at); err != nil {
		h.t.Fatalf("Touch: %v", err)
	}
	want := u.Clone()
	want.LastSeen = at
	h.same("after Update then Touch", h.get(s.ID), want)
	if err := h.touch(s.ID, at.Add(-time.Minute)); err != nil {
		h.t.Fatalf("Touch with an earlier time: %v", err)
	}
	h.same("after a Touch with an earlier time", h.get(s.ID), want)

	h.wantErr("Touch of a missing session", h.touch(tokenstore.NewID(), at), tokenstore.ErrNotFound)
	d := h.session("sid-2", "alice")
	h.create(d)
	if err := h.st.Delete(h.ctx, d.ID); err != nil {
		h.t.Fatal(err)
	}
	h.wantErr("Touch of a deleted session", h.touch(d.ID, at), tokenstore.ErrNotFound)
	h.gone("after a Touch of a deleted session", d)
	h.revoke(h.issuer, "sid-1", longTTL)
	h.wantErr("Touch of a revoked session", h.touch(s.ID, at.Add(time.Second)), tokenstore.ErrNotFound)
	h.gone("after a Touch of a revoked session", s)
}
