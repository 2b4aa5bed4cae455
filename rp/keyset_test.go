package rp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

func TestUnknownKidFloodFetchesOncePerCooldown(t *testing.T) {
	op := oidctest.New(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newClient(t, op, func(c *setup) { c.Now = clock; c.JWKSCooldown = time.Minute })
	claims := op.IDClaims(clientID, "u", "n")
	// Warm the cache with a valid token.
	if _, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(claims, nil), "n"); err != nil {
		t.Fatal(err)
	}
	base := op.JWKSFetches.Load()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := op.Signer().Sign(claims, oidctest.Header{"kid": fmt.Sprintf("rand-%d", i)})
			_, err := c.VerifyIDToken(context.Background(), tok, "n")
			wantCode(t, err, rp.CodeUnknownKey)
		}()
	}
	wg.Wait()
	if got := op.JWKSFetches.Load() - base; got > 1 {
		t.Fatalf("%d JWKS fetches in one cooldown window, want at most 1", got)
	}
	// The next window allows exactly one more fetch, however many misses.
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	for i := range 50 {
		tok := op.Signer().Sign(claims, oidctest.Header{"kid": fmt.Sprintf("again-%d", i)})
		_, _ = c.VerifyIDToken(context.Background(), tok, "n")
	}
	if got := op.JWKSFetches.Load() - base; got > 2 {
		t.Fatalf("%d fetches over two windows, want at most 2", got)
	}
}

func TestConcurrentMissesShareOneFetch(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	tok := op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil)
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VerifyIDToken(context.Background(), tok, "n"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := op.JWKSFetches.Load(); got != 1 {
		t.Fatalf("%d fetches for a cold cache, want 1", got)
	}
}

func TestKeyRotation(t *testing.T) {
	op := oidctest.New(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newClient(t, op, func(c *setup) { c.Now = clock })
	old := op.Signer()
	if _, err := c.VerifyIDToken(context.Background(), old.Sign(op.IDClaims(clientID, "u", "n"), nil), "n"); err != nil {
		t.Fatal(err)
	}
	// The OP rotates: a new key signs, the old one is withdrawn.
	k2 := oidctest.NewKey("k2", "ES256")
	op.SetKeys(k2)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := c.VerifyIDToken(context.Background(), k2.Sign(op.IDClaims(clientID, "u", "n"), nil), "n"); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	// The withdrawn key no longer verifies once the set was refetched.
	_, err := c.VerifyIDToken(context.Background(), old.Sign(op.IDClaims(clientID, "u", "n"), nil), "n")
	wantCode(t, err, rp.CodeUnknownKey)
}

func TestCachedKeysSurviveJWKSOutage(t *testing.T) {
	op := oidctest.New(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newClient(t, op, func(c *setup) { c.Now = clock })
	tok := func() string { return op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil) }
	if _, err := c.VerifyIDToken(context.Background(), tok(), "n"); err != nil {
		t.Fatal(err)
	}
	op.JWKSDown.Store(true)
	mu.Lock()
	now = now.Add(3 * time.Hour) // past max age: a background refresh fails
	mu.Unlock()
	for range 3 {
		if _, err := c.VerifyIDToken(context.Background(), tok(), "n"); err != nil && !strings.Contains(err.Error(), "expired") {
			t.Fatalf("cached key stopped working while JWKS is down: %v", err)
		}
	}
	// An unknown kid during the outage cannot be judged: temporary, never
	// invalid (the key may be one the OP has just published), and the
	// message names the cause.
	for range 2 { // the second one within the cooldown: the same answer
		_, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), oidctest.Header{"kid": "new"}), "n")
		var ve *rp.ValidationError
		if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrInvalidToken) || errors.As(err, &ve) || !strings.Contains(err.Error(), `kid "new"`) || !strings.Contains(err.Error(), "JWKS") {
			t.Fatalf("got %v", err)
		}
	}
}

