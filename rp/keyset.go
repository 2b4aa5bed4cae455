package rp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/sync/singleflight"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/jws"
)

// Key-set defaults.
const (
	// jwksCooldown is the least time between two JWKS fetches caused by
	// unknown key ids when ProviderOptions.JWKSCooldown is zero.
	jwksCooldown = 30 * time.Second
	// jwksMaxAge is how long a fetched key set is used before it is
	// refreshed in the background (keys the OP withdrew stop verifying).
	jwksMaxAge = time.Hour
	// maxKeys bounds the keys kept from one JWKS document.
	maxKeys = 100
)

// KeySet is the JSON Web Key Set of one OP, fetched from its jwks_uri and
// shared by everything built from its Provider (ID, logout and access
// tokens). It is safe for concurrent use.
//
// An unknown kid triggers a refetch at most once per cooldown window, and so
// does a token without kid whose signature fails with every cached key (an
// OP that rotates a single kid-less key), which is then retried once with
// the fresh set. Concurrent misses share one fetch; fetches are bounded in
// time and size; when the OP's JWKS cannot be fetched, the keys already
// known keep working, and a token whose key is not cached fails with
// ErrTemporary (not ErrInvalidToken: the key may be new). A kid missing
// from a set fetched within the cooldown is refused as CodeUnknownKey with
// "not refetched: cooldown until T". Only keys whose use is "sig" and whose
// key_ops allow "verify" (when present) are used.
//
// KeySet implements go-oidc's oidc.KeySet, so it can also feed an
// oidc.IDTokenVerifier.
type KeySet struct {
	url      string
	client   *http.Client
	cooldown time.Duration
	maxAge   time.Duration
	now      func() time.Time
	obs      event.Observer // ProviderOptions.Observer

	keys    atomic.Pointer[keyTable]
	group   singleflight.Group
	mu      sync.Mutex // guards lastTry and lastErr
	lastTry time.Time
	lastErr error // the last fetch's failure, nil after a success
	fetches atomic.Int64
	// headers caches the protected headers of this issuer's access tokens
	// (an OP uses a handful).
	headers jws.HeaderCache
}

type keyTable struct {
	byKid   map[string][]publicKey
	all     []publicKey
	fetched time.Time
}

type publicKey struct {
	kid string
	alg string // the JWK's "alg", or "" when it does not say
	pub crypto.PublicKey
}

// newKeySet returns the key set published at jwksURL, fetched with hc
// (already hardened by httpClient). Nothing is fetched until a key is
// needed. cooldown zero: jwksCooldown.
func newKeySet(jwksURL string, hc *http.Client, cooldown time.Duration, now func() time.Time) *KeySet {
	ks := &KeySet{url: jwksURL, client: hc, cooldown: cooldown, maxAge: jwksMaxAge, now: now}
	if ks.cooldown <= 0 {
		ks.cooldown = jwksCooldown
	}
	ks.keys.Store(&keyTable{})
	return ks
}

// errUnknownKey: the kid is not in a JWKS fetched just now.
var errUnknownKey = errors.New("no key in the OP's JWKS fits the token's kid and alg")

// cooldownError: the JWKS was fetched less than a cooldown ago, so it was
// not fetched again.
type cooldownError struct{ until time.Time }

func (e *cooldownError) Error() string {
	return "not refetched: cooldown until " + e.until.UTC().Format(time.RFC3339)
}

