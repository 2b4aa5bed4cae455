package rp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

func newTx(c *rp.Client) *pkce.Transaction { return pkce.NewTransaction(c.Issuer(), "/") }

// recorder is a transport that keeps the form and Authorization header of
// every POST it carries to the OP.
type recorder struct {
	mu   sync.Mutex
	sent []sentRequest
}

type sentRequest struct {
	path  string
	form  url.Values
	basic string // the raw Authorization header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.sent = append(r.sent, sentRequest{path: req.URL.Path, form: form, basic: req.Header.Get("Authorization")})
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) client() *http.Client { return &http.Client{Transport: r} }

// count returns how many recorded requests match.
func (r *recorder) count(match func(sentRequest) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.sent {
		if match(s) {
			n++
		}
	}
	return n
}

func (r *recorder) last() sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent[len(r.sent)-1]
}

func carries(code string) func(sentRequest) bool {
	return func(s sentRequest) bool { return s.form.Get("code") == code }
}

// observed collects the OnClientAuth events of a Config.
type observed struct {
	mu     sync.Mutex
	events []rp.ClientAuth
	errs   []error
}

func (o *observed) hook(a rp.ClientAuth, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, a)
	o.errs = append(o.errs, err)
}

func (o *observed) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.events)
}

// oddSecret has every character RFC 6749 §2.3.1's form-urlencoding changes.
const oddSecret = "s:e%c+r e/t=&é"

// TestClientSecretBasicIsFormEncoded (RFC 6749 §2.3.1): "The client
// identifier is encoded using the application/x-www-form-urlencoded encoding
// algorithm ..., and the encoded value is used as the username; the client
// password is encoded using the same algorithm and used as the password."
// An OP that decodes them (the fake does, as Hydra and node-oidc-provider
// do) then sees the secret exactly, at the token (code and refresh) and
// revocation endpoints alike.
func TestClientSecretBasicIsFormEncoded(t *testing.T) {
	const oddID = "webc:app %1"
	for _, method := range []string{rp.AuthClientSecretBasic, rp.AuthClientSecretPost} {
		t.Run(method, func(t *testing.T) {
			op := oidctest.New(t)
			op.AddClient(oidctest.Client{ID: oddID, Secret: oddSecret, AuthMethod: method})
			rec := &recorder{}
			c := newClient(t, op, func(c *setup) {
				c.ClientID, c.ClientSecret, c.AuthMethod, c.HTTPClient = oddID, oddSecret, method, rec.client()
			})
			tx := newTx(c)
			claims := op.IDClaims(oddID, "usr_1", tx.Nonce)
			op.AddGrant("code-1", oidctest.Grant{Claims: claims, Challenge: tx.Challenge(), RefreshToken: "rt-1"})
			tokens, err := c.Exchange(context.Background(), tx, &rp.AuthResponse{Code: "code-1", State: tx.State})
			if err != nil {
				t.Fatal(err)
			}
			sent := rec.last()
			switch method {
			case rp.AuthClientSecretBasic:
				want := (&http.Request{Header: http.Header{}})
				want.SetBasicAuth("webc%3Aapp+%251", "s%3Ae%25c%2Br+e%2Ft%3D%26%C3%A9")
				if sent.basic != want.Header.Get("Authorization") || sent.form.Has("client_secret") {
					t.Fatalf("Authorization %q, want %q; form %v", sent.basic, want.Header.Get("Authorization"), sent.form)
				}
			case rp.AuthClientSecretPost:
				if sent.basic != "" || sent.form.Get("client_id") != oddID || sent.form.Get("client_secret") != oddSecret {
					t.Fatalf("post: header %q form %v", sent.basic, sent.form)
				}
			}
			op.AddGrant("rt-1", oidctest.Grant{Claims: op.IDClaims(oddID, "usr_1", ""), RefreshToken: "rt-2"})
			if _, err := c.Refresh(context.Background(), tokens); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if err := c.Revoke(context.Background(), "rt-2", "refresh_token"); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if op.RevocationRequests.Load() != 1 {
				t.Fatalf("%d revocation requests", op.RevocationRequests.Load())
			}
		})
	}
}

