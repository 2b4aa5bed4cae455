package devop_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/devop"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	iss := e.op.Issuer()
	if !strings.HasPrefix(iss, "http://127.0.0.1:") {
		t.Fatalf("issuer %q", iss)
	}
	resp, err := http.Get(e.op.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"issuer":                 iss,
		"authorization_endpoint": iss + "/oauth/authorize",
		"token_endpoint":         iss + "/oauth/token",
		"end_session_endpoint":   iss + "/oidc/logout",
		"jwks_uri":               iss + "/keys",
		"userinfo_endpoint":      iss + devop.UserinfoPath,
		"revocation_endpoint":    iss + devop.RevocationPath,
		"introspection_endpoint": iss + devop.IntrospectionPath,
	} {
		if d[field] != want {
			t.Errorf("%s = %v, want %s", field, d[field], want)
		}
	}
	for _, field := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if d[field] != true {
			t.Errorf("%s = %v, want true", field, d[field])
		}
	}
	list := func(field string) []string {
		var out []string
		for _, v := range d[field].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
	for _, m := range []string{"client_secret_post", "client_secret_basic", "none"} {
		if !contains(list("token_endpoint_auth_methods_supported"), m) {
			t.Errorf("token_endpoint_auth_methods_supported lacks %s", m)
		}
	}
	for _, s := range []string{"openid", "profile", "email", "offline_access"} {
		if !contains(list("scopes_supported"), s) {
			t.Errorf("scopes_supported lacks %s", s)
		}
	}
	if got := list("grant_types_supported"); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("grant_types_supported = %v", got)
	}
	if got := list("response_types_supported"); !slices.Equal(got, []string{"code"}) {
		t.Errorf("response_types_supported = %v", got)
	}
	if got := list("id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v", got)
	}
	if _, ok := d["device_authorization_endpoint"]; ok {
		t.Error("device_authorization_endpoint published")
	}
	if resp.Header.Get("Access-Control-Allow-Origin") == "" {
		// a browser app must be able to read it
		req, _ := http.NewRequest(http.MethodGet, e.op.DiscoveryURL(), nil)
		req.Header.Set("Origin", "http://localhost:8083")
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8083" {
			t.Errorf("no CORS on discovery: %v", r2.Header)
		}
	}
}

func TestLoginConfidentialClient(t *testing.T) {
	for name, how := range map[string]clientAuth{devop.AuthMethodPost: authPost, devop.AuthMethodBasic: authBasic} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *devop.Config) { c.Clients[0].AuthMethod = name })
			e.dashboard.AuthMethod = name
			b := newBrowser(t, e.op)
			a := &auth{client: e.dashboard, state: "st-1", nonce: "n-1"}
			code := b.login(a, "alice@example.com")
			tr := mustTokens(t, exchange(t, e.op, a, code, how))
			if tr.TokenType != "Bearer" || tr.IDToken == "" || tr.RefreshToken == "" {
				t.Fatalf("token response %+v", tr)
			}
			if tr.ExpiresIn < 290 || tr.ExpiresIn > 300 {
				t.Errorf("expires_in = %d, want about 300", tr.ExpiresIn)
			}
			if tr.Scope != "openid profile email offline_access" {
				t.Errorf("scope = %q", tr.Scope)
			}
			// The code is single-use.
			if again := exchange(t, e.op, a, code, how); again.Status != http.StatusBadRequest || again.Error != "invalid_grant" {
				t.Errorf("code replay: %d %s", again.Status, again.Error)
			}
			if st := e.op.Stats(); st.TokenRequests["authorization_code"] != 2 || st.TokenErrors["authorization_code"] != 1 || st.Logins != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestRegisteredAuthMethodEnforced: like Ory Hydra, the OP accepts only the
// token_endpoint_auth_method a client is registered with (client_secret_basic
// when none is given, RFC 7591 §2), and answers any other method with
// invalid_client before it looks at the code: the code stays good.
func TestRegisteredAuthMethodEnforced(t *testing.T) {
	for _, tc := range []struct {
		registered string
		good, bad  clientAuth
	}{
		{"", authBasic, authPost},
		{devop.AuthMethodBasic, authBasic, authPost},
		{devop.AuthMethodPost, authPost, authBasic},
	} {
		t.Run("registered="+tc.registered, func(t *testing.T) {
			e := newEnv(t, func(c *devop.Config) { c.Clients[0].AuthMethod = tc.registered })
			b := newBrowser(t, e.op)
			a := &auth{client: e.dashboard, state: "s"}
			code := b.login(a, "bob")
			tr := exchange(t, e.op, a, code, tc.bad)
			if tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" || !strings.Contains(tr.ErrorDescription, "registered for token_endpoint_auth_method") {
				t.Errorf("other method: %d %s %q", tr.Status, tr.Error, tr.ErrorDescription)
			}
			if tr := exchange(t, e.op, a, code, authNone); tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
				t.Errorf("no secret: %d %s", tr.Status, tr.Error)
			}
			mustTokens(t, exchange(t, e.op, a, code, tc.good))
		})
	}
}

// TestClientAuthenticatedBeforeCode: a wrong or missing secret is
// invalid_client whatever the code, so invalid_grant always means the
// credentials were accepted (what `multiapp doctor` relies on).
func TestClientAuthenticatedBeforeCode(t *testing.T) {
	e := newEnv(t)
	bad := e.dashboard
	bad.Secret = "not-the-secret"
	for name, tc := range map[string]struct {
		c    devop.Client
		how  clientAuth
		want string
	}{
		"right secret":   {e.dashboard, authPost, "invalid_grant"},
		"wrong secret":   {bad, authPost, "invalid_client"},
		"no secret":      {e.dashboard, authNone, "invalid_client"},
		"unknown client": {devop.Client{ID: "nobody", Secret: "x", RedirectURIs: e.dashboard.RedirectURIs}, authPost, "invalid_client"},
	} {
		tr := exchange(t, e.op, &auth{client: tc.c, state: "s"}, "made-up-code", tc.how)
		if tr.Error != tc.want {
			t.Errorf("%s: %d %s %q, want %s", name, tr.Status, tr.Error, tr.ErrorDescription, tc.want)
		}
	}
}

