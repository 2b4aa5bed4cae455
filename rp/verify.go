package rp

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Token kinds, as in ValidationError.What.
const (
	whatIDToken     = "id_token"
	whatLogoutToken = "logout_token"
	whatAccessToken = "access_token"
	whatAuthResp    = "authorization_response"
)

// verifyJWT applies the rules every token of the OP shares (signature,
// alg, iss; see Provider.verifySigned) and the audience rule of tokens for
// this client.
func (c *Client) verifyJWT(ctx context.Context, what, raw string) (*jws.Token, *Claims, error) {
	tok, claims, err := c.p.verifySigned(ctx, what, raw)
	if err != nil {
		return nil, nil, err
	}
	if c.algs != nil && !slices.Contains(c.algs, tok.Header.Alg) {
		return nil, nil, invalid(what, CodeAlgorithm, "alg %s is not allowed by the client's profile (%s accepts %v)", tok.Header.Alg, c.cfg.Profile, c.algs)
	}
	if err := c.checkAudience(what, claims.Audience); err != nil {
		return nil, nil, err
	}
	return tok, claims, nil
}

// checkAudience: aud must contain the client id; any other audience must be
// one of Config.TrustedAudiences.
func (c *Client) checkAudience(what string, aud Audience) error {
	if !slices.Contains(aud, c.cfg.ClientID) {
		return invalid(what, CodeAudience, "aud %v does not contain this app's client id %q (is the token meant for another app?)", []string(aud), c.cfg.ClientID)
	}
	for _, a := range aud {
		if a != c.cfg.ClientID && !contains(c.cfg.TrustedAudiences, a) {
			return invalid(what, CodeAudience, "aud has %q, which is not in Config.TrustedAudiences", a)
		}
	}
	return nil
}

// maxSubject is the longest sub (OpenID Connect Core §2).
const maxSubject = 255

// nonceRule says how idToken treats the nonce claim.
type nonceRule int

const (
	nonceRequired  nonceRule = iota // a login's ID token: present and equal
	nonceIfPresent                  // a refreshed ID token: may be absent, equal when present
	nonceUnchecked                  // InspectIDToken: no login to compare with
)

// idToken validates an ID token (OpenID Connect Core §3.1.3.7). nonce is the
// login's: required in a login's ID token; a refreshed one may omit it but,
// when it carries one, it must still be the login's.
func (c *Client) idToken(ctx context.Context, raw, nonce string, rule nonceRule) (*jws.Token, *Claims, error) {
	tok, cl, err := c.verifyJWT(ctx, whatIDToken, raw)
	if err != nil {
		return nil, nil, err
	}
	if t := strings.ToLower(tok.Header.Typ); strings.HasSuffix(t, "at+jwt") || strings.HasSuffix(t, "logout+jwt") {
		return nil, nil, invalid(whatIDToken, CodeType, "typ %q is not an ID token", tok.Header.Typ)
	}
	if err := c.p.checkTimes(whatIDToken, cl, c.p.now(), requireExp|requireIat); err != nil {
		return nil, nil, err
	}
	if cl.Subject == "" {
		return nil, nil, invalid(whatIDToken, CodeSubject, "sub is missing")
	}
	if len(cl.Subject) > maxSubject {
		return nil, nil, invalid(whatIDToken, CodeSubject, "sub is %d bytes long; OpenID Connect Core §2 allows at most %d ASCII characters", len(cl.Subject), maxSubject)
	}
	if cl.AuthorizedParty != "" && cl.AuthorizedParty != c.cfg.ClientID {
		return nil, nil, invalid(whatIDToken, CodeAuthorizedBy, "azp is %q, expected %q", cl.AuthorizedParty, c.cfg.ClientID)
	}
	if len(cl.Audience) > 1 && cl.AuthorizedParty == "" {
		return nil, nil, invalid(whatIDToken, CodeAuthorizedBy, "aud has several audiences but azp is missing")
	}
	switch {
	case rule == nonceUnchecked:
	case cl.Nonce == "" && rule == nonceRequired:
		return nil, nil, invalid(whatIDToken, CodeNonce, "nonce is missing")
	case cl.Nonce == "" && rule == nonceIfPresent:
		// OpenID Connect Core §12.2: a refreshed ID token need not repeat it.
	case subtle.ConstantTimeCompare([]byte(cl.Nonce), []byte(nonce)) != 1:
		return nil, nil, invalid(whatIDToken, CodeNonce, "nonce does not match this login")
	}
	return tok, cl, nil
}

