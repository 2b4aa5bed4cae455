package rp

import (
	"slices"
	"time"

	"github.com/multiapp-go/multiapp/internal/jsonread"
)

// checkClaims applies aud, exp, nbf, iat and the required claims to a JWT
// (jwt: exp and the RFC 9068 claims of strict mode are required) or an
// introspection answer (allowNoAud: an answer without aud passes).
func (v *AccessTokenVerifier) checkClaims(cl *Claims, now time.Time, jwt, allowNoAud bool) error {
	if !v.audienceOK(cl.Audience) && !(allowNoAud && len(cl.Audience) == 0) {
		return invalid(whatAccessToken, CodeAudience, "aud %v contains none of this API's audiences %v (is the token meant for another API?)", []string(cl.Audience), v.audiences)
	}
	switch {
	case cl.Expiry == 0 && jwt:
		return invalid(whatAccessToken, CodeExpired, "exp is missing")
	case cl.Expiry != 0 && !now.Before(cl.Expiry.Time().Add(v.skew)):
		return invalid(whatAccessToken, CodeExpired, "expired at %s, now is %s (if tokens look expired as soon as they arrive, check this server's clock)", cl.Expiry.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if cl.NotBefore != 0 && now.Add(v.skew).Before(cl.NotBefore.Time()) {
		return invalid(whatAccessToken, CodeNotYetValid, "nbf %s is in the future (check this server's clock)", cl.NotBefore.Time().UTC().Format(time.RFC3339))
	}
	if cl.IssuedAt != 0 && now.Add(v.skew).Before(cl.IssuedAt.Time()) {
		return invalid(whatAccessToken, CodeIssuedAt, "iat %s is in the future, now is %s (this server's clock is behind the OP's)", cl.IssuedAt.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	required := v.required
	if jwt {
		required = v.jwtRequired
	}
	for _, name := range required {
		if !hasClaim(cl, name) {
			code := CodeMalformed
			switch name {
			case "iat":
				code = CodeIssuedAt
			case "sub":
				code = CodeSubject
			case "jti":
				code = CodeTokenID
			case "sid":
				code = CodeSessionID
			}
			return invalid(whatAccessToken, code, "required claim %q is missing", name)
		}
	}
	return nil
}

func (v *AccessTokenVerifier) audienceOK(aud Audience) bool {
	for _, a := range aud {
		if slices.Contains(v.audiences, a) {
			return true
		}
	}
	return false
}

// hasClaim reports whether the claim is present and not empty.
func hasClaim(cl *Claims, name string) bool {
	switch name {
	case "iss":
		return cl.Issuer != ""
	case "sub":
		return cl.Subject != ""
	case "aud":
		return len(cl.Audience) > 0
	case "exp":
		return cl.Expiry != 0
	case "nbf":
		return cl.NotBefore != 0
	case "iat":
		return cl.IssuedAt != 0
	case "jti":
		return cl.TokenID != ""
	case "sid":
		return cl.SessionID != ""
	case "oid":
		return cl.OrganizationID != ""
	case "client_id":
		return cl.ClientID != ""
	case "azp":
		return cl.AuthorizedParty != ""
	case "email":
		return cl.Email != ""
	case "name":
		return cl.Name != ""
	case "roles":
		return len(cl.Roles) > 0
	case "permissions":
		return len(cl.Permissions) > 0
	case "scope", "scopes":
		return len(cl.Scopes) > 0
	}
	return rawClaimPresent(cl.Raw, name)
}

// rawClaimPresent reports whether the JSON object raw has member name with
// a value that is not null, "", [] or {}.
func rawClaimPresent(raw []byte, name string) bool {
	var r jsonread.Reader
	r.Reset(string(raw))
	r.BeginObject()
	present := false
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		if key != name {
			r.Skip()
			continue
		}
		switch r.Peek() {
		case jsonread.Null:
			present = false
			r.Skip()
		case jsonread.String:
			present = r.ReadString() != ""
		case jsonread.Array:
			r.BeginArray()
			present = r.NextElem(true)
			if present {
				r.Skip()
				for r.NextElem(false) {
					r.Skip()
				}
			}
		case jsonread.Object:
			r.BeginObject()
			_, present = r.NextKey(true)
			if present {
				r.Skip()
				for {
					if _, ok := r.NextKey(false); !ok {
						break
					}
					r.Skip()
				}
			}
		default:
			present = true
			r.Skip()
		}
	}
	return present && r.Err() == nil
}