// TestJWKSOutageDuringRotation is the case of issue 12.1: the OP rotates
// its key while its JWKS is briefly unreachable. Tokens signed with the new
// key are temporary failures (keep the session, retry), and verify once the
// JWKS answers again and the cooldown has passed.
func TestJWKSOutageDuringRotation(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	c := newClient(t, op, func(c *setup) { c.Now = clk.Now; c.JWKSCooldown = time.Minute })
	tok := func() string { return op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil) }
	ks := c.Provider().KeySet()
	if _, err := ks.VerifySignature(context.Background(), tok()); err != nil {
		t.Fatal(err)
	}
	op.JWKSDown.Store(true)
	op.SetKeys(oidctest.NewKey("k2", "ES256"))
	clk.Add(2 * time.Minute)
	if _, err := ks.VerifySignature(context.Background(), tok()); !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrInvalidToken) {
		t.Fatalf("during the outage: %v", err)
	}
	op.JWKSDown.Store(false)
	if _, err := ks.VerifySignature(context.Background(), tok()); !errors.Is(err, rp.ErrTemporary) {
		t.Fatalf("within the cooldown after a failed fetch: %v, want the fetch's temporary error", err)
	}
	clk.Add(2 * time.Minute)
	if _, err := ks.VerifySignature(context.Background(), tok()); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// TestUnknownKidWithinCooldown: a kid that is not in a JWKS fetched less
// than a cooldown ago is refused without a fetch, and the error says so (a
// key the OP published in the meantime is found after the cooldown), where
// a kid missing from a JWKS fetched just now is simply unknown.
func TestUnknownKidWithinCooldown(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	c := newClient(t, op, func(c *setup) { c.Now = clk.Now; c.JWKSCooldown = time.Minute })
	ks := c.Provider().KeySet()
	sign := func(kid string) string {
		return op.Signer().Sign(map[string]any{"sub": "u"}, oidctest.Header{"kid": kid})
	}
	_, err := ks.VerifySignature(context.Background(), sign("ghost"))
	var ve *rp.ValidationError
	if !errors.As(err, &ve) || ve.Code != rp.CodeUnknownKey || !strings.Contains(ve.Detail, "fetched just now") || op.JWKSFetches.Load() != 1 {
		t.Fatalf("unknown kid after a fetch: %v (%d fetches)", err, op.JWKSFetches.Load())
	}
	k2 := oidctest.NewKey("k2", "RS256")
	op.AddKey(k2, true)
	_, err = ks.VerifySignature(context.Background(), sign("k2"))
	until := clk.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if !errors.As(err, &ve) || ve.Code != rp.CodeUnknownKey || !strings.Contains(ve.Detail, "not refetched: cooldown until "+until) || op.JWKSFetches.Load() != 1 {
		t.Fatalf("new kid within the cooldown: %v (%d fetches)", err, op.JWKSFetches.Load())
	}
	clk.Add(time.Minute)
	if _, err := ks.VerifySignature(context.Background(), sign("k2")); err != nil {
		t.Fatal(err)
	}
}

// TestKidlessKeyRotation: an OP that signs with a single key and no kid
// rotates it. A token whose signature fails with every cached key, and that
// has no kid to say the key is unknown, triggers the same rate-limited
// refetch as an unknown kid, then one retry with the fresh set. Forged
// kid-less tokens cost at most one fetch per cooldown.
func TestKidlessKeyRotation(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	c := newClient(t, op, func(c *setup) { c.Now = clk.Now; c.JWKSCooldown = time.Minute })
	ks := c.Provider().KeySet()
	k1 := oidctest.NewKey("", "RS256")
	op.SetKeys(k1)
	kidless := func(k *oidctest.Key) string { return k.Sign(map[string]any{"sub": "u"}, oidctest.Header{"kid": nil}) }
	if _, err := ks.VerifySignature(context.Background(), kidless(k1)); err != nil {
		t.Fatal(err)
	}
	k2 := oidctest.NewKey("", "RS256")
	op.SetKeys(k2)
	clk.Add(2 * time.Minute)
	if _, err := ks.VerifySignature(context.Background(), kidless(k2)); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	if n := op.JWKSFetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	forger := oidctest.NewKey("", "RS256")
	for range 20 {
		_, err := ks.VerifySignature(context.Background(), kidless(forger))
		var ve *rp.ValidationError
		if !errors.As(err, &ve) || ve.Code != rp.CodeSignature {
			t.Fatalf("forged kid-less token: %v", err)
		}
	}
	if n := op.JWKSFetches.Load(); n != 2 {
		t.Fatalf("%d fetches after forged tokens within the cooldown, want 2", n)
	}
	clk.Add(2 * time.Minute)
	_, err := ks.VerifySignature(context.Background(), kidless(forger))
	var ve *rp.ValidationError
	if !errors.As(err, &ve) || ve.Code != rp.CodeSignature || op.JWKSFetches.Load() != 3 {
		t.Fatalf("next window: %v, %d fetches", err, op.JWKSFetches.Load())
	}
	// A token with a known kid and a bad signature is a forgery: no refetch.
	op.SetKeys(oidctest.NewKey("k9", "RS256"))
	clk.Add(2 * time.Minute)
	if _, err := ks.VerifySignature(context.Background(), op.Signer().Sign(map[string]any{}, nil)); err != nil {
		t.Fatal(err)
	}
	fetches := op.JWKSFetches.Load()
	clk.Add(2 * time.Minute)
	_, err = ks.VerifySignature(context.Background(), oidctest.NewKey("k9", "RS256").Sign(map[string]any{}, nil))
	if !errors.As(err, &ve) || ve.Code != rp.CodeSignature || op.JWKSFetches.Load() != fetches {
		t.Fatalf("known kid, bad signature: %v, %d fetches (was %d)", err, op.JWKSFetches.Load(), fetches)
	}
}

