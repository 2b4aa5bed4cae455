package rp_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// TestTokenTypeRequired (RFC 6749 §5.1): "token_type REQUIRED". A success
// answer without it is malformed: a temporary failure (the OP misbehaves;
// keep the session and retry), never a Bearer token by default, never a
// revocation.
func TestTokenTypeRequired(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic })
	tx := newTx(c)
	op.SetTokenHook(func(form url.Values) (int, any) {
		return 200, map[string]any{
			"access_token": "at", "expires_in": 300, "refresh_token": "rt",
			"id_token": op.Signer().Sign(op.IDClaims(clientID, "usr_1", tx.Nonce), nil),
		}
	})
	_, err := c.Exchange(context.Background(), tx, &rp.AuthResponse{Code: "c", State: tx.State})
	if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrInvalidToken) || !strings.Contains(err.Error(), "token_type") {
		t.Fatalf("exchange: %v", err)
	}
	_, err = c.Refresh(context.Background(), &rp.Tokens{RefreshToken: "rt"})
	if !errors.Is(err, rp.ErrTemporary) || errors.Is(err, rp.ErrSessionRevoked) || errors.Is(err, rp.ErrInvalidToken) {
		t.Fatalf("refresh: %v", err)
	}
}

// TestSubjectLength (OpenID Connect Core §2, sub): "It MUST NOT exceed 255
// ASCII [RFC20] characters in length."
func TestSubjectLength(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	for _, n := range []int{255, 256, 10_000} {
		_, err := c.VerifyIDToken(context.Background(), op.Signer().Sign(op.IDClaims(clientID, strings.Repeat("u", n), "n"), nil), "n")
		if n <= 255 {
			wantCode(t, err, "")
		} else {
			wantCode(t, err, rp.CodeSubject)
		}
	}
}

// TestOversizedAuthResponse: a code or state of several KB is no OP's (they
// are a few dozen to a few hundred bytes); it is refused before any token
// request, so the OP never receives a 1 MiB code from the app.
func TestOversizedAuthResponse(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, func(c *setup) { c.AuthMethod = rp.AuthClientSecretBasic })
	huge := strings.Repeat("A", 1<<20)
	for name, mut := range map[string]func(r *rp.AuthResponse){
		"code":  func(r *rp.AuthResponse) { r.Code = huge },
		"5 KB":  func(r *rp.AuthResponse) { r.Code = strings.Repeat("c", 5000) },
		"state": func(r *rp.AuthResponse) { r.State = strings.Repeat("s", 5000) },
		"iss":   func(r *rp.AuthResponse) { r.Iss = strings.Repeat("i", 5000) },
	} {
		t.Run(name, func(t *testing.T) {
			tx := newTx(c)
			resp := &rp.AuthResponse{Code: "c", State: tx.State}
			mut(resp)
			if len(resp.State) > 4096 {
				tx.State = resp.State
			}
			_, err := c.Exchange(context.Background(), tx, resp)
			wantCode(t, err, rp.CodeMalformed)
			if n := op.TokenRequests.Load(); n != 0 {
				t.Fatalf("%d token requests", n)
			}
		})
	}
	if _, err := rp.ParseAuthResponse("state=s&code=" + huge); !errors.Is(err, rp.ErrInvalidToken) {
		t.Fatalf("ParseAuthResponse accepted a 1 MiB code: %v", err)
	}
	if _, err := rp.ParseAuthResponse("state=s&code=" + strings.Repeat("c", 4096)); err != nil {
		t.Fatalf("4 KiB code: %v", err)
	}
}

