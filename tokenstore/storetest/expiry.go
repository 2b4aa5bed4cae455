package storetest

import (
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func testSessionExpires(h *harness) {
	end := time.Now().Add(shortTTL)
	short := func(sid, sub string) *tokenstore.Session {
		s := h.session(sid, sub)
		s.ExpiresAt = end
		h.create(s)
		return s
	}
	get, update, recreate := short("sid-1", "alice"), short("sid-1", "alice"), short("sid-1", "alice")
	counted := short("sid-1", "alice")
	lone := short("", "bob")
	dave := short("sid-3", "dave")
	keep := h.session("sid-1", "alice")
	h.create(keep)
	keepBob := h.session("", "bob")
	h.create(keepBob)
	keepDave := h.session("sid-4", "dave")
	h.create(keepDave)
	h.present("before ExpiresAt", get, update, recreate, counted, lone, dave)

	sleepUntil(end.Add(margin))
	_, err := h.st.Get(h.ctx, get.ID)
	h.wantErr("Get after ExpiresAt", err, tokenstore.ErrNotFound)
	u := update.Clone()
	u.ExpiresAt = time.Now().Add(longTTL)
	h.wantErr("Update after ExpiresAt", h.st.Update(h.ctx, u), tokenstore.ErrNotFound)
	h.gone("after Update of an expired session", update)

	r := h.session("sid-2", "carol")
	r.ID = recreate.ID
	if err := h.st.Create(h.ctx, r); err != nil {
		h.t.Errorf("Create with the id of an expired session: %v, want nil", err)
	}
	// Deletes count live sessions only.
	h.deleteBySID(h.issuer, "sid-1", "", 1)    // keep, not counted
	h.deleteBySID(h.issuer, "sid-x", "bob", 1) // keepBob, not lone
	h.deleteBySubject(h.issuer, "dave", 1)     // keepDave, not dave
	h.deleteBySubject(h.issuer, "alice", 0)
	h.deleteBySID(h.issuer, "sid-2", "", 1) // the new session
}

func testAlreadyExpired(h *harness) {
	s := h.session("sid-1", "alice")
	s.ExpiresAt = time.Now().Add(-time.Second)
	_ = h.st.Create(h.ctx, s) // may succeed or not; the session must not live
	h.gone("Create with ExpiresAt in the past", s)

	u := h.session("sid-1", "alice")
	h.create(u)
	v := u.Clone()
	v.ExpiresAt = time.Now().Add(-time.Second)
	_ = h.st.Update(h.ctx, v)
	h.gone("after Update with ExpiresAt in the past", u)
	h.deleteBySID(h.issuer, "sid-1", "alice", 0)
}

func testUpdateExtends(h *harness) {
	s := h.session("sid-1", "alice")
	s.ExpiresAt = time.Now().Add(shortTTL)
	h.create(s)
	u := s.Clone()
	u.ExpiresAt = time.Now().Add(longTTL)
	h.update(u)
	sleepUntil(s.ExpiresAt.Add(margin))
	h.present("after the ExpiresAt an Update moved later", s)
}

func testUpdateShortens(h *harness) {
	s := h.session("sid-1", "alice")
	h.create(s)
	u := s.Clone()
	u.ExpiresAt = time.Now().Add(shortTTL)
	h.update(u)
	h.present("before the ExpiresAt set by Update", s)
	sleepUntil(u.ExpiresAt.Add(margin))
	h.gone("after the ExpiresAt set by Update", s)
}

func testOneTimeKeyExpires(h *harness) {
	end := time.Now().Add(shortTTL)
	h.remember(h.issuer, "jti-1", shortTTL, true)
	h.remember(h.issuer, "jti-2", longTTL, true)
	h.remember(h.issuer, "jti-1", shortTTL, false)
	sleepUntil(end.Add(margin))
	h.remember(h.issuer, "jti-1", shortTTL, true)
	h.remember(h.issuer, "jti-1", shortTTL, false)
	h.remember(h.issuer, "jti-2", longTTL, false)
}

func testRevocationExpires(h *harness) {
	end := time.Now().Add(shortTTL)
	h.revoke(h.issuer, "sid-1", shortTTL)
	h.revoked(h.issuer, "sid-1", true)
	h.wantErr("Create before the revocation expires", h.st.Create(h.ctx, h.session("sid-1", "alice")), tokenstore.ErrRevoked)
	sleepUntil(end.Add(margin))
	h.revoked(h.issuer, "sid-1", false)
	h.create(h.session("sid-1", "alice"))
}

// testRevokeAgain checks that revoking an OP session again never makes the
// revocation end sooner.
func testRevokeAgain(h *harness) {
	end := time.Now().Add(shortTTL)
	h.revoke(h.issuer, "longer-later", shortTTL)
	h.revoke(h.issuer, "longer-later", longTTL)
	h.revoke(h.issuer, "shorter-later", longTTL)
	h.revoke(h.issuer, "shorter-later", shortTTL)
	sleepUntil(end.Add(margin))
	h.revoked(h.issuer, "longer-later", true)
	h.revoked(h.issuer, "shorter-later", true)
}
