package rp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// Claims are the claims multiapp reads from ID, logout and access tokens,
// typed. Raw holds the whole JSON payload for anything else.
type Claims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  Audience    `json:"aud"`
	Expiry    NumericDate `json:"exp"`
	NotBefore NumericDate `json:"nbf"`
	IssuedAt  NumericDate `json:"iat"`
	TokenID   string      `json:"jti"`

	AuthorizedParty string      `json:"azp"`
	Nonce           string      `json:"nonce"`
	AccessTokenHash string      `json:"at_hash"`
	AuthTime        NumericDate `json:"auth_time"`

	// SessionID is the OP session ("sid").
	SessionID string `json:"sid"`
	// OrganizationID is Scalekit's organization ("oid").
	OrganizationID string `json:"oid"`
	ClientID       string `json:"client_id"`

	Email         string `json:"email"`
	EmailVerified Bool   `json:"email_verified"`
	Name          string `json:"name"`

	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	// Scopes joins the "scope" string (RFC 9068) and a "scopes" array.
	Scopes Scopes `json:"scope"`

	// Raw is the JSON payload the claims were decoded from.
	Raw json.RawMessage `json:"-"`
}

// Decode unmarshals the payload's claims into v (a struct or map) for
// custom claims.
func (c *Claims) Decode(v any) error {
	if c.Raw == nil {
		return errors.New("rp: claims have no raw payload")
	}
	return json.Unmarshal(c.Raw, v)
}

// ParseClaims decodes a JSON payload into Claims. It validates nothing.
//
// Member names match exactly (not case-insensitively as encoding/json
// would), the last of duplicate members wins, and a known claim of the
// wrong JSON type is an error. The payload must be a JSON object.
func ParseClaims(payload []byte) (*Claims, error) {
	c, _, err := parseClaimsFlags(append([]byte(nil), payload...))
	return c, err
}

// claimFlags report claims that have no field in Claims but matter to a
// verifier.
type claimFlags uint8

const (
	// flagCnf: a "cnf" (confirmation) claim binds the token to a key
	// (DPoP, mTLS): it is not a bearer token.
	flagCnf claimFlags = 1 << iota
)

var errClaims = errors.New("rp: claims are not a JSON object of the expected claim types")

// parseClaimsFlags decodes payload, which it keeps as Raw (the caller must
// not reuse it). It is the bearer hot path's decoder: one pass, no
// reflection, strings are substrings of one copy of the payload.
func parseClaimsFlags(payload []byte) (*Claims, claimFlags, error) {
	var flags claimFlags
	c := new(Claims)
	c.Raw = payload
	var r jws.JSONReader
	r.Reset(string(payload))
	if r.Peek() != jws.JSONObject {
		return nil, 0, errClaims
	}
	r.BeginObject()
	var scopes, scopesArray Scopes
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		switch key {
		case "iss":
			r.StringField(&c.Issuer)
		case "sub":
			r.StringField(&c.Subject)
		case "aud":
			c.Audience = readAudience(&r)
		case "exp":
			c.Expiry = readDate(&r)
		case "nbf":
			c.NotBefore = readDate(&r)
		case "iat":
			c.IssuedAt = readDate(&r)
		case "jti":
			r.StringField(&c.TokenID)
		case "azp":
			r.StringField(&c.AuthorizedParty)
		case "nonce":
			r.StringField(&c.Nonce)
		case "at_hash":
			r.StringField(&c.AccessTokenHash)
		case "auth_time":
			c.AuthTime = readDate(&r)
		case "sid":
			r.StringField(&c.SessionID)
		case "oid":
			r.StringField(&c.OrganizationID)
		case "client_id":
			r.StringField(&c.ClientID)
		case "email":
			r.StringField(&c.Email)
		case "email_verified":
			c.EmailVerified = readBool(&r)
		case "name":
			r.StringField(&c.Name)
		case "roles":
			r.StringsField(&c.Roles)
		case "permissions":
			r.StringsField(&c.Permissions)
		case "scope":
			scopes = readScopes(&r)
		case "scopes":
			scopesArray = readScopes(&r)
		case "cnf":
			if r.Peek() != jws.JSONNull {
				flags |= flagCnf
			}
			r.Skip()
		default:
			r.Skip()
		}
	}
	r.End()
	if r.Err() != nil {
		return nil, 0, errClaims
	}
	c.Scopes = scopes
	if len(scopes) == 0 {
		c.Scopes = scopesArray
	}
	return c, flags, nil
}

