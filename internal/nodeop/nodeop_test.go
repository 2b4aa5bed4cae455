package nodeop_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/nodeop"
)

// The whole fixture is proved against one OP process with plain net/http:
// the library this fixture serves does not exist yet.

const (
	webSecret  = "web-secret-0123456789"
	web2Secret = "web2-secret-0123456789"
	apiAud     = "https://api.example.test/"
)

// bclReceiver records the logout tokens POSTed to it, by path.
type bclReceiver struct {
	mu     sync.Mutex
	tokens map[string][]string
}

func (r *bclReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := req.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.tokens[req.URL.Path] = append(r.tokens[req.URL.Path], req.PostForm.Get("logout_token"))
	r.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (r *bclReceiver) got(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens[path]...)
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

type jwtParts struct {
	header map[string]any
	claims map[string]any
	signed string
	sig    []byte
}

func decodeJWT(t *testing.T, tok string) jwtParts {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact serialization (%d parts)", len(parts))
	}
	var p jwtParts
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("jwt part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("jwt part %d: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("jwt signature: %v", err)
	}
	p.signed, p.sig = parts[0]+"."+parts[1], sig
	return p
}

// fixture is the shared state of TestFixture's steps.
type fixture struct {
	op       *nodeop.OP
	meta     map[string]any
	rp       *httptest.Server
	bcl      *bclReceiver
	bclSrv   *httptest.Server
	browser  *nodeop.Browser
	sessions map[string]tokens // by client id
}

// endpoint returns a discovered endpoint ("" when missing: the Discovery
// step reports that).
func (f *fixture) endpoint(name string) string {
	s, _ := f.meta[name].(string)
	return s
}

func (f *fixture) redirectURI(clientID string) string { return f.rp.URL + "/callback/" + clientID }

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func random() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signIn runs the authorization code flow with PKCE for clientID in the
// shared browser and returns the authorization response parameters.
func (f *fixture) signIn(t *testing.T, b *nodeop.Browser, clientID, scope string) (code, verifier, nonce string) {
	t.Helper()
	verifier, challenge := pkce()
	state, nonce := random(), random()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {f.redirectURI(clientID)},
		"scope":                 {scope},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	callback := f.redirectURI(clientID)
	final, _, err := b.Navigate(f.endpoint("authorization_endpoint")+"?"+q.Encode(), func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), callback+"?")
	})
	if err != nil {
		t.Fatalf("sign-in %s: %v", clientID, err)
	}
	got := final.Query()
	if e := got.Get("error"); e != "" {
		t.Fatalf("sign-in %s: authorization error %s: %s", clientID, e, got.Get("error_description"))
	}
	if got.Get("state") != state {
		t.Fatalf("sign-in %s: state not echoed", clientID)
	}
	if got.Get("iss") != f.op.Issuer {
		t.Fatalf("sign-in %s: RFC 9207 iss = %q, want %q", clientID, got.Get("iss"), f.op.Issuer)
	}
	if got.Get("code") == "" {
		t.Fatalf("sign-in %s: no code at %s", clientID, final.Path)
	}
	return got.Get("code"), verifier, nonce
}

// token POSTs to the token endpoint; auth is "post", "basic" or "none".
func (f *fixture) token(t *testing.T, clientID, secret, auth string, form url.Values) (int, tokens) {
	t.Helper()
	return f.postForm(t, f.endpoint("token_endpoint"), clientID, secret, auth, form)
}

