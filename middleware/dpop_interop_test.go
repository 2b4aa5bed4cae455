package middleware_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// TestWebDPoPInteropNodeOIDCProvider: a confidential web app with
// WebConfig.DPoP signs two users in at node-oidc-provider (DPoP on, the
// OP's nonces required, refresh tokens rotated). Each session gets tokens
// of token_type DPoP whose cnf.jkt is the thumbprint of its own key (kept
// in the session record); Session.Client calls an API behind the bearer
// layer with DPoP (and API nonces) and gets 200; the same access token
// sent as a bearer token is refused; a refresh proves possession of the
// session's key and the refreshed token works the same way.
func TestWebDPoPInteropNodeOIDCProvider(t *testing.T) {
	const api = "https://api.example.test"
	app := startRealApp(t, "webc_dpop")
	op := nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{app.client(false)},
		Users: []nodeop.User{
			{ID: "usr_alice", Email: "alice@example.test", Password: "pw"},
			{ID: "usr_bob", Email: "bob@example.test", Password: "pw"},
		},
		Resource:            &nodeop.Resource{Audience: api, Scopes: []string{"orders:read"}},
		RotateRefreshTokens: true,
		DPoPNonces:          true,
	})
	ctx := context.Background()
	provider, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The API: DPoP-bound tokens with proofs, its own nonces.
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{api}, StrictRFC9068: true})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{}), NonceSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := bearer.New(bearer.Config{Verifier: verifier, DPoP: &bearer.DPoPConfig{Proofs: proofs}})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(orders.Require(bearer.AnyScope("orders:read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := bearer.ClaimsFrom(r.Context())
		io.WriteString(w, "orders-of-"+cl.Subject)
	})))
	t.Cleanup(apiSrv.Close)

	// The web app.
	c, err := provider.Client(rp.Config{ClientID: app.id, ClientSecret: app.id + "-secret", Scopes: []string{"openid", "orders:read"},
		RedirectURL: app.srv.URL + "/auth/callback", PostLogoutRedirectURL: app.srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	store := &recordingStore{Store: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	clk := &clock{}
	web, err := middleware.NewWeb(middleware.WebConfig{Client: c, Store: store, CookieKeys: [][]byte{testKey}, DPoP: true, Now: clk.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/call", web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		resp, err := s.Client(r.Context()).Get(apiSrv.URL + "/orders")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		tok, _ := s.TokenContext(r.Context())
		fmt.Fprintf(w, "%s %d %s %s", tok.TokenType, resp.StatusCode, got, tok.AccessToken)
	})))
	app.handle = mux

	call := func(b *nodeop.Browser) (tokenType string, status int, answer, token string) {
		t.Helper()
		_, resp, err := b.Navigate(app.srv.URL+"/call", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if _, err := fmt.Sscan(string(body), &tokenType, &status, &answer, &token); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/call: %d %q", resp.StatusCode, body)
		}
		return
	}
	asBearer := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", apiSrv.URL+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), "\n")
	}

	var jkts []string
	for i, u := range []struct{ sub, email string }{{"usr_alice", "alice@example.test"}, {"usr_bob", "bob@example.test"}} {
		b := nodeop.NewBrowser(t, u.email, "pw")
		tt, status, answer, token := call(b)
		if tt != "DPoP" || status != 200 || answer != "orders-of-"+u.sub {
			t.Fatalf("%s: %s %d %s", u.sub, tt, status, answer)
		}
		rec := store.created[i]
		key, err := dpop.ParseSigner(rec.DPoPKey)
		if err != nil || rec.TokenType != "DPoP" || rec.AccessToken != token {
			t.Fatalf("%s: record key %v, token type %q", u.sub, err, rec.TokenType)
		}
		// The record, sealed and opened as a Redis store keeps it, still
		// holds the key.
		raw, _ := rec.MarshalBinary()
		var back tokenstore.Session
		if err := back.UnmarshalBinary(raw); err != nil || string(back.DPoPKey) != string(rec.DPoPKey) {
			t.Fatalf("%s: the key does not survive the record codec: %v", u.sub, err)
		}
		if jkt := cnfJKT(t, token); jkt != key.Thumbprint() {
			t.Fatalf("%s: cnf.jkt %q, the session's key %q", u.sub, jkt, key.Thumbprint())
		}
		jkts = append(jkts, key.Thumbprint())
		if status, ch := asBearer(token); status != 401 || !strings.Contains(ch, `error="invalid_token"`) {
			t.Fatalf("%s: the DPoP-bound token as Bearer: %d %s", u.sub, status, ch)
		}

		// A refresh, with a proof by the session's key; the OP rotates
		// the refresh token and binds the new access token to the key.
		refreshes := op.TokenRequests("refresh_token")
		clk.advance(4*time.Minute + 50*time.Second)
		tt, status, answer, next := call(b)
		if tt != "DPoP" || status != 200 || answer != "orders-of-"+u.sub || next == token {
			t.Fatalf("%s after the refresh: %s %d %s (new token: %v)", u.sub, tt, status, answer, next != token)
		}
		if op.TokenRequests("refresh_token") == refreshes {
			t.Fatalf("%s: no refresh reached the OP", u.sub)
		}
		if jkt := cnfJKT(t, next); jkt != key.Thumbprint() {
			t.Fatalf("%s: refreshed cnf.jkt %q, the session's key %q", u.sub, jkt, key.Thumbprint())
		}
		clk.advance(-(4*time.Minute + 50*time.Second))
	}
	if jkts[0] == jkts[1] {
		t.Fatal("two sessions share a DPoP key")
	}
}

// cnfJKT is the cnf.jkt claim of a JWT access token.
func cnfJKT(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT access token")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	_ = json.Unmarshal(payload, &claims)
	return claims.Cnf.JKT
}
