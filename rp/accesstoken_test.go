package rp_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

const apiAud = "https://api.example.test"

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_767_225_600, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// atClaims are valid Scalekit-style access token claims for op at now.
func atClaims(op *oidctest.OP, now time.Time) map[string]any {
	t := now.Unix()
	return map[string]any{
		"iss": op.Issuer, "aud": []string{apiAud, "skc_other"}, "sub": "usr_1", "client_id": "skc_1",
		"sid": "ses_1", "oid": "org_1", "iat": t, "nbf": t, "exp": t + 300, "jti": "tkn_1",
		"scope": "orders:read orders:write", "roles": []string{"admin"},
		"permissions": []string{"orders:read", "invoices:read"}, "xuid": "ext_user_1",
		"tenant": map[string]any{"region": "eu"},
	}
}

var atHeader = oidctest.Header{"typ": "at+jwt"}

func newVerifier(t testing.TB, op *oidctest.OP, clk *clock, mutate func(*apiSetup)) *rp.AccessTokenVerifier {
	t.Helper()
	s := apiSetup{Issuer: op.Issuer, ProviderOptions: rp.ProviderOptions{Now: clk.Now}, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}}
	if mutate != nil {
		mutate(&s)
	}
	v, err := s.verifier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAccessTokenClaimRules(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	es := oidctest.NewKey("es", "ES256")
	op.AddKey(es, false)
	loose := newVerifier(t, op, clk, func(c *apiSetup) { c.CacheSize = -1; c.SigningAlgs = []string{"RS256"} })
	strict := newVerifier(t, op, clk, func(c *apiSetup) { c.StrictRFC9068 = true; c.CacheSize = -1 })
	required := newVerifier(t, op, clk, func(c *apiSetup) {
		c.RequiredClaims = []string{"sid", "oid", "xuid", "tenant"}
		c.CacheSize = -1
	})
	anyAlg := newVerifier(t, op, clk, func(c *apiSetup) {
		c.SigningAlgs = []string{"RS256", "ES256"}
		c.CacheSize = -1
	})
	signer := op.Signer()
	sign := func(mutate func(map[string]any), h oidctest.Header) string {
		c := atClaims(op, clk.Now())
		if mutate != nil {
			mutate(c)
		}
		hh := maps.Clone(atHeader)
		maps.Copy(hh, h)
		return signer.Sign(c, hh)
	}
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	del := func(k string) func(map[string]any) { return func(c map[string]any) { delete(c, k) } }
	skew := int64(rp.DefaultClockSkew / time.Second)
	now := clk.Now().Unix()
	good := sign(nil, nil)

	cases := []struct {
		name string
		v    *rp.AccessTokenVerifier
		raw  string
		want rp.Code
	}{
		{"valid", loose, good, ""},
		{"valid strict", strict, good, ""},
		{"aud as a string", loose, sign(set("aud", apiAud), nil), ""},
		{"aud array with another API first", loose, sign(set("aud", []string{"https://other", apiAud}), nil), ""},
		{"aud of another API", loose, sign(set("aud", "https://other"), nil), rp.CodeAudience},
		{"aud missing", loose, sign(del("aud"), nil), rp.CodeAudience},
		{"aud empty array", loose, sign(set("aud", []string{}), nil), rp.CodeAudience},
		{"iss of another OP", loose, sign(set("iss", "https://evil.example"), nil), rp.CodeIssuer},
		{"iss with a trailing slash", loose, sign(set("iss", op.Issuer+"/"), nil), rp.CodeIssuer},
		{"iss missing", loose, sign(del("iss"), nil), rp.CodeIssuer},
		{"exp missing", loose, sign(del("exp"), nil), rp.CodeExpired},
		{"expired beyond skew", loose, sign(set("exp", now-skew-1), nil), rp.CodeExpired},
		{"expired within skew", loose, sign(set("exp", now-skew+5), nil), ""},
		{"exp fractional", loose, sign(set("exp", float64(now)+300.5), nil), ""},
		{"exp not a number", loose, sign(set("exp", "tomorrow"), nil), rp.CodeMalformed},
		{"exp 0 (1970: expired, not absent)", loose, sign(set("exp", 0), nil), rp.CodeExpired},
		{"nbf beyond skew", loose, sign(set("nbf", now+skew+5), nil), rp.CodeNotYetValid},
		{"nbf within skew", loose, sign(set("nbf", now+skew-5), nil), ""},
		{"iat in the future", loose, sign(set("iat", now+skew+5), nil), rp.CodeIssuedAt},
		{"iat missing (loose)", loose, sign(del("iat"), nil), ""},
		{"iat missing (strict)", strict, sign(del("iat"), nil), rp.CodeIssuedAt},
		{"jti missing (strict)", strict, sign(del("jti"), nil), rp.CodeTokenID},
		{"sub missing (strict)", strict, sign(del("sub"), nil), rp.CodeSubject},
		{"client_id missing (strict)", strict, sign(del("client_id"), nil), rp.CodeMalformed},
		{"required claims present", required, good, ""},
		{"required sid missing", required, sign(del("sid"), nil), rp.CodeSessionID},
		{"required oid empty", required, sign(set("oid", ""), nil), rp.CodeMalformed},
		{"required custom claim missing", required, sign(del("xuid"), nil), rp.CodeMalformed},
		{"required custom claim null", required, sign(set("xuid", nil), nil), rp.CodeMalformed},
		{"required custom object empty", required, sign(set("tenant", map[string]any{}), nil), rp.CodeMalformed},
		{"sender-constrained (cnf)", loose, sign(set("cnf", map[string]any{"jkt": "abc"}), nil), rp.CodeType},
		{"roles not an array", loose, sign(set("roles", 7), nil), rp.CodeMalformed},
		{"typ at+jwt", strict, sign(nil, oidctest.Header{"typ": "at+jwt"}), ""},
		{"typ application/at+jwt", strict, sign(nil, oidctest.Header{"typ": "application/at+jwt"}), ""},
		{"typ AT+JWT", strict, sign(nil, oidctest.Header{"typ": "AT+JWT"}), ""},
		{"typ JWT (strict)", strict, sign(nil, oidctest.Header{"typ": "JWT"}), rp.CodeType},
		{"typ absent (strict)", strict, sign(nil, oidctest.Header{"typ": nil}), rp.CodeType},
		{"typ JWT (loose)", loose, sign(nil, oidctest.Header{"typ": "JWT"}), ""},
		{"typ absent (loose)", loose, sign(nil, oidctest.Header{"typ": nil}), ""},
		{"typ logout+jwt (loose)", loose, sign(nil, oidctest.Header{"typ": "logout+jwt"}), rp.CodeType},
		{"typ logout+jwt (strict)", strict, sign(nil, oidctest.Header{"typ": "logout+jwt"}), rp.CodeType},
		{"typ dpop+jwt (loose)", loose, sign(nil, oidctest.Header{"typ": "dpop+jwt"}), rp.CodeType},
		{"ID token (loose: nonce)", loose, signer.Sign(op.IDClaims("webc_app", "usr_1", "n"), nil), rp.CodeType},
		{"ID token for the API's aud (strict: typ)", strict, signer.Sign(op.IDClaims(apiAud, "usr_1", "n"), nil), rp.CodeType},
		{"alg none", loose, oidctest.Unsigned(atClaims(op, clk.Now())), rp.CodeAlgorithm},
		{"HS256 keyed with the public key", loose, signer.SignHMACWithPublicKey(atClaims(op, clk.Now())), rp.CodeAlgorithm},
		{"ES256 not in the allow-list", loose, es.Sign(atClaims(op, clk.Now()), atHeader), rp.CodeAlgorithm},
		{"ES256 allowed", anyAlg, es.Sign(atClaims(op, clk.Now()), atHeader), ""},
		{"kid of the ES key on an RS256 token", anyAlg, sign(nil, oidctest.Header{"kid": "es"}), rp.CodeUnknownKey},
		{"unknown kid", loose, sign(nil, oidctest.Header{"kid": "nope"}), rp.CodeUnknownKey},
		{"signature of another token", loose, part(good, 0) + "." + part(good, 1) + "." + part(sign(set("sub", "x"), nil), 2), rp.CodeSignature},
		{"payload swapped", loose, part(good, 0) + "." + part(sign(set("sub", "admin"), nil), 1) + "." + part(good, 2), rp.CodeSignature},
		{"crit header", loose, sign(nil, oidctest.Header{"crit": []string{"exp"}}), rp.CodeMalformed},
		{"opaque without introspection", loose, "2YotnFZFEjr1zCsicMWpAA", rp.CodeMalformed},
		{"empty", loose, "", rp.CodeMalformed},
		{"two parts", loose, "a.b", rp.CodeMalformed},
		{"payload not JSON", loose, "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", rp.CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := c.v.Verify(context.Background(), c.raw)
			wantCode(t, err, c.want)
			if err != nil {
				if !errors.Is(err, rp.ErrInvalidToken) {
					t.Fatalf("%v is not ErrInvalidToken", err)
				}
				if strings.Contains(err.Error(), c.raw) && c.raw != "" {
					t.Fatalf("the error echoes the token")
				}
			} else if cl == nil {
				t.Fatal("no claims")
			}
		})
	}
}