func (f *fixture) postForm(t *testing.T, endpoint, clientID, secret, auth string, form url.Values) (int, tokens) {
	t.Helper()
	form = cloneValues(form)
	switch auth {
	case "post":
		form.Set("client_id", clientID)
		form.Set("client_secret", secret)
	case "none":
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth == "basic" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out tokens
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (f *fixture) exchange(t *testing.T, b *nodeop.Browser, clientID, secret, auth, scope string) tokens {
	t.Helper()
	code, verifier, nonce := f.signIn(t, b, clientID, scope)
	before := f.op.TokenRequests("authorization_code")
	status, tok := f.token(t, clientID, secret, auth, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.redirectURI(clientID)},
		"code_verifier": {verifier},
	})
	if status != http.StatusOK {
		t.Fatalf("code exchange %s: status %d, error %q", clientID, status, tok.Error)
	}
	if n := f.op.TokenRequests("authorization_code") - before; n != 1 {
		t.Fatalf("OP counted %d authorization_code requests, want 1", n)
	}
	if tok.IDToken == "" || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("code exchange %s: missing tokens (id %t, access %t, refresh %t)", clientID,
			tok.IDToken != "", tok.AccessToken != "", tok.RefreshToken != "")
	}
	id := decodeJWT(t, tok.IDToken)
	f.verify(t, id)
	c := id.claims
	if c["iss"] != f.op.Issuer || c["aud"] != clientID || c["nonce"] != nonce || c["sub"] != "usr_alice" {
		t.Fatalf("ID token claims: iss %v aud %v nonce ok %t sub %v", c["iss"], c["aud"], c["nonce"] == nonce, c["sub"])
	}
	scopes := strings.Fields(scope)
	if slices.Contains(scopes, "email") && (c["email"] != "alice@example.test" || c["email_verified"] != true) {
		t.Errorf("ID token email claims: email %v verified %v", c["email"], c["email_verified"])
	}
	if slices.Contains(scopes, "profile") != (c["name"] == "Alice") {
		t.Errorf("ID token name %v for scope %q", c["name"], scope)
	}
	if s, _ := c["sid"].(string); s == "" {
		t.Errorf("ID token has no sid")
	}
	// node-oidc-provider puts no at_hash in ID tokens from the token endpoint
	// (optional there per OpenID Connect Core 3.1.3.6); the library must cope.
	if c["at_hash"] != nil {
		t.Errorf("ID token has at_hash: update README.md, the quirk list is stale")
	}
	f.sessions[clientID] = tok
	return tok
}

// verify checks an RS256 signature against the OP's JWKS.
func (f *fixture) verify(t *testing.T, p jwtParts) {
	t.Helper()
	if p.header["alg"] != "RS256" {
		t.Fatalf("alg %v, want RS256", p.header["alg"])
	}
	resp, err := http.Get(f.endpoint("jwks_uri"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid, Kty, N, E string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid != p.header["kid"] || k.Kty != "RSA" {
			continue
		}
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		sum := sha256.Sum256([]byte(p.signed))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.sig); err != nil {
			t.Fatalf("signature: %v", err)
		}
		return
	}
	t.Fatalf("kid %v not in the JWKS", p.header["kid"])
}

func TestFixture(t *testing.T) {
	bcl := &bclReceiver{tokens: map[string][]string{}}
	bclSrv := httptest.NewServer(bcl)
	defer bclSrv.Close()
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "rp page")
	}))
	defer rp.Close()

	f := &fixture{rp: rp, bcl: bcl, bclSrv: bclSrv, sessions: map[string]tokens{}}
	client := func(id, secret, auth string, bc bool) nodeop.Client {
		c := nodeop.Client{
			ID: id, Secret: secret, AuthMethod: auth,
			RedirectURIs:           []string{f.redirectURI(id)},
			PostLogoutRedirectURIs: []string{rp.URL + "/signed-out"},
		}
		if bc {
			c.BackchannelLogoutURI = bclSrv.URL + "/bcl/" + id
		}
		return c
	}
	began := time.Now()
	f.op = nodeop.Start(t, nodeop.Config{
		Clients: []nodeop.Client{
			client("web", webSecret, "client_secret_post", true),
			client("web2", web2Secret, "client_secret_basic", true),
			client("spa", "", "none", false),
		},
		Users: []nodeop.User{{
			ID: "usr_alice", Email: "alice@example.test", Password: "correct horse", Name: "Alice",
			Roles: []string{"admin"}, Permissions: []string{"orders:read", "orders:write"},
		}},
		Resource:            &nodeop.Resource{Audience: apiAud, Scopes: []string{"orders:read", "orders:write"}, Clients: []string{"web2"}},
		RotateRefreshTokens: true,
		AccessTokenTTL:      3 * time.Second,
		IDTokenTTL:          10 * time.Minute,
	})
	t.Logf("OP %s ready in %v (Start returned after %v)", f.op.Issuer, f.op.StartupTime, time.Since(began))
	f.browser = nodeop.NewBrowser(t, "alice@example.test", "correct horse")

	resp, err := http.Get(f.op.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&f.meta)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"Discovery", f.discovery},
		{"LoginConfidentialPost", f.loginConfidential},
		{"SSOPublicClient", f.ssoPublic},
		{"JWTAccessTokenForResource", f.jwtAccessToken},
		{"Introspection", f.introspection},
		{"RefreshRotates", f.refresh},
		{"AddClientAtRuntime", f.addClient},
		{"RegisteredAuthMethodEnforced", f.authMethodEnforced},
		{"WrongPassword", f.wrongPassword},
		{"CancelLogin", f.cancelLogin},
		{"PromptNone", f.promptNone},
		{"LogoutBackchannel", f.logout},
		{"BrowserDrivesWebApp", f.driveApp},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow() // later steps build on earlier ones
		}
	}
}