// TestTheFakeEnforcesTheRegisteredMethod: the unit-test OP is as strict as
// Ory Hydra: a secret sent with another method than the registered one is
// invalid_client (RFC 6749 §5.2: "Client authentication failed"), exactly
// like a wrong secret, and with Basic the answer is 401 with a Basic
// challenge.
func TestTheFakeEnforcesTheRegisteredMethod(t *testing.T) {
	op := oidctest.New(t)
	for _, c := range []struct{ registered, used string }{
		{rp.AuthClientSecretPost, rp.AuthClientSecretBasic},
		{rp.AuthClientSecretBasic, rp.AuthClientSecretPost},
	} {
		op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: c.registered})
		client := newClient(t, op, func(cfg *setup) { cfg.AuthMethod = c.used })
		tx, resp := login(op, client, "code-"+c.used, nil)
		_, err := client.Exchange(context.Background(), tx, resp)
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_client" || oe.Status != http.StatusUnauthorized {
			t.Fatalf("registered %s, sent %s: %v", c.registered, c.used, err)
		}
		if err := client.Revoke(context.Background(), "rt", ""); !errors.As(err, &oe) || oe.Code != "invalid_client" {
			t.Fatalf("revocation with %s: %v", c.used, err)
		}
	}
}

// TestAuthMethodDetected: the method was not chosen, the OP lists both
// secret methods and enforces the registered one (client_secret_post here,
// while the default is client_secret_basic). A check with a made-up code
// runs before the first code exchange: basic is refused with invalid_client,
// post is accepted (invalid_grant for the made-up code), so the real code
// is sent once, with post, and the login works. The choice is kept for the
// client's lifetime (no more checks) and reported once to OnClientAuth.
func TestAuthMethodDetected(t *testing.T) {
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: rp.AuthClientSecretPost})
	rec := &recorder{}
	var obs observed
	c := newClient(t, op, func(c *setup) { c.HTTPClient, c.OnClientAuth = rec.client(), obs.hook })
	if a := c.ClientAuth(); a.Method != rp.AuthClientSecretBasic || a.Source != rp.AuthFromDiscovery || a.Confirmed || a.Why == "" {
		t.Fatalf("before the first request: %+v", a)
	}
	tokens := loggedIn(t, op, c)
	if n := rec.count(carries("login-" + t.Name())); n != 1 {
		t.Fatalf("the real code was sent %d times, want 1", n)
	}
	if n := op.TokenRequests.Load(); n != 3 {
		t.Fatalf("%d token requests, want 3 (two checks, one exchange)", n)
	}
	a := c.ClientAuth()
	if a.Method != rp.AuthClientSecretPost || a.Source != rp.AuthDetected || !a.Confirmed {
		t.Fatalf("after detection: %+v", a)
	}
	for _, want := range []string{"client_secret_basic", "invalid_client", "client_secret_post"} {
		if !strings.Contains(a.Why, want) {
			t.Errorf("Why %q does not mention %s", a.Why, want)
		}
	}
	if obs.len() != 1 || obs.events[0] != a || obs.errs[0] != nil {
		t.Fatalf("OnClientAuth: %+v %v", obs.events, obs.errs)
	}
	// Kept for the client's lifetime.
	op.AddGrant(tokens.RefreshToken, oidctest.Grant{Claims: op.IDClaims(clientID, "usr_1", ""), RefreshToken: "rt-2"})
	if _, err := c.Refresh(context.Background(), tokens); err != nil {
		t.Fatal(err)
	}
	tx, resp := login(op, c, "second-code", nil)
	if _, err := c.Exchange(context.Background(), tx, resp); err != nil {
		t.Fatal(err)
	}
	if n := op.TokenRequests.Load(); n != 5 || obs.len() != 1 {
		t.Fatalf("%d token requests, %d events: the method was checked again", n, obs.len())
	}
}