// TestBasicCredentialsFormEncoded: in client_secret_basic, id and secret are
// form-urlencoded before base64 (RFC 6749 §2.3.1). The OP decodes them, so a
// secret with ':' '%' '+' or a space works only when the client encodes it.
func TestBasicCredentialsFormEncoded(t *testing.T) {
	const secret = "a:b%c+d e"
	e := newEnv(t, func(c *devop.Config) {
		c.Clients[0].Secret, c.Clients[0].AuthMethod = secret, devop.AuthMethodBasic
	})
	c := e.dashboard
	c.Secret = secret
	b := newBrowser(t, e.op)
	a := &auth{client: c, state: "s"}
	code := b.login(a, "bob")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}}
	raw, _ := http.NewRequest(http.MethodPost, e.op.Issuer()+devop.TokenPath, strings.NewReader(form.Encode()))
	raw.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	raw.SetBasicAuth(c.ID, secret) // not form-encoded
	resp, err := http.DefaultClient.Do(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("unencoded Basic credentials: %d %v", resp.StatusCode, resp.Header)
	}
	mustTokens(t, exchange(t, e.op, a, code, authBasic))
}

func TestWrongClientSecret(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s"}
	code := b.login(a, "bob")
	bad := e.dashboard
	bad.Secret = "not-the-secret"
	for _, how := range []clientAuth{authPost, authBasic} {
		tr := exchange(t, e.op, &auth{client: bad, state: "s"}, code, how)
		if tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
			t.Errorf("wrong secret (%v): %d %s", how, tr.Status, tr.Error)
		}
	}
	// Without any secret a confidential client is refused too.
	if tr := exchange(t, e.op, a, code, authNone); tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
		t.Errorf("no secret: %d %s", tr.Status, tr.Error)
	}
	// The code is still good for the real client.
	mustTokens(t, exchange(t, e.op, a, code, authPost))
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s"}
	p := b.visit(http.MethodGet, a.url(e.op), nil)
	bad := b.submitLogin(p, "alice@example.com", "wrong")
	if bad.status != http.StatusUnauthorized || !bad.isLoginForm() || !strings.Contains(bad.body, "Wrong email or password") {
		t.Fatalf("wrong password: %d %.200s", bad.status, bad.body)
	}
	codeFrom(t, b.submitLogin(bad, "alice", devop.DemoPassword), a) // local part works as login name
	if st := e.op.Stats(); st.LoginFailures != 1 || st.Logins != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPublicClientPKCE(t *testing.T) {
	e := newEnv(t)
	t.Run("S256", func(t *testing.T) {
		b := newBrowser(t, e.op)
		a := &auth{client: e.spa, state: "s", nonce: "n", verifier: "verifier-0123456789-0123456789-0123456789-abc"}
		code := b.login(a, "bob@example.com")
		wrong := *a
		wrong.verifier = "another-verifier-0123456789-0123456789-0123456789"
		if tr := exchange(t, e.op, &wrong, code, authNone); tr.Status != http.StatusBadRequest || tr.Error != "invalid_grant" {
			t.Errorf("wrong verifier: %d %s", tr.Status, tr.Error)
		}
		tr := mustTokens(t, exchange(t, e.op, a, code, authNone))
		if tr.RefreshToken == "" {
			t.Error("no refresh token for the public client")
		}
		if r := mustTokens(t, refresh(t, e.op, e.spa, authNone, tr.RefreshToken)); r.RefreshToken == tr.RefreshToken {
			t.Error("refresh token not rotated")
		}
	})
	refused := func(t *testing.T, a *auth, wantDesc string) {
		b := newBrowser(t, e.op)
		p := b.visit(http.MethodGet, a.url(e.op), nil)
		if p.left == nil || p.loginForms > 0 {
			t.Fatalf("expected an error redirect, got %d: %.200s", p.status, p.body)
		}
		q := p.left.Query()
		if q.Get("error") != "invalid_request" || q.Get("state") != a.state || q.Get("code") != "" || !strings.Contains(q.Get("error_description"), wantDesc) {
			t.Fatalf("got %s", p.left)
		}
	}
	t.Run("without PKCE", func(t *testing.T) {
		refused(t, &auth{client: e.spa, state: "s1"}, "PKCE")
	})
	t.Run("plain", func(t *testing.T) {
		a := &auth{client: e.spa, state: "s2", extra: url.Values{"code_challenge": {"plain-verifier-0123456789-0123456789-0123456789"}, "code_challenge_method": {"plain"}}}
		refused(t, a, "S256")
	})
	t.Run("confidential client with plain", func(t *testing.T) {
		a := &auth{client: e.dashboard, state: "s3", extra: url.Values{"code_challenge": {"plain-verifier-0123456789-0123456789-0123456789"}}}
		refused(t, a, "S256")
	})
	t.Run("confidential client with S256", func(t *testing.T) {
		b := newBrowser(t, e.op)
		a := &auth{client: e.dashboard, state: "s", verifier: "verifier-0123456789-0123456789-0123456789-xyz"}
		code := b.login(a, "bob@example.com")
		noVerifier := *a
		noVerifier.verifier = ""
		if tr := exchange(t, e.op, &noVerifier, code, authPost); tr.Status != http.StatusBadRequest {
			t.Errorf("missing code_verifier: %d %s", tr.Status, tr.Error)
		}
		mustTokens(t, exchange(t, e.op, a, code, authPost))
	})
}