// candidates returns the keys that may have signed a token with kid and
// alg, fetching the JWKS when none is known and the cooldown allows. Its
// errors: errUnknownKey, *cooldownError, or the fetch's failure (temporary).
func (ks *KeySet) candidates(ctx context.Context, kid, alg string) ([]publicKey, error) {
	t := ks.keys.Load()
	if found := t.match(kid, alg); len(found) > 0 {
		if !t.fetched.IsZero() && ks.now().Sub(t.fetched) > ks.maxAge {
			go ks.refresh(context.WithoutCancel(ctx)) // stale: refresh, keep serving
		}
		return found, nil
	}
	err := ks.refresh(ctx)
	if found := ks.keys.Load().match(kid, alg); len(found) > 0 {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, errUnknownKey
}

func (t *keyTable) match(kid, alg string) []publicKey {
	src := t.all
	if kid != "" {
		src = t.byKid[kid]
	}
	if len(src) == 1 { // the usual case: one key per kid, no allocation
		if k := src[0]; (k.alg == "" || k.alg == alg) && jws.Fits(alg, k.pub) {
			return src
		}
		return nil
	}
	var out []publicKey
	for _, k := range src {
		if (k.alg == "" || k.alg == alg) && jws.Fits(alg, k.pub) {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the JWKS unless one was tried within the cooldown.
// Concurrent callers share one fetch: a caller that arrives while a fetch is
// in flight waits for it. It returns nil after a successful fetch, the
// fetch's error, or, within the cooldown, the last fetch's error when it
// failed (the OP's JWKS is still taken as unreachable) and a
// *cooldownError when it succeeded.
func (ks *KeySet) refresh(ctx context.Context) error {
	ch := ks.group.DoChan("jwks", func() (any, error) {
		ks.mu.Lock()
		if !ks.lastTry.IsZero() && ks.now().Sub(ks.lastTry) < ks.cooldown {
			until, lastErr := ks.lastTry.Add(ks.cooldown), ks.lastErr
			ks.mu.Unlock()
			if lastErr != nil {
				return nil, lastErr
			}
			event.Emit(ctx, ks.obs, event.Event{Name: event.JWKSCooldown, Level: slog.LevelDebug, Attrs: []slog.Attr{slog.String("jwks_uri", ks.url)}})
			return nil, &cooldownError{until: until}
		}
		ks.lastTry = ks.now()
		ks.mu.Unlock()
		// Shared by every waiter: not cancelled with the first caller's
		// request, bounded by the client's timeout instead.
		start := time.Now()
		t, err := ks.fetch(context.WithoutCancel(ctx))
		ks.fetched(ctx, time.Since(start), err)
		ks.mu.Lock()
		ks.lastErr = err
		ks.mu.Unlock()
		if err != nil {
			return nil, err
		}
		ks.keys.Store(t)
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ks *KeySet) fetch(ctx context.Context) (*keyTable, error) {
	ks.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS request: %v", ErrConfig, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, temporary(fmt.Errorf("fetching JWKS: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, temporary(fmt.Errorf("reading JWKS: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, temporary(fmt.Errorf("JWKS endpoint answered HTTP %d", resp.StatusCode))
	}
	return parseJWKS(body, ks.now())
}

// parseJWKS keeps the usable signature keys of a JWKS document and skips the
// others (symmetric keys, encryption keys, unknown key types, weak RSA).
func parseJWKS(body []byte, now time.Time) (*keyTable, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, temporary(fmt.Errorf("JWKS is not a JSON key set: %w", err))
	}
	t := &keyTable{byKid: make(map[string][]publicKey), fetched: now}
	for _, raw := range doc.Keys {
		if len(t.all) == maxKeys {
			break
		}
		k, err := jwk.ParseKey(raw)
		if err != nil {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != "sig" {
			continue
		}
		// RFC 7517 §4.3: key_ops, when present, must allow "verify".
		if ops := k.KeyOps(); ops != nil && !slices.Contains(ops, jwk.KeyOpVerify) {
			continue
		}
		var pub any
		if err := k.Raw(&pub); err != nil {
			continue
		}
		switch p := pub.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		case *rsa.PrivateKey:
			pub = &p.PublicKey
		case *ecdsa.PrivateKey:
			pub = &p.PublicKey
		case ed25519.PrivateKey:
			pub = p.Public()
		default: // symmetric ("oct") and anything else: never a verification key
			continue
		}
		alg := ""
		if a := k.Algorithm(); a != nil {
			alg = a.String()
		}
		pk := publicKey{kid: k.KeyID(), alg: alg, pub: pub}
		t.all = append(t.all, pk)
		t.byKid[pk.kid] = append(t.byKid[pk.kid], pk)
	}
	if len(t.all) == 0 {
		return nil, temporary(errors.New("JWKS holds no usable signature key"))
	}
	return t, nil
}

// verify checks the signature of a compact JWS against this set, with alg
// restricted to allowed. It returns the parsed token.
func (ks *KeySet) verify(ctx context.Context, what, raw string, allowed []string) (*jws.Token, error) {
	tok, err := parseJWS(what, raw)
	if err != nil {
		return nil, err
	}
	if err := ks.verifyToken(ctx, what, tok, allowed); err != nil {
		return nil, err
	}
	return tok, nil
}

// parseJWS parses a compact JWS, mapping jws errors to ValidationErrors.
func parseJWS(what, raw string) (*jws.Token, error) {
	tok := new(jws.Token)
	if err := parseJWSTo(what, raw, tok, nil); err != nil {
		return nil, err
	}
	return tok, nil
}

// parseJWSTo is parseJWS into *tok, with the header looked up in headers
// (nil: none).
func parseJWSTo(what, raw string, tok *jws.Token, headers *jws.HeaderCache) error {
	err := headers.ParseTo(tok, raw)
	switch {
	case errors.Is(err, jws.ErrAlgorithm):
		return &ValidationError{What: what, Code: CodeAlgorithm, Detail: "alg is none, HMAC or unknown", Err: err}
	case err != nil:
		return &ValidationError{What: what, Code: CodeMalformed, Err: err}
	}
	return nil
}

// verifyToken checks the signature of a parsed token against this set,
// with alg restricted to allowed.
func (ks *KeySet) verifyToken(ctx context.Context, what string, tok *jws.Token, allowed []string) error {
	if !contains(allowed, tok.Header.Alg) {
		return invalid(what, CodeAlgorithm, "alg %q is not in the allow-list %v", tok.Header.Alg, allowed)
	}
	kid, alg := tok.Header.Kid, tok.Header.Alg
	keys, err := ks.candidates(ctx, kid, alg)
	if err != nil {
		return keyError(what, kid, err)
	}
	if verifiesWithAny(tok, keys) {
		return nil
	}
	sigErr := &ValidationError{What: what, Code: CodeSignature, Err: jws.ErrSignature}
	if kid != "" {
		return sigErr // the key the token names does not verify it: forged or corrupt
	}
	// Without a kid, a signature that fails with every cached key may come
	// from a key the OP has rotated in: refetch as for an unknown kid (same
	// cooldown), then retry once with the fresh set.
	switch err := ks.refresh(ctx); {
	case err == nil:
		if verifiesWithAny(tok, ks.keys.Load().match("", alg)) {
			return nil
		}
		sigErr.Detail = "no key of the OP's JWKS, fetched just now, verifies this token without kid"
	case isCooldown(err):
		sigErr.Detail = "no cached key verifies this token without kid; JWKS " + err.Error()
	default:
		return keyError(what, kid, err)
	}
	return sigErr
}

func verifiesWithAny(tok *jws.Token, keys []publicKey) bool {
	for _, k := range keys {
		if jws.Verify(tok.Header.Alg, k.pub, tok.SigningInput, tok.Signature) == nil {
			return true
		}
	}
	return false
}

func isCooldown(err error) bool {
	var ce *cooldownError
	return errors.As(err, &ce)
}

// keyError sorts a failure to find the token's key: the key is unknown
// (invalid), or the OP's JWKS could not be fetched (temporary: the key may
// be one the OP has just published, so nothing can be said about the token).
func keyError(what, kid string, err error) error {
	switch {
	case errors.Is(err, errUnknownKey):
		return invalid(what, CodeUnknownKey, "kid %q is not in the OP's JWKS, fetched just now", kid)
	case isCooldown(err):
		return invalid(what, CodeUnknownKey, "kid %q is not in the OP's JWKS, %v (a key the OP has just published is found after that)", kid, err)
	case errors.Is(err, ErrTemporary):
		return fmt.Errorf("rp: the %s's key (kid %q) is not cached and the OP's JWKS could not be fetched: %w", what, kid, err)
	}
	return temporary(fmt.Errorf("the %s's key (kid %q) is not cached and the OP's JWKS could not be fetched: %w", what, kid, err))
}

// VerifySignature implements go-oidc's oidc.KeySet: it verifies jwt with
// this set's keys (any algorithm jws supports) and returns the payload.
func (ks *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	tok, err := ks.verify(ctx, "jwt", jwt, jws.Algorithms())
	if err != nil {
		return nil, err
	}
	return tok.Payload()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
