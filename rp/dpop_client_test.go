package rp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// dpopTokenEndpoint is a token endpoint as strict as node-oidc-provider
// with nonces: it checks every proof (dpop.Verifier), answers
// use_dpop_nonce to a proof without its nonce, binds the refresh token to
// the proof's key and answers token_type DPoP.
func dpopTokenEndpoint(t *testing.T, tokenType string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{}), NonceSecret: []byte(strings.Repeat("n", 32))})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	boundTo := map[string]string{"rt-1": ""} // refresh token -> jkt
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = r.ParseForm()
		fail := func(status int, code string) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
		}
		p, err := v.Verify(r.Context(), r.Header.Get("DPoP"), dpop.Request{Method: r.Method, URI: srv.URL + r.URL.Path})
		var e *dpop.Error
		switch {
		case errors.As(err, &e) && e.Code == dpop.CodeUseNonce:
			w.Header().Set("DPoP-Nonce", v.Nonce())
			fail(400, "use_dpop_nonce")
			return
		case err != nil:
			fail(400, "invalid_dpop_proof")
			return
		}
		rt := r.PostForm.Get("refresh_token")
		jkt, known := boundTo[rt]
		if !known || (jkt != "" && jkt != p.Thumbprint) {
			fail(400, "invalid_grant")
			return
		}
		next := fmt.Sprintf("rt-%d", calls.Load())
		boundTo[next] = p.Thumbprint
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + p.Thumbprint, "token_type": tokenType, "expires_in": 300, "refresh_token": next})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestClientDPoP(t *testing.T) {
	op := oidctest.New(t)
	endpoint, calls := dpopTokenEndpoint(t, "DPoP")
	op.SetMeta("token_endpoint", endpoint.URL+"/token")
	op.SetMeta("dpop_signing_alg_values_supported", []string{"ES256", "EdDSA"})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateSigner("")
	c, err := p.Client(rp.Config{ClientID: "spa", RedirectURL: "http://localhost/cb", DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	// The first refresh learns the nonce and is retried once; the second
	// carries it from the start; both are bound to the client's key.
	tokens, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt-1"})
	if err != nil || tokens.TokenType != "DPoP" || tokens.AccessToken != "at-"+key.Thumbprint() || calls.Load() != 2 {
		t.Fatalf("first refresh: %v %+v after %d calls", err, tokens, calls.Load())
	}
	tokens, err = c.Refresh(ctx, tokens)
	if err != nil || tokens.TokenType != "DPoP" || calls.Load() != 3 {
		t.Fatalf("second refresh: %v %+v after %d calls", err, tokens, calls.Load())
	}
	// Another key cannot use the bound refresh token.
	thief, _ := dpop.GenerateSigner("EdDSA")
	c2, err := p.Client(rp.Config{ClientID: "spa", RedirectURL: "http://localhost/cb", DPoP: thief})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Refresh(ctx, tokens); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("another key: %v", err)
	}
}

func TestClientDPoPRefusals(t *testing.T) {
	op := oidctest.New(t)
	ctx := context.Background()
	key, _ := dpop.GenerateSigner("")
	p, _ := rp.Discover(ctx, op.Issuer, nil)
	if _, err := p.Client(rp.Config{ClientID: "spa", DPoP: key}); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("OP without DPoP: %v", err)
	}
	op.SetMeta("dpop_signing_alg_values_supported", []string{"PS256"})
	p, _ = rp.Discover(ctx, op.Issuer, nil)
	if _, err := p.Client(rp.Config{ClientID: "spa", DPoP: key}); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("alg the OP does not accept: %v", err)
	}
	// An OP that answers Bearer did not bind the token: refused.
	endpoint, _ := dpopTokenEndpoint(t, "Bearer")
	op.SetMeta("token_endpoint", endpoint.URL+"/token")
	op.SetMeta("dpop_signing_alg_values_supported", []string{"ES256"})
	p, _ = rp.Discover(ctx, op.Issuer, nil)
	c, err := p.Client(rp.Config{ClientID: "spa", DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	var ve *rp.ValidationError
	if _, err := c.Refresh(ctx, &rp.Tokens{RefreshToken: "rt-1"}); !errors.As(err, &ve) || ve.Code != rp.CodeType {
		t.Fatalf("Bearer answer: %v", err)
	}
}

// TestClientDPoPKeyPerRequest: one Client, a key per session through the
// request context (WithDPoPKey, what the web layer uses): each session's
// tokens are bound to its own key, the OP's nonce is learnt once for all of
// them, a key in the context wins over Config.DPoP, and another session's
// key cannot refresh.
func TestClientDPoPKeyPerRequest(t *testing.T) {
	op := oidctest.New(t)
	endpoint, calls := dpopTokenEndpoint(t, "DPoP")
	op.SetMeta("token_endpoint", endpoint.URL+"/token")
	op.SetMeta("dpop_signing_alg_values_supported", []string{"ES256"})
	ctx := context.Background()
	p, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	clientKey, _ := dpop.GenerateSigner("")
	c, err := p.Client(rp.Config{ClientID: "web", RedirectURL: "http://localhost/cb", DPoP: clientKey})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := dpop.GenerateSigner("")
	bob, _ := dpop.GenerateSigner("")
	a, err := c.Refresh(rp.WithDPoPKey(ctx, alice), &rp.Tokens{RefreshToken: "rt-1"})
	if err != nil || a.TokenType != "DPoP" || a.AccessToken != "at-"+alice.Thumbprint() || calls.Load() != 2 {
		t.Fatalf("alice: %v %+v after %d calls", err, a, calls.Load())
	}
	a, err = c.Refresh(rp.WithDPoPKey(ctx, alice), a)
	if err != nil || a.AccessToken != "at-"+alice.Thumbprint() || calls.Load() != 3 {
		t.Fatalf("alice again (the nonce is known): %v %+v after %d calls", err, a, calls.Load())
	}
	if _, err := c.Refresh(rp.WithDPoPKey(ctx, bob), a); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("alice's refresh token with bob's key: %v", err)
	}
	// Without a key in the context, Config.DPoP signs.
	if _, err := c.Refresh(ctx, a); !errors.Is(err, rp.ErrSessionRevoked) {
		t.Fatalf("alice's refresh token with the client's key: %v", err)
	}

	// A key in the context with an OP without DPoP: misconfigured, and
	// nothing is sent.
	plain := oidctest.New(t)
	p2, _ := rp.Discover(ctx, plain.Issuer, nil)
	c2, err := p2.Client(rp.Config{ClientID: "web", RedirectURL: "http://localhost/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Refresh(rp.WithDPoPKey(ctx, alice), &rp.Tokens{RefreshToken: "rt"}); rp.ClassOf(err) != rp.ClassMisconfigured {
		t.Fatalf("OP without DPoP: %v (%v)", err, rp.ClassOf(err))
	}
}