// TestAuthCheckNeverRetriesACode: a code is single-use (RFC 6749 §4.1.2) and
// the OP may have consumed it, so whatever the OP answers, a real code is
// sent exactly once; the check (made-up codes only) decides the method
// before. With a wrong secret both methods are refused: the exchange is still
// sent once (it fails with invalid_client and a hint), and the next one does
// not check again.
func TestAuthCheckNeverRetriesACode(t *testing.T) {
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: clientID, Secret: "the-real-secret"})
	rec := &recorder{}
	var obs observed
	c := newClient(t, op, func(c *setup) { c.HTTPClient, c.OnClientAuth = rec.client(), obs.hook })
	for i, code := range []string{"code-a", "code-b"} {
		tx, resp := login(op, c, code, nil)
		_, err := c.Exchange(context.Background(), tx, resp)
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_client" || oe.Hint == "" {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if n := rec.count(carries(code)); n != 1 {
			t.Fatalf("code %s sent %d times", code, n)
		}
	}
	if n := op.TokenRequests.Load(); n != 4 {
		t.Fatalf("%d token requests, want 4 (two checks, two exchanges)", n)
	}
	var ce *rp.ClientAuthError
	if obs.len() != 1 || !errors.As(obs.errs[0], &ce) || ce.Method != rp.AuthClientSecretBasic || ce.Accepted != "" || !errors.Is(obs.errs[0], rp.ErrConfig) {
		t.Fatalf("OnClientAuth: %+v %v", obs.events, obs.errs)
	}
	if a := c.ClientAuth(); a.Method != rp.AuthClientSecretBasic || a.Confirmed {
		t.Fatalf("after a refused check: %+v", a)
	}
}

// TestAuthCheckInconclusive: when the OP cannot answer the check (503), the
// request goes on with the default method, and the next check waits a
// cooldown: an outage never doubles the requests sent to the OP.
func TestAuthCheckInconclusive(t *testing.T) {
	op := oidctest.New(t)
	var real atomic.Int64
	op.SetTokenHook(func(form url.Values) (int, any) {
		if form.Get("code") == "real" {
			real.Add(1)
			return 400, map[string]any{"error": "invalid_grant"}
		}
		return 503, map[string]any{"error": "temporarily_unavailable"}
	})
	clk := newClock()
	c := newClient(t, op, func(c *setup) { c.Now = clk.Now })
	exchange := func() {
		t.Helper()
		tx := newTx(c)
		_, err := c.Exchange(context.Background(), tx, &rp.AuthResponse{Code: "real", State: tx.State})
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			t.Fatalf("exchange: %v", err)
		}
	}
	exchange()
	if op.TokenRequests.Load() != 2 || real.Load() != 1 {
		t.Fatalf("%d requests, %d with the code", op.TokenRequests.Load(), real.Load())
	}
	exchange() // within the cooldown: no check
	if op.TokenRequests.Load() != 3 {
		t.Fatalf("%d requests, want 3", op.TokenRequests.Load())
	}
	clk.Add(2 * time.Minute)
	exchange()
	if op.TokenRequests.Load() != 5 || real.Load() != 3 || c.ClientAuth().Confirmed {
		t.Fatalf("%d requests, %d with the code, %+v", op.TokenRequests.Load(), real.Load(), c.ClientAuth())
	}
}

// TestAuthMethodChosenIsNotChecked: a method set in Config is used as is,
// without a check request.
func TestAuthMethodChosenIsNotChecked(t *testing.T) {
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: rp.AuthClientSecretPost})
	c := newClient(t, op, func(c *setup) { c.AuthMethod = rp.AuthClientSecretPost })
	if a := c.ClientAuth(); a.Source != rp.AuthFromConfig || a.Method != rp.AuthClientSecretPost {
		t.Fatalf("%+v", a)
	}
	loggedIn(t, op, c)
	if n := op.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	// Only one secret method listed: nothing to detect, no check either.
	op2 := oidctest.New(t)
	op2.SetMeta("token_endpoint_auth_methods_supported", []string{"client_secret_post"})
	c2 := newClient(t, op2, nil)
	loggedIn(t, op2, c2)
	if n := op2.TokenRequests.Load(); n != 1 || c2.ClientAuth().Method != rp.AuthClientSecretPost {
		t.Fatalf("%d token requests with %s", n, c2.ClientAuth().Method)
	}
}