func part(raw string, i int) string { return strings.Split(raw, ".")[i] }

func TestAccessTokenClaimsAreTyped(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	v := newVerifier(t, op, clk, nil)
	cl, err := v.Verify(context.Background(), op.Signer().Sign(atClaims(op, clk.Now()), atHeader))
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "usr_1" || cl.SessionID != "ses_1" || cl.OrganizationID != "org_1" || cl.ClientID != "skc_1" || cl.TokenID != "tkn_1" {
		t.Fatalf("claims %+v", cl)
	}
	if !slices.Contains(cl.Scopes, "orders:write") || slices.Contains(cl.Scopes, "orders") || !slices.Contains(cl.Roles, "admin") || !slices.Contains(cl.Permissions, "invoices:read") {
		t.Fatalf("scopes %v roles %v permissions %v", cl.Scopes, cl.Roles, cl.Permissions)
	}
	var custom struct {
		XUID   string `json:"xuid"`
		Tenant struct {
			Region string `json:"region"`
		} `json:"tenant"`
	}
	if err := cl.Decode(&custom); err != nil || custom.XUID != "ext_user_1" || custom.Tenant.Region != "eu" {
		t.Fatalf("custom claims %+v %v", custom, err)
	}
	// A "scopes" array works as well as the "scope" string.
	c := atClaims(op, clk.Now())
	delete(c, "scope")
	c["scopes"] = []string{"a", "b"}
	cl, err = v.Verify(context.Background(), op.Signer().Sign(c, atHeader))
	if err != nil || !slices.Contains(cl.Scopes, "b") {
		t.Fatalf("scopes array: %v %v", cl, err)
	}
}

