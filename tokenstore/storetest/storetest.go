// Package storetest checks that a [tokenstore.Store] keeps every promise the
// interface documents. Each store runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tokenstore.Store {
//			s := mystore.New(...)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls newStore once per subtest, sometimes from several goroutines at
// once. The stores it returns may share one backend (one Redis database, say):
// every subtest works under an issuer of its own and fresh session ids, so
// subtests never see each other's records.
//
// A store cannot show from outside whether it keeps raw session ids. When the
// store newStore returns also implements [Dumper] (usually through a wrapper
// made in the test), Run checks that no raw id ever appears in its contents.
//
// The suite cannot set a store's clock, so the expiry and lifetime subtests
// use real time: they run at once and together wait about two seconds. The
// whole suite takes a few seconds against a local store.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Timing of the expiry subtests. shortTTL is long enough that a record is
// still there when checked right after it was written, and that a Touch
// meant for halfway through an idle timeout lands before its end, even on
// a loaded machine (with 1 s, a -race run beside other packages missed the
// half second twice); margin covers a store whose clock runs a little
// behind. The expiry subtests overlap, so this costs about 2 s per store.
const (
	shortTTL = 2 * time.Second
	margin   = 250 * time.Millisecond
	longTTL  = time.Hour
)

// Timing of the lock subtests: how long a Lock that must block is given
// before the suite concludes it blocked, and how long one that must succeed
// may take.
const (
	blockedFor = 100 * time.Millisecond
	patience   = 5 * time.Second
)

// Dumper is implemented by a store under test that can show its raw
// contents. Dump returns every key and value the store holds, in any format
// that keeps strings readable (a store that encrypts its values should dump
// them decrypted). Run then checks that raw session ids appear nowhere: only
// [tokenstore.HashID] of an id may.
type Dumper interface {
	Dump(ctx context.Context) ([]byte, error)
}

type test struct {
	name string
	f    func(h *harness)
}

// Run runs the conformance suite against the stores newStore returns.
func Run(t *testing.T, newStore func(t *testing.T) tokenstore.Store) {
	groups := []struct {
		name       string
		concurrent bool // run the group's subtests at once
		tests      []test
	}{
		{"Session", false, []test{
			{"CreateGet", testCreateGet},
			{"GetMissing", testGetMissing},
			{"KeyedByHash", testKeyedByHash},
			{"RawIDNotStored", testRawIDNotStored},
			{"ReturnsCopies", testReturnsCopies},
			{"CreateExisting", testCreateExisting},
			{"UpdateReplaces", testUpdateReplaces},
			{"UpdateMissing", testUpdateMissing},
			{"UpdateAfterDelete", testUpdateAfterDelete},
			{"UpdateMovesIndexes", testUpdateMovesIndexes},
			{"Delete", testDelete},
			{"TouchOnlyMovesLastSeen", testTouchOnlyMovesLastSeen},
		}},
		{"Logout", false, []test{
			{"CreateRevoked", testCreateRevoked},
			{"UpdateRevoked", testUpdateRevoked},
			{"GetRevoked", testGetRevoked},
			{"DeleteBySID", testDeleteBySID},
			{"DeleteBySIDWithSubject", testDeleteBySIDWithSubject},
			{"EmptySID", testEmptySID},
			{"DeleteBySubject", testDeleteBySubject},
			{"UseOnce", testUseOnce},
			{"UseOnceZeroTTL", testUseOnceZeroTTL},
			{"SIDRevoked", testSIDRevoked},
		}},
		{"SubjectLogout", false, []test{
			{"CreateRevoked", testCreateSubjectRevoked},
			{"GetRevoked", testGetSubjectRevoked},
			{"UpdateRevoked", testUpdateSubjectRevoked},
			{"RevokeAgain", testRevokeSubjectAgain},
		}},
		{"Isolation", false, []test{
			{"Issuers", testIssuerIsolation},
			{"KeyAmbiguity", testKeyAmbiguity},
		}},
		{"Expiry", true, []test{
			{"Session", testSessionExpires},
			{"AlreadyExpired", testAlreadyExpired},
			{"UpdateExtends", testUpdateExtends},
			{"UpdateShortens", testUpdateShortens},
			{"OneTimeKey", testOneTimeKeyExpires},
			{"Revocation", testRevocationExpires},
			{"RevokeAgainNeverShortens", testRevokeAgain},
			{"SubjectRevocation", testSubjectRevocationExpires},
			{"IdleTimeout", testIdleTimeout},
			{"TouchExtendsIdle", testTouchExtendsIdle},
			{"TouchNotPastExpiresAt", testTouchNotPastExpiresAt},
		}},
		{"Lock", false, []test{
			{"MutualExclusion", testLockMutualExclusion},
			{"WaitsForUnlock", testLockWaits},
			{"Context", testLockContext},
			{"Independent", testLockIndependent},
			{"UnlockIdempotent", testUnlockIdempotent},
		}},
		{"Concurrency", false, []test{
			{"CreateSameID", testConcurrentCreate},
			{"UseSameKey", testConcurrentUseOnce},
			{"LogoutRace", testLogoutRace},
			{"SubjectLogoutRace", testSubjectLogoutRace},
			{"Torture", testTorture},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for _, tc := range g.tests {
				run := func() {
					t.Run(tc.name, func(t *testing.T) { tc.f(newHarness(t, newStore(t))) })
				}
				if !g.concurrent {
					run()
					continue
				}
				// Not t.Parallel: that would queue these waits behind the
				// -parallel limit (GOMAXPROCS), and they must overlap.
				wg.Go(run)
			}
			wg.Wait()
		})
	}
}

