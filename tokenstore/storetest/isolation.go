package storetest

import (
	"fmt"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func testIssuerIsolation(h *harness) {
	other := newIssuer()
	mine := h.logoutFixture()
	theirs := []*tokenstore.Session{
		newSession(other, "sid-1", "alice"),
		newSession(other, "", "alice"),
		newSession(other, "sid-2", "alice"),
	}
	for _, s := range theirs {
		h.create(s)
	}

	h.revoke(h.issuer, "sid-1", longTTL)
	h.revoked(other, "sid-1", false)
	h.deleteBySID(h.issuer, "sid-1", "alice", 4)
	h.present("other issuer, after DeleteBySID", theirs...)
	h.deleteBySubject(h.issuer, "alice", 1)
	h.gone("after DeleteBySubject", mine.sidOther)
	h.present("other issuer, after DeleteBySubject", theirs...)

	h.create(newSession(other, "sid-1", "alice")) // not revoked there
	h.remember(h.issuer, "jti-1", longTTL, true)
	h.remember(other, "jti-1", longTTL, true)
	h.remember(other, "jti-1", longTTL, false)
}

// testKeyAmbiguity checks that (issuer, value) pairs are kept apart even when
// a store joins them into one string, and that sids and subjects are kept
// apart even when they are equal strings.
func testKeyAmbiguity(h *harness) {
	for _, sep := range []string{":", "|", "/", "#", " ", "\x00", "\n"} {
		// (issA, valA) and (issB, valB) join to the same string with sep.
		pair := func(tag string) (issA, valA, issB, valB string) {
			base := h.issuer + "/" + tag
			return base, "p" + sep + "q", base + sep + "p", "q"
		}
		what := fmt.Sprintf("separator %q", sep)

		issA, valA, issB, valB := pair("revoke")
		h.revoke(issA, valA, longTTL)
		h.revoked(issB, valB, false)
		h.create(newSession(issB, valB, "x"))

		issA, valA, issB, valB = pair("jti")
		h.remember(issA, valA, longTTL, true)
		h.remember(issB, valB, longTTL, true)
		// (namespace, key) and (scope, namespace) pairs that join alike.
		nsA, keyA, nsB, keyB := "ns"+sep+"p", "q", "ns", "p"+sep+"q"
		h.useOnce(nsA, h.issuer, keyA, longTTL, true)
		h.useOnce(nsB, h.issuer, keyB, longTTL, true)
		scope := h.issuer + "/once"
		h.useOnce("ns", scope+sep+"x", "k", longTTL, true)
		h.useOnce("x"+sep+"ns", scope, "k", longTTL, true)

		issA, valA, issB, valB = pair("sid")
		a := newSession(issA, valA, "x")
		h.create(a)
		h.deleteBySID(issB, valB, "", 0)
		h.present(what, a)

		issA, valA, issB, valB = pair("sub")
		b, c := newSession(issA, "", valA), newSession(issA, "sid-1", valA)
		h.create(b)
		h.create(c)
		h.deleteBySubject(issB, valB, 0)
		h.deleteBySID(issB, "sid-x", valB, 0)
		h.present(what, b, c)
	}

	// A sid that equals a subject.
	s, t := h.session("", "same"), h.session("same", "other")
	h.create(s)
	h.create(t)
	h.deleteBySID(h.issuer, "same", "", 1)
	h.present("sid-less session whose subject equals a deleted sid", s)
	h.gone("session of the deleted sid", t)
	h.remember(h.issuer, "same", longTTL, true) // a jti equal to a sid
	h.revoke(h.issuer, "same-2", longTTL)
	h.remember(h.issuer, "same-2", longTTL, true) // a jti equal to a revoked sid
}