// readAudience: a string, an array of strings, or null (absent).
func readAudience(r *jws.JSONReader) Audience {
	switch r.Peek() {
	case jws.JSONString:
		return Audience{r.ReadString()}
	case jws.JSONNull:
		r.ReadNull()
		return nil
	}
	var l []string
	r.StringsField(&l)
	return l
}

// readScopes: a space-separated string, an array of strings, or null.
func readScopes(r *jws.JSONReader) Scopes {
	switch r.Peek() {
	case jws.JSONString:
		return strings.Fields(r.ReadString())
	case jws.JSONNull:
		r.ReadNull()
		return Scopes{}
	}
	var l []string
	r.StringsField(&l)
	return l
}

// readDate reads a NumericDate: a non-negative number up to 1e11, or null.
func readDate(r *jws.JSONReader) NumericDate {
	switch r.Peek() {
	case jws.JSONNull:
		r.ReadNull()
		return 0
	case jws.JSONNumber:
	default:
		r.Fail()
		return 0
	}
	lit := r.ReadNumber()
	if len(lit) > 0 && len(lit) <= 12 && lit[0] != '-' {
		// Fast path for the usual integer seconds.
		var v int64
		for i := 0; i < len(lit); i++ {
			c := lit[i]
			if c < '0' || c > '9' {
				goto float
			}
			v = v*10 + int64(c-'0')
		}
		if v > 1e11 {
			r.Fail()
			return 0
		}
		return NumericDate(v)
	}
float:
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		r.Fail()
		return 0
	}
	return NumericDate(f)
}

// readBool reads true, false, "true", "false" or null.
func readBool(r *jws.JSONReader) Bool {
	switch r.Peek() {
	case jws.JSONBool:
		return Bool(r.ReadBool())
	case jws.JSONNull:
		r.ReadNull()
		return false
	case jws.JSONString:
		switch r.ReadString() {
		case "true":
			return true
		case "false":
			return false
		}
	}
	r.Fail()
	return false
}

// HasScope, HasRole and HasPermission report membership.
func (c *Claims) HasScope(s string) bool      { return slices.Contains(c.Scopes, s) }
func (c *Claims) HasRole(r string) bool       { return slices.Contains(c.Roles, r) }
func (c *Claims) HasPermission(p string) bool { return slices.Contains(c.Permissions, p) }

// Audience is the "aud" claim: a string or an array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("rp: aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

// Contains reports whether aud holds s.
func (a Audience) Contains(s string) bool { return slices.Contains(a, s) }

// Scopes is a space-separated "scope" string or an array of strings.
type Scopes []string

// UnmarshalJSON accepts a space-separated string or an array of strings.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = strings.Fields(str)
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("rp: scope is neither a string nor an array of strings")
	}
	*s = l
	return nil
}

// NumericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional. The zero value means "absent".
type NumericDate int64

// UnmarshalJSON accepts an integer or a fractional JSON number.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return errors.New("rp: a date claim is not a valid NumericDate")
	}
	*d = NumericDate(f)
	return nil
}

// Time returns the date as a time.Time, the zero Time when absent.
func (d NumericDate) Time() time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(int64(d), 0)
}

// Bool is a JSON boolean that some OPs send as the string "true"/"false".
type Bool bool

// UnmarshalJSON accepts true, false, "true" and "false".
func (v *Bool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*v = true
	case "false", `"false"`, "null":
		*v = false
	default:
		return errors.New("rp: boolean claim is not a boolean")
	}
	return nil
}