// harness is one subtest's store and issuer, with helpers that fail the test
// on unexpected errors.
type harness struct {
	t      *testing.T
	st     tokenstore.Store
	ctx    context.Context
	issuer string
}

func newHarness(t *testing.T, st tokenstore.Store) *harness {
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	return &harness{t: t, st: st, ctx: t.Context(), issuer: newIssuer()}
}

func newIssuer() string {
	return "https://op.example/" + tokenstore.NewID()[:16]
}

// session returns a new session of h's issuer with every field set, living
// for longTTL.
func (h *harness) session(sid, subject string) *tokenstore.Session {
	return newSession(h.issuer, sid, subject)
}

func newSession(issuer, sid, subject string) *tokenstore.Session {
	now := time.Now().Round(0) // no monotonic reading: stores need not keep it
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": subject, "sid": sid, "email": subject + "@example.com"})
	return &tokenstore.Session{
		ID:       tokenstore.NewID(),
		Issuer:   issuer,
		Subject:  subject,
		SID:      sid,
		ClientID: "app-a",
		Tokens: tokenstore.Tokens{
			IDToken:      "id-token-" + tokenstore.NewID(),
			AccessToken:  "access-token-" + tokenstore.NewID(),
			TokenType:    "Bearer",
			Expiry:       now.Add(5 * time.Minute),
			RefreshToken: "refresh-token-" + tokenstore.NewID(),
			Claims:       claims,
		},
		CreatedAt:   now,
		LastSeen:    now,
		RefreshedAt: now,
		IssuedAt:    now.Truncate(time.Second),
		ExpiresAt:   now.Add(longTTL),
		IdleTimeout: longTTL,
	}
}

func (h *harness) create(s *tokenstore.Session) {
	h.t.Helper()
	if err := h.st.Create(h.ctx, s); err != nil {
		h.t.Fatalf("Create(sid %q, sub %q): %v", s.SID, s.Subject, err)
	}
}

func (h *harness) update(s *tokenstore.Session) {
	h.t.Helper()
	if err := h.st.Update(h.ctx, s); err != nil {
		h.t.Fatalf("Update(sid %q, sub %q): %v", s.SID, s.Subject, err)
	}
}

// get returns the session with that id and fails the test if there is none.
func (h *harness) get(id string) *tokenstore.Session {
	h.t.Helper()
	s, err := h.st.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get: %v", err)
	}
	if s == nil {
		h.t.Fatal("Get returned a nil session and no error")
	}
	if s.ID != id {
		h.t.Fatalf("Get(id).ID = %q, want the id passed to Get", s.ID)
	}
	return s
}

