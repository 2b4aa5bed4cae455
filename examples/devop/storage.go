package devop

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opClient adapts a Client to zitadel/oidc's op.Client.
type opClient struct {
	c *Client
	o *OP
}

var _ op.Client = opClient{}

func (c opClient) GetID() string                    { return c.c.ID }
func (c opClient) RedirectURIs() []string           { return slices.Clone(c.c.RedirectURIs) }
func (c opClient) PostLogoutRedirectURIs() []string { return slices.Clone(c.c.PostLogoutRedirectURIs) }
func (c opClient) ApplicationType() op.ApplicationType {
	switch {
	case !c.c.Public():
		return op.ApplicationTypeWeb
	case c.c.Native:
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeUserAgent
}

// AuthMethod is the registered method. The token and revocation endpoints
// enforce it before zitadel/oidc sees the request (authenticateClient):
// zitadel/oidc itself accepts a secret in the body for a client_secret_basic
// client.
func (c opClient) AuthMethod() oidc.AuthMethod {
	return oidc.AuthMethod(c.c.registeredAuthMethod())
}
func (c opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c opClient) LoginURL(id string) string {
	return loginPath + "?authRequestID=" + url.QueryEscape(id)
}

// AccessTokenType is bearer so that zitadel/oidc hands "tokenID:subject" to
// tokenCrypto.Encrypt, which returns this package's own JWT.
func (c opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c opClient) IDTokenLifetime() time.Duration      { return c.o.cfg.IDTokenLifetime }

// DevMode lets browser and native clients use http redirect URIs. Redirect URIs
// are still matched exactly.
func (c opClient) DevMode() bool { return true }
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) IsScopeAllowed(scope string) bool {
	return slices.Contains(c.c.allowedScopes(), scope)
}

// IDTokenUserinfoClaimsAssertion puts profile and email claims in the ID token
// even when an access token is issued, as Scalekit does.
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c opClient) ClockSkew() time.Duration             { return 0 }

// storage implements op.Storage on the OP's in-memory state.
type storage struct{ o *OP }

var (
	_ op.Storage                   = storage{}
	_ op.CanSetUserinfoFromRequest = storage{}
)

var errNotFound = errors.New("devop: not found")

func invalidGrant(desc string) error { return oidc.ErrInvalidGrant().WithDescription("%s", desc) }

