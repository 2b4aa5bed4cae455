package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// A logout token with only a sub ends every session of the subject. A login
// of that subject completing at the same moment must not survive it: the
// store refuses the subject's sessions issued (by the OP, Session.IssuedAt)
// at or before the logout token's iat, as it refuses a revoked sid's.

// logoutAt is a whole second in the recent past: OPs' iat are whole seconds.
func logoutAt() time.Time { return time.Now().Add(-time.Minute).Truncate(time.Second) }

func (h *harness) revokeSubject(issuer, subject string, at time.Time, ttl time.Duration) {
	h.t.Helper()
	if err := h.st.RevokeSubject(h.ctx, issuer, subject, at, ttl); err != nil {
		h.t.Fatalf("RevokeSubject(%q): %v", subject, err)
	}
}

// issued returns a new session of h's issuer issued at t.
func (h *harness) issued(sid, subject string, t time.Time) *tokenstore.Session {
	s := h.session(sid, subject)
	s.IssuedAt = t
	return s
}

func testCreateSubjectRevoked(h *harness) {
	at := logoutAt()
	h.revokeSubject(h.issuer, "alice", at, longTTL)
	for _, d := range []time.Duration{-time.Hour, -time.Second, 0} {
		for _, sid := range []string{"sid-1", ""} {
			s := h.issued(sid, "alice", at.Add(d))
			h.wantErr(fmt.Sprintf("Create of a session issued %v from the subject's logout (sid %q)", d, sid), h.st.Create(h.ctx, s), tokenstore.ErrRevoked)
			h.gone("after Create was refused", s)
		}
	}
	// The user signs in again after the logout: a new ID token.
	again := h.issued("sid-2", "alice", at.Add(time.Second))
	h.create(again)
	h.present("a session issued after the subject's logout", again)

	// Other subjects, and the subject at another issuer, are untouched.
	bob := h.issued("sid-1", "bob", at.Add(-time.Second))
	h.create(bob)
	elsewhere := newSession(h.issuer+"/other", "sid-1", "alice")
	elsewhere.IssuedAt = at.Add(-time.Second)
	h.create(elsewhere)
	h.present("another subject, another issuer", bob, elsewhere)

	// Without IssuedAt, CreatedAt stands in for it.
	old := h.issued("sid-3", "alice", time.Time{})
	old.CreatedAt = at.Add(-time.Minute)
	h.wantErr("Create without IssuedAt, created before the logout", h.st.Create(h.ctx, old), tokenstore.ErrRevoked)
	young := h.issued("sid-3", "alice", time.Time{})
	young.CreatedAt = at.Add(time.Minute)
	h.create(young)

	h.deleteBySubject(h.issuer, "alice", 2)
	h.deleteBySubject(h.issuer, "bob", 1)
	if err := h.st.Delete(h.ctx, elsewhere.ID); err != nil {
		h.t.Fatal(err)
	}
}

func testGetSubjectRevoked(h *harness) {
	// RevokeSubject alone ends the sessions it revokes: a logout whose
	// DeleteBySubject fails (store outage) still signs them out.
	at := logoutAt()
	before := []*tokenstore.Session{h.issued("sid-1", "alice", at.Add(-time.Hour)), h.issued("", "alice", at), h.issued("sid-2", "alice", at.Add(-time.Second))}
	after := h.issued("sid-3", "alice", at.Add(time.Second))
	bob := h.issued("sid-1", "bob", at.Add(-time.Hour))
	for _, s := range append(before, after, bob) {
		h.create(s)
	}
	h.revokeSubject(h.issuer, "alice", at, longTTL)
	h.gone("Get after RevokeSubject", before...)
	h.same("a session of the subject issued after the logout", h.get(after.ID), after)
	h.same("another subject", h.get(bob.ID), bob)
	h.revoked(h.issuer, "sid-1", false) // a subject's logout revokes no sid
	h.deleteBySubject(h.issuer, "alice", 4)
	h.deleteBySubject(h.issuer, "bob", 1)
}

func testUpdateSubjectRevoked(h *harness) {
	at := logoutAt()
	s := h.issued("sid-1", "alice", at.Add(-time.Hour))
	h.create(s)
	h.revokeSubject(h.issuer, "alice", at, longTTL)
	u := s.Clone()
	u.AccessToken = "refreshed"
	h.wantErr("Update of a session revoked by its subject's logout", h.st.Update(h.ctx, u), tokenstore.ErrRevoked)
	// A refresh cannot revive it by changing IssuedAt either.
	u.IssuedAt = at.Add(time.Hour)
	h.wantErr("Update moving IssuedAt past the subject's logout", h.st.Update(h.ctx, u), tokenstore.ErrRevoked)
	h.gone("after the Updates were refused", s)

	// Nor can a refresh move a live session back before the logout.
	live := h.issued("sid-2", "alice", at.Add(time.Second))
	h.create(live)
	u = live.Clone()
	u.IssuedAt = at.Add(-time.Second)
	h.wantErr("Update moving IssuedAt before the subject's logout", h.st.Update(h.ctx, u), tokenstore.ErrRevoked)
	h.same("after the Update was refused", h.get(live.ID), live)
	u = live.Clone()
	u.AccessToken = "refreshed"
	h.update(u)
	h.same("after a refresh of a session issued after the logout", h.get(live.ID), u)
	h.deleteBySubject(h.issuer, "alice", 2)
}

