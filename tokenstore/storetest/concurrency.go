package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func testConcurrentCreate(h *harness) {
	const workers = 16
	id := tokenstore.NewID()
	var created, exists atomic.Int32
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			s := h.session("sid-1", fmt.Sprintf("user-%d", i))
			s.ID = id
			switch err := h.st.Create(h.ctx, s); {
			case err == nil:
				created.Add(1)
			case errors.Is(err, tokenstore.ErrExists):
				exists.Add(1)
			default:
				h.t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 || exists.Load() != workers-1 {
		h.t.Errorf("%d Creates of one id succeeded and %d got ErrExists, want 1 and %d", created.Load(), exists.Load(), workers-1)
	}
	h.deleteBySID(h.issuer, "sid-1", "", 1)
}

func testConcurrentUseOnce(h *harness) {
	const workers = 16
	var first atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ok, err := h.st.UseOnce(h.ctx, tokenstore.LogoutTokenIDs, h.issuer, "jti-1", longTTL)
			if err != nil {
				h.t.Errorf("UseOnce: %v", err)
			}
			if ok {
				first.Add(1)
			}
		})
	}
	wg.Wait()
	if n := first.Load(); n != 1 {
		h.t.Errorf("%d concurrent UseOnce calls of one key reported first, want 1", n)
	}
}

// race is a back-channel logout racing logins and refreshes, run by
// harness.logoutRace. Workers record the sessions they stored: gone ones
// must not exist once the logout has returned, kept ones must.
type race struct {
	loggedOut  atomic.Bool
	mu         sync.Mutex
	gone, kept []string
}

// after reports whether the logout has returned.
func (r *race) after() bool { return r.loggedOut.Load() }

func (r *race) record(list *[]string, id string) {
	r.mu.Lock()
	*list = append(*list, id)
	r.mu.Unlock()
}

