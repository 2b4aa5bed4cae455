package rp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Tokens is the token set of one login, as validated by this package.
type Tokens struct {
	AccessToken string
	// TokenType is "Bearer", or "DPoP" for a token bound to the DPoP key
	// of the request (Config.DPoP or WithDPoPKey; send it with the DPoP
	// scheme and a proof by that key: dpop.Transport).
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

// tokens validates a token endpoint answer. For a login (prev nil) the ID
// token is required and must carry nonce. For a refresh, a missing ID token
// or refresh token keeps the previous one, and a new ID token must keep
// iss, sub and aud (OpenID Connect Core §12.2).
func (c *Client) tokens(ctx context.Context, ot *oauth2.Token, nonce string, prev *Tokens) (*Tokens, error) {
	if ot.TokenType == "" { // RFC 6749 §5.1: REQUIRED
		return nil, temporary(errors.New("the token endpoint's answer has no token_type (RFC 6749 §5.1 requires it): a malformed answer"))
	}
	tokenType, err := c.tokenType(ctx, ot.TokenType)
	if err != nil {
		return nil, err
	}
	t := &Tokens{AccessToken: ot.AccessToken, TokenType: tokenType, Expiry: ot.Expiry, RefreshToken: ot.RefreshToken}
	rawID, _ := ot.Extra("id_token").(string)
	if rawID == "" {
		if prev == nil {
			return nil, invalid(whatIDToken, CodeMalformed, "the token response has no id_token (is the openid scope requested?)")
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
		// Another identity: the session's grant is not this user's any
		// more, which ends the session (ClassRevoked).
		p := prev.Claims
		changed := func(code Code, claim string) error {
			return &ValidationError{What: whatIDToken, Code: code, Detail: "a refreshed ID token changed " + claim + ": it is another user's, so the session ends", Err: ErrSessionRevoked}
		}
		switch {
		case cl.Issuer != p.Issuer:
			return nil, changed(CodeIssuer, "iss")
		case cl.Subject != p.Subject:
			return nil, changed(CodeSubject, "sub")
		case !sameSet(cl.Audience, p.Audience):
			return nil, changed(CodeAudience, "aud")
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

// Refresh redeems prev.RefreshToken (the refresh_token grant). On success
// it returns the new token set: when the answer has no new refresh token or
// ID token, the previous ones are kept; a new ID token is validated and
// must keep iss, sub and aud.
//
// It also returns the token set to keep when it fails, because an OP that
// rotates refresh tokens may already have spent prev's:
//
//   - The OP answered with tokens that could not be accepted (the refreshed
//     ID token failed validation, for instance because the OP's keys were
//     out of reach): prev with the RefreshToken the OP issued, which is the
//     only one left. The other new tokens are dropped.
//   - The outcome is unknown: the request may have reached the OP but no
//     usable answer came back (a timeout or a connection lost after the
//     request was sent, a success status with a body that is not a token
//     response): prev without a RefreshToken. Its refresh token may be
//     spent, and presenting a spent one again makes OPs that detect reuse
//     revoke the whole grant; the session lives on until its access token
//     expires, then signs in again.
//   - Otherwise nothing changed at the OP (it refused the request, or could
//     not be reached): prev itself.
//   - The session is over (ClassRevoked: the OP answered invalid_grant, or
//     the refreshed ID token's iss, sub or aud changed): nil.
//
// So a caller stores what Refresh returns unless it is nil, error or not,
// and signs the user out exactly when ClassOf(err) is ClassRevoked. Every
// other class keeps the session: ClassTemporary (retry after
// (*TemporaryError).RetryAfter, which carries the OP's Retry-After),
// ClassMisconfigured (the OP refuses this client: invalid_client,
// unauthorized_client) and ClassInvalid (the OP's answer was refused).
//
// The request is bounded by ctx's deadline when it has one (replacing the
// HTTP client's own timeout), so a caller can give a slow OP more time than
// defaultTimeout; without a deadline, by the HTTP client's timeout.
//
// A refresh token that rotates must never be sent twice: serialise Refresh
// per session (tokenstore.Store.Lock does it across instances).
func (c *Client) Refresh(ctx context.Context, prev *Tokens) (*Tokens, error) {
	if prev == nil || prev.RefreshToken == "" {
		return nil, fmt.Errorf("%w: Refresh needs a refresh token: request the offline_access scope (Config.Scopes) and keep the refresh token the login returned", ErrConfig)
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
	var tr exchangeTrace
	tctx, hc := c.traced(ctx, &tr)
	ot, err := c.redeemWith(tctx, hc, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {prev.RefreshToken}})
	if err != nil {
		err = c.tokenError(err, "refresh_token")
		var te *TemporaryError
		if errors.As(err, &te) && te.Status == 0 {
			te.Status = int(tr.status.Load())
		}
		switch status := tr.status.Load(); {
		case ClassOf(err) == ClassRevoked:
			return nil, err
		case status >= 200 && status < 300, status == 0 && tr.sent.Load():
			keep := *prev
			keep.RefreshToken = ""
			return &keep, err
		}
		return prev, err
	}
	next, err := c.tokens(ctx, ot, "", prev)
	switch {
	case err == nil:
		return next, nil
	case ClassOf(err) == ClassRevoked:
		return nil, err
	}
	keep := *prev
	if ot.RefreshToken != "" {
		keep.RefreshToken = ot.RefreshToken
	}
	return &keep, err
}

// exchangeTrace records how far a token request got: whether it was sent
// whole, and the status of the answer.
type exchangeTrace struct {
	sent   atomic.Bool
	status atomic.Int32
}

// traced returns a context and an HTTP client that record the request's
// progress in tr; the client's timeout gives way to ctx's deadline.
func (c *Client) traced(ctx context.Context, tr *exchangeTrace) (context.Context, *http.Client) {
	hc := *c.p.http
	if _, ok := ctx.Deadline(); ok {
		hc.Timeout = 0
	}
	hc.Transport = traceTransport{rt: hc.Transport, tr: tr}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				tr.sent.Store(true)
			}
		},
	}), &hc
}

type traceTransport struct {
	rt http.RoundTripper
	tr *exchangeTrace
}

func (t traceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if resp != nil {
		t.tr.status.Store(int32(resp.StatusCode))
	}
	return resp, err
}
