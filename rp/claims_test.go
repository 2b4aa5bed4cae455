package rp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/rp"
)

// knownClaims are the members ParseClaims decodes into typed fields.
var knownClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"azp": true, "nonce": true, "at_hash": true, "auth_time": true, "acr": true, "sid": true, "oid": true,
	"client_id": true, "email": true, "email_verified": true, "name": true, "roles": true,
	"permissions": true, "scope": true, "scopes": true, "cnf": true,
}

// referenceParseClaims is ParseClaims as it was, on encoding/json, except
// that member names match exactly (encoding/json alone would match them
// case-insensitively).
func referenceParseClaims(payload []byte) (*rp.Claims, error) {
	if !json.Valid(payload) {
		return nil, errors.New("invalid JSON")
	}
	// Keep the members whose name is exactly a known claim, in order and
	// with duplicates, so encoding/json applies its own rules to them.
	d := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	b := []byte{'{'}
	audNull := false
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		k := tok.(string)
		if !knownClaims[k] {
			continue
		}
		if k == "aud" {
			audNull = string(v) == "null"
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		b = append(append(append(b, kb...), ':'), v...)
	}
	b = append(b, '}')
	var c struct {
		rp.Claims
		ScopesArray rp.Scopes `json:"scopes"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if len(c.Claims.Scopes) == 0 {
		c.Claims.Scopes = c.ScopesArray
	}
	if audNull {
		c.Claims.Audience = nil // the old decoder made [""] of it; both mean "no audience"
	}
	c.Claims.Raw = append(json.RawMessage(nil), payload...)
	return &c.Claims, nil
}

// normalise projects the exported claims for comparison: empty and nil
// arrays are the same.
func normalise(c *rp.Claims) string {
	n := *c
	n.Raw = nil
	for _, p := range []*[]string{(*[]string)(&n.Audience), (*[]string)(&n.Scopes), &n.Roles, &n.Permissions} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	b, _ := json.Marshal(struct {
		rp.Claims
		Aud    []string
		Scopes []string
	}{n, n.Audience, n.Scopes})
	return string(b)
}

var claimsCases = []string{
	`{"cnf":{"jkt":"a"}}`, `{"cnf":{"JKT":"a","jkt":null}}`, `{"cnf":{"jkt":"a"},"cnf":{"x":1}}`, `{"cnf":null}`, `{"cnf":5}`,
	`{"cnf":{"jkt":1}}`, `{"cnf":{"jkt":1,"jkt":"b"}}`, `{"cnf":{"x5t#S256":"h"}}`,
	`{"iss":"https://op","sub":"usr_1","aud":["a","b"],"exp":1.5e9,"iat":1700000000,"scope":"a b","roles":["r"],"email_verified":"true"}`,
	`{"aud":"a","scopes":["x"],"exp":null}`,
	`{"scope":"","scopes":["x","y"]}`, `{"scope":"  a   b ","scopes":"c"}`, `{"scope":null}`, `{"scope":["p","q"]}`,
	`{"aud":null}`, `{"aud":[]}`, `{"aud":["a",null]}`, `{"aud":1}`, `{"aud":[1]}`,
	`{"exp":"soon"}`, `{"exp":-1}`, `{"exp":-0}`, `{"exp":1e11}`, `{"exp":100000000001}`, `{"exp":1e400}`, `{"exp":12.99}`,
	`{"exp":0.5e1}`, `{"iat":1700000000,"iat":1700000001}`, `{"sub":"a","sub":null}`, `{"sub":1}`, `{"name":{"first":"x"}}`,
	`{"email_verified":true}`, `{"email_verified":"yes"}`, `{"email_verified":null}`, `{"email_verified":1}`,
	`{"roles":null}`, `{"roles":"admin"}`, `{"permissions":["a:b",null]}`, `{"ISS":"x","Sub":"y"}`,
	`{"sub":"caf\u00e9","sid":"ses_\"q\""}`, `{"custom":{"deep":[1,{"x":null}]},"sub":"s"}`,
	`[]`, `null`, `"x"`, `{"aud":"a"`, `{"aud":"a"} x`, `{}`,
	`{"exp":0}`, `{"exp":0.0}`, `{"exp":0.999}`, `{"exp":1}`, `{"nbf":0,"iat":0,"auth_time":0}`, `{"exp":0,"exp":null}`, `{"exp":null,"exp":0}`,
	`{"typ":"ID","events":{},"c_hash":null,"s_hash":"x","nonce":null}`, `{"typ":7}`, `{"typ":"\u0049D"}`, `{"typ":"Bearer","nonce":"n"}`, `{"typ":"ID"`,
}

// A date claim that is present with the value 0 (or below one second) is a
// date, 1970-01-01: it must not read as absent, or "exp": 0 would make a
// token that never expires out of one that has always been expired.
func TestPresentZeroDateIsNotAbsent(t *testing.T) {
	for _, tc := range []struct {
		doc     string
		present bool
	}{
		{`{"exp":0}`, true}, {`{"exp":0.0}`, true}, {`{"exp":-0}`, true}, {`{"exp":0.25}`, true}, {`{"exp":0e5}`, true},
		{`{}`, false}, {`{"exp":null}`, false}, {`{"exp":0,"exp":null}`, false},
	} {
		for name, parse := range map[string]func([]byte) (*rp.Claims, error){"ParseClaims": rp.ParseClaims, "encoding/json": referenceParseClaims} {
			c, err := parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("%s(%s): %v", name, tc.doc, err)
			}
			if got := c.Expiry != 0; got != tc.present {
				t.Errorf("%s(%s): exp present = %v (Expiry %d), want %v", name, tc.doc, got, c.Expiry, tc.present)
			}
			if tc.present && !c.Expiry.Time().Before(time.Unix(2, 0)) {
				t.Errorf("%s(%s): exp reads as %v, want the first second of 1970", name, tc.doc, c.Expiry.Time())
			}
		}
	}
}

func TestParseClaimsMatchesEncodingJSON(t *testing.T) {
	for _, doc := range claimsCases {
		checkClaims(t, []byte(doc))
	}
}

func checkClaims(t *testing.T, payload []byte) {
	t.Helper()
	got, err := rp.ParseClaims(payload)
	want, wantErr := referenceParseClaims(payload)
	if err == nil && !json.Valid(payload) {
		t.Fatalf("%q: accepted invalid JSON", payload)
	}
	if err == nil && !bytes.Equal(got.Raw, payload) {
		t.Fatalf("%q: Raw is %q", payload, got.Raw)
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: ParseClaims err %v, encoding/json err %v", payload, err, wantErr)
	}
	if err == nil && normalise(got) != normalise(want) {
		t.Fatalf("%q:\n got %s\nwant %s", payload, normalise(got), normalise(want))
	}
}

func TestParseClaimsOwnsItsCopy(t *testing.T) {
	payload := []byte(`{"sub":"usr_1"}`)
	c, err := rp.ParseClaims(payload)
	if err != nil {
		t.Fatal(err)
	}
	copy(payload, `{"sub":"XXXXX"}`)
	if c.Subject != "usr_1" || string(c.Raw) != `{"sub":"usr_1"}` {
		t.Fatalf("claims share the caller's buffer: %q %q", c.Subject, c.Raw)
	}
}

// FuzzClaimsDecoder: the fast claims decoder agrees with encoding/json on
// which payloads are valid and on every typed claim.
func FuzzClaimsDecoder(f *testing.F) {
	for _, doc := range claimsCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Count(b, []byte("[")) > 1000 || bytes.Count(b, []byte("{")) > 1000 {
			return
		}
		checkClaims(t, b)
	})
}

// TestAuthenticatedWithin: the one max_age check (ID tokens, access
// tokens, web routes): auth_time present, not in the future beyond the
// skew, no older than max_age plus the skew; exact to the nanosecond, and
// no max_age overflows.
func TestAuthenticatedWithin(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) *rp.Claims { return &rp.Claims{AuthTime: rp.NumericDate(now.Add(d).Unix())} }
	const skew = 10 * time.Second
	for _, c := range []struct {
		name   string
		cl     *rp.Claims
		maxAge time.Duration
		want   bool
	}{
		{"nil claims", nil, time.Hour, false},
		{"no auth_time", &rp.Claims{}, time.Hour, false},
		{"just now", at(0), 0, true},
		{"within", at(-59 * time.Second), time.Minute, true},
		{"at max_age plus skew", at(-70 * time.Second), time.Minute, true},
		{"one second past", at(-71 * time.Second), time.Minute, false},
		{"ahead within skew", at(10 * time.Second), time.Minute, true},
		{"in the future", at(11 * time.Second), time.Minute, false},
		{"1970 with the largest max_age", &rp.Claims{AuthTime: 1}, math.MaxInt64, true},
		{"future with the largest max_age", at(time.Hour), math.MaxInt64, false},
		{"negative max_age", at(0), -time.Second, true}, // within skew
		{"negative max_age, older", at(-20 * time.Second), -time.Second, false},
	} {
		if got := c.cl.AuthenticatedWithin(c.maxAge, now, skew); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}
