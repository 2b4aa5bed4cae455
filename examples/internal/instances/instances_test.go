package instances

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
	"github.com/multiapp-go/multiapp/examples/webapp"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

const (
	clientID = "shop"
	secret   = "shop-secret"
	// tokenLife is the OP's access token lifetime. The middleware refreshes
	// a token within its leeway before expiry, capped at half the token's
	// lifetime as the app sees it: the OP's expires_in is whole seconds,
	// so between tokenLife-1s and tokenLife.
	tokenLife = 8 * time.Second
)

var (
	cookieKey = hex.EncodeToString([]byte("cookie key of the shop, 32 bytes"))
	storeKey  = hex.EncodeToString([]byte("store key of the shop, 32 bytes!"))
)

// fleet is three processes of the example web app behind a round-robin
// load balancer, one Redis, one OP. The OP knows the app by the load
// balancer's URL only (redirect, post-logout and back-channel URIs).
type fleet struct {
	t      *testing.T
	bin    string
	op     *devop.OP
	redis  *redistest.Server
	public string // the load balancer
	lb     *balancer
	inst   []*proc
	env    map[string]string // what every instance is given
}

func startFleet(t *testing.T) *fleet {
	f := &fleet{t: t, bin: buildWebapp(t), redis: redistest.StartWith(t, redistest.Config{AppendOnly: true})}
	f.lb = &balancer{hits: map[string][]int{}}
	lbSrv := httptest.NewUnstartedServer(f.lb)
	f.public = "http://" + lbSrv.Listener.Addr().String()
	f.op = devop.Start(t, devop.Config{
		Clients: []devop.Client{{
			ID: clientID, Secret: secret, // registered for client_secret_basic, which the OP enforces
			RedirectURIs:           []string{f.public + "/auth/callback"},
			PostLogoutRedirectURIs: []string{f.public + "/"},
			BackChannelLogoutURI:   f.public + "/auth/backchannel-logout",
		}},
		AccessTokenLifetime:        tokenLife,
		RevokeRefreshFamilyOnReuse: true, // a second refresh with a used token would sign the user out
	})
	f.env = map[string]string{
		"MULTIAPP_ISSUER":                   f.op.Issuer(),
		"MULTIAPP_CLIENT_ID":                clientID,
		"MULTIAPP_CLIENT_SECRET":            secret,
		"MULTIAPP_REDIRECT_URL":             f.public + "/auth/callback",
		"MULTIAPP_POST_LOGOUT_REDIRECT_URL": f.public + "/",
		"MULTIAPP_APP_NAME":                 "Shop",
		"MULTIAPP_COOKIE_KEY":               cookieKey,
		"MULTIAPP_REDIS_URL":                "redis://" + f.redis.Addr + "/0",
		"MULTIAPP_STORE_KEY":                storeKey,
	}
	for n := 1; n <= 3; n++ {
		p := f.start(n, nil)
		if err := p.waitReady(); err != nil {
			t.Fatalf("instance %d: %v\n%s", n, err, p.out.String())
		}
		f.inst = append(f.inst, p)
		f.lb.add(p.addr)
	}
	lbSrv.Start()
	t.Cleanup(lbSrv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range f.inst {
				t.Logf("instance %d output:\n%s", p.n, p.out.String())
			}
			t.Logf("redis log:\n%s", f.redis.Log())
		}
	})
	return f
}

// buildWebapp builds the example web app's command, as a user runs it.
func buildWebapp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "webapp")
	cmd := exec.Command("go", "build", "-o", bin, "./webapp/cmd/webapp")
	cmd.Dir = filepath.Join("..", "..") // the examples module
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./webapp/cmd/webapp: %v\n%s", err, out)
	}
	return bin
}

// proc is one process of the web app.
type proc struct {
	n      int
	addr   string
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan struct{}
}

// start runs instance n with the fleet's environment, changed by edit.
func (f *fleet) start(n int, edit map[string]string) *proc {
	f.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := &proc{n: n, addr: addr, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(f.bin)
	p.cmd.Env = append(os.Environ(), "MULTIAPP_ADDR="+addr)
	for k, v := range f.env {
		if e, ok := edit[k]; ok {
			v = e
		}
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	setPdeathsig(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	f.t.Cleanup(p.stop)
	return p
}

// waitReady waits until the instance answers, or fails when it exits.
func (p *proc) waitReady() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("exited: %v", p.cmd.ProcessState)
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/favicon.ico")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process as a service manager does (SIGTERM, then SIGKILL).
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// balancer spreads requests over the instances in turn and records which
// instance served each path.
type balancer struct {
	mu       sync.Mutex
	backends []*httputil.ReverseProxy
	next     atomic.Uint64
	hits     map[string][]int // path: instance numbers, in order
}

func (b *balancer) add(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr}))
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(b.next.Add(1)-1) % len(b.backends)
	b.mu.Lock()
	b.hits[r.URL.Path] = append(b.hits[r.URL.Path], i+1)
	proxy := b.backends[i]
	b.mu.Unlock()
	proxy.ServeHTTP(w, r)
}