// TestMaxAge (OpenID Connect Core §3.1.2.1, §2, §3.1.3.7): when max_age is
// requested, auth_time is REQUIRED in the ID token, and the client checks
// that no more than max_age seconds have passed since the authentication.
func TestMaxAge(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	now := time.Now().Unix()
	for _, bad := range []string{"-1", "abc", "1.5", ""} {
		if _, err := c.AuthCodeURL(context.Background(), newTx(c), url.Values{"max_age": {bad}}); err == nil {
			t.Errorf("max_age %q accepted", bad)
		}
	}
	for name, c2 := range map[string]struct {
		maxAge   string
		authTime any // nil: absent
		want     rp.Code
	}{
		"no max_age, no auth_time":  {"", nil, ""},
		"within max_age":            {"300", now - 200, ""},
		"max_age 0, just now":       {"0", now, ""},
		"auth_time missing":         {"300", nil, rp.CodeAuthTime},
		"too old":                   {"300", now - 1000, rp.CodeAuthTime},
		"in the future":             {"300", now + 3600, rp.CodeAuthTime},
		"not a number":              {"300", "yesterday", rp.CodeMalformed},
		"old but max_age not asked": {"", now - 100_000, ""},
		// A max_age of centuries (an API's challenge, a typo) is "any
		// age", not an overflow that refuses a fresh sign-in.
		"huge max_age":            {"9223372036854775807", now - 200, ""},
		"huge max_age, in future": {"9223372036854775807", now + 3600, rp.CodeAuthTime},
		"10 billion seconds":      {"10000000000", 1, ""},
	} {
		t.Run(name, func(t *testing.T) {
			tx := newTx(c)
			extra := url.Values{}
			if c2.maxAge != "" {
				extra.Set("max_age", c2.maxAge)
			}
			u, err := c.AuthCodeURL(context.Background(), tx, extra)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := url.Parse(u); got.Query().Get("max_age") != c2.maxAge {
				t.Fatalf("max_age not sent: %s", u)
			}
			claims := op.IDClaims(clientID, "usr_1", tx.Nonce)
			if c2.authTime != nil {
				claims["auth_time"] = c2.authTime
			}
			code := "code-" + strings.ReplaceAll(name, " ", "-")
			op.AddGrant(code, oidctest.Grant{Claims: claims, Challenge: tx.Challenge()})
			_, err = c.Exchange(context.Background(), tx, &rp.AuthResponse{Code: code, State: tx.State})
			wantCode(t, err, c2.want)
		})
	}
}

// TestACRValues (OpenID Connect Core §3.1.2.1 acr_values, RFC 9470 §4-5):
// acr_values sent in the authorization request are recorded in the
// transaction, and the ID token's acr must then be one of them: a step-up
// that the OP could not do (it answers with the session's weaker acr, as
// Core §5.5.1.1 allows) is refused, never taken as the stronger sign-in.
func TestACRValues(t *testing.T) {
	op := oidctest.New(t)
	c := newClient(t, op, nil)
	for _, bad := range []string{"", "  "} {
		if _, err := c.AuthCodeURL(context.Background(), newTx(c), url.Values{"acr_values": {bad}}); !errors.Is(err, rp.ErrConfig) {
			t.Errorf("acr_values %q: %v", bad, err)
		}
	}
	for name, c2 := range map[string]struct {
		acrValues string
		acr       any // nil: absent
		want      rp.Code
	}{
		"none asked, none given": {"", nil, ""},
		"none asked, any given":  {"", "urn:example:low", ""},
		"the one asked":          {"urn:example:high", "urn:example:high", ""},
		"second of two":          {"urn:example:mfa urn:example:high", "urn:example:high", ""},
		"weaker":                 {"urn:example:high", "urn:example:low", rp.CodeACR},
		"missing":                {"urn:example:high", nil, rp.CodeACR},
		"null":                   {"urn:example:high", "null", rp.CodeACR},
		"empty":                  {"urn:example:high", "", rp.CodeACR},
		"case differs":           {"urn:example:high", "URN:EXAMPLE:HIGH", rp.CodeACR},
		"the list as one string": {"a b", "a b", rp.CodeACR},
		"a number":               {"2", 2, rp.CodeMalformed},
		"an array":               {"urn:example:high", []string{"urn:example:high"}, rp.CodeMalformed},
		"an object":              {"urn:example:high", map[string]any{"value": "urn:example:high"}, rp.CodeMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			tx := newTx(c)
			extra := url.Values{}
			if c2.acrValues != "" {
				extra.Set("acr_values", c2.acrValues)
			}
			u, err := c.AuthCodeURL(context.Background(), tx, extra)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := url.Parse(u); got.Query().Get("acr_values") != c2.acrValues {
				t.Fatalf("acr_values not sent: %s", u)
			}
			claims := op.IDClaims(clientID, "usr_1", tx.Nonce)
			switch c2.acr {
			case nil:
			case "null":
				claims["acr"] = nil
			default:
				claims["acr"] = c2.acr
			}
			code := "code-" + strings.ReplaceAll(name, " ", "-")
			op.AddGrant(code, oidctest.Grant{Claims: claims, Challenge: tx.Challenge()})
			tokens, err := c.Exchange(context.Background(), tx, &rp.AuthResponse{Code: code, State: tx.State})
			wantCode(t, err, c2.want)
			if err == nil {
				if s, _ := c2.acr.(string); tokens.Claims.ACR != s {
					t.Fatalf("Claims.ACR = %q, want %q", tokens.Claims.ACR, s)
				}
			}
		})
	}
}
