package rp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/internal/jsonread"
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
	// ACR is the Authentication Context Class Reference ("acr"): how the
	// user authenticated, in the OP's terms (a level of assurance, a
	// method). Step-up authentication (RFC 9470) requires one of a set.
	ACR string `json:"acr"`

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

	// Confirmation is the "cnf" claim (RFC 7800) of a sender-constrained
	// token, nil when there is none. Only AccessTokenVerifier.VerifyBound
	// accepts such tokens (Verify refuses them).
	Confirmation *Confirmation `json:"cnf,omitempty"`

	// Raw is the JSON payload the claims were decoded from. Do not modify
	// it: the string claims share its memory.
	Raw json.RawMessage `json:"-"`
}

// AuthenticatedWithin reports whether the user authenticated no longer
// than maxAge before now, by auth_time: present, not after now+skew, and
// not before now-maxAge-skew. It is the check of max_age (OpenID Connect
// Core §3.1.2.1 for ID tokens, RFC 9470 for access tokens). A maxAge of
// time.Duration's largest value, or anything negative, is taken as written
// (any age / none).
func (c *Claims) AuthenticatedWithin(maxAge time.Duration, now time.Time, skew time.Duration) bool {
	if c == nil || c.AuthTime == 0 {
		return false
	}
	at := c.AuthTime.Time()
	// at is after 1970 and not after now+skew: now.Sub(at) cannot overflow.
	return !at.After(now.Add(skew)) && now.Sub(at)-skew <= maxAge
}

// Decode unmarshals the payload's claims into v (a struct or map) for
// custom claims.
func (c *Claims) Decode(v any) error {
	if c.Raw == nil {
		return fmt.Errorf("%w: Claims.Decode on claims without a raw payload (use ParseClaims)", ErrConfig)
	}
	if err := json.Unmarshal(c.Raw, v); err != nil {
		return &ValidationError{What: "claims", Code: CodeMalformed, Detail: "the claims do not fit the value to decode into", Err: err}
	}
	return nil
}

// Confirmation is the cnf claim of a sender-constrained token (RFC 7800).
type Confirmation struct {
	// JKT is the base64url SHA-256 thumbprint (RFC 7638) of the DPoP key
	// the token is bound to (RFC 9449 §6); empty when the token is bound
	// by another method (e.g. mTLS, x5t#S256).
	JKT string `json:"jkt,omitempty"`
}

// UnmarshalJSON decodes a cnf object as ParseClaims does: member names
// match exactly, in order, a null jkt changes nothing.
func (c *Confirmation) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("rp: cnf is not a JSON object")
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return err
		}
		if tok == "jkt" && string(v) != "null" {
			if err := json.Unmarshal(v, &c.JKT); err != nil {
				return err
			}
		}
	}
	return nil
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
	// flagIDTokenClaim: nonce, at_hash, c_hash or s_hash, claims of ID
	// tokens (OpenID Connect Core §2, §3.3.2.11; FAPI 1.0 s_hash).
	flagIDTokenClaim
	// flagEvents: an "events" claim, the mark of a Security Event Token
	// (RFC 8417) such as a logout token.
	flagEvents
	// flagTypID, flagTypBearer: Keycloak's "typ" claim, "ID" in its ID
	// tokens and "Bearer" in its access tokens (which, before Keycloak 25,
	// also carry the login's nonce).
	flagTypID
	flagTypBearer
)

// notAccessToken reports whether the claims mark a token of another kind:
// an ID token (its claims, or Keycloak's typ "ID", unless Keycloak's typ
// "Bearer" says otherwise) or a security event token.
func (f claimFlags) notAccessToken() bool {
	return f&(flagTypID|flagEvents) != 0 || f&(flagIDTokenClaim|flagTypBearer) == flagIDTokenClaim
}

var errClaims error = errclass.New("rp: claims are not a JSON object of the expected claim types", errclass.Invalid)

// parseClaimsFlags decodes payload, which it keeps as Raw and whose memory
// the string claims share (the caller must never write to it again). It is the bearer hot path's decoder: one pass, no
// reflection, strings are substrings of one copy of the payload.
func parseClaimsFlags(payload []byte) (*Claims, claimFlags, error) {
	var flags claimFlags
	// Decode into a Claims on the stack, the arrays into one stack buffer;
	// then two allocations: the Claims and the arrays' backing.
	var c Claims
	var buf [32]string
	l := buf[:0]
	var aud, roles, perms, scopes, scopesArray span
	var r jsonread.Reader
	// The claims' strings are substrings of payload, which nobody writes
	// to from here on (Raw says so): no copy.
	r.Reset(unsafe.String(unsafe.SliceData(payload), len(payload)))
	if r.Peek() != jsonread.Object {
		return nil, 0, errClaims
	}
	r.BeginObject()
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
			l, aud = appendAudience(&r, l)
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
			flags |= flagIf(&r, flagIDTokenClaim)
			r.StringField(&c.Nonce)
		case "at_hash":
			flags |= flagIf(&r, flagIDTokenClaim)
			r.StringField(&c.AccessTokenHash)
		case "c_hash", "s_hash":
			flags |= flagIf(&r, flagIDTokenClaim)
			r.Skip()
		case "events":
			flags |= flagIf(&r, flagEvents)
			r.Skip()
		case "typ":
			if r.Peek() != jsonread.String {
				r.Skip()
				break
			}
			switch typ := r.ReadString(); {
			case strings.EqualFold(typ, "ID"):
				flags |= flagTypID
			case strings.EqualFold(typ, "Bearer"):
				flags |= flagTypBearer
			}
		case "auth_time":
			c.AuthTime = readDate(&r)
		case "acr":
			r.StringField(&c.ACR)
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
			l, roles = appendStrings(&r, l)
		case "permissions":
			l, perms = appendStrings(&r, l)
		case "scope":
			l, scopes = appendScopes(&r, l)
		case "scopes":
			l, scopesArray = appendScopes(&r, l)
		case "cnf":
			flags |= flagIf(&r, flagCnf)
			c.Confirmation = readConfirmation(&r, c.Confirmation)
		default:
			r.Skip()
		}
	}
	r.End()
	if r.Err() != nil {
		return nil, 0, errClaims
	}
	backing := append([]string(nil), l...)
	c.Audience = aud.of(backing)
	c.Roles = roles.of(backing)
	c.Permissions = perms.of(backing)
	c.Scopes = scopes.of(backing)
	if len(c.Scopes) == 0 {
		c.Scopes = scopesArray.of(backing)
	}
	c.Raw = payload
	out := new(Claims)
	*out = c
	return out, flags, nil
}

