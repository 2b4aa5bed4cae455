package rp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// introspectionOP is an RFC 7662 endpoint answering from a table.
type introspectionOP struct {
	mu      sync.Mutex
	answers map[string]map[string]any // token -> answer; missing: inactive
	status  int                       // non-zero: answer this status
	calls   atomic.Int64
	auth    atomic.Value // "basic" or "post"
	release chan struct{}
}

func newIntrospectionOP(t *testing.T, op *oidctest.OP) *introspectionOP {
	in := &introspectionOP{answers: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.calls.Add(1)
		_ = r.ParseForm()
		switch id, secret, ok := r.BasicAuth(); {
		case ok && id == "api" && secret == "api-secret":
			in.auth.Store("basic")
		case r.PostForm.Get("client_id") == "api" && r.PostForm.Get("client_secret") == "api-secret":
			in.auth.Store("post")
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client"})
			return
		}
		in.mu.Lock()
		status, answer, release := in.status, in.answers[r.PostForm.Get("token")], in.release
		in.mu.Unlock()
		if release != nil {
			<-release
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if answer == nil {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	op.SetMeta("introspection_endpoint", srv.URL)
	return in
}

func (in *introspectionOP) set(token string, answer map[string]any) {
	in.mu.Lock()
	in.answers[token] = answer
	in.mu.Unlock()
}

// concurrently runs f n times at once while the endpoint holds its first
// answer back, so the requests pile up; it returns how many calls the
// endpoint received.
func (in *introspectionOP) concurrently(n int, f func()) int64 {
	in.mu.Lock()
	in.release = make(chan struct{})
	release := in.release
	in.mu.Unlock()
	before := in.calls.Load()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for in.calls.Load() == before {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	in.mu.Lock()
	in.release = nil
	in.mu.Unlock()
	return in.calls.Load() - before
}

func activeAnswer(op *oidctest.OP, now time.Time) map[string]any {
	return map[string]any{
		"active": true, "token_type": "Bearer", "iss": op.Issuer, "aud": apiAud, "sub": "usr_1",
		"client_id": "skc_1", "sid": "ses_1", "scope": "orders:read", "exp": now.Unix() + 300, "iat": now.Unix(),
		"permissions": []string{"orders:read"},
	}
}

func TestIntrospection(t *testing.T) {
	op := oidctest.New(t)
	in := newIntrospectionOP(t, op)
	clk := newClock()
	ctx := context.Background()
	v := newVerifier(t, op, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"}
	})
	with := func(mutate func(map[string]any)) map[string]any {
		a := activeAnswer(op, clk.Now())
		mutate(a)
		return a
	}
	in.set("good", activeAnswer(op, clk.Now()))
	in.set("refresh", with(func(a map[string]any) { delete(a, "token_type") }))
	in.set("hydra-refresh", with(func(a map[string]any) { delete(a, "token_type"); a["token_use"] = "refresh_token" }))
	in.set("hydra-access", with(func(a map[string]any) { delete(a, "token_type"); a["token_use"] = "access_token" }))
	in.set("keycloak-refresh", with(func(a map[string]any) { a["typ"] = "Refresh" }))
	in.set("dpop", with(func(a map[string]any) { a["token_type"] = "DPoP"; a["cnf"] = map[string]any{"jkt": "x"} }))
	in.set("bound", with(func(a map[string]any) { a["cnf"] = map[string]any{"jkt": "x"} }))
	in.set("other-api", with(func(a map[string]any) { a["aud"] = "https://other" }))
	in.set("no-aud", with(func(a map[string]any) { delete(a, "aud") }))
	in.set("other-iss", with(func(a map[string]any) { a["iss"] = "https://evil.example" }))
	in.set("no-iss", with(func(a map[string]any) { delete(a, "iss") }))
	in.set("expired", with(func(a map[string]any) { a["exp"] = clk.Now().Unix() - 3600 }))
	in.set("active-string", with(func(a map[string]any) { a["active"] = "true" }))
	in.set("no-exp", with(func(a map[string]any) { delete(a, "exp") }))

	cases := []struct {
		token string
		want  rp.Code
	}{
		{"good", ""}, {"hydra-access", ""}, {"no-iss", ""}, {"no-exp", ""},
		{"unknown", rp.CodeInactive}, {"active-string", rp.CodeInactive},
		{"refresh", rp.CodeType}, {"hydra-refresh", rp.CodeType}, {"keycloak-refresh", rp.CodeType},
		{"dpop", rp.CodeType}, {"bound", rp.CodeType},
		{"other-api", rp.CodeAudience}, {"no-aud", rp.CodeAudience},
		{"other-iss", rp.CodeIssuer}, {"expired", rp.CodeExpired},
		{strings.Repeat("x", 70_000), rp.CodeMalformed}, // never sent to the OP
	}
	for _, c := range cases {
		t.Run(c.token[:min(len(c.token), 20)], func(t *testing.T) {
			cl, err := v.Verify(ctx, c.token)
			wantCode(t, err, c.want)
			if err == nil && (cl.Issuer != op.Issuer || cl.Subject != "usr_1" || !slices.Contains(cl.Scopes, "orders:read") || !slices.Contains(cl.Permissions, "orders:read")) {
				t.Fatalf("claims %+v", cl)
			}
		})
	}
	if in.auth.Load() != "basic" {
		t.Fatalf("auth %v, want client_secret_basic by default", in.auth.Load())
	}

	t.Run("cached until min(ttl, exp), by hash", func(t *testing.T) {
		before := in.calls.Load()
		for range 5 {
			if _, err := v.Verify(ctx, "good"); err != nil {
				t.Fatal(err)
			}
		}
		if n := in.calls.Load() - before; n != 0 {
			t.Fatalf("%d calls for a cached token", n)
		}
		clk.Add(time.Minute) // the default CacheTTL
		if _, err := v.Verify(ctx, "good"); err != nil {
			t.Fatal(err)
		}
		if n := in.calls.Load() - before; n != 1 {
			t.Fatalf("%d calls after the TTL, want 1", n)
		}
		// A token expiring in 10 s is cached 10 s, not a minute.
		in.set("short", with(func(a map[string]any) { a["exp"] = clk.Now().Unix() + 10 }))
		if _, err := v.Verify(ctx, "short"); err != nil {
			t.Fatal(err)
		}
		clk.Add(10 * time.Second)
		in.set("short", map[string]any{"active": false})
		_, err := v.Verify(ctx, "short")
		wantCode(t, err, rp.CodeInactive)
		// Answers without exp are not cached.
		before = in.calls.Load()
		_, _ = v.Verify(ctx, "no-exp")
		_, _ = v.Verify(ctx, "no-exp")
		if n := in.calls.Load() - before; n != 2 {
			t.Fatalf("%d calls for an answer without exp, want 2 (never cached)", n)
		}
	})

	t.Run("concurrent requests share one call", func(t *testing.T) {
		in.set("popular", activeAnswer(op, clk.Now()))
		if n := in.concurrently(30, func() {
			if _, err := v.Verify(ctx, "popular"); err != nil {
				t.Error(err)
			}
		}); n != 1 {
			t.Fatalf("%d calls, want 1", n)
		}
	})

	t.Run("OP errors", func(t *testing.T) {
		in.mu.Lock()
		in.status = http.StatusServiceUnavailable
		in.mu.Unlock()
		_, err := v.Verify(ctx, "fresh-token")
		if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrInvalidToken) {
			t.Fatalf("503: %v", err)
		}
		in.mu.Lock()
		in.status = 0
		in.mu.Unlock()
		bad := newVerifier(t, op, clk, func(c *apiSetup) {
			c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "wrong"}
		})
		_, err = bad.Verify(ctx, "good")
		var ope *rp.OPError
		if !errors.As(err, &ope) || ope.Code != "invalid_client" {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("options", func(t *testing.T) {
		post := newVerifier(t, op, clk, func(c *apiSetup) {
			c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret", AuthMethod: rp.AuthClientSecretPost, InsecureAllowNoAudience: true, CacheSize: -1}
		})
		if _, err := post.Verify(ctx, "no-aud"); err != nil {
			t.Fatal(err)
		}
		if in.auth.Load() != "post" {
			t.Fatalf("auth %v", in.auth.Load())
		}
		before := in.calls.Load()
		_, err := post.Verify(ctx, "other-api")
		wantCode(t, err, rp.CodeAudience) // a present aud is still checked
		if n := in.calls.Load() - before; n != 1 {
			t.Fatalf("%d introspections", n)
		}
	})

	t.Run("revoked sid", func(t *testing.T) {
		store := &revocations{revoked: map[string]bool{}}
		rv := newVerifier(t, op, clk, func(c *apiSetup) {
			c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"}
			c.Revocations = store
		})
		in.set("live", activeAnswer(op, clk.Now()))
		if _, err := rv.Verify(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		store.revoke(op.Issuer, "ses_1")
		_, err := rv.Verify(ctx, "live") // cached answer, still refused
		wantCode(t, err, rp.CodeRevokedSID)
	})
}

func TestMultiIssuerRoutesOpaqueTokensToTheIntrospectingIssuer(t *testing.T) {
	a, b := oidctest.New(t), oidctest.New(t)
	in := newIntrospectionOP(t, b)
	clk := newClock()
	in.set("opaque", activeAnswer(b, clk.Now()))
	va := newVerifier(t, a, clk, nil)
	vb := newVerifier(t, b, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"}
	})
	m, err := rp.NewMultiIssuerVerifier(va, vb)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := m.Verify(context.Background(), "opaque")
	if err != nil || cl.Issuer != b.Issuer {
		t.Fatalf("%v %v", cl, err)
	}
	newIntrospectionOP(t, a)
	va2 := newVerifier(t, a, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret"}
	})
	if _, err := rp.NewMultiIssuerVerifier(va2, vb); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("two introspecting issuers: %v", err)
	}
}

// TestIntrospectionRefusalsAreCachedBriefly (issue 12.7): a token the OP
// says is not active (or that fails a claim rule) is refused from a short
// cache, so a client retrying a revoked or garbage token does not cost one
// OP call per request; concurrent requests share one call. Failures to ask
// (503) are not cached: the next request asks again.
func TestIntrospectionRefusalsAreCachedBriefly(t *testing.T) {
	op := oidctest.New(t)
	in := newIntrospectionOP(t, op)
	clk := newClock()
	ctx := context.Background()
	v := newVerifier(t, op, clk, func(c *apiSetup) {
		c.Introspection = &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "api-secret", AuthMethod: rp.AuthClientSecretBasic}
	})
	in.set("other-api", func() map[string]any { a := activeAnswer(op, clk.Now()); a["aud"] = "https://other"; return a }())
	for _, c := range []struct {
		token string
		code  rp.Code
	}{{"revoked", rp.CodeInactive}, {"other-api", rp.CodeAudience}} {
		before := in.calls.Load()
		for range 5 {
			_, err := v.Verify(ctx, c.token)
			wantCode(t, err, c.code)
		}
		if n := in.calls.Load() - before; n != 1 {
			t.Fatalf("%s: %d calls for 5 requests, want 1", c.token, n)
		}
	}
	before := in.calls.Load()
	clk.Add(10 * time.Second) // the refusal TTL
	_, err := v.Verify(ctx, "revoked")
	wantCode(t, err, rp.CodeInactive)
	if n := in.calls.Load() - before; n != 1 {
		t.Fatalf("%d calls after the refusal TTL, want 1", n)
	}

	// Concurrent requests with one refused token: one call.
	if n := in.concurrently(20, func() {
		if _, err := v.Verify(ctx, "garbage"); !errors.Is(err, rp.ErrInvalidToken) {
			t.Error(err)
		}
	}); n != 1 {
		t.Fatalf("%d calls for 20 concurrent requests, want 1", n)
	}

	// The OP cannot answer: not remembered.
	in.mu.Lock()
	in.status = http.StatusServiceUnavailable
	in.mu.Unlock()
	before = in.calls.Load()
	for range 2 {
		if _, err := v.Verify(ctx, "during-outage"); !errors.Is(err, rp.ErrTemporary) {
			t.Fatal(err)
		}
	}
	if n := in.calls.Load() - before; n != 2 {
		t.Fatalf("%d calls, want 2: a failure to ask is not a refusal", n)
	}
	in.mu.Lock()
	in.status = 0
	in.mu.Unlock()
	in.set("during-outage", activeAnswer(op, clk.Now()))
	if _, err := v.Verify(ctx, "during-outage"); err != nil {
		t.Fatal(err)
	}
}