func TestUnregisteredRedirectURI(t *testing.T) {
	e := newEnv(t)
	for _, redirect := range []string{
		e.dash.URL() + "/auth/callback/", // trailing slash
		e.dash.URL() + "/other",
		strings.Replace(e.dash.URL(), "127.0.0.1", "localhost", 1) + "/auth/callback",
		"https://evil.example/auth/callback",
	} {
		b := newBrowser(t, e.op)
		p := b.visit(http.MethodGet, (&auth{client: e.dashboard, redirect: redirect, state: "s"}).url(e.op), nil)
		if p.left != nil || p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Fatalf("%s: status %d, left %v", redirect, p.status, p.left)
		}
		if !strings.Contains(p.body, "not registered") || !strings.Contains(p.body, e.dash.URL()+"/auth/callback") {
			t.Errorf("%s: page does not explain: %.400s", redirect, p.body)
		}
		if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("content type %q", p.header.Get("Content-Type"))
		}
	}
	b := newBrowser(t, e.op)
	p := b.visit(http.MethodGet, (&auth{client: devop.Client{ID: "nobody", RedirectURIs: []string{e.dash.URL() + "/auth/callback"}}}).url(e.op), nil)
	if p.left != nil || p.status != http.StatusBadRequest || !strings.Contains(p.body, "Unknown client") {
		t.Errorf("unknown client: %d %v", p.status, p.left)
	}
}

func TestNativeLoopbackAnyPort(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.cli, redirect: "http://127.0.0.1:54321/callback", state: "s", verifier: "cli-verifier-0123456789-0123456789-0123456789"}
	code := b.login(a, "alice@example.com")
	mustTokens(t, exchange(t, e.op, a, code, authNone))
	for _, bad := range []string{"http://127.0.0.1:54321/other", "http://192.0.2.1:54321/callback"} {
		p := newBrowser(t, e.op).visit(http.MethodGet, (&auth{client: e.cli, redirect: bad, state: "s", verifier: a.verifier}).url(e.op), nil)
		if p.left != nil || p.status != http.StatusBadRequest {
			t.Errorf("%s accepted: %d %v", bad, p.status, p.left)
		}
	}
}

func TestSingleSignOnAcrossClients(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a1 := &auth{client: e.dashboard, state: "s1", nonce: "n1"}
	t1 := mustTokens(t, exchange(t, e.op, a1, b.login(a1, "alice@example.com"), authPost))

	a2 := &auth{client: e.docsClient, state: "s2", nonce: "n2"}
	p := b.visit(http.MethodGet, a2.url(e.op), nil)
	if p.loginForms != 0 {
		t.Fatal("the second client was shown a login page")
	}
	t2 := mustTokens(t, exchange(t, e.op, a2, codeFrom(t, p, a2), authPost))

	id1, id2 := verify(t, e.op, t1.IDToken), verify(t, e.op, t2.IDToken)
	if id1.str("sid") == "" || id1.str("sid") != id2.str("sid") || id1.str("sub") != id2.str("sub") {
		t.Errorf("sid/sub differ: %v %v", id1.claims, id2.claims)
	}
	if id1.num("auth_time") != id2.num("auth_time") {
		t.Error("SSO changed auth_time")
	}
	ss := e.op.Sessions()
	if len(ss) != 1 || ss[0].ID != id1.str("sid") || !slices.Equal(ss[0].Clients, []string{"dashboard", "docs"}) || ss[0].UserID != "usr_alice" {
		t.Errorf("sessions %+v", ss)
	}
	if st := e.op.Stats(); st.Logins != 1 || st.SilentLogins != 1 {
		t.Errorf("stats %+v", st)
	}
	// Another browser has no session.
	if p := newBrowser(t, e.op).visit(http.MethodGet, a2.url(e.op), nil); !p.isLoginForm() {
		t.Error("a browser without the OP cookie was signed in")
	}
}

