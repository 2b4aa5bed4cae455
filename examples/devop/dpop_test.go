package devop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/examples/devop"
)

// RFC 9449 at the development OP: proofs at the token endpoint, tokens bound
// to their key, refresh tokens of public clients bound too, hostile proofs
// refused before the grant is looked at.

func newSigner(t *testing.T) *dpop.Signer {
	t.Helper()
	s, err := dpop.GenerateSigner("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// proofHeader is a DPoP header with a fresh proof by s for the token
// endpoint of o (nonce: the OP's latest, or "").
func proofHeader(t *testing.T, o *devop.OP, s *dpop.Signer, nonce string) http.Header {
	t.Helper()
	p, err := s.Proof(http.MethodPost, o.Issuer()+devop.TokenPath, "", nonce)
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Dpop": {p}}
}

func jkt(t *testing.T, o *devop.OP, accessToken string) string {
	t.Helper()
	c, _ := verify(t, o, accessToken).claims["cnf"].(map[string]any)
	s, _ := c["jkt"].(string)
	return s
}

func TestDPoPDiscovery(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.op.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Algs   []string `json:"dpop_signing_alg_values_supported"`
		Issuer string   `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"ES256", "EdDSA", "PS256", "RS256"} {
		if !slices.Contains(d.Algs, alg) {
			t.Errorf("dpop_signing_alg_values_supported %v lacks %s", d.Algs, alg)
		}
	}
	for _, alg := range d.Algs {
		if alg == "none" || strings.HasPrefix(alg, "HS") {
			t.Errorf("dpop_signing_alg_values_supported lists %s", alg)
		}
	}
	if d.Issuer != e.op.Issuer() {
		t.Errorf("the rest of the document is gone: issuer %q", d.Issuer)
	}
}

// A public client's access and refresh tokens are bound to the proof's key:
// a refresh without a proof, or with a proof by another key, is refused
// invalid_grant; userinfo wants the DPoP scheme; introspection says so.
func TestDPoPPublicClient(t *testing.T) {
	e := newEnv(t)
	key, other := newSigner(t), newSigner(t)
	a := &auth{client: e.spa, state: "s", nonce: "n", verifier: "verifier-0123456789-0123456789-0123456789-abc"}
	code := newBrowser(t, e.op).login(a, "alice@example.com")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}, "code_verifier": {a.verifier}}
	tr := mustTokens(t, tokenRequestWith(t, e.op, e.spa, authNone, form, proofHeader(t, e.op, key, "")))
	if tr.TokenType != "DPoP" || tr.RefreshToken == "" || tr.IDToken == "" {
		t.Fatalf("token_type %q, refresh token %v, ID token %v", tr.TokenType, tr.RefreshToken != "", tr.IDToken != "")
	}
	if got := jkt(t, e.op, tr.AccessToken); got != key.Thumbprint() {
		t.Fatalf("cnf.jkt %q, want the proof key's %q", got, key.Thumbprint())
	}
	if _, bound := verify(t, e.op, tr.IDToken).claims["cnf"]; bound {
		t.Error("the ID token has a cnf claim")
	}

	refreshWith := func(h http.Header) tokenResponse {
		return tokenRequestWith(t, e.op, e.spa, authNone, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, h)
	}
	if r := refreshWith(nil); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh without a proof: %d %s", r.Status, r.Error)
	}
	if r := refreshWith(proofHeader(t, e.op, other, "")); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh with another key: %d %s", r.Status, r.Error)
	}
	r := mustTokens(t, refreshWith(proofHeader(t, e.op, key, "")))
	if r.TokenType != "DPoP" || jkt(t, e.op, r.AccessToken) != key.Thumbprint() {
		t.Fatalf("refresh: token_type %q, cnf.jkt %q", r.TokenType, jkt(t, e.op, r.AccessToken))
	}
	// The rotated refresh token keeps the binding.
	next := tokenRequestWith(t, e.op, e.spa, authNone, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, proofHeader(t, e.op, other, ""))
	if next.Error != "invalid_grant" {
		t.Errorf("rotated refresh token with another key: %d %s", next.Status, next.Error)
	}

	userinfo := func(scheme string, proof *dpop.Signer) int {
		req, _ := http.NewRequest(http.MethodGet, e.op.Issuer()+devop.UserinfoPath, nil)
		req.Header.Set("Authorization", scheme+" "+r.AccessToken)
		if proof != nil {
			p, err := proof.Proof(http.MethodGet, e.op.Issuer()+devop.UserinfoPath, r.AccessToken, "")
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("DPoP", p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name   string
		scheme string
		proof  *dpop.Signer
		want   int
	}{
		{"bound token as Bearer", "Bearer", nil, http.StatusUnauthorized},
		{"DPoP without a proof", "DPoP", nil, http.StatusUnauthorized},
		{"DPoP with another key", "DPoP", other, http.StatusUnauthorized},
		{"DPoP with the bound key", "DPoP", key, http.StatusOK},
	} {
		if got := userinfo(c.scheme, c.proof); got != c.want {
			t.Errorf("userinfo, %s: %d, want %d", c.name, got, c.want)
		}
	}

	in := introspect(t, e.op, r.AccessToken)
	if cnf, _ := in["cnf"].(map[string]any); in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != key.Thumbprint() {
		t.Errorf("introspection %v", in)
	}
}

// A confidential client's access token is bound, its refresh token is not
// (RFC 9449 §5: it is bound to the client's credentials already). Without a
// proof, everything is as before: Bearer.
func TestDPoPConfidentialClient(t *testing.T) {
	e := newEnv(t)
	key := newSigner(t)
	a := &auth{client: e.dashboard, state: "s"}
	code := newBrowser(t, e.op).login(a, "alice@example.com")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}}
	tr := mustTokens(t, tokenRequestWith(t, e.op, e.dashboard, authPost, form, proofHeader(t, e.op, key, "")))
	if tr.TokenType != "DPoP" || jkt(t, e.op, tr.AccessToken) != key.Thumbprint() {
		t.Fatalf("token_type %q, cnf.jkt %q", tr.TokenType, jkt(t, e.op, tr.AccessToken))
	}
	r := mustTokens(t, refresh(t, e.op, e.dashboard, authPost, tr.RefreshToken))
	if r.TokenType != "Bearer" || jkt(t, e.op, r.AccessToken) != "" {
		t.Errorf("refresh without a proof: token_type %q, cnf.jkt %q", r.TokenType, jkt(t, e.op, r.AccessToken))
	}
	if in := introspect(t, e.op, r.AccessToken); in["token_type"] != "Bearer" || in["cnf"] != nil {
		t.Errorf("introspection of a Bearer token: %v", in)
	}
	other := newSigner(t)
	r2 := mustTokens(t, tokenRequestWith(t, e.op, e.dashboard, authPost, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, proofHeader(t, e.op, other, "")))
	if r2.TokenType != "DPoP" || jkt(t, e.op, r2.AccessToken) != other.Thumbprint() {
		t.Errorf("refresh with a new key: token_type %q, cnf.jkt %q", r2.TokenType, jkt(t, e.op, r2.AccessToken))
	}
}

// Hostile proofs are refused 400 invalid_dpop_proof after client
// authentication and before the grant (here a code that does not exist,
// which a good proof reaches: invalid_grant).
func TestDPoPHostileProofs(t *testing.T) {
	e := newEnv(t)
	key := newSigner(t)
	tokenURI := e.op.Issuer() + devop.TokenPath
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := func() map[string]any {
		return map[string]any{"jti": rand.Text(), "htm": "POST", "htu": tokenURI, "iat": time.Now().Unix()}
	}
	pubJWK := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(ec.X.FillBytes(make([]byte, 32))), "y": b64(ec.Y.FillBytes(make([]byte, 32)))}
	privJWK := map[string]any{"d": b64(ec.D.FillBytes(make([]byte, 32)))}
	for k, v := range pubJWK {
		privJWK[k] = v
	}
	header := func(mod func(map[string]any)) map[string]any {
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pubJWK}
		if mod != nil {
			mod(h)
		}
		return h
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := good()
		mod(c)
		return c
	}
	proof := func(method, uri string) string {
		p, err := key.Proof(method, uri, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	replayed := proof("POST", tokenURI)
	send := func(proofs ...string) tokenResponse {
		h := http.Header{}
		for _, p := range proofs {
			h.Add("DPoP", p)
		}
		return tokenRequestWith(t, e.op, e.spa, authNone, url.Values{"grant_type": {"authorization_code"}, "code": {"cd_nope"}, "redirect_uri": {spaRedirect}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}}, h)
	}
	if r := send(replayed); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Fatalf("a good proof: %d %s %s", r.Status, r.Error, r.ErrorDescription)
	}
	for name, proofs := range map[string][]string{
		"replayed jti":        {replayed},
		"wrong htu":           {proof("POST", e.op.Issuer()+devop.UserinfoPath)},
		"htu of another host": {proof("POST", "http://evil.example"+devop.TokenPath)},
		"wrong htm":           {proof("GET", tokenURI)},
		"two proofs":          {proof("POST", tokenURI), proof("POST", tokenURI)},
		"not a JWS":           {"not.a.proof"},
		"empty":               {""},
		"private jwk":         {signES256(t, ec, header(func(h map[string]any) { h["jwk"] = privJWK }), good())},
		"no jwk":              {signES256(t, ec, header(func(h map[string]any) { delete(h, "jwk") }), good())},
		"typ JWT":             {signES256(t, ec, header(func(h map[string]any) { h["typ"] = "JWT" }), good())},
		"alg none":            {unsigned(header(func(h map[string]any) { h["alg"] = "none" }), good())},
		"alg HS256":           {unsigned(header(func(h map[string]any) { h["alg"] = "HS256" }), good())},
		"bad signature":       {unsigned(header(nil), good()) + b64(make([]byte, 64))},
		"iat an hour ago":     {signES256(t, ec, header(nil), claims(func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }))},
		"iat in the future":   {signES256(t, ec, header(nil), claims(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }))},
		"no jti":              {signES256(t, ec, header(nil), claims(func(c map[string]any) { delete(c, "jti") }))},
		"iat a string":        {signES256(t, ec, header(nil), claims(func(c map[string]any) { c["iat"] = "now" }))},
	} {
		t.Run(name, func(t *testing.T) {
			r := send(proofs...)
			if r.Status != http.StatusBadRequest || r.Error != "invalid_dpop_proof" {
				t.Errorf("%d %s %s", r.Status, r.Error, r.ErrorDescription)
			}
		})
	}
	// Client authentication comes first: a bad proof from a client that
	// fails to authenticate is invalid_client.
	h := http.Header{"Dpop": {"garbage"}}
	bad := e.dashboard
	bad.Secret = "wrong"
	if r := tokenRequestWith(t, e.op, bad, authPost, url.Values{"grant_type": {"authorization_code"}, "code": {"cd_nope"}}, h); r.Error != "invalid_client" {
		t.Errorf("wrong secret and bad proof: %d %s", r.Status, r.Error)
	}
}

// With Config.DPoPNonces, a proof without the OP's nonce is refused
// use_dpop_nonce with a DPoP-Nonce to retry with (RFC 9449 §8).
func TestDPoPNonces(t *testing.T) {
	e := newEnv(t, func(c *devop.Config) { c.DPoPNonces = true })
	key := newSigner(t)
	a := &auth{client: e.cli, state: "s", verifier: "verifier-0123456789-0123456789-0123456789-abc"}
	code := newBrowser(t, e.op).login(a, "alice@example.com")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}, "code_verifier": {a.verifier}}
	r := tokenRequestWith(t, e.op, e.cli, authNone, form, proofHeader(t, e.op, key, ""))
	nonce := r.Header.Get("DPoP-Nonce")
	if r.Status != http.StatusBadRequest || r.Error != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("no nonce: %d %s, DPoP-Nonce %q", r.Status, r.Error, nonce)
	}
	if r := tokenRequestWith(t, e.op, e.cli, authNone, form, proofHeader(t, e.op, key, "forged-nonce")); r.Error != "use_dpop_nonce" {
		t.Errorf("a nonce the OP did not issue: %d %s", r.Status, r.Error)
	}
	tr := mustTokens(t, tokenRequestWith(t, e.op, e.cli, authNone, form, proofHeader(t, e.op, key, nonce)))
	if tr.TokenType != "DPoP" || jkt(t, e.op, tr.AccessToken) != key.Thumbprint() {
		t.Errorf("with the nonce: token_type %q", tr.TokenType)
	}
}

// Without a proof nothing changes: Bearer tokens without cnf.
func TestDPoPNoProofIsBearer(t *testing.T) {
	e := newEnv(t)
	a := &auth{client: e.cli, state: "s", verifier: "verifier-0123456789-0123456789-0123456789-abc"}
	code := newBrowser(t, e.op).login(a, "alice@example.com")
	tr := mustTokens(t, exchange(t, e.op, a, code, authNone))
	if tr.TokenType != "Bearer" || jkt(t, e.op, tr.AccessToken) != "" || tr.Header.Get("DPoP-Nonce") != "" {
		t.Errorf("token_type %q, cnf.jkt %q", tr.TokenType, jkt(t, e.op, tr.AccessToken))
	}
	if r := mustTokens(t, refresh(t, e.op, e.cli, authNone, tr.RefreshToken)); r.TokenType != "Bearer" {
		t.Errorf("refresh: token_type %q", r.TokenType)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// unsigned is header.claims. (an empty signature).
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c) + "."
}

// signES256 makes a JWS whatever its header says, to build hostile proofs.
func signES256(t *testing.T, k *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := segment(t, header) + "." + segment(t, claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := append(fillBytes(r), fillBytes(s)...)
	return input + "." + b64(sig)
}

func fillBytes(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }

// dpop_jkt on the authorization request binds the code to the key (RFC
// 9449 §10): the exchange needs a proof by that key.
func TestDPoPAuthorizationCodeBinding(t *testing.T) {
	e := newEnv(t)
	key, other := newSigner(t), newSigner(t)
	login := func() (*auth, url.Values) {
		a := &auth{client: e.cli, state: "s", verifier: "verifier-0123456789-0123456789-0123456789-abc", extra: url.Values{"dpop_jkt": {key.Thumbprint()}}}
		code := newBrowser(t, e.op).login(a, "alice@example.com")
		return a, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirectURI()}, "code_verifier": {a.verifier}}
	}
	_, form := login()
	if r := tokenRequestWith(t, e.op, e.cli, authNone, form, nil); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("no proof: %d %s", r.Status, r.Error)
	}
	if r := tokenRequestWith(t, e.op, e.cli, authNone, form, proofHeader(t, e.op, other, "")); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("another key: %d %s", r.Status, r.Error)
	}
	tr := mustTokens(t, tokenRequestWith(t, e.op, e.cli, authNone, form, proofHeader(t, e.op, key, "")))
	if tr.TokenType != "DPoP" || jkt(t, e.op, tr.AccessToken) != key.Thumbprint() {
		t.Errorf("with the key: token_type %q", tr.TokenType)
	}

	b := newBrowser(t, e.op)
	a := &auth{client: e.cli, state: "s", verifier: "verifier-0123456789-0123456789-0123456789-abc", extra: url.Values{"dpop_jkt": {"not-a-thumbprint"}}}
	p := b.visit(http.MethodGet, a.url(e.op), nil)
	if p.left == nil || p.left.Query().Get("error") != "invalid_request" || p.left.Query().Get("code") != "" {
		t.Errorf("a malformed dpop_jkt: %d %v", p.status, p.left)
	}
}
