package bearer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

const orders = "http://api.example.test/orders"

type replayDown struct{}

func (replayDown) UseOnce(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, errors.New("store unreachable")
}

func proofVerifier(t testing.TB, mod func(*dpop.VerifierConfig)) *dpop.Verifier {
	t.Helper()
	cfg := dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	if mod != nil {
		mod(&cfg)
	}
	v, err := dpop.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSigner(t testing.TB, alg string) *dpop.Signer {
	t.Helper()
	s, err := dpop.GenerateSigner(alg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustProof(t testing.TB, s *dpop.Signer, method, uri, token, nonce string) string {
	t.Helper()
	p, err := s.Proof(method, uri, token, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resign returns proof with its header changed by mutate and signed again
// with key (ES256), or unsigned when key is nil.
func resign(t *testing.T, proof string, key *ecdsa.PrivateKey, mutate func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	mutate(h)
	hb, _ = json.Marshal(h)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1]
	if key == nil {
		return in + "."
	}
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
}

type dpopCall struct {
	scheme, token string
	proofs        []string
	method        string
}

func (c dpopCall) do(h http.Handler) *httptest.ResponseRecorder {
	method := c.method
	if method == "" {
		method = "GET"
	}
	r := httptest.NewRequest(method, orders+"?page=2", nil)
	if c.scheme != "" {
		r.Header.Set("Authorization", c.scheme+" "+c.token)
	}
	for _, p := range c.proofs {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestDPoPRFC9449(t *testing.T) {
	f := newBearerFixture(t)
	client := mustSigner(t, "")
	other := mustSigner(t, "EdDSA")
	bound := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.Thumbprint()} })
	boundOther := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": other.Thumbprint()} })
	plain := bearerToken(f.op, nil)
	proof := func(token string) string { return mustProof(t, client, "GET", orders, token, "") }

	var got []refusal
	api := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&got), DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil)}})
	h := api.Require(bearer.AnyScope("orders:read"))(echo)
	stale := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&got), DPoP: &bearer.DPoPConfig{
		Proofs: proofVerifier(t, func(c *dpop.VerifierConfig) { c.Now = func() time.Time { return time.Now().Add(2 * time.Minute) } })}})
	down := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&got), DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, func(c *dpop.VerifierConfig) { c.Replay = replayDown{} })}})
	required := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&got), DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil), Required: true}})
	behindProxy := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&got), DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil), PublicOrigin: "https://API.example.com:443"}})

	replayed := proof(bound)
	if w := (dpopCall{"DPoP", bound, []string{replayed}, ""}).do(h); w.Code != 200 {
		t.Fatalf("first use: %d %s", w.Code, w.Header())
	}
	key, _ := ecdsa.GenerateKey(client.Public().(*ecdsa.PublicKey).Curve, rand.Reader)
	withPrivate := resign(t, proof(bound), key, func(h map[string]any) {
		jwk := h["jwk"].(map[string]any)
		jwk["d"] = base64.RawURLEncoding.EncodeToString(key.D.FillBytes(make([]byte, 32)))
	})
	algNone := resign(t, proof(bound), nil, func(h map[string]any) { h["alg"] = "none" })
	algHS := resign(t, proof(bound), nil, func(h map[string]any) { h["alg"] = "HS256" }) + "c2ln"

	const algs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"`
	cases := []struct {
		name   string
		h      http.Handler
		call   dpopCall
		status int
		bearer string // WWW-Authenticate Bearer challenge ("-": none)
		dpop   string // the DPoP challenge
		reason string
	}{
		{"valid", h, dpopCall{"DPoP", bound, []string{proof(bound)}, ""}, 200, "", "", ""},
		{"scheme case-insensitive", h, dpopCall{"dpop", bound, []string{proof(bound)}, ""}, 200, "", "", ""},
		{"unbound token with a proof", h, dpopCall{"DPoP", plain, []string{proof(plain)}, ""}, 200, "", "", ""},
		{"no credentials", h, dpopCall{}, 401, `Bearer realm="api"`, `DPoP realm="api", ` + algs, "no_token"},
		{"replayed proof", h, dpopCall{"DPoP", bound, []string{replayed}, ""}, 401, `Bearer realm="api"`, `error="invalid_dpop_proof"`, "dpop_replay"},
		{"wrong htu", h, dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", "http://api.example.test/admin", bound, "")}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_htu"},
		{"wrong htm", h, dpopCall{"DPoP", bound, []string{proof(bound)}, "DELETE"}, 401, "", `error="invalid_dpop_proof"`, "dpop_htm"},
		{"stale iat", stale.Authenticate(echo), dpopCall{"DPoP", bound, []string{proof(bound)}, ""}, 401, "", `error="invalid_dpop_proof", error_description="iat is too old`, "dpop_iat"},
		{"jwk with a private part", h, dpopCall{"DPoP", bound, []string{withPrivate}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_jwk"},
		{"alg none", h, dpopCall{"DPoP", bound, []string{algNone}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_alg"},
		{"alg HS256", h, dpopCall{"DPoP", bound, []string{algHS}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_alg"},
		{"token bound to another key", h, dpopCall{"DPoP", boundOther, []string{proof(boundOther)}, ""}, 401, "", `error="invalid_token"`, "dpop_binding"},
		{"ath of another token", h, dpopCall{"DPoP", bound, []string{proof(plain)}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_ath"},
		{"no proof", h, dpopCall{"DPoP", bound, nil, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_malformed"},
		{"two proofs", h, dpopCall{"DPoP", bound, []string{proof(bound), proof(bound)}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_malformed"},
		{"bound token as bearer", h, dpopCall{"Bearer", bound, nil, ""}, 401, `Bearer realm="api", error="invalid_token"`, `DPoP realm="api", ` + algs, "type"},
		{"bound token as bearer with a proof", h, dpopCall{"Bearer", bound, []string{proof(bound)}, ""}, 401, `error="invalid_token"`, "", "type"},
		{"empty DPoP token", h, dpopCall{"DPoP", "", []string{proof(bound)}, ""}, 400, "", `error="invalid_request"`, "malformed_request"},
		{"invalid token", h, dpopCall{"DPoP", plain + "x", []string{proof(plain + "x")}, ""}, 401, "", `error="invalid_token"`, "malformed"},
		{"replay store down", down.Authenticate(echo), dpopCall{"DPoP", bound, []string{proof(bound)}, ""}, 503, "-", "", "temporarily_unavailable"},
		{"required: bearer token", required.Authenticate(echo), dpopCall{"Bearer", plain, nil, ""}, 401, "-", `error="invalid_token", error_description="this API accepts DPoP-bound access tokens only`, "dpop_required"},
		{"required: unbound token", required.Authenticate(echo), dpopCall{"DPoP", plain, []string{proof(plain)}, ""}, 401, "-", `error="invalid_token"`, "dpop_required"},
		{"required: valid", required.Authenticate(echo), dpopCall{"DPoP", bound, []string{proof(bound)}, ""}, 200, "", "", ""},
		{"behind a proxy", behindProxy.Authenticate(echo), dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", "https://api.example.com/orders", bound, "")}, ""}, 200, "", "", ""},
		{"behind a proxy, htu of the backend", behindProxy.Authenticate(echo), dpopCall{"DPoP", bound, []string{proof(bound)}, ""}, 401, "", `error="invalid_dpop_proof"`, "dpop_htu"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = got[:0]
			w := tc.call.do(tc.h)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Header())
			}
			if tc.status == 200 {
				if !strings.HasPrefix(w.Body.String(), "usr_1 ") {
					t.Fatalf("body %q", w.Body)
				}
				return
			}
			var bc, dc string
			for _, c := range w.Header().Values("WWW-Authenticate") {
				switch {
				case strings.HasPrefix(c, "Bearer"):
					bc = c
				case strings.HasPrefix(c, "DPoP"):
					dc = c
				}
			}
			switch {
			case tc.bearer == "-" && bc != "":
				t.Errorf("Bearer challenge %q, want none", bc)
			case tc.bearer != "-" && tc.status != 503 && (bc == "" || !strings.Contains(bc, tc.bearer)):
				t.Errorf("Bearer challenge %q, want %q", bc, tc.bearer)
			}
			usedDPoP := strings.EqualFold(tc.call.scheme, "DPoP")
			if !usedDPoP && tc.bearer != "-" && strings.Contains(dc, "error=") {
				t.Errorf("DPoP challenge %q carries the error of a Bearer request", dc)
			}
			if usedDPoP && strings.Contains(bc, "error=") {
				t.Errorf("Bearer challenge %q carries the error of a DPoP request", bc)
			}
			if tc.status != 503 && (dc == "" || !strings.Contains(dc, tc.dpop)) {
				t.Errorf("DPoP challenge %q, want %q", dc, tc.dpop)
			}
			if tc.reason != "" && (len(got) != 1 || got[0].reason != tc.reason) {
				t.Errorf("refusals %+v, want reason %s", got, tc.reason)
			}
		})
	}
}

func TestDPoPNonces(t *testing.T) {
	f := newBearerFixture(t)
	client := mustSigner(t, "")
	bound := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.Thumbprint()} })
	api := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{
		Proofs: proofVerifier(t, func(c *dpop.VerifierConfig) { c.NonceSecret = []byte(strings.Repeat("s", 32)) })}})
	h := api.Authenticate(echo)
	// Nonce required and missing: 401 use_dpop_nonce with a nonce.
	w := dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, "")}, ""}.do(h)
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 401 || nonce == "" || !strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), "\n"), `DPoP realm="api", algs="`) ||
		!strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), "\n"), `error="use_dpop_nonce"`) {
		t.Fatalf("no nonce: %d %v", w.Code, w.Header())
	}
	// The client retries with it.
	if w := (dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, nonce)}, ""}).do(h); w.Code != 200 {
		t.Fatalf("with the nonce: %d %v", w.Code, w.Header())
	}
	// A nonce made up by the client.
	if w := (dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, "made-up")}, ""}).do(h); w.Code != 401 || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("made-up nonce: %d %v", w.Code, w.Header())
	}
	// A request without credentials learns the nonce right away.
	if w := (dpopCall{}).do(h); w.Code != 401 || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("no credentials: %d %v", w.Code, w.Header())
	}
}