func (f *fixture) discovery(t *testing.T) {
	if f.meta["issuer"] != f.op.Issuer {
		t.Errorf("issuer %v, want %v", f.meta["issuer"], f.op.Issuer)
	}
	for _, k := range []string{"end_session_endpoint", "introspection_endpoint", "revocation_endpoint", "userinfo_endpoint", "jwks_uri"} {
		if s, _ := f.meta[k].(string); !strings.HasPrefix(s, f.op.Issuer+"/") {
			t.Errorf("%s = %v", k, f.meta[k])
		}
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported", "authorization_response_iss_parameter_supported"} {
		if f.meta[k] != true {
			t.Errorf("%s = %v, want true", k, f.meta[k])
		}
	}
	methods, _ := f.meta["code_challenge_methods_supported"].([]any)
	if len(methods) != 1 || methods[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", methods)
	}
	if n := f.op.Requests("discovery"); n != 1 {
		t.Errorf("OP counted %d discovery requests, want 1", n)
	}
}

func (f *fixture) loginConfidential(t *testing.T) {
	tok := f.exchange(t, f.browser, "web", webSecret, "post", "openid email profile")
	if n := f.browser.LoginForms(); n != 1 {
		t.Fatalf("login forms = %d, want 1", n)
	}
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Errorf("web has no resource: its access token should be opaque")
	}
	if tok.ExpiresIn != 3 {
		t.Errorf("expires_in = %d, want the configured 3", tok.ExpiresIn)
	}
	if n := f.op.Logins(); n != 1 {
		t.Errorf("OP counted %d logins, want 1", n)
	}
}

func (f *fixture) ssoPublic(t *testing.T) {
	tok := f.exchange(t, f.browser, "spa", "", "none", "openid email")
	if n := f.browser.LoginForms(); n != 1 {
		t.Fatalf("login forms = %d after the second app, want still 1 (SSO)", n)
	}
	webSID := decodeJWT(t, f.sessions["web"].IDToken).claims["sid"]
	spaSID := decodeJWT(t, tok.IDToken).claims["sid"]
	if webSID == spaSID {
		t.Logf("note: sid is the same for web and spa (%v)", webSID)
	}
	// A public client must use PKCE: without code_challenge the OP refuses.
	q := url.Values{
		"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {f.redirectURI("spa")},
		"scope": {"openid"}, "state": {"s"},
	}
	final, _, err := f.browser.Navigate(f.endpoint("authorization_endpoint")+"?"+q.Encode(), func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), f.redirectURI("spa")+"?")
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := final.Query().Get("error"); e != "invalid_request" {
		t.Errorf("authorization without PKCE: error %q, want invalid_request", e)
	}
}

