package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

var cookieKey = []byte("cookie-key-cookie-key-cookie-key")

const (
	clientID  = "webc_shop"
	secret    = "shop-secret"
	tokenLife = 2 * time.Second // the OP's access token lifetime
)

// instance is one process of the shop app: its own middleware and its own
// Store (its own Redis connection pool), behind a load balancer that the
// test plays by picking the instance's URL.
type instance struct {
	n     int
	srv   *httptest.Server
	web   *middleware.Web
	store *redisstore.Store
}

// cluster is three instances of one web app sharing one Redis, wired to
// node-oidc-provider with refresh token rotation on. The OP knows the app by
// instance 1's URL (redirect and back-channel), as it would know the load
// balancer's.
type cluster struct {
	t     *testing.T
	redis *redistest.Server
	op    *nodeop.OP
	inst  []*instance
	logs  *syncbuf.Buffer
}

// startCluster starts the three instances, each with a near cache of
// near sessions (none when zero).
func startCluster(t *testing.T, near int) *cluster {
	c := &cluster{t: t, redis: redistest.Start(t), logs: &syncbuf.Buffer{}}
	c.redis.Client(t, 5) // empty database 5
	handlers := make([]http.Handler, 3)
	var ready sync.WaitGroup
	ready.Add(1)
	for i := range 3 {
		inst := &instance{n: i + 1}
		inst.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ready.Wait()
			handlers[i].ServeHTTP(w, r)
		}))
		t.Cleanup(inst.srv.Close)
		c.inst = append(c.inst, inst)
	}
	public := c.inst[0].srv.URL
	c.op = nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{{
			ID: clientID, Secret: secret, AuthMethod: "client_secret_post",
			RedirectURIs:           []string{public + "/auth/callback"},
			PostLogoutRedirectURIs: []string{public + "/"},
			BackchannelLogoutURI:   public + "/auth/backchannel-logout",
		}},
		RotateRefreshTokens: true,
		AccessTokenTTL:      tokenLife,
	})
	log := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for i, inst := range c.inst {
		ctx := context.Background()
		provider, err := rp.Discover(ctx, c.op.Issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		client, err := provider.Client(rp.Config{
			ClientID: clientID, ClientSecret: secret,
			RedirectURL: public + "/auth/callback", PostLogoutRedirectURL: public + "/",
		})
		if err != nil {
			t.Fatal(err)
		}
		// The client settings the README recommends for a store on the
		// request path: with Redis down a request fails within about
		// 100 ms, rather than after go-redis's default 5 dial attempts
		// for each of 4 tries (about 1.7 s).
		rdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr, DB: 5, DialTimeout: time.Second, MaxRetries: 2, DialerRetries: 1})
		t.Cleanup(func() { rdb.Close() })
		inst.store = newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}, NearCache: near})
		inst.web, err = middleware.NewWeb(middleware.WebConfig{
			Client: client, Store: inst.store, CookieKeys: [][]byte{cookieKey},
			RefreshLeeway: 100 * time.Millisecond,
			Logger:        log.With("instance", inst.n),
		})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/auth/", inst.web.Routes())
		mux.Handle("/me", inst.web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := middleware.SessionFrom(r.Context())
			_ = json.NewEncoder(w).Encode(map[string]string{"sub": s.Claims().Subject, "at": s.AccessToken(), "instance": fmt.Sprint(inst.n)})
		})))
		handlers[i] = mux
	}
	ready.Done()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("middleware logs:\n%s\nredis log:\n%s", c.logs.String(), c.redis.Log())
		}
	})
	return c
}

// signIn signs a new browser in, starting at instance n.
func (c *cluster) signIn(login string, n int) *nodeop.Browser {
	c.t.Helper()
	b := nodeop.NewBrowser(c.t, login, "any")
	final, resp, err := b.Navigate(c.inst[n-1].srv.URL+"/me", nil)
	if err != nil || resp.StatusCode != 200 || final.Path != "/me" {
		c.t.Fatalf("%s signing in at instance %d: %v %v %v", login, n, err, final, resp)
	}
	return b
}