func TestAccessTokenConfigErrors(t *testing.T) {
	op := oidctest.New(t)
	ctx := context.Background()
	for name, s := range map[string]apiSetup{
		"no issuer":           {AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}},
		"no audience":         {Issuer: op.Issuer},
		"empty audience":      {Issuer: op.Issuer, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{""}}},
		"HMAC allowed":        {Issuer: op.Issuer, ProviderOptions: rp.ProviderOptions{SigningAlgs: []string{"HS256"}}, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}},
		"skew":                {Issuer: op.Issuer, ProviderOptions: rp.ProviderOptions{ClockSkew: time.Hour}, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}},
		"issuer mismatch":     {Issuer: op.Issuer + "/", AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}},
		"http outside local":  {Issuer: "http://op.example.com", AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}}},
		"no introspection":    {Issuer: op.Issuer, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}, Introspection: &rp.IntrospectionConfig{ClientID: "api", ClientSecret: "s"}}},
		"empty required name": {Issuer: op.Issuer, AccessTokenConfig: rp.AccessTokenConfig{Audiences: []string{apiAud}, RequiredClaims: []string{""}}},
	} {
		if _, err := s.verifier(ctx); !errors.Is(err, rp.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestAccessTokenVerifierSharesTheProvidersKeys: an app's Client and an
// API's verifier of one Provider fetch the OP's JWKS once between them.
func TestAccessTokenVerifierSharesTheProvidersKeys(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	v, err := c.Provider().AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{apiAud}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, "u", "n"), nil), "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), op.Signer().Sign(atClaims(op, time.Now()), atHeader)); err != nil {
		t.Fatal(err)
	}
	if n := op.JWKSFetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches for an ID token and an access token of one issuer, want 1 (shared key set)", n)
	}
}