// VerifyIDToken validates an ID token obtained by a login whose nonce was
// nonce: signature with the OP's keys and allow-listed alg, iss, aud, azp,
// exp, iat, sub and nonce (required: an empty nonce fails). It returns the
// claims. Use it for ID tokens obtained outside Exchange, e.g. by a native
// app's own login.
func (c *Client) VerifyIDToken(ctx context.Context, raw, nonce string) (*Claims, error) {
	if nonce == "" {
		return nil, invalid(whatIDToken, CodeNonce, "no expected nonce given: pass the nonce of the login transaction")
	}
	_, cl, err := c.idToken(ctx, raw, nonce, nonceRequired)
	return cl, err
}

// checkAccessTokenHash verifies at_hash (OpenID Connect Core §3.1.3.8)
// when the ID token carries one.
func checkAccessTokenHash(alg, atHash, accessToken string) error {
	if atHash == "" {
		return nil
	}
	h, ok := jws.HashFor(alg)
	if !ok {
		return invalid(whatIDToken, CodeAccessHash, "no hash for alg %q", alg)
	}
	hh := h.New()
	hh.Write([]byte(accessToken))
	sum := hh.Sum(nil)
	want := base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	if subtle.ConstantTimeCompare([]byte(want), []byte(atHash)) != 1 {
		return invalid(whatIDToken, CodeAccessHash, "at_hash does not match the access token")
	}
	return nil
}

// LogoutToken is a validated OpenID Connect Back-Channel Logout token.
type LogoutToken struct {
	Claims
	// ValidUntil is when the verifier would refuse this token anyway (exp,
	// or iat plus the maximum age, plus skew): remember its jti until then.
	ValidUntil time.Time
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// VerifyLogoutToken validates a logout token (OpenID Connect Back-Channel
// Logout 1.0 §2.6): signature and alg as ID tokens; typ logout+jwt,
// application/logout+jwt, JWT or absent; iss; aud; iat required and recent;
// exp checked when present; jti required; the back-channel logout event; no
// nonce; sub or sid. The jti replay check is the caller's (it needs a
// store): remember TokenID until ValidUntil.
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	tok, cl, err := c.verifyJWT(ctx, whatLogoutToken, raw)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(tok.Header.Typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
	default:
		return nil, invalid(whatLogoutToken, CodeType, "typ %q is not a logout token type", tok.Header.Typ)
	}
	if err := c.p.checkTimes(whatLogoutToken, cl, c.p.now(), requireIat); err != nil {
		return nil, err
	}
	maxAge := c.cfg.MaxLogoutTokenAge
	if maxAge <= 0 {
		maxAge = maxLogoutTokenAge
	}
	oldest := cl.IssuedAt.Time().Add(maxAge + c.p.skew)
	if !c.p.now().Before(oldest) {
		return nil, invalid(whatLogoutToken, CodeIssuedAt, "issued at %s, older than %v (plus %v tolerance); "+hintLogoutTokenAge, stamp(cl.IssuedAt.Time()), maxAge, c.p.skew)
	}
	if cl.TokenID == "" {
		return nil, invalid(whatLogoutToken, CodeTokenID, "jti is missing")
	}
	var extra struct {
		Events map[string]json.RawMessage `json:"events"`
		Nonce  json.RawMessage            `json:"nonce"`
	}
	if err := json.Unmarshal(cl.Raw, &extra); err != nil {
		return nil, &ValidationError{What: whatLogoutToken, Code: CodeEvents, Detail: "events is not a JSON object", Err: err}
	}
	ev, ok := extra.Events[backchannelEvent]
	if !ok || len(ev) == 0 || ev[0] != '{' {
		return nil, invalid(whatLogoutToken, CodeEvents, "events lacks the %s member (an object)", backchannelEvent)
	}
	if extra.Nonce != nil {
		return nil, invalid(whatLogoutToken, CodeNonce, "a logout token must not contain nonce (is this an ID token?)")
	}
	if cl.Subject == "" && cl.SessionID == "" {
		return nil, invalid(whatLogoutToken, CodeSessionID, "neither sub nor sid is present")
	}
	until := oldest
	if cl.Expiry != 0 {
		if exp := cl.Expiry.Time().Add(c.p.skew); exp.Before(until) {
			until = exp
		}
	}
	return &LogoutToken{Claims: *cl, ValidUntil: until}, nil
}

// errorf formats an error mentioning what failed, for internal wrapping.
func errorf(format string, args ...any) error { return fmt.Errorf("rp: "+format, args...) }
