package rp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// login registers a grant for a fresh transaction and returns both.
func login(op *oidctest.OP, c *rp.Client, code string, mut func(map[string]any)) (*pkce.Transaction, *rp.AuthResponse) {
	tx := pkce.NewTransaction(c.Issuer(), "/")
	claims := op.IDClaims(clientID, "usr_1", tx.Nonce)
	if mut != nil {
		mut(claims)
	}
	op.AddGrant(code, oidctest.Grant{Claims: claims, Challenge: tx.Challenge(), RefreshToken: "rt-1"})
	return tx, &rp.AuthResponse{Code: code, State: tx.State}
}

func TestExchange(t *testing.T) {
	op := oidctest.New(t)
	for _, method := range []string{rp.AuthClientSecretPost, rp.AuthClientSecretBasic, rp.AuthNone} {
		t.Run(method, func(t *testing.T) {
			var form url.Values
			op.SetTokenHook(nil)
			c := newClient(t, op, func(c *setup) {
				c.AuthMethod = method
				if method == rp.AuthNone {
					c.ClientSecret = ""
				}
			})
			tx, resp := login(op, c, "code-"+method, nil)
			tokens, err := c.Exchange(context.Background(), tx, resp)
			if err != nil {
				t.Fatal(err)
			}
			if tokens.Claims.Subject != "usr_1" || tokens.RefreshToken != "rt-1" || tokens.AccessToken == "" || tokens.IDToken == "" {
				t.Fatalf("tokens %+v", tokens)
			}
			if time.Until(tokens.Expiry) < 4*time.Minute {
				t.Fatalf("expiry %v", tokens.Expiry)
			}
			_ = form
		})
	}
}

func TestExchangeSendsClientAuth(t *testing.T) {
	op := oidctest.New(t)
	for _, method := range []string{rp.AuthClientSecretPost, rp.AuthClientSecretBasic, rp.AuthNone} {
		var got url.Values
		op.SetTokenHook(func(form url.Values) (int, any) {
			got = form
			return 400, map[string]any{"error": "invalid_grant"}
		})
		c := newClient(t, op, func(c *setup) {
			c.AuthMethod = method
			if method == rp.AuthNone {
				c.ClientSecret = ""
			}
		})
		tx, resp := login(op, c, "x", nil)
		_, _ = c.Exchange(context.Background(), tx, resp)
		switch method {
		case rp.AuthClientSecretPost:
			if got.Get("client_secret") != secret || got.Get("client_id") != clientID || got.Has("basic_client_id") {
				t.Errorf("post: %v", got)
			}
		case rp.AuthClientSecretBasic:
			if got.Get("basic_client_secret") != secret || got.Get("basic_client_id") != clientID || got.Has("client_secret") {
				t.Errorf("basic: %v", got)
			}
		case rp.AuthNone:
			if got.Get("client_id") != clientID || got.Has("client_secret") || got.Has("basic_client_id") {
				t.Errorf("none: %v", got)
			}
		}
		if got.Get("code_verifier") != tx.Verifier || got.Get("redirect_uri") != redirect || got.Get("grant_type") != "authorization_code" {
			t.Errorf("%s: exchange form %v", method, got)
		}
	}
}