func testRevokeSubjectAgain(h *harness) {
	at := logoutAt()
	h.revokeSubject(h.issuer, "alice", at, longTTL)
	h.revokeSubject(h.issuer, "alice", at.Add(-time.Hour), longTTL) // an older logout token, delivered late
	h.wantErr("Create after an older RevokeSubject", h.st.Create(h.ctx, h.issued("sid-1", "alice", at.Add(-time.Second))), tokenstore.ErrRevoked)
	s := h.issued("sid-1", "alice", at.Add(10*time.Second))
	h.create(s)
	h.revokeSubject(h.issuer, "alice", at.Add(20*time.Second), longTTL) // a later logout
	h.gone("a session issued between two logouts, after the second", s)
	h.wantErr("Create between the logouts, after the second", h.st.Create(h.ctx, h.issued("sid-1", "alice", at.Add(15*time.Second))), tokenstore.ErrRevoked)
	h.create(h.issued("sid-1", "alice", at.Add(21*time.Second)))

	// An empty subject names nobody.
	h.revokeSubject(h.issuer, "", at.Add(time.Hour), longTTL)
	h.create(h.issued("sid-2", "bob", at))
	h.deleteBySubject(h.issuer, "alice", 2)
	h.deleteBySubject(h.issuer, "bob", 1)
}

func testSubjectRevocationExpires(h *harness) {
	at := logoutAt()
	h.revokeSubject(h.issuer, "alice", at, shortTTL)
	h.revokeSubject(h.issuer, "bob", at, longTTL)
	h.revokeSubject(h.issuer, "bob", at, shortTTL) // never shortens
	for _, sub := range []string{"alice", "bob"} {
		h.wantErr("Create while the subject is revoked", h.st.Create(h.ctx, h.issued("sid-1", sub, at)), tokenstore.ErrRevoked)
	}
	sleepUntil(time.Now().Add(shortTTL + margin))
	h.create(h.issued("sid-1", "alice", at))
	h.wantErr("Create after a shorter RevokeSubject expired", h.st.Create(h.ctx, h.issued("sid-1", "bob", at)), tokenstore.ErrRevoked)
	h.deleteBySubject(h.issuer, "alice", 1)
}

// testSubjectLogoutRace: logins of a subject complete while a logout of
// that subject (RevokeSubject, then DeleteBySubject) runs. Once the logout
// has returned, no session issued before it exists, and none appears later;
// sign-ins issued after it are kept.
func testSubjectLogoutRace(h *harness) {
	at := logoutAt()
	step := func(r *race, w, i int) {
		doomed := (i+w)%2 == 0
		issued := at.Add(time.Second)
		if doomed {
			issued = at.Add(-time.Duration(i%3) * time.Second)
		}
		sid := ""
		if i%3 != 0 {
			sid = fmt.Sprintf("sid-%d-%d", w, i)
		}
		s := h.issued(sid, "alice", issued)
		after := r.after()
		switch err := h.st.Create(h.ctx, s); {
		case err == nil && after && doomed:
			h.t.Errorf("Create of a session issued before the subject's logout succeeded after the logout returned")
		case err == nil && doomed:
			r.record(&r.gone, s.ID)
		case err == nil && after:
			r.record(&r.kept, s.ID)
		case err == nil:
		case doomed && errors.Is(err, tokenstore.ErrRevoked):
			return
		default:
			h.t.Errorf("Create: %v", err)
			return
		}
		u := s.Clone()
		u.AccessToken = "refreshed"
		after = r.after()
		switch err := h.st.Update(h.ctx, u); {
		case err == nil && after && doomed:
			h.t.Errorf("Update of a session issued before the subject's logout succeeded after the logout returned")
		case err == nil:
		case errors.Is(err, tokenstore.ErrNotFound), doomed && errors.Is(err, tokenstore.ErrRevoked):
		default:
			h.t.Errorf("Update: %v", err)
		}
		after = r.after()
		switch _, err := h.st.Get(h.ctx, s.ID); {
		case err == nil && after && doomed:
			h.t.Errorf("Get found a session issued before the subject's logout after the logout returned")
		case err == nil, errors.Is(err, tokenstore.ErrNotFound):
		default:
			h.t.Errorf("Get: %v", err)
		}
	}
	r := h.logoutRace(8, step, func() {
		h.revokeSubject(h.issuer, "alice", at, longTTL)
		if _, err := h.st.DeleteBySubject(h.ctx, h.issuer, "alice"); err != nil {
			h.t.Fatalf("DeleteBySubject: %v", err)
		}
	})
	// Sessions issued after the logout and created while it ran may be
	// there too: at least the kept ones are deleted.
	if n, err := h.st.DeleteBySubject(h.ctx, h.issuer, "alice"); err != nil || n < len(r.kept) {
		h.t.Errorf("DeleteBySubject after the race = %d, %v; want at least %d", n, err, len(r.kept))
	}
}
