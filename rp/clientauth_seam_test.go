package rp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
)

// fakeProver stands in for DPoP (issue 15): a numbered proof on every
// request, and one retry when the OP answers use_dpop_nonce.
type fakeProver struct {
	mu     sync.Mutex
	n      int
	nonce  string
	proved []string // endpoint and proof of each request
}

func (f *fakeProver) prove(_ context.Context, r *authRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	proof := fmt.Sprintf("proof-%d-nonce-%s", f.n, f.nonce)
	f.nonce = "" // single use, as the test's OP wants it
	r.header.Set("DPoP", proof)
	f.proved = append(f.proved, r.endpoint+" "+proof)
	return nil
}

func (f *fakeProver) retry(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`"use_dpop_nonce"`)) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nonce = resp.Header.Get("DPoP-Nonce")
	return true
}

// nonceOP answers use_dpop_nonce, with a nonce, to every POST whose proof
// carries none, as an OP requiring DPoP nonces does (RFC 9449 §8), and
// records what each request carried.
type nonceOP struct {
	mu   sync.Mutex
	seen []string // path, DPoP header, Authorization header
}

func (o *nonceOP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost {
		return http.DefaultTransport.RoundTrip(req)
	}
	proof := req.Header.Get("DPoP")
	o.mu.Lock()
	o.seen = append(o.seen, req.URL.Path+" "+proof+" "+req.Header.Get("Authorization"))
	o.mu.Unlock()
	if strings.HasSuffix(proof, "nonce-") {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("DPoP-Nonce", "n-"+req.URL.Path)
		return &http.Response{StatusCode: http.StatusBadRequest, Header: h, Request: req,
			Body: io.NopCloser(strings.NewReader(`{"error":"use_dpop_nonce"}`))}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestProverSeam: a proof of possession plugs into clientAuth alone. Every
// request that authenticates the client (code exchange, refresh,
// revocation, introspection) carries a fresh proof; a use_dpop_nonce
// answer is retried once, with the client's credentials applied anew; no
// call site knows.
func TestProverSeam(t *testing.T) {
	op := oidctest.New(t)
	op.SetMeta("introspection_endpoint", op.Issuer+"/oauth/introspect")
	op.AddClient(oidctest.Client{ID: "web", Secret: "s", AuthMethod: AuthClientSecretBasic})
	op.AddClient(oidctest.Client{ID: "api", Secret: "a", AuthMethod: AuthClientSecretBasic})
	op.SetIntrospectionHook(func(string) (int, any) { return 200, map[string]any{"active": false} })
	transport := &nonceOP{}
	p, err := Discover(context.Background(), op.Issuer, &ProviderOptions{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client(Config{ClientID: "web", ClientSecret: "s", AuthMethod: AuthClientSecretBasic, RedirectURL: "http://localhost:8080/cb"})
	if err != nil {
		t.Fatal(err)
	}
	proofs := &fakeProver{}
	c.auth.proof = proofs
	ctx := context.Background()

	sendEveryClientRequest(t, op, c)
	v, err := p.AccessTokenVerifier(AccessTokenConfig{Audiences: []string{"api"},
		Introspection: &IntrospectionConfig{ClientID: "api", ClientSecret: "a", AuthMethod: AuthClientSecretBasic}})
	if err != nil {
		t.Fatal(err)
	}
	v.intro.auth.proof = proofs
	if _, err := v.Verify(ctx, "opaque"); err == nil {
		t.Fatal("an inactive token was accepted")
	}

	// Each request: a first attempt without nonce, refused; a retry with
	// the endpoint's nonce, a new proof and the credentials again.
	paths := []string{"/oauth/token", "/oauth/token", "/oauth/revoke", "/oauth/introspect"}
	if len(transport.seen) != 2*len(paths) {
		t.Fatalf("%d requests, want %d: %q", len(transport.seen), 2*len(paths), transport.seen)
	}
	for i, path := range paths {
		first, retry := transport.seen[2*i], transport.seen[2*i+1]
		wantFirst := fmt.Sprintf("%s proof-%d-nonce- Basic ", path, 2*i+1)
		wantRetry := fmt.Sprintf("%s proof-%d-nonce-n-%s Basic ", path, 2*i+2, path)
		if !strings.HasPrefix(first, wantFirst) || !strings.HasPrefix(retry, wantRetry) {
			t.Errorf("request %d: %q then %q, want %q... then %q...", i, first, retry, wantFirst, wantRetry)
		}
	}
}

// sendEveryClientRequest makes c send each request that carries its
// credentials to the fake OP: a code exchange, a refresh and a revocation
// (the grants are registered for client "web"); it fails t on any error.
func sendEveryClientRequest(t *testing.T, op *oidctest.OP, c *Client) {
	t.Helper()
	ctx := context.Background()
	tx := pkce.NewTransaction(c.Issuer(), "/")
	op.AddGrant("code-1", oidctest.Grant{Claims: op.IDClaims("web", "usr_1", tx.Nonce), Challenge: tx.Challenge(), RefreshToken: "rt-1"})
	tokens, err := c.Exchange(ctx, tx, &AuthResponse{Code: "code-1", State: tx.State})
	if err != nil {
		t.Fatal(err)
	}
	op.AddGrant("rt-1", oidctest.Grant{Claims: op.IDClaims("web", "usr_1", ""), RefreshToken: "rt-2"})
	if _, err := c.Refresh(ctx, tokens); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, "rt-2", "refresh_token"); err != nil {
		t.Fatal(err)
	}
}
