package rp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
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
func ParseClaims(payload []byte) (*Claims, error) {
	var c struct {
		Claims
		ScopesArray Scopes `json:"scopes"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if len(c.Claims.Scopes) == 0 {
		c.Claims.Scopes = c.ScopesArray
	}
	c.Claims.Raw = append(json.RawMessage(nil), payload...)
	return &c.Claims, nil
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