func TestAccessTokenCache(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	v := newVerifier(t, op, clk, nil)
	ctx := context.Background()
	raw := op.Signer().Sign(atClaims(op, clk.Now()), atHeader)
	first, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Verify(ctx, raw)
	if err != nil || again != first {
		t.Fatalf("second Verify: %p %p %v (want the cached claims)", first, again, err)
	}
	// The cache never outlives exp: at exp the entry is dead and the full
	// validation runs again (and accepts within the skew, uncached).
	clk.Add(300 * time.Second)
	third, err := v.Verify(ctx, raw)
	if err != nil || third == first {
		t.Fatalf("at exp: %p %v, want a fresh validation", third, err)
	}
	clk.Add(rp.DefaultClockSkew)
	_, err = v.Verify(ctx, raw)
	wantCode(t, err, rp.CodeExpired)
}

// revocations is a RevocationChecker with a switchable outage.
type revocations struct {
	mu      sync.Mutex
	revoked map[string]bool
	down    bool
	calls   atomic.Int64
}

func (r *revocations) SIDRevoked(_ context.Context, issuer, sid string) (bool, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return false, errors.New("store: connection refused")
	}
	return r.revoked[issuer+" "+sid], nil
}

func (r *revocations) revoke(issuer, sid string) {
	r.mu.Lock()
	r.revoked[issuer+" "+sid] = true
	r.mu.Unlock()
}

