package bearer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// TestDPoPInteropNodeOIDCProvider: a public client holding a DPoP key
// (rp.Config.DPoP) signs in at node-oidc-provider and gets DPoP-bound
// tokens (token_type DPoP, cnf.jkt of its key in the JWT access token, a
// refresh token bound to the key); an API behind the bearer layer with
// DPoP accepts the access token with a proof (dpop.Transport) and refuses
// it when the proof is replayed, when the proof is made by another key,
// and when the token is presented as a bearer token. The refreshed tokens
// keep working; another key cannot use the refresh token. An opaque
// DPoP-bound token is accepted through introspection's cnf.jkt.
func TestDPoPInteropNodeOIDCProvider(t *testing.T) {
	for _, nonces := range []bool{false, true} {
		name := "no nonces"
		if nonces {
			name = "OP nonces"
		}
		t.Run(name, func(t *testing.T) { dpopInterop(t, nonces) })
	}
}

// dpopInterop runs the interop test; nonces: the OP requires its nonce in
// every proof, so every client's first token request is answered
// use_dpop_nonce and retried.
func dpopInterop(t *testing.T, nonces bool) {
	const api = "https://api.example.test"
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(app.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{
			{ID: "ntvc_cli", AuthMethod: "none", ApplicationType: "native", RedirectURIs: []string{app.URL + "/cb"}},
			{ID: "ntvc_opaque", AuthMethod: "none", ApplicationType: "native", RedirectURIs: []string{app.URL + "/cb2"}},
			{ID: "api_introspection", Secret: "api-secret", AuthMethod: "client_secret_basic", RedirectURIs: []string{app.URL + "/unused"}},
		},
		Users:               []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw"}},
		Resource:            &nodeop.Resource{Audience: api, Scopes: []string{"orders:read"}, Clients: []string{"ntvc_cli"}},
		RotateRefreshTokens: true,
		DPoPNonces:          nonces,
	})
	ctx := context.Background()
	provider, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if algs := provider.Metadata().DPoPSigningAlgs; len(algs) == 0 {
		t.Fatalf("node-oidc-provider does not advertise DPoP: %v", algs)
	}
	key := mustSigner(t, "")
	cli, err := provider.Client(rp.Config{ClientID: "ntvc_cli", RedirectURL: app.URL + "/cb", Scopes: []string{"openid", "orders:read"}, DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	opaqueCli, err := provider.Client(rp.Config{ClientID: "ntvc_opaque", RedirectURL: app.URL + "/cb2", Scopes: []string{"openid"}, DPoP: key})
	if err != nil {
		t.Fatal(err)
	}
	browser := nodeop.NewBrowser(t, "alice@example.test", "pw")
	signIn := func(c *rp.Client, path string) *rp.Tokens { return browser.SignIn(t, c, path) }
	tokens := signIn(cli, "/cb")
	if tokens.TokenType != "DPoP" || tokens.RefreshToken == "" {
		t.Fatalf("token_type %q, refresh token %v", tokens.TokenType, tokens.RefreshToken != "")
	}
	// With nonces, the code exchange was answered use_dpop_nonce once and
	// retried with the OP's nonce.
	if got, want := op.TokenRequests("authorization_code"), map[bool]int{false: 1, true: 2}[nonces]; got != want {
		t.Fatalf("%d code exchange requests, want %d", got, want)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tokens.AccessToken, ".")[1])
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf.JKT != key.Thumbprint() {
		t.Fatalf("access token cnf.jkt %q, want the key's %q (%v)", claims.Cnf.JKT, key.Thumbprint(), err)
	}

	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{api}, StrictRFC9068: true,
		Introspection: &rp.IntrospectionConfig{ClientID: "api_introspection", ClientSecret: "api-secret", InsecureAllowNoAudience: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	orders := mustNew(t, bearer.Config{Verifier: verifier, DPoP: &bearer.DPoPConfig{Proofs: proofs}})
	srv := httptest.NewServer(orders.Authenticate(echo))
	t.Cleanup(srv.Close)
	current := tokens
	withKey := func(s *dpop.Signer) *http.Client {
		return &http.Client{Transport: &dpop.Transport{Signer: s, AccessToken: func(*http.Request) (string, error) { return current.AccessToken, nil }}}
	}
	get := func(hc *http.Client, req *http.Request) (int, string) {
		t.Helper()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), "\n")
	}
	newReq := func() *http.Request {
		req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
		return req
	}

	t.Run("bound token with a proof", func(t *testing.T) {
		if status, ch := get(withKey(key), newReq()); status != 200 {
			t.Fatalf("%d %s", status, ch)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		var captured http.Header
		spy := &http.Client{Transport: &dpop.Transport{Signer: key, AccessToken: func(*http.Request) (string, error) { return current.AccessToken, nil },
			Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				captured = r.Header.Clone()
				return http.DefaultTransport.RoundTrip(r)
			})}}
		if status, _ := get(spy, newReq()); status != 200 {
			t.Fatalf("first use: %d", status)
		}
		replay := newReq()
		replay.Header = captured
		if status, ch := get(http.DefaultClient, replay); status != 401 || !strings.Contains(ch, `error="invalid_dpop_proof"`) {
			t.Fatalf("replay: %d %s", status, ch)
		}
	})
	t.Run("proof by another key", func(t *testing.T) {
		if status, ch := get(withKey(mustSigner(t, "")), newReq()); status != 401 || !strings.Contains(ch, `DPoP realm="api", algs=`) || !strings.Contains(ch, `error="invalid_token"`) {
			t.Fatalf("%d %s", status, ch)
		}
	})
	t.Run("presented as bearer", func(t *testing.T) {
		req := newReq()
		req.Header.Set("Authorization", "Bearer "+current.AccessToken)
		if status, ch := get(http.DefaultClient, req); status != 401 || !strings.Contains(ch, `Bearer realm="api", error="invalid_token"`) {
			t.Fatalf("%d %s", status, ch)
		}
	})
	t.Run("refreshed tokens stay bound and work", func(t *testing.T) {
		next, err := cli.Refresh(ctx, current)
		if err != nil || next.TokenType != "DPoP" || next.AccessToken == current.AccessToken {
			t.Fatalf("refresh: %v %+v", err, next)
		}
		current = next
		if status, ch := get(withKey(key), newReq()); status != 200 {
			t.Fatalf("%d %s", status, ch)
		}
		again, err := cli.Refresh(ctx, current)
		if err != nil {
			t.Fatalf("second refresh: %v", err)
		}
		current = again
		if status, ch := get(withKey(key), newReq()); status != 200 {
			t.Fatalf("after the second refresh: %d %s", status, ch)
		}
	})
	t.Run("opaque bound token by introspection", func(t *testing.T) {
		opaque := signIn(opaqueCli, "/cb2")
		if opaque.TokenType != "DPoP" || strings.Count(opaque.AccessToken, ".") != 0 {
			t.Fatalf("want an opaque DPoP token, got %q", opaque.TokenType)
		}
		cl, err := verifier.VerifyBound(ctx, opaque.AccessToken)
		if err != nil || cl.Confirmation == nil || cl.Confirmation.JKT != key.Thumbprint() {
			t.Fatalf("introspection: %v %+v", err, cl)
		}
		if _, err := verifier.Verify(ctx, opaque.AccessToken); err == nil {
			t.Fatal("an opaque DPoP-bound token was accepted as a bearer token")
		}
	})
	t.Run("another key cannot refresh", func(t *testing.T) {
		thief, err := provider.Client(rp.Config{ClientID: "ntvc_cli", RedirectURL: app.URL + "/cb", DPoP: mustSigner(t, "")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = thief.Refresh(ctx, current)
		if err == nil {
			t.Fatal("a refresh token bound to another key was accepted")
		}
		if !errors.Is(err, rp.ErrSessionRevoked) { // invalid_grant
			t.Fatalf("refresh with another key: %v", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
