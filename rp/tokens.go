package rp

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Tokens is the token set of one login, as validated by this package.
type Tokens struct {
	AccessToken string
	// TokenType is normally "Bearer".
	TokenType string
	// Expiry of the access token; zero when the OP did not say.
	Expiry       time.Time
	RefreshToken string
	IDToken      string
	// Claims of the validated ID token.
	Claims *Claims
}

// Valid reports whether the access token is present and not expiring
// within leeway.
func (t *Tokens) Valid(now time.Time, leeway time.Duration) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(leeway).Before(t.Expiry))
}

// OAuth2 returns the tokens as an *oauth2.Token (with "id_token" as extra).
func (t *Tokens) OAuth2() *oauth2.Token {
	ot := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
	return ot.WithExtra(map[string]any{"id_token": t.IDToken})
}

// tokens validates a token endpoint answer. For a login (prev nil) the ID
// token is required and must carry nonce. For a refresh, a missing ID token
// or refresh token keeps the previous one, and a new ID token must keep
// iss, sub and aud (OpenID Connect Core §12.2).
func (c *Client) tokens(ctx context.Context, ot *oauth2.Token, nonce string, prev *Tokens) (*Tokens, error) {
	if ot.TokenType == "" { // RFC 6749 §5.1: REQUIRED
		return nil, temporary(errors.New("the token endpoint's answer has no token_type (RFC 6749 §5.1 requires it): a malformed answer"))
	}
	if tt := ot.TokenType; !strings.EqualFold(tt, "bearer") {
		return nil, invalid(whatAccessToken, CodeType, "token_type %q is not Bearer", tt)
	}
	t := &Tokens{AccessToken: ot.AccessToken, TokenType: "Bearer", Expiry: ot.Expiry, RefreshToken: ot.RefreshToken}
	rawID, _ := ot.Extra("id_token").(string)
	if rawID == "" {
		if prev == nil {
			return nil, invalid(whatIDToken, CodeMissingToken, "the token response has no id_token (is the openid scope requested?)")
		}
		t.IDToken, t.Claims = prev.IDToken, prev.Claims
		return t, nil
	}
	if prev != nil && prev.Claims != nil {
		nonce = prev.Claims.Nonce
	}
	rule := nonceRequired
	if prev != nil {
		rule = nonceIfPresent
	}
	tok, cl, err := c.idToken(ctx, rawID, nonce, rule)
	if err != nil {
		return nil, err
	}
	if err := checkAccessTokenHash(tok.Header.Alg, cl.AccessTokenHash, t.AccessToken); err != nil {
		return nil, err
	}
	if prev != nil && prev.Claims != nil {
		p := prev.Claims
		switch {
		case cl.Issuer != p.Issuer:
			return nil, invalid(whatIDToken, CodeIssuer, "a refreshed ID token changed iss")
		case cl.Subject != p.Subject:
			return nil, invalid(whatIDToken, CodeSubject, "a refreshed ID token changed sub")
		case !sameSet(cl.Audience, p.Audience):
			return nil, invalid(whatIDToken, CodeAudience, "a refreshed ID token changed aud")
		}
	}
	t.IDToken, t.Claims = rawID, cl
	return t, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// Refresh redeems prev.RefreshToken (the refresh_token grant) and returns
// the new token set. When the answer has no new refresh token or ID token,
// the previous ones are kept; a new ID token is validated and must keep
// iss, sub and aud.
//
// Errors: ErrSessionRevoked when the OP rejects the grant (invalid_grant:
// the shared session ended, or the token was rotated out); ErrTemporary when
// the OP could not answer properly (retry later, keep the session); any
// other *OPError is a configuration problem (wrong client credentials).
//
// A refresh token that rotates must never be sent twice: serialise Refresh
// per session (tokenstore.Store.Lock does it across instances).
func (c *Client) Refresh(ctx context.Context, prev *Tokens) (*Tokens, error) {
	if prev == nil || prev.RefreshToken == "" {
		return nil, errors.New("rp: no refresh token (request the offline_access scope)")
	}
	if prev.Claims == nil && prev.IDToken != "" {
		p := *prev
		prev = &p
		// The previous ID token was validated when it was received.
		if tok, err := jws.Parse(prev.IDToken); err == nil {
			if payload, err := tok.Payload(); err == nil {
				prev.Claims, _ = ParseClaims(payload)
			}
		}
	}
	ot, err := c.redeem(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {prev.RefreshToken}})
	if err != nil {
		err = c.tokenError(err, "refresh_token")
		var op *OPError
		if errors.As(err, &op) && op.Code == "invalid_grant" {
			return nil, &revokedError{op: op}
		}
		return nil, err
	}
	return c.tokens(ctx, ot, "", prev)
}