// TestJWKKeyOps (RFC 7517 §4.3): a key whose key_ops does not include
// "verify" is not used to verify signatures, as a key whose use is not
// "sig" is not.
func TestJWKKeyOps(t *testing.T) {
	op := oidctest.New(t)
	for _, c := range []struct {
		ops  any
		want bool
	}{
		{[]string{"verify"}, true},
		{[]string{"sign", "verify"}, true},
		{nil, true},
		{[]string{"encrypt"}, false},
		{[]string{"sign"}, false},
		{[]string{"wrapKey"}, false},
	} {
		jwk := op.Signer().JWK()
		delete(jwk, "use")
		if c.ops != nil {
			jwk["key_ops"] = c.ops
		}
		body, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
		url := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		_, err := keySetAt(t, url).VerifySignature(context.Background(), op.Signer().Sign(map[string]any{}, nil))
		if (err == nil) != c.want {
			t.Errorf("key_ops %v: %v", c.ops, err)
		}
	}
}

func TestJWKSSizeCap(t *testing.T) {
	op := oidctest.New(t)
	big := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[`+strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 60000)+`{"kty":"oct","k":"AAAA"}]}`)
	}))
	ks := keySetAt(t, big+"/keys")
	_, err := ks.VerifySignature(context.Background(), op.Signer().Sign(map[string]any{}, nil))
	if err == nil || !errors.Is(err, rp.ErrTemporary) || !strings.Contains(err.Error(), "size cap") {
		t.Fatalf("want size-cap error, got %v", err)
	}
}

func TestJWKSOnlyAsymmetricSignatureKeys(t *testing.T) {
	op := oidctest.New(t)
	jwks := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"},{"kty":"RSA","kid":"k1","use":"enc","n":"AQAB","e":"AQAB"}]}`)
	}))
	ks := keySetAt(t, jwks)
	_, err := ks.VerifySignature(context.Background(), op.Signer().Sign(map[string]any{}, nil))
	if err == nil || !strings.Contains(err.Error(), "no usable signature key") {
		t.Fatalf("got %v", err)
	}
}

// keySetAt is the key set of an OP whose jwks_uri is jwksURL.
func keySetAt(t *testing.T, jwksURL string) *rp.KeySet {
	t.Helper()
	op := oidctest.New(t)
	op.SetMeta("jwks_uri", jwksURL)
	return discover(t, op.Issuer, nil).KeySet()
}

// TestSharedKeySet: the apps of one Provider share its key set (one JWKS
// fetch for both); another OP's Provider has its own.
func TestSharedKeySet(t *testing.T) {
	op := oidctest.New(t)
	p := discover(t, op.Issuer, nil)
	a, err := p.Client(rp.Config{ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Client(rp.Config{ClientID: "webc_b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Provider().KeySet() != b.Provider().KeySet() {
		t.Fatal("key set not shared")
	}
	_, _ = a.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil), "n")
	_, err = b.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims("webc_b", "u", "n"), nil), "n")
	if err != nil || op.JWKSFetches.Load() != 1 {
		t.Fatalf("err=%v fetches=%d", err, op.JWKSFetches.Load())
	}
	other := oidctest.New(t)
	if discover(t, other.Issuer, nil).KeySet() == p.KeySet() {
		t.Fatal("another OP shares this one's key set")
	}
}
