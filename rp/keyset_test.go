package rp_test

import (
	"context"
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
	c := newClient(t, op, func(c *rp.Config) { c.Now = clock; c.JWKSCooldown = time.Minute })
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
	c := newClient(t, op, func(c *rp.Config) { c.Now = clock })
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
	c := newClient(t, op, func(c *rp.Config) { c.Now = clock })
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
	// An unknown kid during the outage is refused, with the cause.
	_, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), oidctest.Header{"kid": "new"}), "n")
	var ve *rp.ValidationError
	if !errors.As(err, &ve) || ve.Code != rp.CodeUnknownKey {
		t.Fatalf("got %v", err)
	}
}

func TestJWKSSizeCap(t *testing.T) {
	op := oidctest.New(t)
	big := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[`+strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 60000)+`{"kty":"oct","k":"AAAA"}]}`)
	}))
	ks := rp.NewKeySet(big+"/keys", rp.KeySetOptions{})
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
	ks := rp.NewKeySet(jwks, rp.KeySetOptions{})
	_, err := ks.VerifySignature(context.Background(), op.Signer().Sign(map[string]any{}, nil))
	if err == nil || !strings.Contains(err.Error(), "no usable signature key") {
		t.Fatalf("got %v", err)
	}
}

func TestSharedKeySet(t *testing.T) {
	op := oidctest.New(t)
	a := newClient(t, op, nil)
	b := newClient(t, op, func(c *rp.Config) { c.ClientID = "webc_b"; c.KeySet = a.KeySet() })
	if a.KeySet() != b.KeySet() {
		t.Fatal("key set not shared")
	}
	_, _ = a.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil), "n")
	_, err := b.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims("webc_b", "u", "n"), nil), "n")
	if err != nil || op.JWKSFetches.Load() != 1 {
		t.Fatalf("err=%v fetches=%d", err, op.JWKSFetches.Load())
	}
	other := oidctest.New(t)
	_, err = rp.New(context.Background(), rp.Config{Issuer: other.Issuer, ClientID: "x", KeySet: a.KeySet()})
	if !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("a key set of another issuer was accepted: %v", err)
	}
}
