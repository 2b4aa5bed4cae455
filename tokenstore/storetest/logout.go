package storetest

import (
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func testCreateRevoked(h *harness) {
	h.revoke(h.issuer, "sid-1", longTTL)
	s := h.session("sid-1", "alice")
	h.wantErr("Create after RevokeSID", h.st.Create(h.ctx, s), tokenstore.ErrRevoked)
	h.gone("after Create was refused", s)
	h.deleteBySID(h.issuer, "sid-1", "", 0)

	h.create(h.session("sid-2", "alice")) // another OP session
	h.create(h.session("", "alice"))      // no sid: never refused
}

func testUpdateRevoked(h *harness) {
	// A refresh that moves a session into a revoked OP session is refused.
	s := h.session("sid-1", "alice")
	h.create(s)
	h.revoke(h.issuer, "sid-2", longTTL)
	u := s.Clone()
	u.SID = "sid-2"
	u.AccessToken = "refreshed"
	h.wantErr("Update into a revoked sid", h.st.Update(h.ctx, u), tokenstore.ErrRevoked)
	h.same("Get after Update was refused", h.get(s.ID), s)
	h.deleteBySID(h.issuer, "sid-2", "", 0)

	// So is one of a session whose OP session was revoked and whose
	// DeleteBySID has not come yet.
	h.revoke(h.issuer, "sid-1", longTTL)
	u = s.Clone()
	u.AccessToken = "refreshed"
	h.wantErr("Update of a revoked sid", h.st.Update(h.ctx, u), tokenstore.ErrRevoked)
	h.gone("Get once its OP session is revoked", s)
	h.deleteBySID(h.issuer, "sid-1", "", 1)
}

func testGetRevoked(h *harness) {
	// RevokeSID alone ends the sessions of the OP session: a back-channel
	// logout whose DeleteBySID fails (store outage) still signs them out.
	a, b := h.session("sid-1", "alice"), h.session("sid-1", "alice")
	other, none := h.session("sid-2", "alice"), h.session("", "alice")
	for _, s := range []*tokenstore.Session{a, b, other, none} {
		h.create(s)
	}
	h.revoke(h.issuer, "sid-1", longTTL)
	h.gone("Get after RevokeSID", a, b)
	h.same("another OP session of the subject", h.get(other.ID), other)
	h.same("a session without sid", h.get(none.ID), none)
	h.revoke(h.issuer+"/other", "sid-2", longTTL)
	h.same("a revocation at another issuer", h.get(other.ID), other)
	h.deleteBySID(h.issuer, "sid-1", "", 2)
}

// logoutFixture is a set of sessions around one OP session sid-1 of alice,
// shared by two apps.
type logoutFixture struct {
	sidApps   []*tokenstore.Session // sid-1, alice, apps a and b
	sidOther  *tokenstore.Session   // sid-2, alice: her other OP session
	aliceNone []*tokenstore.Session // no sid, alice, apps a and b
	bobNone   *tokenstore.Session   // no sid, bob
	bobSID    *tokenstore.Session   // sid-3, bob
}

func (h *harness) logoutFixture() *logoutFixture {
	f := &logoutFixture{
		sidApps:   []*tokenstore.Session{h.session("sid-1", "alice"), h.session("sid-1", "alice")},
		sidOther:  h.session("sid-2", "alice"),
		aliceNone: []*tokenstore.Session{h.session("", "alice"), h.session("", "alice")},
		bobNone:   h.session("", "bob"),
		bobSID:    h.session("sid-3", "bob"),
	}
	f.sidApps[1].ClientID = "app-b"
	f.aliceNone[1].ClientID = "app-b"
	for _, s := range f.all() {
		h.create(s)
	}
	return f
}

func (f *logoutFixture) all() []*tokenstore.Session {
	return append(append(append([]*tokenstore.Session{}, f.sidApps...), f.aliceNone...), f.sidOther, f.bobNone, f.bobSID)
}

func testDeleteBySID(h *harness) {
	f := h.logoutFixture()
	h.deleteBySID(h.issuer, "sid-1", "", 2)
	h.gone("after DeleteBySID", f.sidApps...)
	h.present("after DeleteBySID without subject", f.aliceNone...)
	h.present("after DeleteBySID of another sid", f.sidOther, f.bobNone, f.bobSID)
	h.deleteBySID(h.issuer, "sid-1", "", 0)
}

func testDeleteBySIDWithSubject(h *harness) {
	f := h.logoutFixture()
	h.deleteBySID(h.issuer, "sid-1", "alice", 4)
	h.gone("after DeleteBySID with subject", f.sidApps...)
	h.gone("sid-less session of the subject, after DeleteBySID with subject", f.aliceNone...)
	h.present("subject's session with another sid, after DeleteBySID with subject", f.sidOther)
	h.present("another subject's sessions, after DeleteBySID with subject", f.bobNone, f.bobSID)
	h.deleteBySID(h.issuer, "sid-1", "alice", 0)
}

// testEmptySID checks that an empty sid names no OP session.
func testEmptySID(h *harness) {
	f := h.logoutFixture()
	h.deleteBySID(h.issuer, "", "", 0)
	h.present(`after DeleteBySID("", "")`, f.all()...)

	h.deleteBySID(h.issuer, "", "alice", 2)
	h.gone(`sid-less session of the subject, after DeleteBySID("", subject)`, f.aliceNone...)
	h.present(`after DeleteBySID("", "alice")`, append(f.sidApps, f.sidOther, f.bobNone, f.bobSID)...)

	h.revoke(h.issuer, "", longTTL)
	h.revoked(h.issuer, "", false)
	h.create(h.session("", "alice"))
}

func testDeleteBySubject(h *harness) {
	f := h.logoutFixture()
	h.deleteBySubject(h.issuer, "alice", 5)
	h.gone("after DeleteBySubject", f.sidApps...)
	h.gone("after DeleteBySubject", f.aliceNone...)
	h.gone("after DeleteBySubject", f.sidOther)
	h.present("another subject's sessions, after DeleteBySubject", f.bobNone, f.bobSID)
	h.deleteBySubject(h.issuer, "alice", 0)
	h.deleteBySubject(h.issuer, "nobody", 0)
}

func testUseOnce(h *harness) {
	h.remember(h.issuer, "jti-1", longTTL, true)
	h.remember(h.issuer, "jti-1", longTTL, false)
	h.remember(h.issuer, "jti-1", longTTL, false)
	h.remember(h.issuer, "jti-2", longTTL, true)

	// The same key in every namespace, and in an application's own, is a
	// first use in each.
	for _, ns := range []string{tokenstore.LoginStates, tokenstore.DPoPProofIDs, "app-namespace", ""} {
		h.useOnce(ns, h.issuer, "jti-1", longTTL, true)
		h.useOnce(ns, h.issuer, "jti-1", longTTL, false)
	}
	h.useOnce(tokenstore.LoginStates, h.issuer+"/other", "jti-1", longTTL, true)
}

// testUseOnceZeroTTL: a ttl of zero or less records nothing, and still
// reports a recorded key as used.
func testUseOnceZeroTTL(h *harness) {
	for range 2 {
		h.useOnce(tokenstore.LoginStates, h.issuer, "k-1", 0, true)
		h.useOnce(tokenstore.LoginStates, h.issuer, "k-2", -time.Second, true)
	}
	h.useOnce(tokenstore.LoginStates, h.issuer, "k-3", longTTL, true)
	h.useOnce(tokenstore.LoginStates, h.issuer, "k-3", 0, false)
	h.useOnce(tokenstore.LoginStates, h.issuer, "k-3", longTTL, false)
}

func testSIDRevoked(h *harness) {
	h.revoked(h.issuer, "sid-1", false)
	h.revoke(h.issuer, "sid-1", longTTL)
	h.revoked(h.issuer, "sid-1", true)
	h.revoked(h.issuer, "sid-2", false)
	h.revoke(h.issuer, "sid-1", longTTL) // again
	h.revoked(h.issuer, "sid-1", true)
}
