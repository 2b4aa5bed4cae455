package rp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
)

func parClient(t *testing.T, op *oidctest.OP, cfg Config) *Client {
	t.Helper()
	p, err := Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "web"
	}
	cfg.RedirectURL = "http://localhost:8080/cb"
	c, err := p.Client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPAR: with Config.PAR, or when discovery requires it, the
// authorization request goes to the PAR endpoint, authenticated like token
// requests (a secret, or a private_key_jwt assertion), and the browser's
// URL carries client_id and request_uri only.
func TestPAR(t *testing.T) {
	key := &ClientKey{Signer: newSigner(t, "P256")}
	for _, tc := range []struct {
		name    string
		cfg     Config
		require bool
	}{
		{"configured, secret", Config{ClientSecret: "s", AuthMethod: AuthClientSecretBasic, PAR: true}, false},
		{"required by the OP, secret post", Config{ClientSecret: "s", AuthMethod: AuthClientSecretPost}, true},
		{"configured, private_key_jwt", Config{Key: key, PAR: true}, false},
		{"required by the OP, public client", Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := oidctest.New(t)
			op.AddClient(oidctest.Client{ID: "web", Secret: tc.cfg.ClientSecret, AuthMethod: tc.cfg.AuthMethod, JWKS: func() []byte {
				if tc.cfg.Key != nil {
					return mustJWKS(t, key)
				}
				return nil
			}()})
			op.SetMeta("require_pushed_authorization_requests", tc.require)
			c := parClient(t, op, tc.cfg)
			tx := pkce.NewTransaction(c.Issuer(), "/")
			raw, err := c.AuthCodeURL(context.Background(), tx, url.Values{"prompt": {"login"}, "max_age": {"300"}})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			if u.Path != "/oauth/authorize" || len(q) != 2 || q.Get("client_id") != "web" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
				t.Fatalf("browser URL %s", raw)
			}
			pushed := op.PushedRequest(q.Get("request_uri"))
			for k, v := range map[string]string{
				"state": tx.State, "nonce": tx.Nonce, "code_challenge": tx.Challenge(), "code_challenge_method": "S256",
				"redirect_uri": "http://localhost:8080/cb", "response_type": "code", "client_id": "web", "prompt": "login", "max_age": "300",
			} {
				if pushed.Get(k) != v {
					t.Errorf("pushed %s = %q, want %q", k, pushed.Get(k), v)
				}
			}
			if tx.MaxAge == nil || *tx.MaxAge != 300 {
				t.Error("max_age not recorded in the transaction")
			}
		})
	}
	t.Run("not configured, not required", func(t *testing.T) {
		op := oidctest.New(t)
		c := parClient(t, op, Config{})
		raw, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction(c.Issuer(), "/"), nil)
		if err != nil || !strings.Contains(raw, "code_challenge=") || op.PARRequests.Load() != 0 {
			t.Fatalf("%v %s (%d PAR requests)", err, raw, op.PARRequests.Load())
		}
	})
	t.Run("OP without PAR endpoint", func(t *testing.T) {
		op := oidctest.New(t)
		op.SetMeta("pushed_authorization_request_endpoint", nil)
		p, _ := Discover(context.Background(), op.Issuer, nil)
		if _, err := p.Client(Config{ClientID: "web", PAR: true}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "pushed_authorization_request_endpoint") {
			t.Fatalf("%v", err)
		}
	})
}

// TestPARErrors: the PAR endpoint's refusals are explained like every OP
// error (an *OPError with a hint, in its class); an outage or an unusable
// answer is temporary and keeps the OP's Retry-After.
func TestPARErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   any
		class  Class
		code   string
		says   string
	}{
		{"invalid_client", 401, map[string]any{"error": "invalid_client"}, ClassMisconfigured, "invalid_client", "ClientSecret"},
		{"redirect not registered", 400, map[string]any{"error": "invalid_request", "error_description": "redirect_uri did not match any of the client's registered redirect_uris"}, ClassMisconfigured, "invalid_request", "not registered"},
		{"scope", 400, map[string]any{"error": "invalid_scope"}, ClassMisconfigured, "invalid_scope", "Config.Scopes"},
		{"unauthorized_client", 400, map[string]any{"error": "unauthorized_client"}, ClassMisconfigured, "unauthorized_client", "not allowed"},
		{"request rejected", 400, map[string]any{"error": "invalid_request", "error_description": "bad"}, ClassMisconfigured, "invalid_request", ""},
		{"server error", 500, map[string]any{"error": "server_error"}, ClassTemporary, "", ""},
		{"unavailable", 503, oidctest.Reply{Header: http.Header{"Retry-After": {"7"}}, Body: "<html>down</html>"}, ClassTemporary, "", ""},
		{"no request_uri", 201, map[string]any{"expires_in": 60}, ClassTemporary, "", ""},
		{"no expiry", 201, map[string]any{"request_uri": "urn:x"}, ClassTemporary, "", ""},
		{"huge request_uri", 201, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:" + strings.Repeat("a", 900<<10), "expires_in": 60}, ClassTemporary, "", ""},
		{"relative request_uri", 201, map[string]any{"request_uri": "abc", "expires_in": 60}, ClassTemporary, "", ""},
		{"request_uri with CRLF", 201, map[string]any{"request_uri": "urn:x\r\nSet-Cookie: a=b", "expires_in": 60}, ClassTemporary, "", ""},
		{"bodyless 401", 401, "", ClassMisconfigured, "invalid_client", ""},
		{"HTML 200", 200, "<html>proxy login</html>", ClassTemporary, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := oidctest.New(t)
			op.SetPARHook(func(url.Values) (int, any) { return tc.status, tc.body })
			c := parClient(t, op, Config{ClientSecret: "s", AuthMethod: AuthClientSecretBasic, PAR: true})
			_, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction(c.Issuer(), "/"), nil)
			if ClassOf(err) != tc.class {
				t.Fatalf("class %v, want %v: %v", ClassOf(err), tc.class, err)
			}
			var oe *OPError
			if tc.code != "" && (!errors.As(err, &oe) || oe.Code != tc.code || oe.Endpoint != "pushed_authorization" || !strings.Contains(oe.Hint, tc.says)) {
				t.Fatalf("%#v", err)
			}
			var te *TemporaryError
			if tc.status == 503 && (!errors.As(err, &te) || te.RetryAfter != 7*time.Second) {
				t.Fatalf("Retry-After lost: %v", err)
			}
		})
	}
	t.Run("OP unreachable", func(t *testing.T) {
		op := oidctest.New(t)
		c := parClient(t, op, Config{PAR: true})
		op.Server.Close()
		if _, err := c.AuthCodeURL(context.Background(), pkce.NewTransaction(c.Issuer(), "/"), nil); ClassOf(err) != ClassTemporary {
			t.Fatalf("%v", err)
		}
	})
	t.Run("authorization error: PAR required of this client", func(t *testing.T) {
		op := oidctest.New(t)
		c := parClient(t, op, Config{})
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(context.Background(), tx, &AuthResponse{State: tx.State, Error: "invalid_request", ErrorDescription: "Pushed Authorization Request must be used"})
		var oe *OPError
		if !errors.As(err, &oe) || !strings.Contains(oe.Hint, "set Config.PAR") || ClassOf(err) != ClassMisconfigured {
			t.Fatalf("%v", err)
		}
	})
}