func (b *balancer) served(path string) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.hits[path]...)
}

type answer struct {
	status     int
	retryAfter string
	me         webapp.Me
}

// me asks instance n (directly, not through the balancer: a cookie jar
// ignores ports, so the session cookie goes along) for /me as a script.
func (f *fleet) me(b *testbrowser.Browser, n int) answer {
	req, _ := http.NewRequest("GET", "http://"+f.inst[n-1].addr+"/me", nil)
	req.Header.Set("Accept", "application/json")
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		f.t.Errorf("instance %d: %v", n, err)
		return answer{}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if a.status == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&a.me); err != nil {
			f.t.Errorf("instance %d: /me: %v", n, err)
		}
	}
	return a
}

// signIn signs a browser in through the load balancer.
func (f *fleet) signIn(email string) *testbrowser.Browser {
	f.t.Helper()
	b := testbrowser.New(email, devop.DemoPassword)
	p, err := b.Get(f.public + "/me")
	if err != nil || p.Status != 200 || p.URL.Path != "/me" || b.LoginForms != 1 {
		f.t.Fatalf("%s signing in through the load balancer: %v %+v (%d login forms)", email, err, p, b.LoginForms)
	}
	return b
}

// TestThreeInstances: three processes of the example web app, configured
// only by MULTIAPP_* variables, behind a round-robin load balancer, with
// one Redis and the development OP.
func TestThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f := startFleet(t)
	alice := f.signIn("alice@example.com")

	t.Run("SSOAcrossInstances", func(t *testing.T) {
		// The login started at one instance and its callback landed on
		// another: the sealed login transaction travels in the cookie.
		login, callback := f.lb.served("/auth/login"), f.lb.served("/auth/callback")
		if len(login) != 1 || len(callback) != 1 || login[0] == callback[0] {
			t.Errorf("login at instances %v, callback at %v: want one each, different", login, callback)
		}
		first := f.me(alice, 1)
		for n := 1; n <= 3; n++ {
			if a := f.me(alice, n); a.status != 200 || a.me.Subject != "usr_alice" || a.me.SessionID != first.me.SessionID {
				t.Errorf("instance %d after one sign-in: %+v", n, a)
			}
		}
		// Each instance checked its credentials at start with a made-up
		// code (refused); one real code was exchanged.
		s := f.op.Stats()
		if exchanged := s.TokenRequests["authorization_code"] - s.TokenErrors["authorization_code"]; s.Logins != 1 || s.SilentLogins != 0 || exchanged != 1 {
			t.Errorf("at the OP: %d logins, %d silent, %d codes exchanged; want one sign-in for all instances", s.Logins, s.SilentLogins, exchanged)
		}
	})

	t.Run("OneRefreshFor90Requests", func(t *testing.T) {
		before := f.me(alice, 1)
		exp, err := time.Parse(time.RFC3339, before.me.AccessTokenExpiry)
		if err != nil {
			t.Fatal(err)
		}
		// Due for a refresh (less than half its lifetime left, however the
		// OP rounded expires_in), not expired: the expiry shown is truncated
		// to the second, so the real one is within a second after exp. Due
		// from at most (tokenLife-1s)/2 before the real expiry: sleep until
		// 300 ms after that, which leaves the token about 2 s to live.
		time.Sleep(time.Until(exp.Add(time.Second - (tokenLife-time.Second)/2 + 300*time.Millisecond)))
		stats := f.op.Stats()
		const requests = 90
		answers := make([]answer, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() { answers[i] = f.me(alice, i%3+1) })
		}
		wg.Wait()
		expiries := map[string]int{}
		for i, a := range answers {
			if a.status != 200 {
				t.Errorf("request %d at instance %d: %d", i, i%3+1, a.status)
				continue
			}
			expiries[a.me.AccessTokenExpiry]++
		}
		// A request waits for the refresh at most RefreshWait and is then
		// served the still-valid token (a loaded machine can take longer
		// than that): wait for the refresh to land before counting.
		var after devop.Stats
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			after = f.op.Stats()
			if after.TokenRequests["refresh_token"] > stats.TokenRequests["refresh_token"] || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond) // a second refresh, if any, would show by now
		after = f.op.Stats()
		if n := after.TokenRequests["refresh_token"] - stats.TokenRequests["refresh_token"]; n != 1 {
			t.Errorf("%d refresh requests at the OP for 90 requests over 3 instances, want 1", n)
		}
		if n := after.TokenErrors["refresh_token"]; n != 0 {
			t.Errorf("%d refresh requests refused by the OP", n)
		}
		delete(expiries, before.me.AccessTokenExpiry) // served while the refresh ran
		if len(expiries) > 1 {
			t.Errorf("access token expiries served: %v: want at most the one new token besides the old", expiries)
		}
		// Once it has landed, every instance serves the one new token.
		fresh := map[string]bool{}
		for n := 1; n <= 3; n++ {
			a := f.me(alice, n)
			if a.status != 200 || a.me.AccessTokenExpiry == before.me.AccessTokenExpiry {
				t.Errorf("instance %d after the refresh: %d, expiry %s (old %s)", n, a.status, a.me.AccessTokenExpiry, before.me.AccessTokenExpiry)
			}
			fresh[a.me.AccessTokenExpiry] = true
		}
		if len(fresh) != 1 {
			t.Errorf("instances serve different tokens after one refresh: %v", fresh)
		}
	})

	t.Run("CookieKeyMismatchRefused", func(t *testing.T) {
		other := hex.EncodeToString([]byte("a different key, also 32 bytes.."))
		p := f.start(4, map[string]string{"MULTIAPP_COOKIE_KEY": other})
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("an instance with another cookie key is still running:\n%s", p.out.String())
		}
		out := p.out.String()
		if p.cmd.ProcessState.Success() || !strings.Contains(out, "cookie keys differ") || !strings.Contains(out, "MULTIAPP_COOKIE_KEY") || !strings.Contains(out, "401") {
			t.Errorf("an instance with another cookie key: %v, want a failed start that says why:\n%s", p.cmd.ProcessState, out)
		}
		if strings.Contains(out, other) || strings.Contains(out, cookieKey) {
			t.Errorf("the refusal shows a key:\n%s", out)
		}
		t.Logf("the refusal:\n%s", out)
		// The running instances are unaffected.
		if a := f.me(alice, 2); a.status != 200 {
			t.Errorf("instance 2 after the refused start: %d", a.status)
		}
	})

	bob := f.signIn("bob@example.com")
	t.Run("RedisCrashLosesNothing", func(t *testing.T) {
		logins := f.op.Stats().Logins
		f.redis.Crash() // SIGKILL: only what the append-only file holds survives
		down := time.Now()
		for n := 1; n <= 3; n++ {
			start := time.Now()
			a := f.me(alice, n)
			if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
				t.Errorf("instance %d with Redis down: %d Retry-After %q, want 503 with Retry-After", n, a.status, a.retryAfter)
			}
			t.Logf("instance %d answered %d with Redis down in %v", n, a.status, time.Since(start))
		}
		t.Logf("Redis was down for %v", time.Since(down))
		f.redis.Restart()
		back := time.Now()
		for n := 1; n <= 3; n++ {
			for f.me(alice, n).status != 200 {
				if time.Since(back) > 10*time.Second {
					t.Fatalf("instance %d still failing 10 s after Redis came back", n)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("all three instances answer %v after Redis came back", time.Since(back))
		for _, b := range []*testbrowser.Browser{alice, bob} {
			for n := 1; n <= 3; n++ {
				if a := f.me(b, n); a.status != 200 {
					t.Errorf("%s at instance %d after the Redis restart: %d", b.Email, n, a.status)
				}
			}
		}
		if n := f.op.Stats().Logins; n != logins {
			t.Errorf("%d sign-ins at the OP during the Redis restart", n-logins)
		}
	})

	t.Run("BackchannelLogoutAtOneEndsAll", func(t *testing.T) {
		deliveries := f.op.EndUserSessions(context.Background(), "usr_alice") // an administrator signs alice out
		if len(deliveries) != 1 || !deliveries[0].OK() {
			t.Fatalf("back-channel deliveries: %+v, want one accepted", deliveries)
		}
		served := f.lb.served("/auth/backchannel-logout")
		if len(served) != 1 {
			t.Fatalf("back-channel POSTs served by instances %v, want exactly one", served)
		}
		for n := 1; n <= 3; n++ {
			if a := f.me(alice, n); a.status != http.StatusUnauthorized {
				t.Errorf("alice at instance %d after the logout received by instance %d: %d, want 401", n, served[0], a.status)
			}
			if a := f.me(bob, n); a.status != 200 {
				t.Errorf("bob at instance %d: %d", n, a.status)
			}
		}
	})
}