func TestPromptNone(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "silent-1", prompt: "none"}
	p := b.visit(http.MethodGet, a.url(e.op), nil)
	if p.left == nil || p.loginForms != 0 {
		t.Fatalf("prompt=none without session: %d %.200s", p.status, p.body)
	}
	if q := p.left.Query(); q.Get("error") != "login_required" || q.Get("state") != "silent-1" || q.Get("code") != "" {
		t.Fatalf("prompt=none without session: %s", p.left)
	}
	if !strings.HasPrefix(p.left.String(), e.dash.URL()+"/auth/callback?") {
		t.Errorf("error sent to %s", p.left)
	}

	b.login(&auth{client: e.docsClient, state: "s"}, "bob@example.com")
	a.state = "silent-2"
	p = b.visit(http.MethodGet, a.url(e.op), nil)
	if p.loginForms != 0 {
		t.Fatal("prompt=none showed a page")
	}
	mustTokens(t, exchange(t, e.op, a, codeFrom(t, p, a), authPost))

	// max_age=0 with prompt=none: the session is too old.
	a.state, a.extra = "silent-3", url.Values{"max_age": {"0"}}
	if p := b.visit(http.MethodGet, a.url(e.op), nil); p.left == nil || p.left.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none max_age=0: %v", p.left)
	}
	if st := e.op.Stats(); st.LoginRequired != 2 || st.SilentLogins != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPromptLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s"}
	first := verify(t, e.op, mustTokens(t, exchange(t, e.op, a, b.login(a, "alice@example.com"), authPost)).IDToken)
	time.Sleep(1100 * time.Millisecond) // auth_time has a one-second resolution

	a2 := &auth{client: e.docsClient, state: "s", prompt: "login"}
	p := b.visit(http.MethodGet, a2.url(e.op), nil)
	if !p.isLoginForm() {
		t.Fatalf("prompt=login did not show the login form: %d %v", p.status, p.left)
	}
	second := verify(t, e.op, mustTokens(t, exchange(t, e.op, a2, codeFrom(t, b.submitLogin(p, "alice@example.com", devop.DemoPassword), a2), authPost)).IDToken)
	if second.str("sid") != first.str("sid") {
		t.Error("re-authentication of the same user changed the session")
	}
	if second.num("auth_time") <= first.num("auth_time") {
		t.Errorf("auth_time not updated: %d then %d", first.num("auth_time"), second.num("auth_time"))
	}

	// Another user signing in with the same browser replaces the session,
	// which logs the first user out of the clients that used it.
	a3 := &auth{client: e.dashboard, state: "s", prompt: "login"}
	p = b.visit(http.MethodGet, a3.url(e.op), nil)
	third := verify(t, e.op, mustTokens(t, exchange(t, e.op, a3, codeFrom(t, b.submitLogin(p, "bob@example.com", devop.DemoPassword), a3), authPost)).IDToken)
	if third.str("sid") == first.str("sid") || third.str("sub") != "usr_bob" {
		t.Errorf("new user kept the session: %v", third.claims)
	}
	if len(e.dash.received()) != 1 || len(e.docs.received()) != 1 {
		t.Errorf("replaced session: back-channel %d/%d", len(e.dash.received()), len(e.docs.received()))
	}
	if st := e.op.Stats(); st.SessionsEnded["replaced"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTokenClaims(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s", nonce: "nonce-123"}
	code := b.login(a, "alice@example.com")
	tr := mustTokens(t, exchange(t, e.op, a, code, authPost))
	now := time.Now().Unix()

	id := verify(t, e.op, tr.IDToken)
	if id.typ != "JWT" {
		t.Errorf("ID token typ %q", id.typ)
	}
	for claim, want := range map[string]string{
		"iss": e.op.Issuer(), "sub": "usr_alice", "azp": "dashboard", "nonce": "nonce-123",
		"email": "alice@example.com", "name": "Alice Admin", "at_hash": atHash(tr.AccessToken),
		"c_hash": atHash(code), "client_id": "dashboard", "preferred_username": "alice@example.com",
	} {
		if got := id.str(claim); got != want {
			t.Errorf("ID token %s = %q, want %q", claim, got, want)
		}
	}
	if aud := id.strs("aud"); !slices.Equal(aud, []string{"dashboard"}) {
		t.Errorf("ID token aud = %v", aud)
	}
	sid := id.str("sid")
	if !strings.HasPrefix(sid, "ses_") {
		t.Errorf("ID token sid = %q", sid)
	}
	if iat := id.num("iat"); iat < now-5 || iat > now+1 {
		t.Errorf("ID token iat %d, now %d", iat, now)
	}
	if life := id.num("exp") - id.num("iat"); life != int64(devop.DefaultIDTokenLifetime/time.Second) {
		t.Errorf("ID token lifetime %d s", life)
	}
	if id.num("auth_time") == 0 || id.claims["email_verified"] != true || !slices.Equal(id.strs("amr"), []string{"pwd"}) {
		t.Errorf("ID token claims %v", id.claims)
	}

	at := verify(t, e.op, tr.AccessToken)
	if at.typ != "at+jwt" || at.kid != id.kid {
		t.Errorf("access token typ %q kid %q", at.typ, at.kid)
	}
	for claim, want := range map[string]string{
		"iss": e.op.Issuer(), "sub": "usr_alice", "client_id": "dashboard", "sid": sid,
		"scope": "openid profile email offline_access",
	} {
		if got := at.str(claim); got != want {
			t.Errorf("access token %s = %q, want %q", claim, got, want)
		}
	}
	if aud := at.strs("aud"); !slices.Equal(aud, []string{"dashboard", "api"}) {
		t.Errorf("access token aud = %v", aud)
	}
	if got := at.strs("roles"); !slices.Equal(got, []string{"admin", "member"}) {
		t.Errorf("roles = %v", got)
	}
	if got := at.strs("permissions"); !contains(got, "dashboard:admin") || !contains(got, "docs:read") {
		t.Errorf("permissions = %v", got)
	}
	if !strings.HasPrefix(at.str("jti"), "at_") || at.num("nbf") != at.num("iat") {
		t.Errorf("jti/nbf: %v", at.claims)
	}
	if life := at.num("exp") - at.num("iat"); life != 300 {
		t.Errorf("access token lifetime %d s, want 300", life)
	}
	if _, ok := at.claims["nonce"]; ok {
		t.Error("nonce in access token")
	}

	// bob has no admin permission.
	b2 := newBrowser(t, e.op)
	bob := verify(t, e.op, mustTokens(t, exchange(t, e.op, a, b2.login(a, "bob@example.com"), authPost)).AccessToken)
	if contains(bob.strs("permissions"), "dashboard:admin") || !contains(bob.strs("permissions"), "dashboard:read") || contains(bob.strs("roles"), "admin") {
		t.Errorf("bob: roles %v permissions %v", bob.strs("roles"), bob.strs("permissions"))
	}
}

func TestConfigurableLifetimesAndAudience(t *testing.T) {
	e := newEnv(t, func(c *devop.Config) {
		c.AccessTokenLifetime = 30 * time.Second
		c.IDTokenLifetime = 2 * time.Minute
		c.AccessTokenAudience = nil
		c.AccessTokenJWTType = "JWT"
	})
	a := &auth{client: e.dashboard, state: "s", nonce: "n"}
	tr := mustTokens(t, exchange(t, e.op, a, newBrowser(t, e.op).login(a, "bob"), authPost))
	at, id := verify(t, e.op, tr.AccessToken), verify(t, e.op, tr.IDToken)
	if at.num("exp")-at.num("iat") != 30 || id.num("exp")-id.num("iat") != 120 || tr.ExpiresIn > 30 {
		t.Errorf("lifetimes: access %d, id %d, expires_in %d", at.num("exp")-at.num("iat"), id.num("exp")-id.num("iat"), tr.ExpiresIn)
	}
	if !slices.Equal(at.strs("aud"), []string{"dashboard"}) || at.typ != "JWT" {
		t.Errorf("aud %v typ %q", at.strs("aud"), at.typ)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s", nonce: "n"}
	t0 := mustTokens(t, exchange(t, e.op, a, b.login(a, "alice@example.com"), authPost))
	id0 := verify(t, e.op, t0.IDToken)

	t1 := mustTokens(t, refresh(t, e.op, e.dashboard, authPost, t0.RefreshToken))
	if t1.RefreshToken == "" || t1.RefreshToken == t0.RefreshToken || t1.AccessToken == t0.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	id1 := verify(t, e.op, t1.IDToken)
	for _, c := range []string{"iss", "sub", "sid", "azp"} {
		if id0.str(c) != id1.str(c) {
			t.Errorf("refreshed ID token changed %s", c)
		}
	}
	if _, ok := id1.claims["nonce"]; ok {
		t.Error("nonce in refreshed ID token")
	}
	if id0.num("auth_time") != id1.num("auth_time") || !slices.Equal(id0.strs("aud"), id1.strs("aud")) {
		t.Error("refreshed ID token changed auth_time or aud")
	}
	if at := verify(t, e.op, t1.AccessToken); at.str("sid") != id0.str("sid") {
		t.Error("refreshed access token lost sid")
	}

	// Replaying the used refresh token fails; the new one still works.
	if r := refresh(t, e.op, e.dashboard, authPost, t0.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("replay: %d %s", r.Status, r.Error)
	}
	t2 := mustTokens(t, refresh(t, e.op, e.dashboard, authPost, t1.RefreshToken))

	// A refresh token is bound to its client.
	if r := refresh(t, e.op, e.docsClient, authPost, t2.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("other client: %d %s", r.Status, r.Error)
	}
	// A narrower scope applies to the access token only.
	narrow := mustTokens(t, tokenRequest(t, e.op, e.dashboard, authPost, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {t2.RefreshToken}, "scope": {"openid email"},
	}))
	if s := verify(t, e.op, narrow.AccessToken).str("scope"); s != "openid email" {
		t.Errorf("narrowed scope %q", s)
	}
	if s := verify(t, e.op, mustTokens(t, refresh(t, e.op, e.dashboard, authPost, narrow.RefreshToken)).AccessToken).str("scope"); s != "openid profile email offline_access" {
		t.Errorf("scope after narrowing %q", s)
	}
	if st := e.op.Stats(); st.TokenRequests["refresh_token"] != 6 || st.TokenErrors["refresh_token"] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newEnv(t, func(c *devop.Config) { c.RevokeRefreshFamilyOnReuse = true })
	a := &auth{client: e.dashboard, state: "s"}
	t0 := mustTokens(t, exchange(t, e.op, a, newBrowser(t, e.op).login(a, "bob"), authPost))
	t1 := mustTokens(t, refresh(t, e.op, e.dashboard, authPost, t0.RefreshToken))
	if r := refresh(t, e.op, e.dashboard, authPost, t0.RefreshToken); r.Error != "invalid_grant" {
		t.Fatalf("replay: %s", r.Error)
	}
	if r := refresh(t, e.op, e.dashboard, authPost, t1.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("family survived reuse: %d %s", r.Status, r.Error)
	}
}

func TestConcurrentRefreshOneWins(t *testing.T) {
	e := newEnv(t)
	a := &auth{client: e.dashboard, state: "s"}
	t0 := mustTokens(t, exchange(t, e.op, a, newBrowser(t, e.op).login(a, "bob"), authPost))
	const n = 8
	results := make(chan tokenResponse, n)
	for range n {
		go func() { results <- refresh(t, e.op, e.dashboard, authPost, t0.RefreshToken) }()
	}
	ok := 0
	for range n {
		r := <-results
		switch {
		case r.Status == http.StatusOK:
			ok++
		case r.Error != "invalid_grant":
			t.Errorf("loser answered %d %s", r.Status, r.Error)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent refreshes with one token succeeded, want 1", ok)
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	e := newEnv(t)
	a := &auth{client: e.dashboard, state: "s", scope: "openid profile email"}
	tr := mustTokens(t, exchange(t, e.op, a, newBrowser(t, e.op).login(a, "bob"), authPost))
	if tr.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	// A client not allowed offline_access gets none either.
	e2 := newEnv(t, func(c *devop.Config) { c.Clients[0].Scopes = []string{"openid", "email"} })
	a2 := &auth{client: e2.dashboard, state: "s"}
	tr2 := mustTokens(t, exchange(t, e2.op, a2, newBrowser(t, e2.op).login(a2, "bob"), authPost))
	if tr2.RefreshToken != "" || tr2.Scope != "openid email" {
		t.Errorf("disallowed scopes granted: %q, refresh token %v", tr2.Scope, tr2.RefreshToken != "")
	}
}

// signIn signs alice in to dashboard and docs with one browser.
func signInBoth(t *testing.T, e *env) (*browser, tokenResponse, tokenResponse) {
	b := newBrowser(t, e.op)
	a1 := &auth{client: e.dashboard, state: "s", nonce: "n"}
	t1 := mustTokens(t, exchange(t, e.op, a1, b.login(a1, "alice@example.com"), authPost))
	a2 := &auth{client: e.docsClient, state: "s", nonce: "n"}
	p := b.visit(http.MethodGet, a2.url(e.op), nil)
	t2 := mustTokens(t, exchange(t, e.op, a2, codeFrom(t, p, a2), authPost))
	return b, t1, t2
}

func checkLogoutToken(t *testing.T, e *env, token, clientID, sid string) string {
	t.Helper()
	lt := verify(t, e.op, token)
	if lt.typ != "logout+jwt" {
		t.Errorf("logout token typ %q", lt.typ)
	}
	if lt.str("iss") != e.op.Issuer() || lt.str("sub") != "usr_alice" || lt.str("sid") != sid || !slices.Equal(lt.strs("aud"), []string{clientID}) {
		t.Errorf("logout token claims %v", lt.claims)
	}
	now := time.Now().Unix()
	if iat := lt.num("iat"); iat < now-5 || iat > now+1 || lt.num("exp") <= iat || lt.str("jti") == "" {
		t.Errorf("logout token times/jti %v", lt.claims)
	}
	ev, _ := lt.claims["events"].(map[string]any)
	if member, ok := ev["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(member) != 0 || len(ev) != 1 {
		t.Errorf("events %v", lt.claims["events"])
	}
	if _, ok := lt.claims["nonce"]; ok {
		t.Error("nonce in logout token")
	}
	return lt.str("jti")
}

func TestRPInitiatedLogout(t *testing.T) {
	e := newEnv(t)
	b, t1, t2 := signInBoth(t, e)
	sid := verify(t, e.op, t1.IDToken).str("sid")

	q := url.Values{
		"id_token_hint":            {t1.IDToken},
		"post_logout_redirect_uri": {e.dash.URL() + "/"},
		"state":                    {"bye-1"},
		"client_id":                {"dashboard"},
	}
	p := b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+q.Encode(), nil)
	// Both back-channel POSTs arrived before the browser got its redirect.
	got1, got2 := e.dash.received(), e.docs.received()
	if len(got1) != 1 || len(got2) != 1 {
		t.Fatalf("back-channel logouts before the redirect: dashboard %d, docs %d", len(got1), len(got2))
	}
	if p.left == nil || p.left.String() != e.dash.URL()+"/?state=bye-1" {
		t.Fatalf("logout redirect %v (status %d)", p.left, p.status)
	}
	j1 := checkLogoutToken(t, e, got1[0], "dashboard", sid)
	j2 := checkLogoutToken(t, e, got2[0], "docs", sid)
	if j1 == j2 {
		t.Error("jti reused")
	}

	// Every refresh token of the session is revoked.
	for _, c := range []struct {
		c  devop.Client
		rt string
	}{{e.dashboard, t1.RefreshToken}, {e.docsClient, t2.RefreshToken}} {
		if r := refresh(t, e.op, c.c, authPost, c.rt); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("%s refresh after logout: %d %s", c.c.ID, r.Status, r.Error)
		}
	}
	if len(e.op.Sessions()) != 0 {
		t.Error("session survived logout")
	}
	// The browser must sign in again.
	if p := b.visit(http.MethodGet, (&auth{client: e.docsClient, state: "s"}).url(e.op), nil); !p.isLoginForm() {
		t.Error("signed in after logout")
	}
	st := e.op.Stats()
	if st.SessionsEnded["logout"] != 1 || len(st.BackChannel) != 2 || !st.BackChannel[0].OK() || !st.BackChannel[1].OK() {
		t.Errorf("stats %+v", st)
	}
	if !contains(kindsAsStrings(e.events.kinds()), string(devop.EventBackChannelLogout)) {
		t.Error("no back-channel event")
	}
}

func kindsAsStrings(k []devop.EventKind) []string {
	out := make([]string, len(k))
	for i, x := range k {
		out[i] = string(x)
	}
	return out
}

func TestLogoutWithoutRedirect(t *testing.T) {
	e := newEnv(t)
	b, t1, _ := signInBoth(t, e)
	// id_token_hint only: the OP's own signed-out page.
	p := b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+url.Values{"id_token_hint": {t1.IDToken}, "state": {"x"}}.Encode(), nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed out") {
		t.Fatalf("logout page %d %.200s", p.status, p.body)
	}
	if len(e.dash.received()) != 1 || len(e.docs.received()) != 1 {
		t.Error("back-channel logouts not sent")
	}
	// A second logout finds no session: nothing sent, still a clean answer.
	p = b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+url.Values{"client_id": {"docs"}, "post_logout_redirect_uri": {e.docs.URL() + "/"}}.Encode(), nil)
	if p.left == nil || p.left.String() != e.docs.URL()+"/" || len(e.docs.received()) != 1 {
		t.Errorf("second logout: %v, %d tokens", p.left, len(e.docs.received()))
	}
}

