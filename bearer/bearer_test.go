package bearer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

const bearerAud = "https://api.example.test"

func bearerClaims(op *oidctest.OP, mutate func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": op.Issuer, "aud": bearerAud, "sub": "usr_1", "client_id": "skc_1", "sid": "ses_1",
		"oid": "org_1", "iat": now, "exp": now + 300, "jti": "tkn_1", "scope": "orders:read profile",
		"roles": []string{"viewer", "billing"}, "permissions": []string{"orders:read", "invoices:read"},
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func bearerToken(op *oidctest.OP, mutate func(map[string]any)) string {
	return op.Signer().Sign(bearerClaims(op, mutate), oidctest.Header{"typ": "at+jwt"})
}

// bearerStore is a revocation store with a switchable outage.
type bearerStore struct {
	mu      sync.Mutex
	revoked map[string]bool
	down    bool
}

func (s *bearerStore) SIDRevoked(_ context.Context, issuer, sid string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return false, errors.New("store unreachable")
	}
	return s.revoked[issuer+" "+sid], nil
}

func (s *bearerStore) set(f func(*bearerStore)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

type bearerFixture struct {
	op       *oidctest.OP
	store    *bearerStore
	verifier *rp.AccessTokenVerifier
}

func newBearerFixture(t testing.TB) *bearerFixture {
	t.Helper()
	f := &bearerFixture{op: oidctest.New(t), store: &bearerStore{revoked: map[string]bool{}}}
	provider, err := rp.Discover(context.Background(), f.op.Issuer, &rp.ProviderOptions{JWKSCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	v, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{bearerAud}, StrictRFC9068: true,
		Revocations: f.store,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.verifier = v
	return f
}

// echo answers 200 with the subject and scopes of the request's claims.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	cl, _ := bearer.ClaimsFrom(r.Context())
	fmt.Fprintf(w, "%s %v", cl.Subject, cl.Scopes)
})

func mustNew(t testing.TB, cfg bearer.Config) *bearer.Middleware {
	t.Helper()
	m, err := bearer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refusal is what the Observer learns of a refused request.
type refusal struct {
	status int
	err    error
	reason string
}

// refusals returns an Observer that records the refusals.
func refusals(into *[]refusal) event.Observer {
	var mu sync.Mutex
	return event.ObserverFunc(func(_ context.Context, e event.Event) {
		if e.Name != event.BearerRefused {
			return
		}
		r := refusal{err: e.Err, reason: e.Reason}
		for _, a := range e.Attrs {
			if a.Key == "status" {
				r.status = int(a.Value.Int64())
			}
		}
		mu.Lock()
		*into = append(*into, r)
		mu.Unlock()
	})
}

func TestBearerRFC6750(t *testing.T) {
	f := newBearerFixture(t)
	good := bearerToken(f.op, nil)
	expired := bearerToken(f.op, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	revoked := bearerToken(f.op, func(c map[string]any) { c["sid"] = "ses_gone" })
	f.store.set(func(s *bearerStore) { s.revoked[f.op.Issuer+" ses_gone"] = true })
	idToken := f.op.Signer().Sign(f.op.IDClaims(bearerAud, "usr_1", "n"), nil)
	forged := good[:len(good)-4] + "AAAA"

	b := bearer.Config{Verifier: f.verifier, Realm: `orders "api"`}
	loose := bearer.Config{Verifier: f.verifier, InsecureAllowQueryToken: true}
	const realm = `Bearer realm="orders \"api\""`
	cases := []struct {
		name      string
		b         bearer.Config
		headers   []string // Authorization values
		query     string
		status    int
		challenge string // exact WWW-Authenticate, or a prefix ending in "*"
	}{
		{"no credentials", b, nil, "", 401, realm},
		{"another scheme", b, []string{"Basic dXNlcjpwYXNz"}, "", 401, realm},
		{"valid", b, []string{"Bearer " + good}, "", 200, ""},
		{"scheme in lower case", b, []string{"bearer " + good}, "", 200, ""},
		{"scheme in upper case", b, []string{"BEARER " + good}, "", 200, ""},
		{"two spaces", b, []string{"Bearer  " + good}, "", 200, ""},
		{"empty token", b, []string{"Bearer"}, "", 400, realm + `, error="invalid_request"*`},
		{"only spaces", b, []string{"Bearer    "}, "", 400, realm + `, error="invalid_request"*`},
		{"two parts", b, []string{"Bearer " + good + " extra"}, "", 400, realm + `, error="invalid_request"*`},
		{"tab inside", b, []string{"Bearer a\tb"}, "", 400, realm + `, error="invalid_request"*`},
		{"two headers", b, []string{"Bearer " + good, "Bearer " + good}, "", 400, realm + `, error="invalid_request"*`},
		{"characters outside b64token", b, []string{"Bearer abc$def"}, "", 400, realm + `, error="invalid_request"*`},
		{"query refused by default", b, nil, "access_token=" + good, 400, realm + `, error="invalid_request"*`},
		{"header and query", loose, []string{"Bearer " + good}, "access_token=" + good, 400, `Bearer realm="api", error="invalid_request"*`},
		{"query allowed", loose, nil, "a=1&access_token=" + good, 200, ""},
		{"query twice", loose, nil, "access_token=" + good + "&access_token=" + good, 400, `Bearer realm="api", error="invalid_request"*`},
		{"query empty", loose, nil, "access_token=", 400, `Bearer realm="api", error="invalid_request"*`},
		{"forged signature", b, []string{"Bearer " + forged}, "", 401, realm + `, error="invalid_token", error_description="the access token is invalid"`},
		{"expired", b, []string{"Bearer " + expired}, "", 401, realm + `, error="invalid_token", error_description="the access token expired"`},
		{"revoked session", b, []string{"Bearer " + revoked}, "", 401, realm + `, error="invalid_token", error_description="the sign-in session of the access token has ended"`},
		{"ID token as access token", b, []string{"Bearer " + idToken}, "", 401, realm + `, error="invalid_token"*`},
		{"opaque token without introspection", b, []string{"Bearer 2YotnFZFEjr1zCsicMWpAA"}, "", 401, realm + `, error="invalid_token"*`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var refused []refusal
			bb := c.b
			bb.Observer = refusals(&refused)
			r := httptest.NewRequest("GET", "/orders?"+c.query, nil)
			for _, h := range c.headers {
				r.Header.Add("Authorization", h)
			}
			w := httptest.NewRecorder()
			mustNew(t, bb).Authenticate(echo).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			got := w.Header().Get("WWW-Authenticate")
			if want, prefix := strings.CutSuffix(c.challenge, "*"); (prefix && !strings.HasPrefix(got, want)) || (!prefix && got != want) {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if c.status == 200 {
				if w.Body.String() != "usr_1 [orders:read profile]" || len(refused) != 0 {
					t.Fatalf("body %q, refusals %v", w.Body, refused)
				}
				return
			}
			if w.Header().Get("Cache-Control") != "no-store" || len(refused) != 1 || refused[0].status != c.status {
				t.Fatalf("Cache-Control %q, refusal events %+v", w.Header().Get("Cache-Control"), refused)
			}
			reasons := []error{refused[0].err}
			for _, tok := range []string{good, expired, revoked, forged, idToken} {
				if strings.Contains(w.Body.String(), tok) || strings.Contains(got, tok) || strings.Contains(reasons[0].Error(), tok) {
					t.Fatal("the response or the error echoes the token")
				}
			}
			switch c.status {
			case 401:
				if c.challenge == realm {
					if !errors.Is(reasons[0], bearer.ErrNoToken) || refused[0].reason != "no_token" {
						t.Fatalf("reason %v", reasons[0])
					}
				} else if !errors.Is(reasons[0], rp.ErrInvalidToken) {
					t.Fatalf("reason %v is not an invalid token", reasons[0])
				}
			case 400:
				if !errors.Is(reasons[0], bearer.ErrBadRequest) || refused[0].reason != "malformed_request" {
					t.Fatalf("reason %v", reasons[0])
				}
			}
		})
	}
}

func TestBearerUnavailableIs503(t *testing.T) {
	f := newBearerFixture(t)
	b := mustNew(t, bearer.Config{Verifier: f.verifier, RetryAfter: 1500 * time.Millisecond})
	do := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		b.Authenticate(echo).ServeHTTP(w, r)
		return w
	}
	good := bearerToken(f.op, nil)
	if w := do(good); w.Code != 200 {
		t.Fatal(w.Code)
	}
	t.Run("revocation store down: fail closed", func(t *testing.T) {
		f.store.set(func(s *bearerStore) { s.down = true })
		defer f.store.set(func(s *bearerStore) { s.down = false })
		w := do(good) // cached, still checked
		if w.Code != 503 || w.Header().Get("Retry-After") != "2" || w.Header().Get("WWW-Authenticate") != "" {
			t.Fatalf("%d Retry-After %q WWW-Authenticate %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("JWKS unreachable", func(t *testing.T) {
		cold := newBearerFixture(t) // keys never fetched
		cold.op.JWKSDown.Store(true)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+bearerToken(cold.op, nil))
		w := httptest.NewRecorder()
		mustNew(t, bearer.Config{Verifier: cold.verifier}).Authenticate(echo).ServeHTTP(w, r)
		if w.Code != 503 || w.Header().Get("Retry-After") != "5" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestBearerRequirements(t *testing.T) {
	f := newBearerFixture(t)
	token := bearerToken(f.op, nil) // scopes orders:read profile; roles viewer billing; permissions orders:read invoices:read
	cases := []struct {
		reqs   []bearer.Requirement
		status int
		scope  string
	}{
		{nil, 200, ""},
		{[]bearer.Requirement{bearer.AnyScope("orders:read")}, 200, ""},
		{[]bearer.Requirement{bearer.AnyScope("orders:write", "profile")}, 200, ""},
		{[]bearer.Requirement{bearer.AnyScope("orders:write", "admin")}, 403, "orders:write admin"},
		{[]bearer.Requirement{bearer.AllScopes("orders:read", "profile")}, 200, ""},
		{[]bearer.Requirement{bearer.AllScopes("orders:read", "orders:write")}, 403, "orders:read orders:write"},
		{[]bearer.Requirement{bearer.AnyPermission("invoices:read", "x")}, 200, ""},
		{[]bearer.Requirement{bearer.AnyPermission("invoices:write")}, 403, "invoices:write"},
		{[]bearer.Requirement{bearer.AllPermissions("orders:read", "invoices:read")}, 200, ""},
		{[]bearer.Requirement{bearer.AllPermissions("orders:read", "orders:delete")}, 403, "orders:read orders:delete"},
		{[]bearer.Requirement{bearer.AnyRole("admin", "billing")}, 200, ""},
		{[]bearer.Requirement{bearer.AnyRole("admin")}, 403, "admin"},
		{[]bearer.Requirement{bearer.AllRoles("viewer", "billing")}, 200, ""},
		{[]bearer.Requirement{bearer.AllRoles("viewer", "admin")}, 403, "viewer admin"},
		{[]bearer.Requirement{bearer.AnyScope("orders:read"), bearer.AnyRole("admin")}, 403, "admin"},
		{[]bearer.Requirement{{}}, 403, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.reqs), func(t *testing.T) {
			var refused []refusal
			bb := mustNew(t, bearer.Config{Verifier: f.verifier, Observer: refusals(&refused)})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			bb.Require(c.reqs...)(echo).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.status != 403 {
				return
			}
			want := `Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a required scope, permission or role"`
			if c.scope != "" {
				want += `, scope="` + c.scope + `"`
			}
			if got := w.Header().Get("WWW-Authenticate"); got != want {
				t.Fatalf("WWW-Authenticate %q, want %q", got, want)
			}
			var ve *rp.ValidationError
			if len(refused) != 1 || !errors.As(refused[0].err, &ve) || ve.Code != rp.CodeScope || refused[0].reason != "scope" {
				t.Fatalf("refusals %+v", refused)
			}
		})
	}
	if !bearer.AnyScope("a").Met(&rp.Claims{Scopes: rp.Scopes{"a"}}) || bearer.AllRoles("a").Met(nil) {
		t.Fatal("Met")
	}
}

// countingVerifier counts Verify calls.
type countingVerifier struct {
	bearer.Verifier
	n atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, raw string) (*rp.Claims, error) {
	c.n.Add(1)
	return c.Verifier.Verify(ctx, raw)
}

func TestBearerRequireInsideAuthenticateVerifiesOnce(t *testing.T) {
	f := newBearerFixture(t)
	cv := &countingVerifier{Verifier: f.verifier}
	b := mustNew(t, bearer.Config{Verifier: cv})
	mux := http.NewServeMux()
	mux.Handle("/orders", b.Require(bearer.AnyPermission("orders:read"))(echo))
	mux.Handle("/admin", b.Require(bearer.AnyRole("admin"))(echo))
	h := b.Authenticate(mux)
	for path, want := range map[string]int{"/orders": 200, "/admin": 403} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+bearerToken(f.op, nil))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Fatalf("%s: %d, want %d", path, w.Code, want)
		}
	}
	if n := cv.n.Load(); n != 2 {
		t.Fatalf("%d verifications for 2 requests", n)
	}
}

func TestBearerRandomKidFloodFetchesJWKSOncePerCooldown(t *testing.T) {
	f := newBearerFixture(t)
	srv := httptest.NewServer(mustNew(t, bearer.Config{Verifier: f.verifier}).Authenticate(echo))
	t.Cleanup(srv.Close)
	get := func(token string) int {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(bearerToken(f.op, nil)); s != 200 {
		t.Fatal(s)
	}
	base := f.op.JWKSFetches.Load()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range 200 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tok := f.op.Signer().Sign(bearerClaims(f.op, nil), oidctest.Header{"typ": "at+jwt", "kid": fmt.Sprintf("flood-%d", i)})
			if s := get(tok); s != 401 {
				t.Errorf("random kid: %d", s)
			}
		}()
	}
	wg.Wait()
	if n := f.op.JWKSFetches.Load() - base; n > 1 {
		t.Fatalf("%d JWKS fetches for a flood of random kids in one cooldown window, want at most 1", n)
	}
}

// TestNewWithoutVerifier: a missing verifier is a configuration error
// that says what to do, at start, not a panic at the first request.
func TestNewWithoutVerifier(t *testing.T) {
	m, err := bearer.New(bearer.Config{})
	if m != nil || !errors.Is(err, rp.ErrConfig) || rp.ClassOf(err) != rp.ClassMisconfigured || !strings.Contains(err.Error(), "Provider.AccessTokenVerifier") {
		t.Fatalf("%v %v", m, err)
	}
}

// tokenstore.Store is what the bearer layer's verifier consults for
// revoked sids.
var _ rp.RevocationChecker = tokenstore.Store(nil)

// A token for API A must not pass an inner layer configured for API B:
// each Middleware verifies the request's token with its own verifier,
// whatever an outer layer of another Middleware put in the context.
func TestStackedBearersEachVerify(t *testing.T) {
	f := newBearerFixture(t)
	const audB = "https://billing.example.test"
	provider, err := rp.Discover(context.Background(), f.op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{audB}, StrictRFC9068: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := &countingVerifier{Verifier: f.verifier}, &countingVerifier{Verifier: vb}
	apiA, apiB := mustNew(t, bearer.Config{Verifier: ca, Realm: "a"}), mustNew(t, bearer.Config{Verifier: cb, Realm: "b"})
	forA := bearerToken(f.op, nil)
	forB := bearerToken(f.op, func(c map[string]any) { c["aud"] = audB })
	forBoth := bearerToken(f.op, func(c map[string]any) { c["aud"] = []string{bearerAud, audB} })
	stacks := map[string]http.Handler{
		"A outside B":                   apiA.Authenticate(apiB.Require()(echo)),
		"B outside A":                   apiB.Authenticate(apiA.Require()(echo)),
		"A outside B with requirements": apiA.Require(bearer.AnyScope("orders:read"))(apiB.Require(bearer.AnyRole("viewer"))(echo)),
	}
	for name, h := range stacks {
		for _, tc := range []struct {
			token string
			want  int
		}{{forA, 401}, {forB, 401}, {forBoth, 200}} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("%s, token for %s: %d, want %d", name, map[string]string{forA: "A", forB: "B", forBoth: "A and B"}[tc.token], w.Code, tc.want)
			}
		}
	}
	if ca.n.Load() == 0 || cb.n.Load() == 0 {
		t.Fatalf("verifications: A %d, B %d: each layer must run its own", ca.n.Load(), cb.n.Load())
	}
}