// readConfirmation reads a cnf claim into prev (which it allocates when
// nil), as encoding/json decodes into a *Confirmation field: null is nil,
// an object sets the members it has, anything else is an error.
func readConfirmation(r *jsonread.Reader, prev *Confirmation) *Confirmation {
	switch r.Peek() {
	case jsonread.Null:
		r.ReadNull()
		return nil
	case jsonread.Object:
	default:
		r.Fail()
		return nil
	}
	cnf := prev
	if cnf == nil {
		cnf = &Confirmation{}
	}
	r.BeginObject()
	for first := true; ; first = false {
		key, ok := r.NextKey(first)
		if !ok {
			break
		}
		if key == "jkt" {
			r.StringField(&cnf.JKT)
		} else {
			r.Skip()
		}
	}
	return cnf
}

// flagIf returns f when the next value is not null: a member whose value
// is null counts as absent.
func flagIf(r *jsonread.Reader, f claimFlags) claimFlags {
	if r.Peek() == jsonread.Null {
		return 0
	}
	return f
}

// span locates one array claim in a strArena.
type span struct {
	lo, hi int32
	set    bool // false: nil
}

// of returns the span's strings in backing, capacity capped so that an
// append by the caller cannot overwrite a neighbour.
func (s span) of(backing []string) []string {
	if !s.set {
		return nil
	}
	if backing == nil {
		return []string{}
	}
	return backing[s.lo:s.hi:s.hi]
}

// The array claims of a token are appended to one list (a stack buffer
// while it fits) and located by spans.

func spanOf(l []string, lo int) span { return span{lo: int32(lo), hi: int32(len(l)), set: true} }

// appendStrings: an array of strings (null elements are "") or null (nil).
func appendStrings(r *jsonread.Reader, l []string) ([]string, span) {
	lo := len(l)
	l, null := r.AppendStrings(l)
	if null || r.Err() != nil {
		return l[:lo], span{}
	}
	return l, spanOf(l, lo)
}

// appendAudience: a string, an array of strings, or null (absent).
func appendAudience(r *jsonread.Reader, l []string) ([]string, span) {
	if r.Peek() == jsonread.String {
		lo := len(l)
		l = append(l, r.ReadString())
		return l, spanOf(l, lo)
	}
	return appendStrings(r, l)
}

// appendScopes: a space-separated string, an array of strings, or null
// (empty).
func appendScopes(r *jsonread.Reader, l []string) ([]string, span) {
	switch r.Peek() {
	case jsonread.String:
		lo := len(l)
		l = fields(r.ReadString(), l)
		return l, spanOf(l, lo)
	case jsonread.Null:
		r.ReadNull()
		return l, span{set: true}
	}
	return appendStrings(r, l)
}

// fields appends strings.Fields(s) to out, without allocating for ASCII
// input.
func fields(s string, out []string) []string {
	n0, start := len(out), -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return append(out[:n0], strings.Fields(s)...)
		}
		if asciiSpace[c] {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// readDate reads a NumericDate: a non-negative number up to 1e11, or null
// (absent). A present date below one second reads as 1 (see NumericDate).
func readDate(r *jsonread.Reader) NumericDate {
	if v, ok := r.ReadUint(12); ok { // the usual integer seconds
		if v > 1e11 {
			r.Fail()
			return 0
		}
		return presentDate(NumericDate(v))
	}
	switch r.Peek() {
	case jsonread.Null:
		r.ReadNull()
		return 0
	case jsonread.Number:
	default:
		r.Fail()
		return 0
	}
	f, err := strconv.ParseFloat(r.ReadNumber(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		r.Fail()
		return 0
	}
	return presentDate(NumericDate(f))
}

// readBool reads true, false, "true", "false" or null.
func readBool(r *jsonread.Reader) Bool {
	switch r.Peek() {
	case jsonread.Bool:
		return Bool(r.ReadBool())
	case jsonread.Null:
		r.ReadNull()
		return false
	case jsonread.String:
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

// NumericDate is a JWT NumericDate: whole seconds since the epoch (a
// fractional date is truncated). The zero value means "absent" (or null).
//
// A date that is present with a value below one second ("exp": 0) is the
// first second of 1970, not an absent claim: it decodes as 1
// (1970-01-01T00:00:01Z), so that "exp": 0 is an expired token rather than
// one without expiry. Every check compares dates with the current time, for
// which that one second changes nothing.
type NumericDate int64

// presentDate maps a date that is present to a non-zero NumericDate.
func presentDate(d NumericDate) NumericDate { return max(d, 1) }

// UnmarshalJSON accepts an integer or a fractional JSON number, or null
// (absent).
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return errors.New("rp: a date claim is not a valid NumericDate")
	}
	*d = presentDate(NumericDate(f))
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