// TestCheckClientAuth is the check `multiapp doctor` and the example apps
// run at start: it tells "the OP rejects this method" (the other one works)
// apart from "the OP rejects the credentials" (wrong secret, unknown client).
func TestCheckClientAuth(t *testing.T) {
	ctx := context.Background()
	t.Run("accepted", func(t *testing.T) {
		op := oidctest.New(t)
		op.AddClient(oidctest.Client{ID: clientID, Secret: secret})
		c := newClient(t, op, nil)
		if err := c.CheckClientAuth(ctx); err != nil {
			t.Fatal(err)
		}
		if a := c.ClientAuth(); !a.Confirmed || a.Method != rp.AuthClientSecretBasic || a.Source != rp.AuthFromDiscovery {
			t.Fatalf("%+v", a)
		}
		loggedIn(t, op, c)
		if n := op.TokenRequests.Load(); n != 2 {
			t.Fatalf("%d token requests: the login checked again", n)
		}
	})
	t.Run("chosen method rejected", func(t *testing.T) {
		op := oidctest.New(t)
		op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: rp.AuthClientSecretPost})
		c := newClient(t, op, func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic })
		err := c.CheckClientAuth(ctx)
		var ce *rp.ClientAuthError
		if !errors.As(err, &ce) || ce.Method != rp.AuthClientSecretBasic || ce.Accepted != rp.AuthClientSecretPost || ce.OP == nil || ce.OP.Code != "invalid_client" || !errors.Is(err, rp.ErrConfig) {
			t.Fatalf("%v", err)
		}
		if !strings.Contains(err.Error(), "registered for client_secret_post") {
			t.Errorf("message: %v", err)
		}
		if c.ClientAuth().Method != rp.AuthClientSecretBasic {
			t.Fatalf("a chosen method was changed")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		op := oidctest.New(t)
		op.AddClient(oidctest.Client{ID: clientID, Secret: "other"})
		c := newClient(t, op, nil)
		err := c.CheckClientAuth(ctx)
		var ce *rp.ClientAuthError
		if !errors.As(err, &ce) || ce.Accepted != "" || !strings.Contains(err.Error(), "ClientSecret") {
			t.Fatalf("%v", err)
		}
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_client" {
			t.Fatalf("no OPError in %v", err)
		}
	})
	t.Run("public client registered as confidential", func(t *testing.T) {
		op := oidctest.New(t)
		op.AddClient(oidctest.Client{ID: clientID, Secret: secret})
		c := newClient(t, op, func(c *setup) { c.ClientSecret = "" })
		var ce *rp.ClientAuthError
		if err := c.CheckClientAuth(ctx); !errors.As(err, &ce) || ce.Method != rp.AuthNone {
			t.Fatalf("%v", err)
		}
		op.AddClient(oidctest.Client{ID: clientID})
		if err := c.CheckClientAuth(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OP down", func(t *testing.T) {
		op := oidctest.New(t)
		op.SetTokenHook(func(url.Values) (int, any) { return 502, "<html>bad gateway</html>" })
		c := newClient(t, op, nil)
		if err := c.CheckClientAuth(ctx); !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrConfig) {
			t.Fatalf("%v", err)
		}
	})
}

// TestRevokeAndIntrospectionShareTheMechanism: revocation (RFC 7009 §2.1)
// and introspection (RFC 7662 §2.1) authenticate the client as the token
// endpoint does, detection included: the first revocation of a client
// registered for client_secret_post is sent once, with post.
func TestRevokeAndIntrospectionShareTheMechanism(t *testing.T) {
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: rp.AuthClientSecretPost})
	rec := &recorder{}
	c := newClient(t, op, func(c *setup) { c.HTTPClient = rec.client() })
	if err := c.Revoke(context.Background(), "rt-x", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	revocations := rec.count(func(s sentRequest) bool { return s.path == "/oauth/revoke" })
	if revocations != 1 || op.RevocationRequests.Load() != 1 || rec.last().form.Get("client_secret") != secret {
		t.Fatalf("%d revocations, last %+v", revocations, rec.last())
	}

	op.SetMeta("introspection_endpoint", op.Issuer+"/oauth/introspect")
	op.SetMeta("introspection_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post"})
	op.AddClient(oidctest.Client{ID: "api", Secret: oddSecret, AuthMethod: rp.AuthClientSecretPost})
	clk := newClock()
	op.SetIntrospectionHook(func(token string) (int, any) {
		if token == "opaque-1" {
			return 200, activeAnswer(op, clk.Now())
		}
		return 200, map[string]any{"active": false}
	})
	var obs observed
	v := newVerifier(t, op, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: oddSecret, OnClientAuth: obs.hook}
	})
	if _, err := v.Verify(context.Background(), "opaque-1"); err != nil {
		t.Fatal(err)
	}
	if n := op.IntrospectionRequests.Load(); n != 3 {
		t.Fatalf("%d introspection requests, want 2 checks and 1 call", n)
	}
	if obs.len() != 1 || obs.events[0].Method != rp.AuthClientSecretPost || obs.events[0].Source != rp.AuthDetected {
		t.Fatalf("OnClientAuth: %+v", obs.events)
	}
}