func (s storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	o := s.o
	client := o.clients[req.ClientID]
	if client == nil {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	scopes := slices.DeleteFunc(slices.Clone([]string(req.Scopes)), func(sc string) bool {
		return !slices.Contains(client.allowedScopes(), sc)
	})
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	var challenge *oidc.CodeChallenge
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "":
		challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
	case client.Public():
		return nil, oidc.ErrInvalidRequest().WithDescription("a public client must use PKCE: send code_challenge with code_challenge_method=S256")
	}
	jkt, _ := ctx.Value(dpopJKTContext{}).(string)
	if jkt != "" {
		if err := checkDPoPJKT(jkt); err != nil {
			return nil, err
		}
	}
	ar := &authRequest{
		id:           newID(authRequestIDPrefix),
		clientID:     client.ID,
		redirectURI:  req.RedirectURI,
		scopes:       scopes,
		state:        req.State,
		nonce:        req.Nonce,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    challenge,
		prompt:       slices.Clone([]string(req.Prompt)),
		maxAge:       req.MaxAge,
		loginHint:    req.LoginHint,
		hintSubject:  userID,
		dpopJKT:      jkt,
		created:      time.Now(),
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sweepLocked()
	o.authReqs[ar.id] = ar
	return ar.clone(), nil
}

// authRequestLocked returns the live auth request with the id, or nil.
func (o *OP) authRequestLocked(id string) *authRequest {
	ar := o.authReqs[id]
	if ar == nil {
		return nil
	}
	if time.Since(ar.created) > o.cfg.CodeLifetime {
		o.deleteAuthRequestLocked(ar)
		return nil
	}
	return ar
}

func (o *OP) deleteAuthRequestLocked(ar *authRequest) {
	delete(o.authReqs, ar.id)
	if ar.code != "" {
		delete(o.codes, ar.code)
	}
}

func (s storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	ar := s.o.authRequestLocked(id)
	if ar == nil {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	return ar.clone(), nil
}

func (s storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	ar := s.o.authRequestLocked(s.o.codes[code])
	if ar == nil || !ar.done || ar.code != code {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return ar.clone(), nil
}

func (s storage) SaveAuthCode(ctx context.Context, id, code string) error {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	ar := s.o.authRequestLocked(id)
	if ar == nil || !ar.done {
		return oidc.ErrInvalidRequest().WithDescription("the sign-in request expired")
	}
	if ar.code != "" {
		delete(s.o.codes, ar.code)
	}
	ar.code = code
	s.o.codes[code] = id
	return nil
}

func (s storage) DeleteAuthRequest(ctx context.Context, id string) error {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if ar := s.o.authReqs[id]; ar != nil {
		s.o.deleteAuthRequestLocked(ar)
	}
	return nil
}

// liveSessionLocked returns the session with the id if it exists and has not
// expired. An expired session is left for endExpired to end.
func (o *OP) liveSessionLocked(id string) *session {
	ses := o.sessions[id]
	if ses == nil || !time.Now().Before(ses.expires) {
		return nil
	}
	return ses
}

// newAccessTokenLocked records an access token; its JWT is signed later by
// tokenCrypto.Encrypt.
// jkt is the DPoP key the token is bound to ("" for a Bearer token).
func (o *OP) newAccessTokenLocked(clientID, userID, sessionID, family, jkt string, scopes []string) *accessToken {
	now := time.Now()
	at := &accessToken{
		id:        newID(accessTokenIDPrefix),
		clientID:  clientID,
		userID:    userID,
		sessionID: sessionID,
		family:    family,
		audience:  append([]string{clientID}, slices.DeleteFunc(slices.Clone(o.cfg.AccessTokenAudience), func(a string) bool { return a == clientID })...),
		scopes:    slices.Clone(scopes),
		issued:    now,
		expires:   now.Add(o.cfg.AccessTokenLifetime),
		jkt:       jkt,
	}
	o.access[at.id] = at
	return at
}

// newRefreshTokenLocked records a refresh token; jkt is the DPoP key it is
// bound to ("" for none).
func (o *OP) newRefreshTokenLocked(family, clientID, userID, sessionID, jkt string, scopes []string, authTime time.Time) *refreshToken {
	now := time.Now()
	rt := &refreshToken{
		id:        newID(refreshTokenIDPrefix),
		token:     newID(refreshTokenPrefix),
		family:    family,
		clientID:  clientID,
		userID:    userID,
		sessionID: sessionID,
		scopes:    slices.Clone(scopes),
		authTime:  authTime,
		issued:    now,
		expires:   now.Add(o.cfg.RefreshTokenLifetime),
		jkt:       jkt,
	}
	o.refresh[rt.token] = rt
	return rt
}

func (s storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	switch r := req.(type) {
	case *authRequest:
		if o.liveSessionLocked(r.sessionID) == nil {
			return "", time.Time{}, invalidGrant("the OP session of this code has ended")
		}
		at := o.newAccessTokenLocked(r.clientID, r.userID, r.sessionID, "", proofKey(ctx), r.scopes)
		return at.id, at.expires, nil
	}
	return "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

func (s storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	switch r := req.(type) {
	case *authRequest:
		if o.liveSessionLocked(r.sessionID) == nil {
			return "", "", time.Time{}, invalidGrant("the OP session of this code has ended")
		}
		family := newID("fam_")
		rt := o.newRefreshTokenLocked(family, r.clientID, r.userID, r.sessionID, o.refreshBinding(r.clientID, "", proofKey(ctx)), r.scopes, r.authTime)
		at := o.newAccessTokenLocked(r.clientID, r.userID, r.sessionID, family, proofKey(ctx), r.scopes)
		return at.id, rt.token, at.expires, nil
	case *refreshRequest:
		old := o.refresh[current]
		// Checked again under the lock: two concurrent refreshes with one token
		// both pass TokenRequestByRefreshToken, only one may rotate it.
		if old == nil || old.id != r.rt.id || old.used {
			return "", "", time.Time{}, invalidGrant("refresh token already used or revoked")
		}
		if o.liveSessionLocked(old.sessionID) == nil {
			return "", "", time.Time{}, invalidGrant("the OP session of this refresh token has ended")
		}
		old.used = true
		// The new refresh token keeps the grant's full scope (RFC 6749, section
		// 6); only the access token gets a narrowed scope.
		rt := o.newRefreshTokenLocked(old.family, old.clientID, old.userID, old.sessionID, o.refreshBinding(old.clientID, old.jkt, proofKey(ctx)), old.scopes, old.authTime)
		at := o.newAccessTokenLocked(old.clientID, old.userID, old.sessionID, old.family, proofKey(ctx), r.scopes)
		return at.id, rt.token, at.expires, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// refreshBinding is the DPoP key a new refresh token of client is bound to:
// the key of the token it replaces (checked by checkTokenProof), else the
// key of the request's proof for a public client (RFC 9449 §5). A
// confidential client's refresh tokens are bound to its credentials, not to
// a key.
func (o *OP) refreshBinding(clientID, old, jkt string) string {
	switch c := o.clients[clientID]; {
	case old != "":
		return old
	case c != nil && c.Public():
		return jkt
	}
	return ""
}

func (s storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	o := s.o
	o.mu.Lock()
	rt := o.refresh[token]
	switch {
	case rt == nil:
		o.mu.Unlock()
		return nil, errors.New("unknown or revoked refresh token")
	case rt.used:
		if o.cfg.RevokeRefreshFamilyOnReuse {
			o.revokeFamilyLocked(rt.family)
		}
		o.mu.Unlock()
		o.cfg.Logger.Warn("refresh token replayed", "client_id", rt.clientID, "sid", rt.sessionID, "family_revoked", o.cfg.RevokeRefreshFamilyOnReuse)
		return nil, errors.New("refresh token already used")
	case !time.Now().Before(rt.expires):
		delete(o.refresh, token)
		o.mu.Unlock()
		return nil, errors.New("refresh token expired")
	}
	req := &refreshRequest{rt: *rt, scopes: slices.Clone(rt.scopes)}
	req.rt.scopes = slices.Clone(rt.scopes)
	sid := rt.sessionID
	live := o.liveSessionLocked(sid) != nil
	o.mu.Unlock()
	if !live {
		o.endExpired(ctx, sid)
		return nil, errors.New("the OP session of this refresh token has ended")
	}
	return req, nil
}

func (o *OP) revokeFamilyLocked(family string) {
	for tok, rt := range o.refresh {
		if rt.family == family {
			delete(o.refresh, tok)
		}
	}
	for id, at := range o.access {
		if at.family == family {
			o.deleteAccessLocked(id)
		}
	}
}

func (o *OP) deleteAccessLocked(id string) {
	if at := o.access[id]; at != nil {
		delete(o.accessByJWT, at.jwt)
		delete(o.access, id)
	}
}

// TerminateSession is not used: the end-session endpoint is served by this
// package (see OP.handleLogout).
func (s storage) TerminateSession(ctx context.Context, userID, clientID string) error { return nil }

func (s storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rt := range o.refresh {
		if rt.id == tokenOrID || rt.token == tokenOrID {
			if rt.clientID != clientID {
				return oidc.ErrInvalidClient().WithDescription("the token was issued to another client")
			}
			o.revokeFamilyLocked(rt.family)
			return nil
		}
	}
	if at := o.access[tokenOrID]; at != nil {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was issued to another client")
		}
		o.deleteAccessLocked(at.id)
	}
	// Unknown tokens are not an error (RFC 7009, section 2.2).
	return nil
}

func (s storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	rt := s.o.refresh[token]
	if rt == nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.userID, rt.id, nil
}

func (s storage) SigningKey(context.Context) (op.SigningKey, error) { return s.o.key, nil }
func (s storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.o.key}}, nil
}

func (s storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c := s.o.clients[clientID]
	if c == nil {
		return nil, fmt.Errorf("client %q: %w", clientID, errNotFound)
	}
	return opClient{c: c, o: s.o}, nil
}

func (s storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	c := s.o.clients[clientID]
	switch {
	case c == nil:
		return errors.New("unknown client")
	case c.Public():
		if secret == "" {
			return nil // some clients send "id:" in a Basic header for a public client
		}
		return errors.New("a public client has no secret")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1:
		return errors.New("wrong client secret")
	}
	return nil
}

func (o *OP) setUserinfo(info *oidc.UserInfo, userID string, scopes []string) error {
	u := o.users[userID]
	if u == nil {
		return fmt.Errorf("user: %w", errNotFound)
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.PreferredUsername = u.Email
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = true
		}
	}
	return nil
}

func (s storage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	return s.o.setUserinfo(info, userID, scopes)
}

// SetUserinfoFromRequest adds the OP session id (`sid`) to ID tokens.
func (s storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var sid string
	switch r := req.(type) {
	case *authRequest:
		sid = r.sessionID
	case *refreshRequest:
		sid = r.rt.sessionID
	}
	if sid != "" {
		info.AppendClaims("sid", sid)
	}
	return nil
}

func (o *OP) liveAccessToken(id string) (accessToken, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at := o.access[id]
	if at == nil || !time.Now().Before(at.expires) {
		return accessToken{}, false
	}
	return *at, true
}

func (s storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	at, ok := s.o.liveAccessToken(tokenID)
	if !ok || at.userID != subject {
		return oidc.ErrInvalidRequest().WithDescription("access token revoked or expired")
	}
	return s.o.setUserinfo(info, at.userID, at.scopes)
}

func (s storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, ok := s.o.liveAccessToken(tokenID)
	if !ok || at.userID != subject {
		return errors.New("inactive")
	}
	info := new(oidc.UserInfo)
	if err := s.o.setUserinfo(info, at.userID, at.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Claims = map[string]any{"sid": at.sessionID}
	if at.jkt != "" {
		resp.TokenType = "DPoP"
		resp.Claims["cnf"] = cnf(at.jkt)
	}
	resp.Expiration = oidc.FromTime(at.expires)
	resp.IssuedAt = oidc.FromTime(at.issued)
	resp.NotBefore = oidc.FromTime(at.issued)
	resp.Audience = at.audience
	resp.Issuer = s.o.issuer
	resp.JWTID = at.id
	return nil
}

func (s storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return nil, nil
}

func (s storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (s storage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s storage) Health(context.Context) error { return nil }

// signAccessToken signs the JWT of a recorded access token. Called by
// tokenCrypto.Encrypt during the token response.
func (o *OP) signAccessToken(id string) (string, error) {
	o.mu.Lock()
	at := o.access[id]
	if at == nil {
		o.mu.Unlock()
		return "", errors.New("devop: unknown access token")
	}
	rec := *at
	o.mu.Unlock()

	u := o.users[rec.userID]
	if u == nil {
		return "", fmt.Errorf("user: %w", errNotFound)
	}
	claims := map[string]any{
		"iss":         o.issuer,
		"sub":         rec.userID,
		"aud":         rec.audience,
		"iat":         rec.issued.Unix(),
		"nbf":         rec.issued.Unix(),
		"exp":         rec.expires.Unix(),
		"jti":         rec.id,
		"client_id":   rec.clientID,
		"sid":         rec.sessionID,
		"scope":       strings.Join(rec.scopes, " "),
		"roles":       nonNil(u.Roles),
		"permissions": nonNil(u.Permissions),
	}
	if rec.jkt != "" {
		claims["cnf"] = cnf(rec.jkt)
	}
	jwt, err := o.key.sign(claims, o.cfg.AccessTokenJWTType)
	if err != nil {
		return "", err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if at := o.access[id]; at != nil {
		at.jwt = jwt
		o.accessByJWT[jwt] = id
	}
	return jwt, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sweepLocked drops expired records so a long-running demo OP does not grow.
func (o *OP) sweepLocked() {
	now := time.Now()
	if now.Sub(o.lastSweep) < time.Minute {
		return
	}
	o.lastSweep = now
	for _, ar := range o.authReqs {
		if now.Sub(ar.created) > o.cfg.CodeLifetime {
			o.deleteAuthRequestLocked(ar)
		}
	}
	for id, at := range o.access {
		if !now.Before(at.expires) {
			o.deleteAccessLocked(id)
		}
	}
	for tok, rt := range o.refresh {
		if !now.Before(rt.expires) {
			delete(o.refresh, tok)
		}
	}
}
