package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

func decode(t *testing.T, raw string, opts TokenOptions) *TokenReport {
	t.Helper()
	rep := DecodeToken(context.Background(), raw, opts)
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	var j bytes.Buffer
	if err := rep.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	// The report shows claims, never the token or its signature.
	if parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(raw), "Bearer "), "."); len(parts) == 3 && len(parts[2]) > 8 {
		for _, out := range []string{b.String(), j.String()} {
			if strings.Contains(out, parts[2]) || strings.Contains(out, parts[1]) {
				t.Fatalf("the token was printed:\n%s", out)
			}
		}
	}
	if testing.Verbose() {
		t.Log("\n" + b.String())
	}
	return rep
}

func wantToken(t *testing.T, rep *TokenReport, name string, status Status, says ...string) {
	t.Helper()
	want(t, &Report{Checks: rep.Checks}, "", name, status, says...)
}

func TestDecodeToken(t *testing.T) {
	op := oidctest.New(t)
	const api = "https://api.example.com"
	idClaims := func(mut func(map[string]any)) string {
		m := op.IDClaims(testClient, "usr_1", "n-1")
		if mut != nil {
			mut(m)
		}
		return op.Signer().Sign(m, nil)
	}
	now := time.Now().Unix()
	accessToken := op.Signer().Sign(map[string]any{"iss": op.Issuer, "sub": "usr_1", "aud": api, "iat": now, "exp": now + 300, "scope": "orders:read"}, oidctest.Header{"typ": "at+jwt"})
	logoutToken := op.Signer().Sign(map[string]any{"iss": op.Issuer, "aud": testClient, "iat": now, "jti": "j", "sid": "ses_1",
		"events": map[string]any{backchannelEvent: map[string]any{}}}, oidctest.Header{"typ": "logout+jwt"})
	base := TokenOptions{Issuer: op.Issuer, ClientID: testClient, Audience: api}

	cases := []struct {
		name    string
		raw     string
		opts    func(*TokenOptions)
		kind    Kind
		verify  Status
		says    []string
		failure bool
	}{
		{"valid ID token", idClaims(nil), nil, KindID, OK, []string{"accepts this ID token for client " + testClient, "nonce belongs to the login"}, false},
		{"as a Bearer header", "Bearer " + idClaims(nil), nil, KindID, OK, nil, false},
		{"expired", idClaims(func(m map[string]any) { m["iat"], m["exp"] = now-7200, now-3600 }), nil, KindID, Fail, []string{"expired", "refresh it", "clock is ahead"}, true},
		{"issued in the future (clock behind)", idClaims(nil), func(o *TokenOptions) { o.Now = func() time.Time { return time.Now().Add(-5 * time.Minute) } }, KindID, Fail, []string{"in the future", "clock is behind the OP's", "NTP"}, true},
		{"another app's token", idClaims(func(m map[string]any) { m["aud"], m["azp"] = "webc_other", "webc_other" }), nil, KindID, Fail, []string{"does not contain this app's client id", "another app than client " + testClient}, true},
		{"another environment", idClaims(func(m map[string]any) { m["iss"] = "https://other-env.example.com" }), nil, KindID, Fail, []string{"another environment", "another issuer or OP environment than MULTIAPP_ISSUER"}, true},
		{"unknown key", oidctest.NewKey("k-gone", "RS256").Sign(op.IDClaims(testClient, "usr_1", "n"), nil), nil, KindID, Fail, []string{"unknown_key", "no key of the OP's JWKS has this kid"}, true},
		{"alg none", oidctest.Unsigned(op.IDClaims(testClient, "usr_1", "n")), nil, KindID, Fail, []string{"never none or HMAC"}, true},
		{"access token for the API", accessToken, nil, KindAccess, OK, []string{"for audience " + api}, false},
		{"access token for another API", accessToken, func(o *TokenOptions) { o.Audience = "https://billing.example.com" }, KindAccess, Fail, []string{"issued for another API"}, true},
		{"access token without audience configured", accessToken, func(o *TokenOptions) { o.Audience, o.ClientID = "", "" }, KindAccess, Skip, []string{"MULTIAPP_AUDIENCE"}, false},
		{"logout token", logoutToken, nil, KindLogout, OK, []string{"logout token", "jti replay"}, false},
		{"forced kind", idClaims(nil), func(o *TokenOptions) { o.Kind = KindLogout }, KindLogout, Fail, []string{"--kind"}, true},
		{"offline", idClaims(nil), func(o *TokenOptions) { o.Offline = true }, KindID, Skip, []string{"offline"}, false},
		{"no issuer configured", idClaims(nil), func(o *TokenOptions) { o.Issuer = "" }, KindID, Skip, []string{`the token says it comes from "` + op.Issuer + `"`}, false},
		{"issuer unreachable", idClaims(nil), func(o *TokenOptions) { o.Issuer = "http://127.0.0.1:1" }, KindID, Fail, []string{"cannot check the token", "multiapp doctor"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			if tc.opts != nil {
				tc.opts(&opts)
			}
			rep := decode(t, tc.raw, opts)
			if rep.Kind != tc.kind {
				t.Errorf("kind %q, want %q", rep.Kind, tc.kind)
			}
			wantToken(t, rep, "verify", tc.verify, tc.says...)
			if rep.Failed() != tc.failure {
				t.Errorf("failed %v, want %v", rep.Failed(), tc.failure)
			}
			if rep.Header == nil || len(rep.Claims) == 0 || len(rep.Times) == 0 {
				t.Errorf("header, claims or times missing: %+v", rep)
			}
		})
	}
	t.Run("not a JWT", func(t *testing.T) {
		wantToken(t, decode(t, "2YotnFZFEjr1zCsicMWpAA", base), "decode", Warn, "opaque token")
		wantToken(t, decode(t, "a.b.c.d.e", base), "decode", Warn, "encrypted token")
		wantToken(t, decode(t, "!!.e30.def", base), "decode", Fail, "not base64url")
	})
	t.Run("times", func(t *testing.T) {
		rep := decode(t, idClaims(nil), TokenOptions{Offline: true})
		var names []string
		for _, tc := range rep.Times {
			names = append(names, tc.Name+" "+tc.Relative)
		}
		if len(rep.Times) != 2 || rep.Times[0].Name != "iat" || rep.Times[1].Name != "exp" || !strings.HasPrefix(rep.Times[1].Relative, "in ") {
			t.Errorf("times %v", names)
		}
		var j struct {
			OK     bool            `json:"ok"`
			Kind   string          `json:"kind"`
			Claims json.RawMessage `json:"claims"`
		}
		var b bytes.Buffer
		_ = rep.WriteJSON(&b)
		if err := json.Unmarshal(b.Bytes(), &j); err != nil || !j.OK || j.Kind != "id_token" || !strings.Contains(string(j.Claims), `"sub": "usr_1"`) {
			t.Errorf("json %s (%v)", b.String(), err)
		}
	})
}

