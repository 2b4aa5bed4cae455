package middleware_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

// A logout token with only a sub arrives while a login of that subject is
// completing (the OP issued its ID token before the logout): the callback
// must not leave a session alive. The next sign-in, with an ID token issued
// after the logout, works.
func TestSubjectOnlyLogoutDuringLogin(t *testing.T) {
	op := oidctest.New(t)
	a := newTestApp(t, op, "webc_a", nil)
	b := newBrowser(t)
	logoutAt := time.Now().Add(-5 * time.Second).Truncate(time.Second)

	// The login starts; the OP issues its ID token before the logout.
	resp := b.get(a.srv.URL + "/auth/login?return_to=%2Fme")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	q := authURL.Query()
	cl := op.IDClaims(a.id, "usr_1", q.Get("nonce"))
	cl["iat"] = logoutAt.Add(-time.Second).Unix()
	delete(cl, "sid")
	code := "code-" + q.Get("state")[:10]
	op.AddGrant(code, oidctest.Grant{Claims: cl, Challenge: q.Get("code_challenge"), RefreshToken: "rt-" + code})

	// The user signs out at the OP: a logout token naming only the subject.
	token := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": a.id, "iat": logoutAt.Unix(), "jti": "jti-sub-1", "sub": "usr_1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}, oidctest.Header{"typ": "logout+jwt"})
	lr, err := http.Post(a.srv.URL+"/auth/backchannel-logout", "application/x-www-form-urlencoded", strings.NewReader("logout_token="+token))
	if err != nil || lr.StatusCode != 200 {
		t.Fatalf("back-channel logout: %v %v", err, lr)
	}

	// The callback completes after the logout.
	resp = b.get(a.srv.URL + "/auth/callback?code=" + code + "&state=" + q.Get("state"))
	if resp.StatusCode == http.StatusFound && resp.Header.Get("Location") == "/me" {
		if me := b.get(a.srv.URL + "/me"); me.StatusCode == 200 {
			t.Fatal("a login whose ID token predates the subject's logout left a session alive")
		}
	}

	// Signing in again (a new ID token) works.
	if resp := a.login(b, "/me", "usr_1", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in after the logout: %d %s", resp.StatusCode, body(resp))
	}
	if me := b.get(a.srv.URL + "/me"); me.StatusCode != 200 {
		t.Fatalf("/me after signing in again: %d", me.StatusCode)
	}
}