type answer struct {
	code       int
	retryAfter string
	me         map[string]string
	location   string
}

// get asks instance n for /me with the browser's cookie (a cookie jar
// ignores ports: the session cookie set by one instance goes to all), as an
// XHR when json is set, as a page navigation otherwise.
func (c *cluster) get(b *nodeop.Browser, n int, json_ bool) answer {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.inst[n-1].srv.URL+"/me", nil)
	if json_ {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		c.t.Errorf("instance %d: %v", n, err)
		return answer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), location: resp.Header.Get("Location")}
	if resp.StatusCode == 200 {
		_ = json.Unmarshal(body, &a.me)
	}
	return a
}

// TestThreeInstancesShareSessions: three instances of one app, one Redis,
// node-oidc-provider rotating refresh tokens; requests spread over the
// instances.
func TestThreeInstancesShareSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	testThreeInstances(t, 0)
}

// TestThreeInstancesNearCache: the same with a near cache in every
// instance: one refresh for requests spread over the three (the lock
// holder reads Redis, not its cache, so no rotated refresh token is sent
// twice), a back-channel logout at one refused by all within the bound,
// and with Redis down no warm session served once tracking is lost.
func TestThreeInstancesNearCache(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	testThreeInstances(t, 1000)
}

func testThreeInstances(t *testing.T, near int) {
	c := startCluster(t, near)
	alice := c.signIn("alice", 1)
	signedIn := time.Now()
	first := c.get(alice, 1, true)
	for n := 1; n <= 3; n++ {
		if a := c.get(alice, n, true); a.code != 200 || a.me["sub"] != "alice" || a.me["at"] != first.me["at"] {
			t.Fatalf("instance %d right after sign-in: %+v", n, a)
		}
	}

	t.Run("OneRefreshForSixtyRequests", func(t *testing.T) {
		time.Sleep(time.Until(signedIn.Add(tokenLife + 100*time.Millisecond)))
		before := c.op.TokenRequests("refresh_token")
		const requests = 60
		answers := make([]answer, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() { answers[i] = c.get(alice, i%3+1, true) })
		}
		wg.Wait()
		tokens := map[string]int{}
		for i, a := range answers {
			if a.code != 200 {
				t.Errorf("request %d at instance %d: %d", i, i%3+1, a.code)
				continue
			}
			tokens[a.me["at"]]++
		}
		if n := c.op.TokenRequests("refresh_token") - before; n != 1 {
			t.Errorf("%d refresh requests at the OP for one session, want 1", n)
		}
		if _, stale := tokens[first.me["at"]]; stale || len(tokens) != 1 {
			t.Errorf("%d distinct access tokens served (stale one among them: %v), want the one new token", len(tokens), stale)
		}
		for n := 1; n <= 3; n++ {
			if a := c.get(alice, n, true); a.code != 200 || a.me["at"] == first.me["at"] {
				t.Errorf("instance %d after the refresh: %+v", n, a)
			}
		}
	})

	t.Run("BackchannelLogoutAtOneEndsAll", func(t *testing.T) {
		// The user signs out at the OP (from another app, say): the OP
		// POSTs the logout token to instance 1 only.
		endURL := opEndSession(t, c)
		if _, _, err := alice.Navigate(endURL, nil); err != nil {
			t.Fatalf("sign out at the OP: %v", err)
		}
		delivered := 0
		for _, ev := range c.op.BackchannelLogouts() {
			if ev.ClientID == clientID && ev.OK {
				delivered++
			}
		}
		if delivered != 1 {
			t.Fatalf("%d back-channel logouts delivered to instance 1, want 1: %+v", delivered, c.op.BackchannelLogouts())
		}
		if !strings.Contains(c.logs.String(), "msg=multiapp.backchannel_logout instance=1 ") ||
			!strings.Contains(c.logs.String(), "sessions_ended=1") {
			t.Errorf("instance 1 did not log ending one session")
		}
		// The logout was handled before the OP answered the browser: a
		// near cache may serve it no longer than its bound after that.
		checked := time.Now()
		for _, n := range []int{2, 3, 1} {
			for {
				a := c.get(alice, n, true)
				if a.code == http.StatusUnauthorized {
					break
				}
				if near == 0 || time.Since(checked) > redisstore.DefaultNearCacheMaxStale {
					t.Errorf("instance %d after the back-channel logout at instance 1: %d, want 401", n, a.code)
					break
				}
			}
		}
	})

	t.Run("RedisDownThenBack", func(t *testing.T) {
		users := []*nodeop.Browser{c.signIn("alice", 2), c.signIn("bob", 3), c.signIn("carol", 1)}
		signedIn := time.Now()
		tokens := make([]string, len(users))
		for i, b := range users {
			tokens[i] = c.get(b, 1, true).me["at"]
		}
		before := c.op.TokenRequests("refresh_token")

		c.redis.Stop()
		down := time.Now()
		for _, inst := range c.inst {
			for near > 0 && inst.store.NearCacheServing() { // tracking lost: no warm session served
				if time.Since(down) > redisstore.DefaultNearCacheMaxStale {
					t.Fatalf("instance %d still serves from its near cache %v after Redis went down", inst.n, time.Since(down))
				}
				time.Sleep(time.Millisecond)
			}
		}
		for n := 1; n <= 3; n++ {
			for _, asJSON := range []bool{true, false} {
				a := c.get(users[n-1], n, asJSON)
				if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
					t.Errorf("instance %d with Redis down (json %v): %d %q Retry-After %q, want 503 with Retry-After", n, asJSON, a.code, a.location, a.retryAfter)
				}
			}
		}
		t.Logf("6 requests with Redis down answered in %v", time.Since(down))
		// The access tokens expire while Redis is down: still 503, never
		// a sign-in, never a refresh at the OP.
		time.Sleep(time.Until(signedIn.Add(tokenLife + 100*time.Millisecond)))
		for n := 1; n <= 3; n++ {
			if a := c.get(users[0], n, false); a.code != http.StatusServiceUnavailable {
				t.Errorf("instance %d, expired token, Redis down: %d %q", n, a.code, a.location)
			}
		}

		c.redis.Restart()
		deadline := time.Now().Add(5 * time.Second)
		for c.get(users[0], 1, true).code != 200 {
			if time.Now().After(deadline) {
				t.Fatal("instance 1 did not recover within 5s of Redis coming back")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Every session Redis kept works everywhere, each refreshed once.
		answers := make([]answer, 30)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = c.get(users[i%3], i%3+1, true) })
		}
		wg.Wait()
		for i, a := range answers {
			if a.code != 200 || a.me["at"] == tokens[i%3] {
				t.Errorf("request %d after the restart: %d (stale token: %v)", i, a.code, a.me["at"] == tokens[i%3])
			}
		}
		for i, b := range users {
			for n := 1; n <= 3; n++ {
				if a := c.get(b, n, true); a.code != 200 {
					t.Errorf("user %d at instance %d after the restart: %d", i, n, a.code)
				}
			}
		}
		if n := c.op.TokenRequests("refresh_token") - before; n != len(users) {
			t.Errorf("%d refreshes at the OP after the restart, want one per session (%d)", n, len(users))
		}
	})
}

// opEndSession is the OP's end-session endpoint: the browser signs out
// there with the OP's own confirmation, without any app's logout route.
func opEndSession(t *testing.T, c *cluster) string {
	t.Helper()
	provider, err := rp.Discover(context.Background(), c.op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Metadata().EndSessionEndpoint
}