// logoutRace runs step(r, w, i) over and over in workers goroutines (w the
// worker, i its iteration), runs logout in the middle, lets the workers go
// on a little, then checks the sessions they recorded.
func (h *harness) logoutRace(workers int, step func(r *race, w, i int), logout func()) *race {
	r := &race{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				step(r, w, i)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	logout()
	r.loggedOut.Store(true)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	for _, id := range r.gone {
		if h.has(id) {
			h.t.Errorf("a session ended by the logout survived it")
			break
		}
	}
	for _, id := range r.kept {
		if !h.has(id) {
			h.t.Errorf("a session the logout does not end was lost")
			break
		}
	}
	if len(r.gone) == 0 || len(r.kept) == 0 {
		h.t.Logf("weak run: %d doomed and %d kept sessions", len(r.gone), len(r.kept))
	}
	return r
}

// testLogoutRace checks the invariant the Store's method order exists for:
// once RevokeSID and then DeleteBySID have returned, no session of that sid
// exists, whatever Creates and Updates were racing them, and none appears
// later.
func testLogoutRace(h *harness) {
	const (
		doomed = "sid-doomed"
		other  = "sid-other"
	)
	step := func(r *race, w, i int) {
		sid := doomed
		if i%3 == 2 {
			sid = other
		}
		s := h.session(sid, fmt.Sprintf("user-%d", w))
		after := r.after()
		err := h.st.Create(h.ctx, s)
		switch {
		case err == nil && after && sid == doomed:
			h.t.Errorf("Create of a logged-out sid succeeded after the logout returned")
		case err == nil:
		case sid == doomed && errors.Is(err, tokenstore.ErrRevoked):
			return
		default:
			h.t.Errorf("Create(sid %q): %v", sid, err)
			return
		}
		if sid == other && i%2 == 0 {
			// A refresh that moves the session into the doomed sid.
			u := s.Clone()
			u.SID = doomed
			after := r.after()
			switch err := h.st.Update(h.ctx, u); {
			case err == nil && after:
				h.t.Errorf("Update into a logged-out sid succeeded after the logout returned")
			case err == nil:
				sid = doomed
			case errors.Is(err, tokenstore.ErrRevoked):
			default:
				h.t.Errorf("Update into sid %q: %v", doomed, err)
			}
		}
		if sid == doomed {
			r.record(&r.gone, s.ID)
		} else {
			r.record(&r.kept, s.ID)
		}
		for j := range 2 {
			u := s.Clone()
			u.SID = sid
			u.AccessToken = fmt.Sprintf("refreshed-%d", j)
			after := r.after()
			err := h.st.Update(h.ctx, u)
			switch {
			case err == nil && after && sid == doomed:
				h.t.Errorf("Update of a logged-out session succeeded after the logout returned")
			case err == nil:
			case sid == doomed && (errors.Is(err, tokenstore.ErrNotFound) || errors.Is(err, tokenstore.ErrRevoked)):
			default:
				h.t.Errorf("Update(sid %q): %v", sid, err)
			}
			after = r.after()
			_, err = h.st.Get(h.ctx, s.ID)
			switch {
			case err == nil && after && sid == doomed:
				h.t.Errorf("Get found a logged-out session after the logout returned")
			case err == nil:
			case sid == doomed && errors.Is(err, tokenstore.ErrNotFound):
			default:
				h.t.Errorf("Get(sid %q): %v", sid, err)
			}
		}
	}
	r := h.logoutRace(8, step, func() {
		h.revoke(h.issuer, doomed, longTTL)
		if _, err := h.st.DeleteBySID(h.ctx, h.issuer, doomed, ""); err != nil {
			h.t.Fatalf("DeleteBySID: %v", err)
		}
	})
	h.deleteBySID(h.issuer, doomed, "", 0)
	h.deleteBySID(h.issuer, other, "", len(r.kept))
}

// testTorture runs every session operation at once on a small pool of ids,
// then checks that records are whole and that the sid and subject indexes
// agree with them.
func testTorture(h *harness) {
	const (
		workers  = 8
		poolSize = 32
		runFor   = 200 * time.Millisecond
	)
	sids := []string{"", "sid-0", "sid-1", "sid-2"}
	subs := []string{"u0", "u1", "u2"}
	pool := make([]string, poolSize)
	for i := range pool {
		pool[i] = tokenstore.NewID()
	}
	// Every write sets AccessToken from the other fields, so a torn record
	// (fields of two writes mixed) shows.
	mark := func(s *tokenstore.Session) string { return s.Issuer + "|" + s.SID + "|" + s.Subject }
	check := func(s *tokenstore.Session) {
		if s.AccessToken != mark(s) {
			h.t.Errorf("torn record: AccessToken %q, sid %q, subject %q", s.AccessToken, s.SID, s.Subject)
		}
	}

	deadline := time.Now().Add(runFor)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				id := pool[rand.IntN(poolSize)]
				s := h.session(sids[rand.IntN(len(sids))], subs[rand.IntN(len(subs))])
				s.ID = id
				s.AccessToken = mark(s)
				var err error
				switch op := rand.IntN(100); {
				case op < 25:
					if err = h.st.Create(h.ctx, s); errors.Is(err, tokenstore.ErrExists) {
						err = nil
					}
				case op < 50:
					if err = h.st.Update(h.ctx, s); errors.Is(err, tokenstore.ErrNotFound) {
						err = nil
					}
				case op < 80:
					var got *tokenstore.Session
					switch got, err = h.st.Get(h.ctx, id); {
					case err == nil:
						check(got)
					case errors.Is(err, tokenstore.ErrNotFound):
						err = nil
					}
				case op < 88:
					err = h.st.Delete(h.ctx, id)
				case op < 96:
					sub := ""
					if rand.IntN(2) == 0 {
						sub = s.Subject
					}
					_, err = h.st.DeleteBySID(h.ctx, h.issuer, sids[1+rand.IntN(len(sids)-1)], sub)
				default:
					_, err = h.st.DeleteBySubject(h.ctx, h.issuer, s.Subject)
				}
				if err != nil {
					h.t.Errorf("torture: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	bySID := map[string]int{}
	sidless := map[string]int{}
	for _, id := range pool {
		s, err := h.st.Get(h.ctx, id)
		if errors.Is(err, tokenstore.ErrNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatalf("Get: %v", err)
		}
		check(s)
		if s.SID != "" {
			bySID[s.SID]++
		} else {
			sidless[s.Subject]++
		}
	}
	for _, sid := range sids[1:] {
		h.deleteBySID(h.issuer, sid, "", bySID[sid])
	}
	for _, sub := range subs {
		h.deleteBySubject(h.issuer, sub, sidless[sub])
	}
	for _, id := range pool {
		if h.has(id) {
			h.t.Errorf("a session outlived DeleteBySID and DeleteBySubject of every sid and subject")
		}
	}
}
