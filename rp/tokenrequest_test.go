package rp

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestParseTokenResponse follows RFC 6749 §5.1: access_token and token_type
// are REQUIRED (token_type is judged by tokens()), expires_in is a number of
// seconds, and an error member makes the answer an error answer (§5.2)
// whatever the status.
func TestParseTokenResponse(t *testing.T) {
	now := time.Unix(1_767_225_600, 0)
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_token":"r","id_token":"i"}`, true},
		{`{"access_token":"a","token_type":"Bearer","expires_in":"300"}`, true},
		{`{"access_token":"a"}`, true}, // token_type missing: tokens() refuses it
		{`{"token_type":"Bearer"}`, false},
		{`{"access_token":7,"token_type":"Bearer"}`, false},
		{`{"access_token":"a","token_type":1}`, false},
		{`{"access_token":"a","expires_in":-1}`, false},
		{`{"access_token":"a","expires_in":1.5}`, false},
		{`{"access_token":"a"} {"access_token":"b"}`, false},
		{`[]`, false},
		{`null`, false},
		{`<html>`, false},
	} {
		tok, err := parseTokenResponse([]byte(c.body), now)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.body, err)
		}
		if err == nil && c.ok && tok.ExpiresIn == 300 && !tok.Expiry.Equal(now.Add(300*time.Second)) {
			t.Errorf("%s: expiry %v", c.body, tok.Expiry)
		}
	}
	_, err := parseTokenResponse([]byte(`{"error":"invalid_grant","error_description":"d"}`), now)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription != "d" {
		t.Fatalf("error member: %v", err)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_token":"r","id_token":"i"}`,
		`{"access_token":"a","expires_in":"60"}`, `{"error":"invalid_grant"}`, `{}`, `[`, `{"expires_in":1e400}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1_767_225_600, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseTokenResponse(body, now)
		if err == nil && (tok.AccessToken == "" || tok.ExpiresIn < 0 || (tok.ExpiresIn == 0) != tok.Expiry.IsZero()) {
			t.Fatalf("accepted %q as %+v", body, tok)
		}
	})
}
