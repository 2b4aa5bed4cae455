package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// stallingOP sits between an app and the OP: it forwards every request at
// once (so the OP redeems and rotates a refresh token right away) and, while
// stall is set, holds the answers to refresh requests that long, as an OP
// that stalls after doing the work does. An answer whose request gave up
// meanwhile is lost, like the rotated refresh token in it.
type stallingOP struct {
	rt    http.RoundTripper
	stall atomic.Int64 // time.Duration
}

func (s *stallingOP) RoundTrip(r *http.Request) (*http.Response, error) {
	refresh := false
	if r.Body != nil && r.Method == http.MethodPost {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		refresh = strings.Contains(string(b), "grant_type=refresh_token")
	}
	resp, err := s.rt.RoundTrip(r)
	if d := time.Duration(s.stall.Load()); err == nil && refresh && d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			resp.Body.Close()
			return nil, r.Context().Err()
		}
	}
	return resp, err
}

// TestSlowOPDoesNotCostTheSession (issue 12.9): three instances share a
// real Redis, node-oidc-provider rotates refresh tokens and revokes the
// whole grant when a spent one is presented again, and the OP stalls for
// longer than the HTTP client's timeout while answering a refresh. The
// token request used to time out, the lock was released, a second instance
// presented the same refresh token and the OP revoked the grant: the user
// was signed out everywhere. Now the refresh runs detached with its own
// deadline, keeps its lease while the OP may still answer, and requests in
// the meantime get the still-valid access token or 503 with Retry-After.
func TestSlowOPDoesNotCostTheSession(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const (
		life    = 3 * time.Second        // the access token's
		leeway  = time.Second            // refresh this long before it expires
		timeout = time.Second            // the HTTP client's own timeout
		stall   = 3 * time.Second        // the OP's stall: longer than timeout
		refresh = 10 * time.Second       // the refresh's own deadline
		lease   = 500 * time.Millisecond // renewed while the refresh runs
	)
	srv := redistest.Start(t)
	srv.Client(t, 6) // empty database 6
	logs := &syncbuf.Buffer{}
	proxy := &stallingOP{rt: http.DefaultTransport}
	c := &cluster{t: t, redis: srv, logs: logs, op: nodeop.Start(t, nodeop.Config{RotateRefreshTokens: true, AccessTokenTTL: life})}
	for n := 1; n <= 3; n++ {
		inst := &instance{n: n, srv: httptest.NewServer(http.NotFoundHandler())}
		t.Cleanup(inst.srv.Close)
		c.inst = append(c.inst, inst)
	}
	public := c.inst[0].srv.URL // the load balancer's, as the OP knows the app
	if err := c.op.AddClient(nodeop.Client{ID: clientID, Secret: secret, RedirectURIs: []string{public + "/auth/callback"}}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range c.inst {
		provider, err := rp.Discover(context.Background(), c.op.Issuer, &rp.ProviderOptions{HTTPClient: &http.Client{Timeout: timeout, Transport: proxy}})
		if err != nil {
			t.Fatal(err)
		}
		client, err := provider.Client(rp.Config{
			ClientID: clientID, ClientSecret: secret, RedirectURL: public + "/auth/callback",
		})
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DB: 6})
		t.Cleanup(func() { rdb.Close() })
		inst.store = newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, LockLease: lease})
		inst.web, err = middleware.NewWeb(middleware.WebConfig{
			Client: client, Store: inst.store, CookieKeys: [][]byte{cookieKey},
			RefreshLeeway: leeway, RefreshTimeout: refresh, RefreshWait: 200 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logs, nil)).With("instance", inst.n),
		})
		if err != nil {
			t.Fatal(err)
		}
		inst.srv.Config.Handler = meApp(inst)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("middleware logs:\n%s", logs.String())
		}
	})

	alice := c.signIn("alice", 1)
	signedIn := time.Now()
	first := c.get(alice, 1, true).me["at"]
	before := c.op.TokenRequests("refresh_token")

	// The OP stalls; requests spread over the instances while the refresh
	// is at the OP, across the access token's expiry.
	proxy.stall.Store(int64(stall))
	time.Sleep(time.Until(signedIn.Add(life - leeway + 100*time.Millisecond)))
	counts := map[string]int{}
	renewed := map[int]bool{}
	deadline := time.Now().Add(refresh + 5*time.Second)
	for len(renewed) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the instances never all served a renewed token (renewed: %v, answers: %v)", renewed, counts)
		}
		for n := 1; n <= 3; n++ {
			a := c.get(alice, n, true)
			switch {
			case a.code == http.StatusOK && a.me["at"] == first:
				counts["200 current token"]++
			case a.code == http.StatusOK:
				counts["200 renewed token"]++
				renewed[n] = true
			case a.code == http.StatusServiceUnavailable && a.retryAfter != "":
				counts["503 Retry-After"]++
			default:
				t.Fatalf("instance %d while the OP stalls: %d %q, want the still-valid token or 503 with Retry-After, never a sign-out", n, a.code, a.location)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("answers while the OP stalled %v on a refresh: %v", stall, counts)
	if n := c.op.TokenRequests("refresh_token") - before; n != 1 {
		t.Errorf("%d refresh requests at the OP, want exactly 1 (a second one presents a spent token)", n)
	}
	if n := c.op.Count(func(ev nodeop.Event) bool {
		return ev.Route == "token" && ev.GrantType == "refresh_token" && ev.Error != ""
	}); n != 0 {
		t.Errorf("%d refresh requests refused by the OP: %+v", n, c.op.Events())
	}

	// The rotated refresh token was kept: the next refresh, with a prompt
	// OP, works from any instance.
	proxy.stall.Store(0)
	renewedAt := c.get(alice, 2, true).me["at"]
	time.Sleep(life)
	for n := 1; n <= 3; n++ {
		if a := c.get(alice, n, true); a.code != http.StatusOK || a.me["at"] == renewedAt || a.me["at"] == first {
			t.Errorf("instance %d at the next refresh: %d (token renewed: %v)", n, a.code, a.me["at"] != renewedAt)
		}
	}
	if n := c.op.Count(func(ev nodeop.Event) bool {
		return ev.Route == "token" && ev.GrantType == "refresh_token" && ev.Error != ""
	}); n != 0 {
		t.Errorf("%d refresh requests refused by the OP", n)
	}
}

// meApp is one instance's routes: the auth routes, and /me answering the
// signed-in user's subject and current access token.
func meApp(inst *instance) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/auth/", inst.web.Routes())
	mux.Handle("/me", inst.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": s.Claims().Subject, "at": s.AccessToken()})
	})))
	return mux
}