func TestExchangeRejects(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	ctx := context.Background()

	t.Run("state mismatch", func(t *testing.T) {
		tx, resp := login(op, c, "c1", nil)
		resp.State = "attacker-state"
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeState)
	})
	t.Run("missing state", func(t *testing.T) {
		tx, resp := login(op, c, "c2", nil)
		resp.State = ""
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeState)
	})
	t.Run("RFC 9207 iss wrong", func(t *testing.T) {
		tx, resp := login(op, c, "c3", nil)
		resp.Iss = "https://evil.example.com"
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeResponseIss)
	})
	t.Run("RFC 9207 iss right", func(t *testing.T) {
		tx, resp := login(op, c, "c4", nil)
		resp.Iss = op.Issuer
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, "")
	})
	t.Run("RFC 9207 iss missing when advertised", func(t *testing.T) {
		op.SetMeta("authorization_response_iss_parameter_supported", true)
		defer op.SetMeta("authorization_response_iss_parameter_supported", nil)
		c := newClient(t, op, nil)
		tx, resp := login(op, c, "c5", nil)
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeResponseIss)
		tx, resp = login(op, c, "c5b", nil)
		resp.Iss = op.Issuer
		_, err = c.Exchange(ctx, tx, resp)
		wantCode(t, err, "")
	})
	t.Run("no code", func(t *testing.T) {
		tx, resp := login(op, c, "c6", nil)
		resp.Code = ""
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeMalformed)
	})
	t.Run("nonce of another login", func(t *testing.T) {
		tx, resp := login(op, c, "c7", func(m map[string]any) { m["nonce"] = "other" })
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeNonce)
	})
	t.Run("at_hash wrong", func(t *testing.T) {
		tx, resp := login(op, c, "c8", func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" })
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, rp.CodeAccessHash)
	})
	t.Run("at_hash absent is fine", func(t *testing.T) {
		tx, resp := login(op, c, "c9", func(m map[string]any) { m["at_hash"] = "" })
		_, err := c.Exchange(ctx, tx, resp)
		wantCode(t, err, "")
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		tx, resp := login(op, c, "c10", nil)
		tx.Verifier = pkce.NewVerifier()
		_, err := c.Exchange(ctx, tx, resp)
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" || errors.Is(err, rp.ErrSessionRevoked) {
			t.Fatalf("want OPError invalid_grant (not revoked), got %v", err)
		}
	})
	t.Run("code replay", func(t *testing.T) {
		tx, resp := login(op, c, "c11", nil)
		if _, err := c.Exchange(ctx, tx, resp); err != nil {
			t.Fatal(err)
		}
		_, err := c.Exchange(ctx, tx, resp)
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			t.Fatalf("want invalid_grant on code replay, got %v", err)
		}
	})
	t.Run("no id_token", func(t *testing.T) {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		op.AddGrant("c12", oidctest.Grant{NoIDToken: true})
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{Code: "c12", State: tx.State})
		wantCode(t, err, rp.CodeMalformed)
	})
	t.Run("OP error response", func(t *testing.T) {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State, Error: "access_denied", ErrorDescription: "<script>"})
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Code != "access_denied" || oe.Endpoint != "authorization" || errors.Is(err, rp.ErrLoginRequired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("login_required is ErrLoginRequired", func(t *testing.T) {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State, Error: "login_required"})
		if !errors.Is(err, rp.ErrLoginRequired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("redirect mismatch gets a hint", func(t *testing.T) {
		tx := pkce.NewTransaction(c.Issuer(), "/")
		_, err := c.Exchange(ctx, tx, &rp.AuthResponse{State: tx.State, Error: "invalid_request", ErrorDescription: "redirect_uri did not match any of the client's registered redirect_uris"})
		var oe *rp.OPError
		if !errors.As(err, &oe) || oe.Hint == "" {
			t.Fatalf("no hint: %v", err)
		}
	})
}

func TestParseAuthResponse(t *testing.T) {
	r, err := rp.ParseAuthResponse("code=c&state=s&iss=https%3A%2F%2Fop")
	if err != nil || r.Code != "c" || r.State != "s" || r.Iss != "https://op" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, q := range []string{"code=a&code=b&state=s", "code=a&state=s&state=t", "code=a&state=s&iss=x&iss=y", "code=%zz"} {
		if _, err := rp.ParseAuthResponse(q); !errors.Is(err, rp.ErrInvalidToken) {
			t.Errorf("%q: got %v", q, err)
		}
	}
}

func TestTokenEndpointFailuresAreTemporary(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, func(c *setup) { c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond} })
	cases := map[string]func(url.Values) (int, any){
		"500":      func(url.Values) (int, any) { return 500, map[string]any{"error": "server_error"} },
		"502 html": func(url.Values) (int, any) { return 502, "<html>bad gateway</html>" },
		"503":      func(url.Values) (int, any) { return 503, "" },
		"429":      func(url.Values) (int, any) { return 429, map[string]any{"error": "slow_down"} },
		"200 html": func(url.Values) (int, any) { return 200, "<html>login</html>" },
		"400 html": func(url.Values) (int, any) { return 400, "<html>oops</html>" },
		"temp":     func(url.Values) (int, any) { return 400, map[string]any{"error": "temporarily_unavailable"} },
		"timeout":  func(url.Values) (int, any) { time.Sleep(time.Second); return 200, map[string]any{} },
		"no token": func(url.Values) (int, any) { return 200, map[string]any{"token_type": "Bearer"} },
	}
	for name, hook := range cases {
		t.Run(name, func(t *testing.T) {
			op.SetTokenHook(hook)
			_, err := c.Refresh(context.Background(), &rp.Tokens{RefreshToken: "rt"})
			if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrSessionRevoked) {
				t.Fatalf("want ErrTemporary only, got %v", err)
			}
		})
	}
}
