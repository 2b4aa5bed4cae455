package middleware

import (
	"bytes"

	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// The token set crosses from rp to the session record here, and only here:
// rp validates the OP's answers (rp.Tokens, with typed claims) and must not
// depend on the store; the store keeps what backends can persist
// (tokenstore.Tokens, the same fields with the ID token's claims as their
// JSON payload) and must not depend on rp. The typed claims travel with the
// record in its claims cache, so a record is decoded once: at the login and
// at each refresh, from what rp validated.

// storedTokens is t as a session record keeps it, its claims already
// parsed.
func storedTokens(t *rp.Tokens) tokenstore.Tokens {
	st := tokenstore.Tokens{
		AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry,
		RefreshToken: t.RefreshToken, IDToken: t.IDToken,
	}
	if t.Claims != nil {
		st.Claims = bytes.Clone(t.Claims.Raw) // the record's own: the claims' strings share Raw
		tokenstore.SetParsedClaims(&st, t.Claims)
	}
	return st
}

// rpTokens is the token set of rec as rp.Client.Refresh takes it.
func rpTokens(rec *tokenstore.Session, claims *rp.Claims) *rp.Tokens {
	t := &rec.Tokens
	return &rp.Tokens{
		AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry,
		RefreshToken: t.RefreshToken, IDToken: t.IDToken, Claims: claims,
	}
}

// recordClaims returns the claims of rec's ID token, parsed once per token
// set (see tokenstore.ParsedClaims). A record whose claims do not parse
// (none, or not a JSON object of the claim types) was not written by this
// package from a validated ID token: it is not a usable session.
func recordClaims(rec *tokenstore.Session) (*rp.Claims, error) {
	return tokenstore.ParsedClaims(&rec.Tokens, rp.ParseClaims)
}
