package backchannel_test

import (
	"context"
	"sync"
	"testing"

	mevent "github.com/multiapp-go/multiapp/event"
)

// TestObserverGetsLogoutsAndRefusals: an Observer set on the Handler
// replaces the audit log and gets typed events: an applied logout (with
// the OP session and the store's time), a replay refused with its reason.
func TestObserverGetsLogoutsAndRefusals(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var got []mevent.Event
	f.h.Observer = mevent.ObserverFunc(func(_ context.Context, e mevent.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e)
	})
	f.session(t, "usr_1", "ses_1")
	tok := f.token(nil)
	if w := post(f.h, "logout_token="+tok); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := post(f.h, "logout_token="+tok); w.Code != 400 {
		t.Fatalf("replay: %d", w.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	if e := got[0]; e.Name != mevent.BackchannelLogout || e.SID != "ses_1" || e.Issuer != f.op.Issuer || e.Duration <= 0 {
		t.Errorf("logout event %+v", e)
	}
	if e := got[1]; e.Name != mevent.BackchannelLogoutRejected || e.Reason != "replay" || e.Class != "" {
		t.Errorf("replay event %+v", e)
	}
	if f.logs.String() != "" {
		t.Errorf("the Logger was written to: %s", f.logs)
	}
}