func TestDPoPConfig(t *testing.T) {
	f := newBearerFixture(t)
	for name, cfg := range map[string]bearer.Config{
		"no proofs verifier":  {Verifier: f.verifier, DPoP: &bearer.DPoPConfig{}},
		"not a BoundVerifier": {Verifier: verifierFunc(func(context.Context, string) (*rp.Claims, error) { return nil, nil }), DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil)}},
		"origin with a path":  {Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil), PublicOrigin: "https://api.example.com/v1"}},
		"origin not absolute": {Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil), PublicOrigin: "api.example.com"}},
	} {
		if _, err := bearer.New(cfg); !errors.Is(err, rp.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

type verifierFunc func(context.Context, string) (*rp.Claims, error)

func (f verifierFunc) Verify(ctx context.Context, raw string) (*rp.Claims, error) { return f(ctx, raw) }

// dpop.Transport against the bearer layer with nonces required: the first
// request learns the nonce (401 use_dpop_nonce) and is sent again, once,
// body included; later requests carry the nonce from the start.
func TestDPoPTransport(t *testing.T) {
	f := newBearerFixture(t)
	client := mustSigner(t, "")
	bound := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.Thumbprint()} })
	api := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{
		Proofs: proofVerifier(t, func(c *dpop.VerifierConfig) { c.NonceSecret = []byte(strings.Repeat("s", 32)) })}})
	var requests, bodies atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		api.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if string(b) == "order=1" {
				bodies.Add(1)
			}
			echo(w, r)
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: &dpop.Transport{Signer: client, AccessToken: func(*http.Request) (string, error) { return bound, nil }}}
	resp, err := hc.Post(srv.URL+"/orders?x=1", "application/x-www-form-urlencoded", strings.NewReader("order=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || requests.Load() != 2 || bodies.Load() != 1 {
		t.Fatalf("first request: %d after %d requests, %d bodies", resp.StatusCode, requests.Load(), bodies.Load())
	}
	resp, err = hc.Get(srv.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || requests.Load() != 3 {
		t.Fatalf("second request: %d after %d requests", resp.StatusCode, requests.Load())
	}
	// A token bound to another key is refused, and not retried.
	other := &http.Client{Transport: &dpop.Transport{Signer: mustSigner(t, ""), AccessToken: func(*http.Request) (string, error) { return bound, nil }}}
	resp, err = other.Get(srv.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || requests.Load() != 4 {
		t.Fatalf("another key: %d after %d requests", resp.StatusCode, requests.Load())
	}
}

// A step-up refusal (RFC 9470) of a DPoP request is in the DPoP challenge.
func TestDPoPStepUpChallenge(t *testing.T) {
	f := newBearerFixture(t)
	client := mustSigner(t, "")
	bound := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.Thumbprint()}; c["acr"] = "pwd" })
	api := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil)}})
	h := api.Require(bearer.AnyACR("mfa"))(echo)
	w := dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, "")}, ""}.do(h)
	ch := w.Header().Values("WWW-Authenticate")
	if w.Code != 401 || len(ch) != 2 || strings.Contains(ch[0], "error=") ||
		!strings.Contains(ch[1], `error="insufficient_user_authentication"`) || !strings.Contains(ch[1], `acr_values="mfa"`) {
		t.Fatalf("%d %q", w.Code, ch)
	}
}

