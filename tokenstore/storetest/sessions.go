package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func testCreateGet(h *harness) {
	s := h.session("sid-1", "alice")
	want := s.Clone()
	h.create(s)
	h.same("Get after Create", h.get(s.ID), want)

	other := h.session("", "alice")
	other.ClientID = "app-b"
	h.create(other)
	h.same("Get of a second session", h.get(other.ID), other)
	h.same("Get of the first session", h.get(s.ID), want)

	// A session bound to a DPoP key keeps it, through Create and Update.
	bound := h.session("sid-2", "bob")
	bound.DPoPKey = []byte(`{"kty":"EC","crv":"P-256","d":"private"}`)
	h.create(bound.Clone())
	h.same("Get of a session with a DPoP key", h.get(bound.ID), bound)
	refreshed := bound.Clone()
	refreshed.AccessToken = "refreshed"
	h.update(refreshed.Clone())
	h.same("Get of a refreshed session with a DPoP key", h.get(bound.ID), refreshed)
}

func testGetMissing(h *harness) {
	_, err := h.st.Get(h.ctx, tokenstore.NewID())
	h.wantErr("Get of an unknown id", err, tokenstore.ErrNotFound)
	_, err = h.st.Get(h.ctx, "")
	h.wantErr(`Get("")`, err, tokenstore.ErrNotFound)
}

// testKeyedByHash checks that the raw id is not the key: a dump of the store
// shows HashID(id), which must not work as a session id.
func testKeyedByHash(h *harness) {
	s := h.session("sid-1", "alice")
	h.create(s)
	hashed := tokenstore.HashID(s.ID)

	_, err := h.st.Get(h.ctx, hashed)
	h.wantErr("Get(HashID(id))", err, tokenstore.ErrNotFound)

	u := s.Clone()
	u.ID = hashed
	u.AccessToken = "changed"
	h.wantErr("Update with ID = HashID(id)", h.st.Update(h.ctx, u), tokenstore.ErrNotFound)

	if err := h.st.Delete(h.ctx, hashed); err != nil {
		h.t.Fatalf("Delete(HashID(id)): %v", err)
	}
	h.same("Get(id) after the hashed id was used", h.get(s.ID), s)
}

// testRawIDNotStored checks, for a store that implements Dumper, that no raw
// session id is kept: not in a record, not in a key, not in a lock.
func testRawIDNotStored(h *harness) {
	d, ok := h.st.(Dumper)
	if !ok {
		h.t.Skip("the store does not implement storetest.Dumper")
	}
	var ids []string
	for i, sid := range []string{"sid-1", "", "sid-1", ""} {
		s := h.session(sid, "alice")
		h.create(s)
		if i >= 2 {
			u := s.Clone()
			u.AccessToken = "refreshed"
			h.update(u)
		}
		ids = append(ids, s.ID)
	}
	locked := tokenstore.NewID()
	ids = append(ids, locked)
	unlock := h.lock(locked)
	defer unlock()
	h.revoke(h.issuer, "sid-2", longTTL)
	h.remember(h.issuer, "jti-1", longTTL, true)

	dump, err := d.Dump(h.ctx)
	if err != nil {
		h.t.Fatalf("Dump: %v", err)
	}
	if len(dump) == 0 {
		h.t.Fatal("Dump returned nothing")
	}
	for _, id := range ids {
		if bytes.Contains(dump, []byte(id)) {
			h.t.Errorf("the store's contents hold a raw session id")
		}
	}
	if !bytes.Contains(dump, []byte(tokenstore.HashID(ids[0]))) {
		h.t.Logf("HashID(id) does not appear in the dump either; is it complete?")
	}
}

func testReturnsCopies(h *harness) {
	s := h.session("sid-1", "alice")
	want := s.Clone()
	h.create(s)

	// The caller keeps its Session after Create.
	s.AccessToken = "mutated after Create"
	s.Claims[0] = 'X'
	got := h.get(want.ID)
	h.same("Get after mutating the Session passed to Create", got, want)

	// A returned Session belongs to the caller.
	got.AccessToken = "mutated after Get"
	got.Claims[0] = 'Y'
	again := h.get(want.ID)
	h.same("Get after mutating a returned Session", again, want)
	if again == got {
		h.t.Error("two Gets returned the same *Session")
	}

	// Same for Update.
	u := want.Clone()
	u.AccessToken = "refreshed"
	want2 := u.Clone()
	h.update(u)
	u.AccessToken = "mutated after Update"
	u.Claims[0] = 'Z'
	h.same("Get after mutating the Session passed to Update", h.get(want.ID), want2)
}