// has reports whether Get finds that id, failing on errors other than
// ErrNotFound.
func (h *harness) has(id string) bool {
	h.t.Helper()
	_, err := h.st.Get(h.ctx, id)
	switch {
	case err == nil:
		return true
	case errors.Is(err, tokenstore.ErrNotFound):
		return false
	default:
		h.t.Fatalf("Get: %v", err)
		return false
	}
}

func (h *harness) present(what string, ss ...*tokenstore.Session) {
	h.t.Helper()
	for _, s := range ss {
		if !h.has(s.ID) {
			h.t.Errorf("%s: session (sid %q, sub %q, client %q) is gone, want it kept", what, s.SID, s.Subject, s.ClientID)
		}
	}
}

func (h *harness) gone(what string, ss ...*tokenstore.Session) {
	h.t.Helper()
	for _, s := range ss {
		if h.has(s.ID) {
			h.t.Errorf("%s: session (sid %q, sub %q, client %q) still exists, want it gone", what, s.SID, s.Subject, s.ClientID)
		}
	}
}

func (h *harness) deleteBySID(issuer, sid, subject string, want int) {
	h.t.Helper()
	n, err := h.st.DeleteBySID(h.ctx, issuer, sid, subject)
	if err != nil {
		h.t.Fatalf("DeleteBySID(%q, %q): %v", sid, subject, err)
	}
	if n != want {
		h.t.Errorf("DeleteBySID(%q, %q) = %d, want %d", sid, subject, n, want)
	}
}

func (h *harness) deleteBySubject(issuer, subject string, want int) {
	h.t.Helper()
	n, err := h.st.DeleteBySubject(h.ctx, issuer, subject)
	if err != nil {
		h.t.Fatalf("DeleteBySubject(%q): %v", subject, err)
	}
	if n != want {
		h.t.Errorf("DeleteBySubject(%q) = %d, want %d", subject, n, want)
	}
}

func (h *harness) revoke(issuer, sid string, ttl time.Duration) {
	h.t.Helper()
	if err := h.st.RevokeSID(h.ctx, issuer, sid, ttl); err != nil {
		h.t.Fatalf("RevokeSID(%q): %v", sid, err)
	}
}

func (h *harness) revoked(issuer, sid string, want bool) {
	h.t.Helper()
	got, err := h.st.SIDRevoked(h.ctx, issuer, sid)
	if err != nil {
		h.t.Fatalf("SIDRevoked(%q): %v", sid, err)
	}
	if got != want {
		h.t.Errorf("SIDRevoked(%q) = %v, want %v", sid, got, want)
	}
}

// remember uses a logout token id once.
func (h *harness) remember(issuer, jti string, ttl time.Duration, want bool) {
	h.t.Helper()
	h.useOnce(tokenstore.LogoutTokenIDs, issuer, jti, ttl, want)
}

func (h *harness) useOnce(namespace, scope, key string, ttl time.Duration, want bool) {
	h.t.Helper()
	first, err := h.st.UseOnce(h.ctx, namespace, scope, key, ttl)
	if err != nil {
		h.t.Fatalf("UseOnce(%q, %q): %v", namespace, key, err)
	}
	if first != want {
		h.t.Errorf("UseOnce(%q, %q) = %v, want %v", namespace, key, first, want)
	}
}

func (h *harness) wantErr(what string, err, want error) {
	h.t.Helper()
	if !errors.Is(err, want) {
		h.t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// same fails the test unless got and want agree on every exported field,
// those of the embedded Tokens included. Times are compared with
// time.Time.Equal and claims byte for byte.
func (h *harness) same(what string, got, want *tokenstore.Session) {
	h.t.Helper()
	h.sameFields(what, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
}

func (h *harness) sameFields(what string, gv, wv reflect.Value) {
	h.t.Helper()
	for i := range gv.NumField() {
		f := gv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			h.sameFields(what, gv.Field(i), wv.Field(i))
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		var eq bool
		switch g := g.(type) {
		case time.Time:
			eq = g.Equal(w.(time.Time))
		case json.RawMessage:
			eq = bytes.Equal(g, w.(json.RawMessage))
		default:
			eq = reflect.DeepEqual(g, w)
		}
		if !eq {
			h.t.Errorf("%s: %s = %v, want %v", what, f.Name, g, w)
		}
	}
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