// TestDPoPNestedLayers: a handler may sit inside two bearer layers (an
// outer Authenticate, an inner Require). With one proof verifier (one
// replay store), the inner layer must not refuse the request's proof as
// a replay of the outer layer's check; a layer with another verifier
// still checks the proof itself.
func TestDPoPNestedLayers(t *testing.T) {
	f := newBearerFixture(t)
	client := mustSigner(t, "")
	bound := bearerToken(f.op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.Thumbprint()} })
	proofs := proofVerifier(t, nil)
	outer := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofs}})
	inner := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofs}})
	h := outer.Authenticate(inner.Require(bearer.AnyScope("orders:read"))(echo))
	if w := (dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, "")}, ""}).do(h); w.Code != 200 {
		t.Fatalf("two layers, one verifier: %d %s", w.Code, w.Header())
	}
	replayed := mustProof(t, client, "GET", orders, bound, "")
	if w := (dpopCall{"DPoP", bound, []string{replayed}, ""}).do(h); w.Code != 200 {
		t.Fatalf("first use: %d", w.Code)
	}
	if w := (dpopCall{"DPoP", bound, []string{replayed}, ""}).do(h); w.Code != 401 {
		t.Fatalf("a replayed proof through two layers: %d, want 401", w.Code)
	}
	// Another verifier of its own (another replay store): it checks.
	own := mustNew(t, bearer.Config{Verifier: f.verifier, DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(t, nil)}})
	h2 := outer.Authenticate(own.Authenticate(echo))
	if w := (dpopCall{"DPoP", bound, []string{mustProof(t, client, "GET", orders, bound, "")}, ""}).do(h2); w.Code != 200 {
		t.Fatalf("two verifiers, each with its store: %d", w.Code)
	}
}