func testCreateExisting(h *harness) {
	s := h.session("sid-1", "alice")
	h.create(s)
	dup := h.session("sid-2", "bob")
	dup.ID = s.ID
	h.wantErr("Create with a taken id", h.st.Create(h.ctx, dup), tokenstore.ErrExists)
	h.same("Get after a refused Create", h.get(s.ID), s)
	h.deleteBySID(h.issuer, "sid-2", "", 0)
}

func testUpdateReplaces(h *harness) {
	s := h.session("sid-1", "alice")
	h.create(s)
	u := s.Clone()
	u.IDToken, u.AccessToken, u.RefreshToken = "id-2", "at-2", "rt-2"
	u.Tokens.Expiry = u.Tokens.Expiry.Add(time.Hour)
	u.LastSeen = u.LastSeen.Add(time.Minute)
	u.ExpiresAt = u.ExpiresAt.Add(time.Minute)
	u.Claims = json.RawMessage(`{"sub":"alice","refreshed":true}`)
	h.update(u)
	h.same("Get after Update", h.get(s.ID), u)
}

func testUpdateMissing(h *harness) {
	s := h.session("sid-1", "alice")
	h.wantErr("Update of a session never created", h.st.Update(h.ctx, s), tokenstore.ErrNotFound)
	h.gone("after Update of a session never created", s)
	h.deleteBySID(h.issuer, "sid-1", "alice", 0)
}

func testUpdateAfterDelete(h *harness) {
	cases := []struct {
		name   string
		sid    string
		delete func(s *tokenstore.Session)
	}{
		{"Delete", "sid-1", func(s *tokenstore.Session) {
			if err := h.st.Delete(h.ctx, s.ID); err != nil {
				h.t.Fatalf("Delete: %v", err)
			}
		}},
		{"DeleteBySID", "sid-2", func(s *tokenstore.Session) { h.deleteBySID(h.issuer, s.SID, "", 1) }},
		{"DeleteBySID with subject", "", func(s *tokenstore.Session) { h.deleteBySID(h.issuer, "sid-x", s.Subject, 1) }},
		{"DeleteBySubject", "sid-3", func(s *tokenstore.Session) { h.deleteBySubject(h.issuer, s.Subject, 1) }},
	}
	for i, c := range cases {
		s := h.session(c.sid, fmt.Sprintf("user-%d", i))
		h.create(s)
		c.delete(s)
		u := s.Clone()
		u.AccessToken = "refreshed"
		h.wantErr("Update after "+c.name, h.st.Update(h.ctx, u), tokenstore.ErrNotFound)
		h.gone("after Update following "+c.name, s)
	}
}

// testUpdateMovesIndexes checks that DeleteBySID and DeleteBySubject follow
// an Update that changes the sid or the subject.
func testUpdateMovesIndexes(h *harness) {
	s := h.session("sid-a", "alice")
	h.create(s)

	u := s.Clone()
	u.SID = "sid-b"
	h.update(u)
	h.deleteBySID(h.issuer, "sid-a", "", 0)
	h.present("after DeleteBySID of the sid it had before Update", s)

	u.SID = ""
	h.update(u)
	h.deleteBySID(h.issuer, "sid-b", "", 0)
	h.present("after DeleteBySID of the sid it had before Update", s)

	u.Subject = "bob"
	h.update(u)
	h.deleteBySID(h.issuer, "sid-z", "alice", 0)
	h.deleteBySubject(h.issuer, "alice", 0)
	h.present("after deletes by the subject it had before Update", s)

	u.SID = "sid-c"
	h.update(u)
	h.deleteBySID(h.issuer, "sid-z", "bob", 0) // has a sid now
	h.present("after DeleteBySID(other sid, subject) of a session that gained a sid", s)
	h.deleteBySID(h.issuer, "sid-c", "", 1)
	h.gone("after DeleteBySID of its current sid", s)

	// And by subject, after moving subjects.
	c := h.session("sid-d", "carol")
	h.create(c)
	v := c.Clone()
	v.Subject = "dave"
	h.update(v)
	h.deleteBySubject(h.issuer, "dave", 1)
	h.gone("after DeleteBySubject of its current subject", c)
}

func testDelete(h *harness) {
	a, b := h.session("sid-1", "alice"), h.session("sid-1", "alice")
	h.create(a)
	h.create(b)
	if err := h.st.Delete(h.ctx, a.ID); err != nil {
		h.t.Fatalf("Delete: %v", err)
	}
	h.gone("after Delete", a)
	h.present("after Delete of another session", b)
	if err := h.st.Delete(h.ctx, a.ID); err != nil {
		h.t.Errorf("Delete of a deleted session: %v, want nil", err)
	}
	if err := h.st.Delete(h.ctx, tokenstore.NewID()); err != nil {
		h.t.Errorf("Delete of an unknown id: %v, want nil", err)
	}
	h.deleteBySID(h.issuer, "sid-1", "", 1)
}
