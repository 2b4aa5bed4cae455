package rp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func loggedIn(t *testing.T, op *oidctest.OP, c *rp.Client) *rp.Tokens {
	t.Helper()
	tx, resp := login(op, c, "login-"+t.Name(), nil)
	tokens, err := c.Exchange(context.Background(), tx, resp)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestRefresh(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()

	t.Run("rotation and new ID token", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		claims := op.IDClaims(clientID, "usr_1", "")
		op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims, RefreshToken: "rt-2"})
		next, err := c.Refresh(ctx, prev)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken != "rt-2" || next.AccessToken == prev.AccessToken || next.IDToken == prev.IDToken {
			t.Fatalf("not rotated: %+v", next)
		}
	})
	t.Run("keeps refresh token and ID token when not returned", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		op.AddGrant(prev.RefreshToken, oidctest.Grant{NoIDToken: true})
		next, err := c.Refresh(ctx, prev)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken != prev.RefreshToken || next.IDToken != prev.IDToken || next.Claims.Subject != "usr_1" {
			t.Fatalf("previous tokens not kept: %+v", next)
		}
	})
	t.Run("previous claims recovered from the ID token", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		prev.Claims = nil
		claims := op.IDClaims(clientID, "usr_other", "")
		op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims})
		_, err := c.Refresh(ctx, prev)
		var ve *rp.ValidationError
		if !errors.As(err, &ve) || ve.Code != rp.CodeSubject || !errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want a revoking ValidationError %q, got %v", rp.CodeSubject, err)
		}
	})
	// OpenID Connect Core §12.2: a refreshed ID token's iss, sub and aud
	// MUST be the same as in the original ID token. Another identity ends
	// the session (nil tokens, ClassRevoked); any other refusal keeps it,
	// with the refresh token the OP just issued (the previous one is spent).
	for name, tc := range map[string]struct {
		mut   func(map[string]any)
		class rp.Class
	}{
		"sub changed": {func(m map[string]any) { m["sub"] = "usr_2" }, rp.ClassRevoked},
		"aud changed": {func(m map[string]any) { m["aud"] = []string{clientID, "api"}; m["azp"] = clientID }, rp.ClassRevoked},
		"iss changed": {func(m map[string]any) { m["iss"] = "https://evil" }, rp.ClassInvalid},
		"wrong nonce": {func(m map[string]any) { m["nonce"] = "x" }, rp.ClassInvalid},
		"bad at_hash": {func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, rp.ClassInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, op, func(c *setup) { c.TrustedAudiences = []string{"api"} })
			prev := loggedIn(t, op, c)
			claims := op.IDClaims(clientID, "usr_1", "")
			tc.mut(claims)
			op.AddGrant(prev.RefreshToken, oidctest.Grant{Claims: claims, RefreshToken: "rt-rotated-" + name})
			keep, err := c.Refresh(ctx, prev)
			assertClass(t, err, tc.class)
			switch {
			case tc.class == rp.ClassRevoked && keep != nil:
				t.Fatalf("identity changed but tokens kept: %+v", keep)
			case tc.class != rp.ClassRevoked && (keep == nil || keep.RefreshToken != "rt-rotated-"+name || keep.AccessToken != prev.AccessToken || keep.IDToken != prev.IDToken):
				t.Fatalf("refused answer: kept %+v, want the previous tokens with the rotated refresh token", keep)
			}
		})
	}
	t.Run("invalid_grant is ErrSessionRevoked", func(t *testing.T) {
		prev := loggedIn(t, op, c)
		keep, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "unknown", Claims: prev.Claims})
		if !errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrTemporary) || keep != nil {
			t.Fatalf("want ErrSessionRevoked and no tokens, got %v %+v", err, keep)
		}
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			t.Fatalf("OPError not reachable: %v", err)
		}
	})
	t.Run("invalid_client is neither revoked nor temporary", func(t *testing.T) {
		op.SetTokenHook(func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} })
		defer op.SetTokenHook(nil)
		_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		var oe *rp.OPError
		if !errors.As(err, &oe) || errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrTemporary) || oe.Hint == "" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		if _, err := c.Refresh(ctx, &rp.Tokens{}); err == nil {
			t.Fatal("refresh without a refresh token succeeded")
		}
	})
	t.Run("OP down is temporary", func(t *testing.T) {
		op2 := oidctest.New(t)
		c2 := newClient(t, op2, nil)
		op2.Server.Close()
		_, err := c2.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want ErrTemporary, got %v", err)
		}
	})
	t.Run("cancelled context is not a revocation", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.Refresh(cctx, &rp.Tokens{RefreshToken: "rt"})
		if errors.Is(err, rp.ErrSessionRevoked) || err == nil {
			t.Fatalf("got %v", err)
		}
	})
}

