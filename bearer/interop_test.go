package bearer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// TestBearerInteropNodeOIDCProvider: an API behind the bearer layer accepts the JWT
// access tokens node-oidc-provider issues for its resource (RS256, typ
// at+jwt, strict RFC 9068) and the opaque ones by introspection, enforces
// their scopes, permissions and roles, refuses ID tokens, and refuses an
// access token whose shared session was ended by back-channel logout before
// it expires (backchannel.Handler records the sid in a tokenstore.Memory that
// the verifier consults).
func TestBearerInteropNodeOIDCProvider(t *testing.T) {
	const api = "https://api.example.test"
	// The web app's back-channel receiver and the API share one store: the
	// receiver records the revoked sid, the API's verifier consults it.
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	receiver := &backchannel.Handler{Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	delivered := make(chan int, 8)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/backchannel" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		delivered <- rec.Code
	}))
	t.Cleanup(app.Close)
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{
			{ID: "webc_orders", Secret: "orders-secret", AuthMethod: "client_secret_post",
				RedirectURIs: []string{app.URL + "/cb"}, PostLogoutRedirectURIs: []string{app.URL + "/bye"},
				BackchannelLogoutURI: app.URL + "/backchannel"},
			{ID: "webc_legacy", Secret: "legacy-secret", AuthMethod: "client_secret_basic", RedirectURIs: []string{app.URL + "/cb2"}},
		},
		Users: []nodeop.User{{ID: "usr_alice", Email: "alice@example.test", Password: "pw",
			Roles: []string{"admin"}, Permissions: []string{"orders:read", "orders:write"}}},
		Resource: &nodeop.Resource{Audience: api, Scopes: []string{"orders:read", "orders:write"}, Clients: []string{"webc_orders"}},
	})
	ctx := context.Background()
	// Count the introspection requests the API makes, at the wire.
	var introspections atomic.Int64
	counting := &http.Client{Transport: countingTransport(func(r *http.Request) {
		if strings.Contains(r.URL.Path, "introspect") {
			introspections.Add(1)
		}
	})}
	provider, err := rp.Discover(ctx, op.Issuer, &rp.ProviderOptions{HTTPClient: counting})
	if err != nil {
		t.Fatal(err)
	}
	web, err := provider.Client(rp.Config{ClientID: "webc_orders", ClientSecret: "orders-secret",
		RedirectURL: app.URL + "/cb", PostLogoutRedirectURL: app.URL + "/bye", Scopes: []string{"openid", "orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	receiver.Verifier = web
	legacy, err := provider.Client(rp.Config{ClientID: "webc_legacy", ClientSecret: "legacy-secret",
		RedirectURL: app.URL + "/cb2", Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	browser := nodeop.NewBrowser(t, "alice@example.test", "pw")
	signIn := func(c *rp.Client, path string) *rp.Tokens { return browser.SignIn(t, c, path) }
	tokens := signIn(web, "/cb")
	opaque := signIn(legacy, "/cb2")
	if strings.Count(tokens.AccessToken, ".") != 2 || strings.Count(opaque.AccessToken, ".") != 0 {
		t.Fatalf("want a JWT access token for the API and an opaque one for the legacy client")
	}

	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
		Audiences: []string{api}, StrictRFC9068: true, RequiredClaims: []string{"sid"}, Revocations: store,
		Introspection: &rp.IntrospectionConfig{ClientID: "webc_legacy", ClientSecret: "legacy-secret", InsecureAllowNoAudience: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	orders := mustNew(t, bearer.Config{Verifier: verifier, Realm: "orders"})
	claimsJSON := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := bearer.ClaimsFrom(r.Context())
		_ = json.NewEncoder(w).Encode(cl)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", orders.Require(bearer.AnyScope("orders:read"), bearer.AllPermissions("orders:read"), bearer.AnyRole("admin"))(claimsJSON))
	mux.Handle("POST /orders", orders.Require(bearer.AnyScope("orders:write"))(claimsJSON))
	mux.Handle("GET /me", orders.Authenticate(claimsJSON))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	call := func(method, path, token string) (int, string, *rp.Claims) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
		}
		var cl rp.Claims
		if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, "", &cl
	}

	t.Run("JWT access token", func(t *testing.T) {
		header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tokens.AccessToken, ".")[0])
		if !strings.Contains(string(header), `"typ":"at+jwt"`) {
			t.Fatalf("header %s", header)
		}
		status, _, cl := call("GET", "/orders", tokens.AccessToken)
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		if cl.Subject != "usr_alice" || cl.ClientID != "webc_orders" || cl.SessionID != tokens.Claims.SessionID ||
			!slices.Equal(cl.Scopes, []string{"orders:read"}) || !slices.Equal(cl.Roles, []string{"admin"}) ||
			!slices.Contains(cl.Permissions, "orders:write") || !slices.Contains(cl.Audience, api) {
			t.Fatalf("claims %+v", cl)
		}
	})
	t.Run("scope not granted", func(t *testing.T) {
		status, challenge, _ := call("POST", "/orders", tokens.AccessToken)
		if status != 403 || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="orders:write"`) {
			t.Fatalf("%d %s", status, challenge)
		}
	})
	t.Run("ID token refused", func(t *testing.T) {
		if status, challenge, _ := call("GET", "/me", tokens.IDToken); status != 401 || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Fatalf("%d %s", status, challenge)
		}
	})
	t.Run("opaque token by introspection", func(t *testing.T) {
		status, _, cl := call("GET", "/me", opaque.AccessToken)
		if status != 200 || cl.Subject != "usr_alice" || cl.ClientID != "webc_legacy" || cl.Issuer != op.Issuer {
			t.Fatalf("%d %+v", status, cl)
		}
		before := introspections.Load()
		if before == 0 {
			t.Fatal("no introspection request seen at the wire")
		}
		call("GET", "/me", opaque.AccessToken)
		if introspections.Load() != before {
			t.Fatal("the introspection answer was not cached")
		}
		if status, _, _ := call("GET", "/me", "not-a-real-token"); status != 401 {
			t.Fatalf("unknown opaque token: %d", status)
		}
	})
	t.Run("back-channel logout revokes the access token before exp", func(t *testing.T) {
		endURL, err := web.EndSessionURL(tokens.IDToken, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := browser.Navigate(endURL, func(u *url.URL) bool { return u.Path == "/bye" }); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-delivered:
			if code != http.StatusOK {
				t.Fatalf("the back-channel receiver answered %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no logout token delivered")
		}
		status, challenge, _ := call("GET", "/orders", tokens.AccessToken)
		if status != 401 || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Fatalf("after logout: %d %s", status, challenge)
		}
		var ve *rp.ValidationError
		if _, err := verifier.Verify(ctx, tokens.AccessToken); !errors.As(err, &ve) || ve.Code != rp.CodeRevokedSID {
			t.Fatalf("after logout: %v", err)
		}
	})
}

// countingTransport calls see with every request before sending it.
type countingTransport func(*http.Request)

func (f countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f(r)
	return http.DefaultTransport.RoundTrip(r)
}