// TestSecretNeverOverPlainHTTP: a client secret is never sent over plain
// http except to a loopback OP (development): a token, revocation or
// introspection endpoint on http elsewhere is a configuration error, found
// before anything is sent.
func TestSecretNeverOverPlainHTTP(t *testing.T) {
	const far = "http://op.example.test"
	op := oidctest.New(t)
	op.SetMeta("token_endpoint", far+"/oauth/token")
	p := discover(t, op.Issuer, nil)
	if _, err := p.Client(rp.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect}); !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("secret client with an http token endpoint: %v", err)
	}
	if _, err := p.Client(rp.Config{ClientID: clientID, RedirectURL: redirect}); err != nil {
		t.Fatalf("a public client sends no secret: %v", err)
	}

	op2 := oidctest.New(t)
	op2.SetMeta("revocation_endpoint", far+"/oauth/revoke")
	op2.SetMeta("introspection_endpoint", far+"/oauth/introspect")
	c := newClient(t, op2, func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic })
	if err := c.Revoke(context.Background(), "rt", ""); !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("revocation over http: %v", err)
	}
	_, err := c.Provider().AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences:     []string{apiAud},
		Introspection: &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "s"},
	})
	if !errors.Is(err, rp.ErrConfig) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("introspection over http: %v", err)
	}
}

// TestRevocationEndpointAuthMethods: the revocation endpoint may list its
// own methods (RFC 8414 revocation_endpoint_auth_methods_supported). The
// client's method is used when the list names it or is empty (OPs that
// publish none apply the registered method everywhere); when the list
// names only the other secret method, that one is; a public client stays
// public.
func TestRevocationEndpointAuthMethods(t *testing.T) {
	cases := []struct {
		name, secret, method string
		listed               any
		want                 string
	}{
		{"listed with the client's", secret, rp.AuthClientSecretBasic, []string{"client_secret_basic", "client_secret_post"}, rp.AuthClientSecretBasic},
		{"not listed", secret, rp.AuthClientSecretBasic, nil, rp.AuthClientSecretBasic},
		{"only the other secret method", secret, rp.AuthClientSecretBasic, []string{"client_secret_post"}, rp.AuthClientSecretPost},
		{"only the other, the other way", secret, rp.AuthClientSecretPost, []string{"client_secret_basic", "private_key_jwt"}, rp.AuthClientSecretBasic},
		{"nothing the client can do", secret, rp.AuthClientSecretPost, []string{"private_key_jwt"}, rp.AuthClientSecretPost},
		{"public client", "", rp.AuthNone, []string{"client_secret_basic"}, rp.AuthNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := oidctest.New(t)
			op.SetMeta("revocation_endpoint_auth_methods_supported", tc.listed)
			rec := &recorder{}
			c := newClient(t, op, func(c *setup) { c.HTTPClient, c.ClientSecret, c.AuthMethod = rec.client(), tc.secret, tc.method })
			_ = c.Revoke(context.Background(), "rt-x", "refresh_token") // the fake enforces one method: only what was sent matters
			sent := rec.last()
			var got string
			switch {
			case sent.path != "/oauth/revoke":
				t.Fatalf("last request to %s", sent.path)
			case strings.HasPrefix(sent.basic, "Basic ") && !sent.form.Has("client_secret"):
				got = rp.AuthClientSecretBasic
			case sent.basic == "" && !sent.form.Has("client_secret") && sent.form.Get("client_id") == clientID:
				got = rp.AuthNone
			case sent.basic == "" && sent.form.Get("client_secret") == tc.secret && sent.form.Get("client_id") == clientID:
				got = rp.AuthClientSecretPost
			}
			if got != tc.want {
				t.Fatalf("revocation sent with %q (%+v), want %s", got, sent, tc.want)
			}
		})
	}
}