func (f *fixture) jwtAccessToken(t *testing.T) {
	tok := f.exchange(t, f.browser, "web2", web2Secret, "basic", "openid email orders:read")
	if n := f.browser.LoginForms(); n != 1 {
		t.Fatalf("login forms = %d, want still 1 (SSO)", n)
	}
	at := decodeJWT(t, tok.AccessToken)
	f.verify(t, at)
	if at.header["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", at.header["typ"])
	}
	c := at.claims
	if c["aud"] != apiAud || c["iss"] != f.op.Issuer || c["sub"] != "usr_alice" || c["client_id"] != "web2" {
		t.Errorf("access token: aud %v iss %v sub %v client_id %v", c["aud"], c["iss"], c["sub"], c["client_id"])
	}
	if c["scope"] != "orders:read" {
		t.Errorf("scope = %v, want orders:read", c["scope"])
	}
	idSID := decodeJWT(t, tok.IDToken).claims["sid"]
	if c["sid"] == nil || c["sid"] != idSID {
		t.Errorf("access token sid %v, ID token sid %v", c["sid"], idSID)
	}
	if !slices.Equal(toStrings(c["roles"]), []string{"admin"}) || !slices.Equal(toStrings(c["permissions"]), []string{"orders:read", "orders:write"}) {
		t.Errorf("roles %v permissions %v", c["roles"], c["permissions"])
	}
	exp, _ := c["exp"].(float64)
	iat, _ := c["iat"].(float64)
	if exp-iat != 3 {
		t.Errorf("exp - iat = %v, want the configured 3 s", exp-iat)
	}
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func (f *fixture) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	form := url.Values{"token": {token}, "client_id": {"web"}, "client_secret": {webSecret}}
	resp, err := http.PostForm(f.endpoint("introspection_endpoint"), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection status %d: %v", resp.StatusCode, out["error"])
	}
	return out
}

func (f *fixture) introspection(t *testing.T) {
	// web's access token (opaque) may have expired (3 s TTL); take a fresh one.
	status, tok := f.token(t, "web", webSecret, "post", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {f.sessions["web"].RefreshToken},
	})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, tok.Error)
	}
	f.sessions["web"] = tok
	got := f.introspect(t, tok.AccessToken)
	if got["active"] != true || got["sub"] != "usr_alice" || got["client_id"] != "web" || got["token_type"] != "Bearer" {
		t.Errorf("introspection: active %v sub %v client_id %v token_type %v", got["active"], got["sub"], got["client_id"], got["token_type"])
	}
	if got["sid"] != decodeJWT(t, f.sessions["web"].IDToken).claims["sid"] {
		t.Errorf("introspection sid %v differs from web's ID token sid", got["sid"])
	}
	req, _ := http.NewRequest(http.MethodGet, f.endpoint("userinfo_endpoint"), nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || info["sub"] != "usr_alice" || info["email"] != "alice@example.test" {
		t.Errorf("userinfo: %d sub %v email %v", resp.StatusCode, info["sub"], info["email"])
	}
	if f.introspect(t, "not-a-token")["active"] != false {
		t.Errorf("unknown token introspected as active")
	}
	// The counters are exact under concurrency: each request is reported
	// before its response leaves the OP.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(f.endpoint("introspection_endpoint"), url.Values{
				"token": {tok.AccessToken}, "client_id": {"web"}, "client_secret": {webSecret},
			})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("introspection status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := f.op.Requests("introspection"); n != 22 {
		t.Errorf("OP counted %d introspection requests, want 22", n)
	}
}

func (f *fixture) refresh(t *testing.T) {
	old := f.sessions["web"]
	before := f.op.TokenRequests("refresh_token")
	status, tok := f.token(t, "web", webSecret, "post", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken},
	})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, tok.Error)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == old.RefreshToken {
		t.Errorf("refresh token not rotated")
	}
	if tok.IDToken == "" || tok.AccessToken == old.AccessToken {
		t.Errorf("refresh response: new ID token %t, new access token %t", tok.IDToken != "", tok.AccessToken != old.AccessToken)
	}
	if n := f.op.TokenRequests("refresh_token") - before; n != 1 {
		t.Errorf("OP counted %d refresh requests, want 1", n)
	}
	f.sessions["web"] = tok

	// The public client refreshes too (no secret).
	status, spa := f.token(t, "spa", "", "none", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {f.sessions["spa"].RefreshToken},
	})
	if status != http.StatusOK {
		t.Fatalf("spa refresh: %d %s", status, spa.Error)
	}
	f.sessions["spa"] = spa
}