func TestDetectKind(t *testing.T) {
	op := oidctest.New(t)
	for _, tc := range []struct {
		header oidctest.Header
		claims map[string]any
		want   Kind
	}{
		{oidctest.Header{"typ": "at+jwt"}, map[string]any{}, KindAccess},
		{oidctest.Header{"typ": "application/at+jwt"}, map[string]any{}, KindAccess},
		{oidctest.Header{"typ": "logout+jwt"}, map[string]any{}, KindLogout},
		{nil, map[string]any{"events": map[string]any{backchannelEvent: map[string]any{}}}, KindLogout},
		{nil, map[string]any{"nonce": "n", "scope": "x"}, KindID},
		{nil, map[string]any{"aud": "https://api.example.com"}, KindAccess},
		{nil, map[string]any{"at_hash": "x", "aud": testClient}, KindID},
		{nil, map[string]any{"scope": "openid orders:read", "aud": testClient}, KindAccess},
		{nil, map[string]any{"aud": testClient}, KindID},
	} {
		rep := DecodeToken(context.Background(), op.Signer().Sign(tc.claims, tc.header), TokenOptions{Offline: true, ClientID: testClient, Audience: "https://api.example.com"})
		if rep.Kind != tc.want {
			t.Errorf("%v %v: kind %q, want %q", tc.header, tc.claims, rep.Kind, tc.want)
		}
	}
	if k, err := ParseKind("access"); err != nil || k != KindAccess {
		t.Error(k, err)
	}
	if _, err := ParseKind("refresh"); err == nil {
		t.Error("refresh accepted")
	}
}
