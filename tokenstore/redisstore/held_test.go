package redisstore_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/nodeop"
)

// A back-channel logout that arrives while Redis is down is not lost, even
// though node-oidc-provider does not retry a delivery the app answered with
// 503: the instance that received it holds it, refuses the session itself
// meanwhile, and applies it in Redis as soon as Redis is back, so that every
// instance ends the session. Three instances, one Redis, a real OP.
func TestBackchannelLogoutWhileRedisIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startCluster(t, 0)
	alice := c.signIn("alice", 2)
	bob := c.signIn("bob", 3)
	for n := 1; n <= 3; n++ {
		if a := c.get(alice, n, true); a.code != 200 {
			t.Fatalf("alice at instance %d before the outage: %d", n, a.code)
		}
	}

	c.redis.Stop()
	// Alice signs out at the OP (from another app, say). The OP POSTs the
	// logout token to instance 1, which answers 503.
	if _, _, err := alice.Navigate(opEndSession(t, c), nil); err != nil {
		t.Fatalf("sign out at the OP: %v", err)
	}
	ev, ok := c.op.WaitFor(10*time.Second, func(ev nodeop.Event) bool { return ev.Type == "backchannel_logout" && ev.ClientID == clientID })
	if !ok || ev.OK {
		t.Fatalf("the OP's delivery to instance 1: %+v (found %v), want a failed delivery (503)", ev, ok)
	}
	if !strings.Contains(c.logs.String(), "msg=multiapp.backchannel_logout.held instance=1 ") {
		t.Fatalf("instance 1 did not hold the logout:\n%s", c.logs.String())
	}
	for n := 1; n <= 3; n++ {
		if a := c.get(alice, n, true); a.code != http.StatusServiceUnavailable {
			t.Errorf("alice at instance %d with Redis down: %d, want 503", n, a.code)
		}
	}

	c.redis.Restart()
	// Instance 1 refuses alice's session from the moment Redis answers,
	// whether or not the held logout is applied yet.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := c.get(alice, 1, true)
		if a.code == http.StatusUnauthorized {
			break
		}
		if a.code == 200 {
			t.Fatal("instance 1 served alice's session after her logout")
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance 1 still answers %d 5s after Redis came back", a.code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every instance ends it: the logout was applied in Redis.
	for _, n := range []int{2, 3} {
		deadline := time.Now().Add(3 * time.Second)
		for a := c.get(alice, n, true); a.code != http.StatusUnauthorized; a = c.get(alice, n, true) {
			if time.Now().After(deadline) {
				t.Fatalf("alice at instance %d after Redis came back: %d, want 401", n, a.code)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !strings.Contains(c.logs.String(), "held=true") || !strings.Contains(c.logs.String(), "sessions_ended=1") {
		t.Errorf("no audit event of the held logout applied:\n%s", c.logs.String())
	}
	// Nobody else was signed out, and the OP never redelivered.
	for n := 1; n <= 3; n++ {
		if a := c.get(bob, n, true); a.code != 200 {
			t.Errorf("bob at instance %d after Redis came back: %d", n, a.code)
		}
	}
	if n := len(c.op.BackchannelLogouts()); n != 1 {
		t.Errorf("%d back-channel deliveries, want the one (node-oidc-provider does not retry)", n)
	}
}