func TestAccessTokenRevokedSID(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	ctx := context.Background()
	store := &revocations{revoked: map[string]bool{}}
	v := newVerifier(t, op, clk, func(c *apiSetup) { c.Revocations = store })
	raw := op.Signer().Sign(atClaims(op, clk.Now()), atHeader)
	other := atClaims(op, clk.Now())
	other["sid"] = "ses_2"
	rawOther := op.Signer().Sign(other, atHeader)
	noSID := atClaims(op, clk.Now())
	delete(noSID, "sid")
	rawNoSID := op.Signer().Sign(noSID, atHeader)

	for _, r := range []string{raw, raw, rawOther, rawNoSID} {
		if _, err := v.Verify(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.calls.Load(); n != 3 {
		t.Fatalf("%d revocation checks, want 3 (every request with a sid, cached or not)", n)
	}

	t.Run("revoked before exp, cached token evicted", func(t *testing.T) {
		store.revoke(op.Issuer, "ses_1")
		for range 2 {
			_, err := v.Verify(ctx, raw)
			wantCode(t, err, rp.CodeRevokedSID)
		}
		if _, err := v.Verify(ctx, rawOther); err != nil {
			t.Fatalf("another session's token: %v", err)
		}
	})
	t.Run("another issuer's revocation does not apply", func(t *testing.T) {
		store.revoke("https://other-op.example", "ses_2")
		if _, err := v.Verify(ctx, rawOther); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("store down: fail closed", func(t *testing.T) {
		store.mu.Lock()
		store.down = true
		store.mu.Unlock()
		defer func() { store.mu.Lock(); store.down = false; store.mu.Unlock() }()
		_, err := v.Verify(ctx, rawOther)
		if !errors.Is(err, rp.ErrRevocationUnavailable) || errors.Is(err, rp.ErrInvalidToken) {
			t.Fatalf("store down: %v, want ErrRevocationUnavailable and not ErrInvalidToken", err)
		}
		if _, err := v.Verify(ctx, rawNoSID); err != nil {
			t.Fatalf("a token without sid needs no check: %v", err)
		}
		open := newVerifier(t, op, clk, func(c *apiSetup) {
			c.Revocations = store
			c.InsecureIgnoreRevocationErrors = true
		})
		if _, err := open.Verify(ctx, rawOther); err != nil {
			t.Fatalf("fail open: %v", err)
		}
	})
	t.Run("sid required", func(t *testing.T) {
		req := newVerifier(t, op, clk, func(c *apiSetup) {
			c.Revocations = store
			c.RequiredClaims = []string{"sid"}
		})
		_, err := req.Verify(ctx, rawNoSID)
		wantCode(t, err, rp.CodeSessionID)
	})
}

func TestMultiIssuerKeysAreNotInterchangeable(t *testing.T) {
	eu, us := oidctest.New(t), oidctest.New(t)
	// Both OPs publish a key with the same kid ("k1"): only the token's
	// own issuer's key set may be used.
	clk := newClock()
	veu := newVerifier(t, eu, clk, nil)
	vus := newVerifier(t, us, clk, nil)
	m, err := rp.NewMultiIssuerVerifier(veu, vus)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	euTok := eu.Signer().Sign(atClaims(eu, clk.Now()), atHeader)
	usTok := us.Signer().Sign(atClaims(us, clk.Now()), atHeader)
	for _, raw := range []string{euTok, usTok, euTok} {
		if _, err := m.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	cl, _ := m.Verify(ctx, usTok)
	if cl.Issuer != us.Issuer {
		t.Fatalf("iss %q", cl.Issuer)
	}
	cases := []struct {
		name string
		raw  string
		want rp.Code
	}{
		{"claims eu, signed by us", us.Signer().Sign(atClaims(eu, clk.Now()), atHeader), rp.CodeSignature},
		{"claims us, signed by eu", eu.Signer().Sign(atClaims(us, clk.Now()), atHeader), rp.CodeSignature},
		{"claims eu, us key under a new kid", us.Signer().Sign(atClaims(eu, clk.Now()), oidctest.Header{"typ": "at+jwt", "kid": "us-only"}), rp.CodeUnknownKey},
		{"untrusted issuer", eu.Signer().Sign(map[string]any{"iss": "https://evil.example", "aud": apiAud, "exp": clk.Now().Unix() + 60}, atHeader), rp.CodeIssuer},
		{"opaque", "opaque-token", rp.CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Verify(ctx, c.raw)
			wantCode(t, err, c.want)
		})
	}
	if _, err := rp.NewMultiIssuerVerifier(veu, veu); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("duplicate issuer: %v", err)
	}
	if _, err := rp.NewMultiIssuerVerifier(); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("no verifier: %v", err)
	}
}

func TestAccessTokenRandomKidFloodFetchesOncePerCooldown(t *testing.T) {
	op := oidctest.New(t)
	clk := newClock()
	v := newVerifier(t, op, clk, func(c *apiSetup) { c.JWKSCooldown = time.Minute })
	ctx := context.Background()
	if _, err := v.Verify(ctx, op.Signer().Sign(atClaims(op, clk.Now()), atHeader)); err != nil {
		t.Fatal(err)
	}
	base := op.JWKSFetches.Load()
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(ctx, op.Signer().Sign(atClaims(op, clk.Now()), oidctest.Header{"typ": "at+jwt", "kid": fmt.Sprintf("rand-%d", i)}))
			if !errors.Is(err, rp.ErrInvalidToken) {
				t.Errorf("random kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := op.JWKSFetches.Load() - base; got > 1 {
		t.Fatalf("%d JWKS fetches in one cooldown window, want at most 1", got)
	}
	clk.Add(2 * time.Minute)
	for i := range 100 {
		_, _ = v.Verify(ctx, op.Signer().Sign(atClaims(op, clk.Now()), oidctest.Header{"typ": "at+jwt", "kid": fmt.Sprintf("again-%d", i)}))
	}
	if got := op.JWKSFetches.Load() - base; got > 2 {
		t.Fatalf("%d fetches over two windows, want at most 2", got)
	}
}

// FuzzVerifyAccessToken: arbitrary tokens are refused with a typed error;
// never a panic, never an accept.
func FuzzVerifyAccessToken(f *testing.F) {
	op := oidctest.New(f)
	clk := newClock()
	v := newVerifier(f, op, clk, func(c *apiSetup) { c.StrictRFC9068 = true })
	good := op.Signer().Sign(atClaims(op, clk.Now()), atHeader)
	if _, err := v.Verify(context.Background(), good); err != nil {
		f.Fatal(err)
	}
	f.Add(good[:len(good)-2] + "AA")
	f.Add(good[:len(good)-1])
	f.Add(oidctest.Unsigned(atClaims(op, clk.Now())))
	f.Add(op.Signer().SignHMACWithPublicKey(atClaims(op, clk.Now())))
	f.Add("opaque")
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == good {
			return
		}
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, rp.ErrInvalidToken) {
			t.Fatalf("accepted or unexpected error: %v", err)
		}
	})
}

