// Package interopstory runs the multi-app story of issue 11 against the
// development OP, with the example apps as a newcomer runs them: two web
// apps (middleware.Web) and the demo API, the confidential clients
// registered for client_secret_basic and again for client_secret_post. The
// development OP enforces the registered method as Ory Hydra does; the
// apps leave the method to the library.
package interopstory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
	"github.com/multiapp-go/multiapp/examples/webapp"
)

type app struct {
	id, secret, url string
	srv             *httptest.Server
}

func newApp(id string) *app {
	a := &app{id: id, secret: id + " s:e%c+r/t", srv: httptest.NewUnstartedServer(nil)}
	a.url = "http://" + a.srv.Listener.Addr().String()
	return a
}

func TestStoryAgainstTheDevelopmentOP(t *testing.T) {
	for _, method := range []string{devop.AuthMethodBasic, devop.AuthMethodPost} {
		t.Run(method, func(t *testing.T) { story(t, method) })
	}
}

func story(t *testing.T, method string) {
	const ttl = 2 * time.Second
	dash, docs := newApp("dashboard"), newApp("docs")
	var clients []devop.Client
	for _, a := range []*app{dash, docs} {
		clients = append(clients, devop.Client{
			ID: a.id, Secret: a.secret, AuthMethod: method,
			RedirectURIs: []string{a.url + "/auth/callback"}, PostLogoutRedirectURIs: []string{a.url + "/"},
			BackChannelLogoutURI: a.url + "/auth/backchannel-logout",
		})
	}
	o := devop.Start(t, devop.Config{
		Clients: clients, AccessTokenAudience: []string{devop.DemoAPIAudience},
		AccessTokenLifetime: ttl, RevokeRefreshFamilyOnReuse: true,
	})
	apiApp, err := api.New(context.Background(), api.Config{Issuer: o.Issuer(), Audience: devop.DemoAPIAudience})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(apiApp)
	t.Cleanup(apiSrv.Close)
	apps := map[string]*webapp.App{}
	for _, a := range []*app{dash, docs} {
		w, err := webapp.New(context.Background(), webapp.Config{
			Issuer: o.Issuer(), ClientID: a.id, ClientSecret: a.secret,
			RedirectURL: a.url + "/auth/callback", PostLogoutRedirectURL: a.url + "/",
			APIURL: apiSrv.URL, CookieKey: []byte("0123456789abcdef0123456789abcdef"),
		})
		if err != nil {
			t.Fatal(err)
		}
		apps[a.id] = w
		a.srv.Config.Handler = w
		a.srv.Start()
		t.Cleanup(func() { a.srv.Close(); w.Close() })
	}
	br := testbrowser.New("alice@example.com", devop.DemoPassword)
	me := func(a *app) (int, webapp.Me) {
		t.Helper()
		status, body, err := br.JSON(a.url + "/me")
		if err != nil {
			t.Fatal(err)
		}
		var m webapp.Me
		_ = json.Unmarshal([]byte(body), &m)
		return status, m
	}
	refreshes := func() int { return o.Stats().TokenRequests["refresh_token"] }
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var signedIn time.Time
	step("login", func(t *testing.T) {
		signedIn = time.Now()
		p, err := br.Get(dash.url + "/auth/login?return_to=/")
		if err != nil || !strings.Contains(p.Body, `id="signed-in"`) || br.LoginForms != 1 {
			t.Fatalf("%v, %d login forms", err, br.LoginForms)
		}
	})
	step("SSO", func(t *testing.T) {
		p, err := br.Get(docs.url + "/")
		if err != nil || !strings.Contains(p.Body, `id="signed-in"`) || br.LoginForms != 1 {
			t.Fatalf("%v, %d login forms", err, br.LoginForms)
		}
		_, a := me(dash)
		_, b := me(docs)
		if a.Subject != "usr_alice" || b.Subject != "usr_alice" || a.SessionID == "" {
			t.Fatalf("dashboard %+v, docs %+v", a, b)
		}
	})
	step("API", func(t *testing.T) {
		p, err := br.Get(dash.url + "/")
		if err != nil || !strings.Contains(p.Body, `id="api"`) || !strings.Contains(p.Body, `pill ok">200`) || !strings.Contains(p.Body, "usr_alice") {
			t.Fatalf("%v\n%s", err, p.Body)
		}
	})
	step("refresh with rotation", func(t *testing.T) {
		_, prev := me(dash)
		last := signedIn
		for round := range 2 { // the second refresh proves the rotated token was kept
			time.Sleep(time.Until(last.Add(ttl + 200*time.Millisecond)))
			before := refreshes()
			last = time.Now()
			code, next := me(dash)
			if code != 200 || refreshes()-before != 1 || next.AccessTokenExpiry == prev.AccessTokenExpiry {
				t.Fatalf("round %d: %d, %d refreshes, expiry %s then %s", round, code, refreshes()-before, prev.AccessTokenExpiry, next.AccessTokenExpiry)
			}
			prev = next
		}
		if n := o.Stats().TokenErrors["refresh_token"]; n != 0 {
			t.Fatalf("%d refresh requests refused (a rotated-out token sent again?)", n)
		}
	})
	step("20 parallel requests, one refresh", func(t *testing.T) {
		me(docs)
		time.Sleep(ttl + 200*time.Millisecond)
		before := refreshes()
		var wg sync.WaitGroup
		var ok atomic.Int32
		var mu sync.Mutex
		expiries := map[string]bool{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body, err := br.JSON(docs.url + "/me")
				var m webapp.Me
				if err == nil && status == 200 && json.Unmarshal([]byte(body), &m) == nil {
					ok.Add(1)
					mu.Lock()
					expiries[m.AccessTokenExpiry] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if n := refreshes() - before; n != 1 || ok.Load() != 20 || len(expiries) != 1 {
			t.Fatalf("%d refreshes at the OP, %d/20 served, %d distinct tokens", n, ok.Load(), len(expiries))
		}
	})
	step("RP-initiated logout and back-channel logout of every app", func(t *testing.T) {
		p, err := br.Do(http.MethodPost, dash.url+"/auth/logout", url.Values{}, nil)
		if err != nil || !strings.Contains(p.Body, `id="signed-out"`) || p.URL.Host != strings.TrimPrefix(dash.url, "http://") {
			t.Fatalf("%v %v", err, p.URL)
		}
		delivered := map[string]bool{}
		for _, d := range o.Stats().BackChannel {
			delivered[d.ClientID] = d.OK()
		}
		if !delivered[dash.id] || !delivered[docs.id] {
			t.Fatalf("back-channel deliveries %v, want both apps", delivered)
		}
		for _, a := range []*app{dash, docs} {
			if code, _ := me(a); code != http.StatusUnauthorized {
				t.Fatalf("%s after logout: %d", a.id, code)
			}
		}
	})
	step("re-login", func(t *testing.T) {
		p, err := br.Get(docs.url + "/auth/login?return_to=/")
		if err != nil || !strings.Contains(p.Body, `id="signed-in"`) || br.LoginForms != 2 {
			t.Fatalf("%v, %d login forms", err, br.LoginForms)
		}
		if code, m := me(docs); code != 200 || m.Subject != "usr_alice" {
			t.Fatalf("%d %+v", code, m)
		}
	})
}