// TestRefreshKeepsWhatTheOPMayHaveSpent: which refresh token Refresh hands
// back with an error, by what the OP may have done with the old one.
func TestRefreshKeepsWhatTheOPMayHaveSpent(t *testing.T) {
	ctx := context.Background()
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	prev := &rp.Tokens{AccessToken: "at-1", RefreshToken: "rt-1"}

	t.Run("refreshed ID token unverifiable: the rotated refresh token", func(t *testing.T) {
		op := oidctest.New(t)
		c := newClient(t, op, nil)
		op.JWKSDown.Store(true)
		op.AddGrant("rt-1", oidctest.Grant{Claims: op.IDClaims(clientID, "usr_1", ""), RefreshToken: "rt-2"})
		keep, err := c.Refresh(ctx, prev)
		if !errors.Is(err, rp.ErrTemporary) || keep == nil || keep.RefreshToken != "rt-2" || keep.AccessToken != "at-1" {
			t.Fatalf("%v %+v, want a temporary error and the rotated refresh token", err, keep)
		}
	})
	t.Run("no answer after the request was sent: no refresh token", func(t *testing.T) {
		op.SetTokenHook(func(url.Values) (int, any) { time.Sleep(300 * time.Millisecond); return 200, map[string]any{} })
		defer op.SetTokenHook(nil)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		keep, err := c.Refresh(short, prev)
		if !errors.Is(err, rp.ErrTemporary) || keep == nil || keep.RefreshToken != "" || keep.AccessToken != "at-1" {
			t.Fatalf("%v %+v, want a temporary error and the refresh token dropped (the OP may have spent it)", err, keep)
		}
	})
	t.Run("success status with an unusable body: no refresh token", func(t *testing.T) {
		op.SetTokenHook(func(url.Values) (int, any) { return 200, "<html>welcome</html>" })
		defer op.SetTokenHook(nil)
		keep, err := c.Refresh(ctx, prev)
		if !errors.Is(err, rp.ErrTemporary) || keep == nil || keep.RefreshToken != "" {
			t.Fatalf("%v %+v", err, keep)
		}
	})
	t.Run("refused or unreachable: unchanged", func(t *testing.T) {
		for name, hook := range map[string]func(url.Values) (int, any){
			"503":            func(url.Values) (int, any) { return 503, "" },
			"invalid_client": func(url.Values) (int, any) { return 401, map[string]any{"error": "invalid_client"} },
		} {
			op.SetTokenHook(hook)
			keep, err := c.Refresh(ctx, prev)
			if err == nil || keep != prev {
				t.Errorf("%s: %v %+v, want prev unchanged", name, err, keep)
			}
		}
		op.SetTokenHook(nil)
		op2 := oidctest.New(t)
		c2 := newClient(t, op2, nil)
		op2.Server.Close()
		if keep, err := c2.Refresh(ctx, prev); !errors.Is(err, rp.ErrTemporary) || keep != prev {
			t.Errorf("OP down: %v %+v, want prev unchanged (nothing was sent)", err, keep)
		}
	})
}

// TestRefreshRetryAfter: RFC 6749 leaves 429 and 503 to HTTP; RFC 9110
// §10.2.3 says Retry-After is delay-seconds or an HTTP date. The temporary
// error carries it, so the caller does not come back sooner.
func TestRefreshRetryAfter(t *testing.T) {
	ctx := context.Background()
	op := oidctest.New(t)
	var status int
	var retry string
	op.SetMeta("token_endpoint", newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", retry)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	})))
	c := newClient(t, op, nil)
	for _, tc := range []struct {
		status int
		header string
		want   time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, "120", 2 * time.Minute},
		{503, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{503, "", 0},
		{429, "soon", 0},
	} {
		status, retry = tc.status, tc.header
		_, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt"})
		var te *rp.TemporaryError
		if !errors.As(err, &te) || te.Status != tc.status || te.RetryAfter < tc.want-2*time.Second || te.RetryAfter > tc.want {
			t.Errorf("%d Retry-After %q: %v, want RetryAfter %v", tc.status, tc.header, err, tc.want)
		}
	}
}

// TestRefreshDeadlineReplacesClientTimeout: a refresh given a deadline
// waits for a slow OP past the HTTP client's timeout (a refresh cut short
// after the OP rotated the token loses the session).
func TestRefreshDeadlineReplacesClientTimeout(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, func(c *setup) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
	op.SetTokenHook(func(url.Values) (int, any) {
		time.Sleep(300 * time.Millisecond)
		return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt-2"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt-1"})
	if err != nil || next.RefreshToken != "rt-2" {
		t.Fatalf("%v %+v", err, next)
	}
}