func (f *fixture) addClient(t *testing.T) {
	if err := f.op.AddClient(nodeop.Client{
		ID: "late", Secret: "late-secret-0123456789", AuthMethod: "client_secret_post",
		RedirectURIs: []string{f.redirectURI("late")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.op.AddClient(nodeop.Client{ID: "bad", AuthMethod: "none", RedirectURIs: []string{"not a url"}}); err == nil {
		t.Errorf("AddClient accepted a client with an invalid redirect URI")
	}
	// Native clients always go through the consent prompt in node-oidc-provider;
	// op.mjs grants it without a page.
	if err := f.op.AddClient(nodeop.Client{
		ID: "native", AuthMethod: "none", ApplicationType: "native",
		RedirectURIs: []string{f.redirectURI("native")},
	}); err != nil {
		t.Fatal(err)
	}
	native := f.exchange(t, f.browser, "native", "", "none", "openid")
	if f.browser.ConsentForms() != 0 {
		t.Errorf("a consent form was shown")
	}
	// Reusing a rotated refresh token fails and revokes the whole grant.
	refresh := func(rt string) (int, tokens) {
		return f.token(t, "native", "", "none", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	status, rotated := refresh(native.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("native refresh: %d %s", status, rotated.Error)
	}
	if status, got := refresh(native.RefreshToken); status != http.StatusBadRequest || got.Error != "invalid_grant" {
		t.Errorf("reused refresh token: %d %q, want 400 invalid_grant", status, got.Error)
	}
	if _, ok := f.op.WaitFor(time.Second, func(ev nodeop.Event) bool {
		return ev.ClientID == "native" && ev.Detail == "refresh token already used"
	}); !ok {
		t.Errorf("no event with the reuse detail")
	}
	if status, got := refresh(rotated.RefreshToken); status != http.StatusBadRequest || got.Error != "invalid_grant" {
		t.Errorf("refresh after reuse: %d %q, want 400 invalid_grant (grant revoked)", status, got.Error)
	}

	tok := f.exchange(t, f.browser, "late", "late-secret-0123456789", "post", "openid")
	if n := f.browser.LoginForms(); n != 1 {
		t.Errorf("login forms = %d, want still 1 (SSO)", n)
	}
	// Revocation of the refresh token ends it.
	resp, err := http.PostForm(f.endpoint("revocation_endpoint"), url.Values{
		"token": {tok.RefreshToken}, "client_id": {"late"}, "client_secret": {"late-secret-0123456789"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: status %d", resp.StatusCode)
	}
	status, got := f.token(t, "late", "late-secret-0123456789", "post", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
	})
	if status != http.StatusBadRequest || got.Error != "invalid_grant" {
		t.Errorf("refresh after revocation: %d %q, want 400 invalid_grant", status, got.Error)
	}
}

// authMethodEnforced: a client authenticates only with the method it was
// registered with (as at Ory Hydra), at the token, introspection and
// revocation endpoints; the answer to another method is invalid_client,
// exactly like a wrong secret. A made-up code with the right credentials is
// invalid_grant: the client is authenticated first. In Basic, id and secret
// are form-urlencoded (RFC 6749 §2.3.1), so secrets with ':' '%' '+' and
// spaces work.
func (f *fixture) authMethodEnforced(t *testing.T) {
	const odd = "s:e%c+r e/t=="
	if err := f.op.AddClient(nodeop.Client{ID: "odd:id", Secret: odd, AuthMethod: "client_secret_basic", RedirectURIs: []string{f.redirectURI("odd")}}); err != nil {
		t.Fatal(err)
	}
	madeUp := url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {f.redirectURI("web")}, "code_verifier": {strings.Repeat("v", 43)}}
	for _, c := range []struct {
		id, secret, auth string
		status           int
		err              string
	}{
		{"web", webSecret, "post", 400, "invalid_grant"},
		{"web", webSecret, "basic", 401, "invalid_client"},
		{"web", "wrong", "post", 401, "invalid_client"},
		{"web2", web2Secret, "basic", 400, "invalid_grant"},
		{"web2", web2Secret, "post", 401, "invalid_client"},
		{"odd:id", odd, "basic", 400, "invalid_grant"},
		{"odd:id", odd, "post", 401, "invalid_client"},
	} {
		if status, got := f.token(t, c.id, c.secret, c.auth, madeUp); status != c.status || got.Error != c.err {
			t.Errorf("%s with %s: %d %q, want %d %q", c.id, c.auth, status, got.Error, c.status, c.err)
		}
	}
	for _, ep := range []string{"introspection_endpoint", "revocation_endpoint"} {
		if status, _ := f.postForm(t, f.endpoint(ep), "web", webSecret, "basic", url.Values{"token": {"made-up"}}); status != http.StatusUnauthorized {
			t.Errorf("%s with the unregistered method: %d, want 401", ep, status)
		}
		if status, _ := f.postForm(t, f.endpoint(ep), "web", webSecret, "post", url.Values{"token": {"made-up"}}); status != http.StatusOK {
			t.Errorf("%s with the registered method: %d, want 200", ep, status)
		}
	}
	if _, ok := f.op.WaitFor(time.Second, func(ev nodeop.Event) bool {
		return ev.Route == "token" && ev.Error == "invalid_client" && strings.Contains(ev.Detail, "registered for client_secret_post")
	}); !ok {
		t.Errorf("no event saying which method the client is registered for")
	}
}

// TestAcceptAnySecretMethod: stock node-oidc-provider accepts either secret
// method whatever was registered, which is why the fixture enforces it by
// default.
func TestAcceptAnySecretMethod(t *testing.T) {
	op := nodeop.Start(t, nodeop.Config{
		Clients:               []nodeop.Client{{ID: "web", Secret: webSecret, AuthMethod: "client_secret_post", RedirectURIs: []string{"http://127.0.0.1:1/cb"}}},
		AcceptAnySecretMethod: true,
	})
	f := &fixture{op: op, meta: map[string]any{"token_endpoint": op.Issuer + "/token"}}
	madeUp := url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {strings.Repeat("v", 43)}}
	if status, got := f.token(t, "web", webSecret, "basic", madeUp); status != 400 || got.Error != "invalid_grant" {
		t.Fatalf("basic for a client_secret_post client: %d %q, want the stock 400 invalid_grant", status, got.Error)
	}
}

func (f *fixture) wrongPassword(t *testing.T) {
	b := nodeop.NewBrowser(t, "alice@example.test", "wrong")
	verifier, challenge := pkce()
	_ = verifier
	q := url.Values{
		"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {f.redirectURI("web")},
		"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	_, resp, err := b.Navigate(f.endpoint("authorization_endpoint")+"?"+q.Encode(), nil)
	if !errors.Is(err, nodeop.ErrLoginRejected) {
		t.Fatalf("err = %v, want ErrLoginRejected", err)
	}
	if resp == nil || b.LoginForms() != 1 {
		t.Errorf("login forms = %d, want 1", b.LoginForms())
	}
}

func (f *fixture) cancelLogin(t *testing.T) {
	b := nodeop.NewBrowser(t, "alice@example.test", "correct horse")
	b.CancelLogin = true
	_, challenge := pkce()
	q := url.Values{
		"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {f.redirectURI("web")},
		"scope": {"openid"}, "state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	final, _, err := b.Navigate(f.endpoint("authorization_endpoint")+"?"+q.Encode(), func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), f.redirectURI("web")+"?")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := final.Query(); got.Get("error") != "access_denied" || got.Get("state") != "s1" || got.Get("iss") != f.op.Issuer {
		t.Errorf("cancelled login: error %q state %q iss %q", got.Get("error"), got.Get("state"), got.Get("iss"))
	}
}

func (f *fixture) promptNone(t *testing.T) {
	for _, c := range []struct {
		name      string
		b         *nodeop.Browser
		wantError string // "" means a code is expected
	}{
		{"no OP session", nodeop.NewBrowser(t, "x", "y"), "login_required"},
		{"signed in", f.browser, ""},
	} {
		forms := c.b.LoginForms()
		_, challenge := pkce()
		q := url.Values{
			"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {f.redirectURI("web")},
			"scope": {"openid"}, "state": {"s2"}, "prompt": {"none"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}
		final, _, err := c.b.Navigate(f.endpoint("authorization_endpoint")+"?"+q.Encode(), func(u *url.URL) bool {
			return strings.HasPrefix(u.String(), f.redirectURI("web")+"?")
		})
		if err != nil {
			t.Fatal(err)
		}
		got := final.Query()
		if got.Get("error") != c.wantError || (got.Get("code") != "") != (c.wantError == "") {
			t.Errorf("%s: prompt=none gave error %q, code %t", c.name, got.Get("error"), got.Get("code") != "")
		}
		if c.b.LoginForms() != forms {
			t.Errorf("%s: prompt=none showed a login form", c.name)
		}
	}
}

func (f *fixture) logout(t *testing.T) {
	q := url.Values{
		"id_token_hint":            {f.sessions["web"].IDToken},
		"post_logout_redirect_uri": {f.rp.URL + "/signed-out"},
		"state":                    {"bye"},
	}
	final, resp, err := f.browser.Navigate(f.endpoint("end_session_endpoint")+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Path != "/signed-out" || final.Query().Get("state") != "bye" {
		t.Fatalf("logout ended at %s (status %d), want %s/signed-out?state=bye", final, resp.StatusCode, f.rp.URL)
	}
	if n := f.browser.LogoutForms(); n != 1 {
		t.Errorf("logout confirmations = %d, want 1", n)
	}

	// The OP delivers the logout tokens before it redirects the browser: no waiting.
	for _, id := range []string{"web", "web2"} {
		got := f.bcl.got("/bcl/" + id)
		if len(got) != 1 {
			t.Fatalf("%s received %d logout tokens, want 1", id, len(got))
		}
		lt := decodeJWT(t, got[0])
		f.verify(t, lt)
		c := lt.claims
		sid := decodeJWT(t, f.sessions[id].IDToken).claims["sid"]
		if c["iss"] != f.op.Issuer || c["aud"] != id || c["sub"] != "usr_alice" || c["sid"] != sid {
			t.Errorf("%s logout token: iss %v aud %v sub %v sid matches ID token %t", id, c["iss"], c["aud"], c["sub"], c["sid"] == sid)
		}
		ev, _ := c["events"].(map[string]any)
		if _, ok := ev["http://schemas.openid.net/event/backchannel-logout"]; !ok || c["jti"] == nil || c["iat"] == nil || c["nonce"] != nil {
			t.Errorf("%s logout token: events %v jti %v iat %v nonce %v", id, c["events"], c["jti"], c["iat"], c["nonce"])
		}
		if lt.header["typ"] != "logout+jwt" {
			t.Errorf("logout token typ = %v", lt.header["typ"])
		}
	}
	if got := f.bcl.got("/bcl/spa"); len(got) != 0 {
		t.Errorf("spa has no back-channel URI but something was delivered")
	}
	var delivered []string
	for _, ev := range f.op.BackchannelLogouts() {
		if !ev.OK {
			t.Errorf("OP reports a failed delivery to %s: %s", ev.ClientID, ev.Error)
		}
		delivered = append(delivered, ev.ClientID)
	}
	slices.Sort(delivered)
	if !slices.Equal(delivered, []string{"web", "web2"}) {
		t.Errorf("OP reports deliveries to %v, want [web web2]", delivered)
	}

	// Refresh tokens died with the session.
	for _, c := range []struct{ id, secret, auth string }{
		{"web", webSecret, "post"}, {"web2", web2Secret, "basic"}, {"spa", "", "none"},
	} {
		status, tok := f.token(t, c.id, c.secret, c.auth, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {f.sessions[c.id].RefreshToken},
		})
		if status != http.StatusBadRequest || tok.Error != "invalid_grant" {
			t.Errorf("%s refresh after logout: %d %q, want 400 invalid_grant", c.id, status, tok.Error)
		}
	}
	// And the next sign-in shows the login form again.
	f.exchange(t, f.browser, "web", webSecret, "post", "openid")
	if n := f.browser.LoginForms(); n != 2 {
		t.Errorf("login forms = %d after logout, want 2", n)
	}
}

// webApp is a minimal server-side web app written against the OP with plain
// net/http, to show the Browser driving an app end to end: its own routes, the
// OP's login form, the callback, and logout with back-channel delivery.
type webApp struct {
	f        *fixture
	srv      *httptest.Server
	mu       sync.Mutex
	pending  map[string]string // state -> PKCE verifier
	sessions map[string]tokens // cookie value -> tokens
}

const appSecret = "app-secret-0123456789"

func (a *webApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.URL.Path {
	case "/":
		if c, err := r.Cookie("app_session"); err == nil {
			if tok, ok := a.sessions[c.Value]; ok {
				var claims struct{ Sub string }
				parts := strings.Split(tok.IDToken, ".")
				raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
				_ = json.Unmarshal(raw, &claims)
				io.WriteString(w, "hello "+claims.Sub)
				return
			}
		}
		http.Redirect(w, r, "/login", http.StatusFound)
	case "/login":
		verifier, challenge := pkce()
		state := random()
		a.pending[state] = verifier
		q := url.Values{
			"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {a.srv.URL + "/callback"},
			"scope": {"openid email"}, "state": {state}, "nonce": {random()},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}
		http.Redirect(w, r, a.f.endpoint("authorization_endpoint")+"?"+q.Encode(), http.StatusFound)
	case "/callback":
		verifier, ok := a.pending[r.URL.Query().Get("state")]
		if !ok || r.URL.Query().Get("iss") != a.f.op.Issuer {
			http.Error(w, "bad state or iss", http.StatusBadRequest)
			return
		}
		delete(a.pending, r.URL.Query().Get("state"))
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {r.URL.Query().Get("code")},
			"redirect_uri": {a.srv.URL + "/callback"}, "code_verifier": {verifier},
			"client_id": {"app"}, "client_secret": {appSecret},
		}
		resp, err := http.PostForm(a.f.endpoint("token_endpoint"), form)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var tok tokens
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, "code exchange failed", http.StatusBadGateway)
			return
		}
		id := random()
		a.sessions[id] = tok
		http.SetCookie(w, &http.Cookie{Name: "app_session", Value: id, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/", http.StatusFound)
	case "/logout":
		c, err := r.Cookie("app_session")
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "no session", http.StatusBadRequest)
			return
		}
		tok := a.sessions[c.Value]
		q := url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {a.srv.URL + "/bye"}}
		http.Redirect(w, r, a.f.endpoint("end_session_endpoint")+"?"+q.Encode(), http.StatusSeeOther)
	case "/bye":
		io.WriteString(w, "signed out")
	case "/backchannel":
		// A real app verifies the logout token; this one trusts its sid.
		parts := strings.Split(r.PostFormValue("logout_token"), ".")
		var claims struct{ SID string }
		if len(parts) == 3 {
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(raw, &claims)
		}
		for k, tok := range a.sessions {
			var id struct{ SID string }
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[1])
			_ = json.Unmarshal(raw, &id)
			if claims.SID != "" && id.SID == claims.SID {
				delete(a.sessions, k)
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (a *webApp) sessionCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

func (f *fixture) driveApp(t *testing.T) {
	app := &webApp{f: f, pending: map[string]string{}, sessions: map[string]tokens{}}
	app.srv = httptest.NewServer(app)
	defer app.srv.Close()
	// The app's URL is known only now: register it with the running OP.
	if err := f.op.AddClient(nodeop.Client{
		ID: "app", Secret: appSecret, AuthMethod: "client_secret_post",
		RedirectURIs:           []string{app.srv.URL + "/callback"},
		PostLogoutRedirectURIs: []string{app.srv.URL + "/bye"},
		BackchannelLogoutURI:   app.srv.URL + "/backchannel",
	}); err != nil {
		t.Fatal(err)
	}

	b := nodeop.NewBrowser(t, "usr_alice", "correct horse") // login by user ID works too
	final, resp, err := b.Navigate(app.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if final.String() != app.srv.URL+"/" || string(body) != "hello usr_alice" || b.LoginForms() != 1 {
		t.Fatalf("ended at %s with %q after %d login forms", final, body, b.LoginForms())
	}

	final, resp, err = b.PostForm(app.srv.URL+"/logout", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if final.Path != "/bye" || string(body) != "signed out" {
		t.Fatalf("logout ended at %s with %q", final, body)
	}
	if n := app.sessionCount(); n != 0 {
		t.Errorf("app has %d sessions after back-channel logout, want 0", n)
	}

	// Signed out at the OP too: the next visit shows the login form again.
	if _, _, err := b.Navigate(app.srv.URL+"/", nil); err != nil {
		t.Fatal(err)
	}
	if n := b.LoginForms(); n != 2 {
		t.Errorf("login forms = %d, want 2", n)
	}
}