// An ID token is not an access token. An API whose Audiences include a
// client id (an app's own API, or a misconfiguration) must still refuse
// the ID tokens issued to that client: they prove who signed in to the
// client, they do not authorize calls. In the default (non-strict) mode
// tokens that carry an ID token's marks are refused, unless the token
// declares itself an access token (typ at+jwt) or the verifier opts in
// with InsecureAcceptIDTokens.
func TestAccessTokenRefusesIDTokens(t *testing.T) {
	op := oidctest.New(t)
	clk := &clock{now: time.Now()}
	const client = "webc_app"
	loose := newVerifier(t, op, clk, func(c *apiSetup) { c.Audiences = []string{apiAud, client}; c.CacheSize = -1 })
	insecure := newVerifier(t, op, clk, func(c *apiSetup) {
		c.Audiences = []string{apiAud, client}
		c.InsecureAcceptIDTokens = true
	})
	signer := op.Signer()
	id := func(mutate func(map[string]any), h oidctest.Header) string {
		c := op.IDClaims(client, "usr_1", "n-1")
		if mutate != nil {
			mutate(c)
		}
		return signer.Sign(c, h)
	}
	access := func(mutate func(map[string]any), h oidctest.Header) string {
		c := atClaims(op, clk.Now())
		if mutate != nil {
			mutate(c)
		}
		return signer.Sign(c, h)
	}
	jwt := oidctest.Header{"typ": "JWT"}
	now := clk.Now().Unix()
	cases := []struct {
		name  string
		token string
		want  rp.Code // of loose; insecure accepts every token
	}{
		{"ID token with nonce", id(nil, nil), rp.CodeType},
		{"ID token with nonce, typ JWT", id(nil, jwt), rp.CodeType},
		{"refreshed ID token: no nonce, at_hash", id(func(c map[string]any) { delete(c, "nonce"); c["at_hash"] = "x" }, nil), rp.CodeType},
		{"hybrid ID token: c_hash", id(func(c map[string]any) { delete(c, "nonce"); c["c_hash"] = "x" }, nil), rp.CodeType},
		{"ID token with s_hash (FAPI)", id(func(c map[string]any) { delete(c, "nonce"); c["s_hash"] = "x" }, nil), rp.CodeType},
		{"ID token with an empty nonce", id(func(c map[string]any) { c["nonce"] = "" }, nil), rp.CodeType},
		{"Keycloak ID token: typ claim ID", id(func(c map[string]any) { delete(c, "nonce"); c["typ"] = "ID" }, jwt), rp.CodeType},
		{"logout token with exp (events)", access(func(c map[string]any) {
			c["aud"] = client
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		}, jwt), rp.CodeType},
		{"access token, typ JWT", access(nil, jwt), ""},
		{"access token, no typ", access(nil, nil), ""},
		{"access token for the client id", access(func(c map[string]any) { c["aud"] = client }, jwt), ""},
		{"access token with nonce, typ at+jwt (declared)", access(func(c map[string]any) { c["nonce"] = "n" }, atHeader), ""},
		{"Keycloak < 25 access token: nonce and typ claim Bearer", access(func(c map[string]any) {
			c["nonce"] = "n"
			c["typ"] = "Bearer"
			c["azp"] = client
		}, jwt), ""},
		{"a typ claim that is not a string", access(func(c map[string]any) { c["typ"] = 7 }, jwt), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loose.Verify(context.Background(), tc.token)
			wantCode(t, err, tc.want)
			if err != nil && tc.want == rp.CodeType && !strings.Contains(err.Error(), "InsecureAcceptIDTokens") {
				t.Errorf("the error does not name the option: %v", err)
			}
			_, err = insecure.Verify(context.Background(), tc.token)
			wantCode(t, err, "")
		})
	}
	// The option loosens only that rule.
	_, err := insecure.Verify(context.Background(), id(func(c map[string]any) { c["exp"] = now - 3600 }, nil))
	wantCode(t, err, rp.CodeExpired)
	_, err = insecure.Verify(context.Background(), id(func(c map[string]any) { c["aud"] = "webc_other" }, nil))
	wantCode(t, err, rp.CodeAudience)
}