func TestLogoutRefusesUnregisteredPostLogoutURI(t *testing.T) {
	e := newEnv(t)
	b, t1, _ := signInBoth(t, e)
	for name, q := range map[string]url.Values{
		"other client's URI": {"id_token_hint": {t1.IDToken}, "post_logout_redirect_uri": {e.docs.URL() + "/"}},
		"not registered":     {"client_id": {"dashboard"}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"relative":           {"client_id": {"dashboard"}, "post_logout_redirect_uri": {"/"}},
		"no client":          {"post_logout_redirect_uri": {e.dash.URL() + "/"}},
		"client mismatch":    {"id_token_hint": {t1.IDToken}, "client_id": {"docs"}, "post_logout_redirect_uri": {e.docs.URL() + "/"}},
	} {
		p := b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+q.Encode(), nil)
		if p.left != nil || p.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, redirected to %v", name, p.status, p.left)
		}
	}
	if name := "other client's URI"; true {
		p := b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+url.Values{"id_token_hint": {t1.IDToken}, "post_logout_redirect_uri": {e.docs.URL() + "/"}}.Encode(), nil)
		if !strings.Contains(p.body, "not registered for client") {
			t.Errorf("%s: unhelpful page %.400s", name, p.body)
		}
	}
	// The session is untouched.
	if len(e.op.Sessions()) != 1 || len(e.dash.received()) != 0 {
		t.Error("a refused logout ended the session")
	}
	mustTokens(t, refresh(t, e.op, e.dashboard, authPost, t1.RefreshToken))
}

func TestBackChannelFailuresAreRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *devop.Config) {
		c.BackChannelTimeout = 300 * time.Millisecond
		c.Clients[1].BackChannelLogoutURI = "http://127.0.0.1:1/unreachable"
	})
	e.dash.mu.Lock()
	e.dash.status = http.StatusInternalServerError
	e.dash.mu.Unlock()
	b, t1, _ := signInBoth(t, e)
	start := time.Now()
	p := b.visit(http.MethodGet, e.op.Issuer()+"/oidc/logout?"+url.Values{
		"id_token_hint": {t1.IDToken}, "post_logout_redirect_uri": {e.dash.URL() + "/"},
	}.Encode(), nil)
	if p.left == nil || p.left.String() != e.dash.URL()+"/" {
		t.Fatalf("logout redirect %v", p.left)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("logout took %v", d)
	}
	st := e.op.Stats()
	if len(st.BackChannel) != 2 {
		t.Fatalf("deliveries %+v", st.BackChannel)
	}
	for _, d := range st.BackChannel {
		switch d.ClientID {
		case "dashboard":
			if d.OK() || d.StatusCode != http.StatusInternalServerError {
				t.Errorf("dashboard delivery %+v", d)
			}
		case "docs":
			if d.OK() || d.StatusCode != 0 || d.Err == nil {
				t.Errorf("docs delivery %+v", d)
			}
		}
	}
}

func TestBackChannelTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *devop.Config) { c.BackChannelTimeout = 200 * time.Millisecond })
	e.dash.mu.Lock()
	e.dash.delay = 2 * time.Second
	e.dash.mu.Unlock()
	_, t1, _ := signInBoth(t, e)
	start := time.Now()
	d, err := e.op.EndSession(context.Background(), verify(t, e.op, t1.IDToken).str("sid"))
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("EndSession waited %v for a slow client", el)
	}
	for _, x := range d {
		if x.ClientID == "dashboard" && (x.OK() || x.Duration < 150*time.Millisecond) {
			t.Errorf("slow delivery reported OK or too short: %+v", x)
		}
		if x.ClientID == "docs" && !x.OK() {
			t.Errorf("docs delivery failed: %+v", x)
		}
	}
}

func TestOPSideEndSession(t *testing.T) {
	e := newEnv(t)
	b, t1, t2 := signInBoth(t, e)
	sid := verify(t, e.op, t1.IDToken).str("sid")
	if _, err := e.op.EndSession(context.Background(), "ses_nope"); err != devop.ErrUnknownSession {
		t.Errorf("unknown session: %v", err)
	}
	d, err := e.op.EndSession(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || !d[0].OK() || !d[1].OK() || d[0].SessionID != sid || d[0].JTI == "" {
		t.Fatalf("deliveries %+v", d)
	}
	checkLogoutToken(t, e, e.dash.received()[0], "dashboard", sid)
	checkLogoutToken(t, e, e.docs.received()[0], "docs", sid)
	if r := refresh(t, e.op, e.docsClient, authPost, t2.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh after admin logout: %d %s", r.Status, r.Error)
	}
	a := &auth{client: e.dashboard, state: "s", prompt: "none"}
	if p := b.visit(http.MethodGet, a.url(e.op), nil); p.left == nil || p.left.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after admin logout: %v", p.left)
	}
	if _, err := e.op.EndSession(context.Background(), sid); err != devop.ErrUnknownSession {
		t.Errorf("second end: %v", err)
	}
	if st := e.op.Stats(); st.SessionsEnded["admin"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *devop.Config) { c.SessionLifetime = 400 * time.Millisecond })
	_, t1, _ := signInBoth(t, e)
	time.Sleep(500 * time.Millisecond)
	if r := refresh(t, e.op, e.dashboard, authPost, t1.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh after expiry: %d %s", r.Status, r.Error)
	}
	if len(e.dash.received()) != 1 || len(e.docs.received()) != 1 {
		t.Error("expiry sent no back-channel logout")
	}
	if st := e.op.Stats(); st.SessionsEnded["expired"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUserinfoIntrospectionRevocation(t *testing.T) {
	e := newEnv(t)
	a := &auth{client: e.dashboard, state: "s"}
	tr := mustTokens(t, exchange(t, e.op, a, newBrowser(t, e.op).login(a, "alice@example.com"), authPost))

	userinfo := func() (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, e.op.Issuer()+devop.UserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := userinfo(); st != http.StatusOK || m["sub"] != "usr_alice" || m["email"] != "alice@example.com" {
		t.Fatalf("userinfo %d %v", st, m)
	}

	if m := introspect(t, e.op, tr.AccessToken); m["active"] != true || m["client_id"] != "dashboard" || m["sid"] == nil {
		t.Fatalf("introspection %v", m)
	}

	// Revoking the refresh token revokes its grant, access token included.
	resp, err := http.PostForm(e.op.Issuer()+devop.RevocationPath, url.Values{
		"token": {tr.RefreshToken}, "client_id": {"dashboard"}, "client_secret": {"dashboard-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation %d", resp.StatusCode)
	}
	if r := refresh(t, e.op, e.dashboard, authPost, tr.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("refresh after revocation: %s", r.Error)
	}
	if m := introspect(t, e.op, tr.AccessToken); m["active"] != false {
		t.Errorf("revoked access token is active: %v", m)
	}
	if st, _ := userinfo(); st == http.StatusOK {
		t.Error("userinfo accepted a revoked access token")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]devop.Config{
		"no issuer":             {},
		"relative redirect":     {Issuer: "http://127.0.0.1:1", Clients: []devop.Client{{ID: "a", RedirectURIs: []string{"/cb"}}}},
		"duplicate client":      {Issuer: "http://127.0.0.1:1", Clients: []devop.Client{{ID: "a", RedirectURIs: []string{"http://x/cb"}}, {ID: "a", RedirectURIs: []string{"http://x/cb"}}}},
		"relative post-logout":  {Issuer: "http://127.0.0.1:1", Clients: []devop.Client{{ID: "a", RedirectURIs: []string{"http://x/cb"}, PostLogoutRedirectURIs: []string{"/"}}}},
		"custom scheme web":     {Issuer: "http://127.0.0.1:1", Clients: []devop.Client{{ID: "a", Secret: "s", RedirectURIs: []string{"app:/cb"}}}},
		"native secret":         {Issuer: "http://127.0.0.1:1", Clients: []devop.Client{{ID: "a", Secret: "s", Native: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}}},
		"user without password": {Issuer: "http://127.0.0.1:1", Users: []devop.User{{ID: "usr_x", Email: "x@example.com"}}},
	} {
		cfg.SigningKey = testKey
		if _, err := devop.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := devop.DemoConfig()
	cfg.SigningKey = testKey
	o, err := devop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.Issuer() != devop.DemoIssuer {
		t.Errorf("issuer %q", o.Issuer())
	}
}

func TestLoadConfigFile(t *testing.T) {
	path := t.TempDir() + "/devop.json"
	data := `{"clients":[{"id":"shop","secret":"s3cret","redirect_uris":["http://localhost:8085/auth/callback"],
	  "post_logout_redirect_uris":["http://localhost:8085/"],"backchannel_logout_uri":"http://localhost:8085/auth/backchannel-logout"}],
	  "access_token_audience":["shop-api"]}`
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	cfg, err := devop.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clients) != 1 || cfg.Clients[0].BackChannelLogoutURI == "" || cfg.Users != nil || cfg.AccessTokenAudience[0] != "shop-api" {
		t.Fatalf("%+v", cfg)
	}
	if err := writeFile(path, `{"clientz":[]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := devop.LoadConfigFile(path); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestHomePageAndAdminEnd(t *testing.T) {
	e := newEnv(t)
	_, t1, _ := signInBoth(t, e)
	sid := verify(t, e.op, t1.IDToken).str("sid")
	resp, err := http.Get(e.op.Issuer() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, sid) || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("home %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.op.Issuer()+"/admin/end-session", strings.NewReader(url.Values{"sid": {sid}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(e.op.Sessions()) != 1 {
		t.Fatalf("cross-origin admin end: %d", resp.StatusCode)
	}
	resp, err = http.PostForm(e.op.Issuer()+"/admin/end-session", url.Values{"sid": {sid}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(e.op.Sessions()) != 0 || len(e.dash.received()) != 1 {
		t.Errorf("admin end: %d sessions left", len(e.op.Sessions()))
	}
}

func TestCodeDiesWithSession(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	a := &auth{client: e.dashboard, state: "s"}
	code := b.login(a, "alice@example.com")
	e.op.EndUserSessions(context.Background(), "usr_alice")
	if tr := exchange(t, e.op, a, code, authPost); tr.Status != http.StatusBadRequest || tr.Error != "invalid_grant" {
		t.Errorf("code after session end: %d %s", tr.Status, tr.Error)
	}
	// The participant that never redeemed its code is still told.
	if len(e.dash.received()) != 1 {
		t.Errorf("back-channel logouts: %d", len(e.dash.received()))
	}
}

func TestExpireSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *devop.Config) { c.SessionLifetime = 300 * time.Millisecond })
	signInBoth(t, e)
	if d := e.op.ExpireSessions(context.Background()); len(d) != 0 {
		t.Fatalf("live session expired: %+v", d)
	}
	time.Sleep(400 * time.Millisecond)
	if d := e.op.ExpireSessions(context.Background()); len(d) != 2 || !d[0].OK() || !d[1].OK() {
		t.Fatalf("deliveries %+v", d)
	}
	if len(e.op.Sessions()) != 0 || len(e.dash.received()) != 1 {
		t.Error("expired session not ended")
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := devop.DemoConfig()
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.SigningKey = testKey
	o, err := devop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Serve(ctx, ln) }()
	resp, err := http.Get(o.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestLoginFormMayRedirectToTheClient: browsers apply the page's CSP
// form-action to every redirect that follows a form submission (Chromium
// stops the navigation otherwise), so the login page must allow the origin
// of the client's redirect URI besides its own.
func TestLoginFormMayRedirectToTheClient(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.op)
	for _, c := range []struct {
		a    *auth
		want string
	}{
		{&auth{client: e.dashboard, state: "s", nonce: "n", verifier: "verifier-0123456789-0123456789-0123456789-abc"}, "form-action 'self' " + e.dash.URL() + ";"},
		{&auth{client: e.spa, state: "s", nonce: "n", verifier: "verifier-0123456789-0123456789-0123456789-abc"}, "form-action 'self' http://localhost:8083;"},
		{&auth{client: e.cli, redirect: "http://127.0.0.1:53124/callback", state: "s", nonce: "n", verifier: "verifier-0123456789-0123456789-0123456789-abc"}, "form-action 'self' http://127.0.0.1:53124;"},
	} {
		p := b.visit(http.MethodGet, c.a.url(e.op), nil)
		if !p.isLoginForm() {
			t.Fatalf("%s: no login form: %d", c.a.client.ID, p.status)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, c.want) {
			t.Errorf("%s: CSP %q does not contain %q", c.a.client.ID, csp, c.want)
		}
	}
}

// TestPagesAreReadable: the OP's pages lead back to the apps, and ids are
// never broken mid-word (URLs break only after a slash).
func TestPagesAreReadable(t *testing.T) {
	o := devop.Start(t, devop.Config{Clients: devop.DefaultClients(), SigningKey: testKey})
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(o.Issuer() + path)
		if err != nil {
			t.Fatal(err)
		}
		return readAll(resp)
	}
	home := get("/")
	if strings.Contains(home, "break-all") || strings.Contains(home, "word-break") {
		t.Error("the page breaks words anywhere")
	}
	for _, app := range []string{"http://localhost:8081/", "http://localhost:8082/", "http://localhost:8083/", "http://localhost:8085/"} {
		if !strings.Contains(home, `<a href="`+app+`">`) {
			t.Errorf("the home page has no link to %s", app)
		}
	}
	if strings.Contains(home, `<a href="http://127.0.0.1/`) {
		t.Error("a link to the native app's loopback redirect")
	}
	for _, s := range []string{"<code class=id>dashboard</code>", "<code class=id>dashboard-secret</code>", "client_secret_basic",
		"http://localhost:8081/<wbr>auth/<wbr>callback", "<code class=id>usr_alice</code>"} {
		if !strings.Contains(home, s) {
			t.Errorf("the home page does not have %s", s)
		}
	}
	for _, path := range []string{"/logged-out", "/login?authRequestID=gone"} {
		if page := get(path); !strings.Contains(page, `<a href="http://localhost:8081/">`) || !strings.Contains(page, `<a href="/">`) {
			t.Errorf("%s has no way back to the apps", path)
		}
	}
}
