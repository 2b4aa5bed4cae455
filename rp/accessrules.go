package rp

import (
	"slices"
	"time"

	"github.com/multiapp-go/multiapp/internal/jsonread"
)

// accessRules are the claim rules of one API's access tokens, JWT or
// introspected: aud, exp, nbf, iat and the required claims. The verifier
// and its introspector both apply them; neither calls back into the other.
type accessRules struct {
	p           *Provider
	audiences   []string
	required    []string // AccessTokenConfig.RequiredClaims
	jwtRequired []string // and, in strict mode, RFC 9068's
}

func newAccessRules(p *Provider, cfg AccessTokenConfig) *accessRules {
	r := &accessRules{p: p, audiences: slices.Clone(cfg.Audiences), required: slices.Clone(cfg.RequiredClaims)}
	r.jwtRequired = r.required
	if cfg.StrictRFC9068 {
		r.jwtRequired = slices.Clone(r.required)
		for _, name := range []string{"sub", "client_id", "iat", "jti"} {
			if !slices.Contains(r.jwtRequired, name) {
				r.jwtRequired = append(r.jwtRequired, name)
			}
		}
	}
	return r
}

// check applies the rules to a JWT (jwt: exp and the RFC 9068 claims of
// strict mode are required) or an introspection answer (allowNoAud: an
// answer without aud passes).
func (r *accessRules) check(cl *Claims, now time.Time, jwt, allowNoAud bool) error {
	if !r.audienceOK(cl.Audience) && !(allowNoAud && len(cl.Audience) == 0) {
		return invalid(whatAccessToken, CodeAudience, "aud %v contains none of this API's audiences %v (is the token meant for another API?)", []string(cl.Audience), r.audiences)
	}
	var times timeRule
	if jwt {
		times = requireExp
	}
	if err := r.p.checkTimes(whatAccessToken, cl, now, times); err != nil {
		return err
	}
	required := r.required
	if jwt {
		required = r.jwtRequired
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

func (r *accessRules) audienceOK(aud Audience) bool {
	for _, a := range aud {
		if slices.Contains(r.audiences, a) {
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
