// Package oidctest is a scriptable OpenID Provider for unit tests: it issues
// correct token responses by default and lets a test break any part of them
// (claims, headers, signatures, status codes, bodies) to prove that the
// relying party refuses them. It is not a real OP: interop is proven against
// node-oidc-provider and the development OP.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/multiapp-go/multiapp/dpop"
)

// Key is a signing key of the test OP.
type Key struct {
	Kid  string
	Alg  string
	priv crypto.Signer
}

// NewKey generates a key for alg: RS256, PS256, ES256, ES384 or EdDSA.
func NewKey(kid, alg string) *Key {
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic("oidctest: unsupported alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return &Key{Kid: kid, Alg: alg, priv: s}
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// JWK returns the public JWK of k as a JSON object.
func (k *Key) JWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch p := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		p.X.FillBytes(x)
		p.Y.FillBytes(y)
		m["kty"], m["crv"], m["x"], m["y"] = "EC", p.Curve.Params().Name, b64(x), b64(y)
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(p)
	}
	return m
}

// Header is a JWS header to sign with. Empty Alg/Kid take the key's.
type Header map[string]any

// Sign returns a compact JWS of claims signed by k. header entries override
// the defaults {"alg": k.Alg, "kid": k.Kid, "typ": "JWT"}; a nil value
// removes an entry.
func (k *Key) Sign(claims any, header Header) string {
	h := map[string]any{"alg": k.Alg, "kid": k.Kid, "typ": "JWT"}
	for name, v := range header {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	hb, _ := json.Marshal(h)
	pb, _ := json.Marshal(claims)
	input := b64(hb) + "." + b64(pb)
	return input + "." + b64(k.sign(k.Alg, input))
}

func (k *Key) sign(alg, input string) []byte {
	switch alg {
	case "EdDSA":
		return ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(input))
	}
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write([]byte(input))
	digest := d.Sum(nil)
	switch alg[:2] {
	case "RS":
		sig, _ := rsa.SignPKCS1v15(rand.Reader, k.priv.(*rsa.PrivateKey), h, digest)
		return sig
	case "PS":
		sig, _ := rsa.SignPSS(rand.Reader, k.priv.(*rsa.PrivateKey), h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		return sig
	default:
		p := k.priv.(*ecdsa.PrivateKey)
		r, s, _ := ecdsa.Sign(rand.Reader, p, digest)
		size := (p.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
}

// SignHMACWithPublicKey forges the classic key-confusion token: HS256 keyed
// with the bytes of the OP's public RSA modulus.
func (k *Key) SignHMACWithPublicKey(claims any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": k.Kid, "typ": "JWT"})
	pb, _ := json.Marshal(claims)
	input := b64(hb) + "." + b64(pb)
	secret, _ := json.Marshal(k.JWK())
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

// Unsigned returns the "alg":"none" form of claims.
func Unsigned(claims any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	pb, _ := json.Marshal(claims)
	return b64(hb) + "." + b64(pb) + "."
}

// AtHash computes at_hash of an access token for alg.
func AtHash(alg, accessToken string) string {
	var sum []byte
	switch alg {
	case "EdDSA", "RS512", "PS512", "ES512":
		s := sha512.Sum512([]byte(accessToken))
		sum = s[:]
	case "RS384", "PS384", "ES384":
		s := sha512.Sum384([]byte(accessToken))
		sum = s[:]
	default:
		s := sha256.Sum256([]byte(accessToken))
		sum = s[:]
	}
	return b64(sum[:len(sum)/2])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// OP is the scriptable provider.
type OP struct {
	Server *httptest.Server
	// Issuer is the server URL.
	Issuer string

	mu        sync.Mutex
	keys      []*Key
	signer    *Key
	meta      map[string]any
	tokenHook func(form url.Values) (status int, body any)
	introHook func(token string) (status int, body any)
	grants    map[string]Grant
	clients   map[string]Client
	jtis      map[string]bool       // client assertion ids seen (replay)
	pushed    map[string]url.Values // request_uri -> pushed request
	parHook   func(form url.Values) (status int, body any)
	dpop      *dpop.Verifier    // EnableDPoP
	bound     map[string]string // token -> jkt of its DPoP key

	// JWKSFetches counts JWKS requests; TokenRequests counts token
	// endpoint requests, IntrospectionRequests and RevocationRequests those
	// endpoints' (refused ones included).
	JWKSFetches           atomic.Int64
	TokenRequests         atomic.Int64
	IntrospectionRequests atomic.Int64
	RevocationRequests    atomic.Int64
	PARRequests           atomic.Int64
	// JWKSDown makes the JWKS endpoint answer 503.
	JWKSDown atomic.Bool
}

// Grant is what a code or refresh token redeems to.
type Grant struct {
	Claims       map[string]any // ID token claims (defaults filled in)
	Challenge    string         // PKCE S256 challenge expected with the code
	RefreshToken string         // issued refresh token ("" for none)
	NoIDToken    bool
}

// Client is a registered client. The token, introspection and revocation
// endpoints authenticate a registered client before anything else, as Ory
// Hydra does: exactly one method (RFC 6749 §2.3), the registered one, with
// the right secret; in HTTP Basic the id and secret must be form-urlencoded
// (RFC 6749 §2.3.1). Anything else is 401 invalid_client (400
// invalid_request for two methods at once). A client id that was never
// registered is not checked, so tests about other things need no
// registration.
//
// A private_key_jwt client (RFC 7523 §2.2) is checked as strictly as
// node-oidc-provider's FAPI 2.0 profile: client_assertion_type, a
// signature by a key of JWKS with an alg of the OP's
// token_endpoint_auth_signing_alg_values_supported, iss and sub the
// client id, aud exactly the issuer (a string), exp present and not past,
// iat not in the future, jti present and never seen before, and the
// assertion no longer than 5 minutes.
type Client struct {
	ID     string
	Secret string
	// AuthMethod: "client_secret_basic", "client_secret_post",
	// "private_key_jwt" or "none". Empty: client_secret_basic with a Secret
	// (the RFC 7591 default), private_key_jwt with JWKS, none without.
	AuthMethod string
	// JWKS is the client's public JSON Web Key Set (private_key_jwt).
	JWKS []byte
}

// AddClient registers c (replacing a client with the same id).
func (op *OP) AddClient(c Client) {
	if c.AuthMethod == "" {
		switch {
		case c.Secret != "":
			c.AuthMethod = "client_secret_basic"
		case c.JWKS != nil:
			c.AuthMethod = "private_key_jwt"
		default:
			c.AuthMethod = "none"
		}
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.clients[c.ID] = c
}

// SetIntrospectionHook makes the introspection endpoint (at
// Issuer+"/oauth/introspect", not advertised unless a test sets the
// introspection_endpoint metadata) answer with hook's
// result for the token. Nil (the default): {"active": false}.
func (op *OP) SetIntrospectionHook(hook func(token string) (status int, body any)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.introHook = hook
}

// TB is the part of testing.TB that New needs (examples have no *testing.T).
type TB interface{ Cleanup(func()) }

// ForExample starts an OP for a runnable Example (which has no
// *testing.T); call stop when done.
func ForExample() (op *OP, stop func()) {
	c := &cleanups{}
	return New(c), c.run
}

type cleanups struct{ fns []func() }

func (c *cleanups) Cleanup(f func()) { c.fns = append(c.fns, f) }
func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

// New starts a test OP with one RS256 key ("k1") and a discovery document
// advertising the usual endpoints.
func New(t TB) *OP {
	op := &OP{grants: make(map[string]Grant), clients: make(map[string]Client), jtis: map[string]bool{}, pushed: map[string]url.Values{}}
	op.Server = httptest.NewServer(http.HandlerFunc(op.serve))
	t.Cleanup(op.Server.Close)
	op.Issuer = op.Server.URL
	op.signer = NewKey("k1", "RS256")
	op.keys = []*Key{op.signer}
	op.meta = map[string]any{
		"issuer":                                           op.Issuer,
		"authorization_endpoint":                           op.Issuer + "/oauth/authorize",
		"token_endpoint":                                   op.Issuer + "/oauth/token",
		"jwks_uri":                                         op.Issuer + "/keys",
		"userinfo_endpoint":                                op.Issuer + "/userinfo",
		"end_session_endpoint":                             op.Issuer + "/oidc/logout",
		"revocation_endpoint":                              op.Issuer + "/oauth/revoke",
		"response_types_supported":                         []string{"code"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256", "ES256", "EdDSA", "PS256"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_post", "client_secret_basic", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256", "EdDSA"},
		"pushed_authorization_request_endpoint":            op.Issuer + "/oauth/par",
		"backchannel_logout_supported":                     true,
		"backchannel_logout_session_supported":             true,
	}
	return op
}

// SetMeta sets (or, with nil, removes) a discovery field.
func (op *OP) SetMeta(name string, v any) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if v == nil {
		delete(op.meta, name)
	} else {
		op.meta[name] = v
	}
}

// Signer returns the current signing key.
func (op *OP) Signer() *Key {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.signer
}

// AddKey publishes k; with sign, it also becomes the signing key.
func (op *OP) AddKey(k *Key, sign bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.keys = append(op.keys, k)
	if sign {
		op.signer = k
	}
}

// SetKeys replaces the published keys (rotation) and signs with the first.
func (op *OP) SetKeys(keys ...*Key) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.keys = keys
	op.signer = keys[0]
}

// Reply is a token hook's body with response headers, e.g. Retry-After.
type Reply struct {
	Header http.Header
	Body   any
}

// SetTokenHook makes the token endpoint answer with hook's result: a
// string body is sent as HTML, a Reply adds headers, anything else is sent
// as JSON. A nil hook restores the default behaviour (grants registered
// with AddGrant).
func (op *OP) SetTokenHook(hook func(form url.Values) (status int, body any)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tokenHook = hook
}

// AddGrant registers a code or refresh token and what it redeems to.
func (op *OP) AddGrant(code string, g Grant) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.grants[code] = g
}

// IDClaims returns valid ID token claims for clientID, subject and nonce.
func (op *OP) IDClaims(clientID, subject, nonce string) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": op.Issuer, "sub": subject, "aud": clientID, "azp": clientID,
		"iat": now, "exp": now + 300, "sid": "ses_1", "email": "alice@example.com",
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

func (op *OP) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/token":
		op.TokenRequests.Add(1)
	case "/oauth/introspect":
		op.IntrospectionRequests.Add(1)
	case "/oauth/revoke":
		op.RevocationRequests.Add(1)
	case "/oauth/par":
		op.PARRequests.Add(1)
	}
	switch r.URL.Path {
	case "/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/par":
		_ = r.ParseForm()
		if status, body := op.authenticate(r); status != 0 {
			if _, _, basic := r.BasicAuth(); basic && status == 401 {
				w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`) // RFC 6749 §5.2
			}
			writeJSON(w, status, body)
			return
		}
		if id, secret, ok := r.BasicAuth(); ok {
			r.PostForm.Set("basic_client_id", id)
			r.PostForm.Set("basic_client_secret", secret)
		}
	}
	op.mu.Lock()
	tokenHook, introHook, parHook := op.tokenHook, op.introHook, op.parHook
	op.mu.Unlock()
	// Hooks are called without the lock: a hook may change the OP.
	var status int
	var body any
	switch {
	case r.URL.Path == "/oauth/token" && tokenHook != nil:
		status, body = tokenHook(r.PostForm)
	case r.URL.Path == "/oauth/introspect" && introHook != nil:
		status, body = introHook(r.PostForm.Get("token"))
	case r.URL.Path == "/oauth/introspect":
		status, body = 200, map[string]any{"active": false}
	case r.URL.Path == "/oauth/revoke":
		status, body = 200, map[string]any{}
	case r.URL.Path == "/oauth/par" && parHook != nil:
		status, body = parHook(r.PostForm)
	case r.URL.Path == "/oauth/par":
		status, body = op.par(r)
	}
	if status != 0 {
		if rep, ok := body.(Reply); ok {
			for k, v := range rep.Header {
				w.Header()[k] = v
			}
			body = rep.Body
		}
		if s, ok := body.(string); ok {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			fmt.Fprint(w, s)
			return
		}
		writeJSON(w, status, body)
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, 200, op.meta)
	case "/keys":
		op.JWKSFetches.Add(1)
		if op.JWKSDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var keys []any
		for _, k := range op.keys {
			keys = append(keys, k.JWK())
		}
		writeJSON(w, 200, map[string]any{"keys": keys})
	case "/oauth/token":
		if jkt, ok := op.dpopProof(r.Context(), w, r); ok {
			op.token(w, r.PostForm, jkt)
		}
	default:
		http.NotFound(w, r)
	}
}

// authenticate applies the registered client's authentication method; it
// returns status 0 when the request may go on.
func (op *OP) authenticate(r *http.Request) (int, any) {
	fail := func(status int, code, format string, args ...any) (int, any) {
		return status, map[string]any{"error": code, "error_description": fmt.Sprintf(format, args...)}
	}
	basicID, basicSecret, hasBasic := r.BasicAuth()
	_, hasPost := r.PostForm["client_secret"]
	_, hasAssertion := r.PostForm["client_assertion"]
	var used, id, secret string
	n := 0
	for _, has := range []bool{hasBasic, hasPost, hasAssertion} {
		if has {
			n++
		}
	}
	for name, vs := range r.PostForm {
		if len(vs) > 1 {
			return fail(400, "invalid_request", "parameter %s appears more than once", name)
		}
	}
	switch {
	case n > 1:
		return fail(400, "invalid_request", "client authentication must use one method only (RFC 6749 section 2.3)")
	case hasAssertion:
		used = "private_key_jwt"
		var claims struct {
			Sub string `json:"sub"`
		}
		if msg, err := jws.Parse([]byte(r.PostForm.Get("client_assertion"))); err != nil || json.Unmarshal(msg.Payload(), &claims) != nil || claims.Sub == "" {
			return fail(400, "invalid_request", "invalid client_assertion format")
		}
		id = claims.Sub
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return fail(400, "invalid_request", "client_id mismatch")
		}
	case hasBasic:
		var err1, err2 error
		used = "client_secret_basic"
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return fail(401, "invalid_client", "the Basic credentials are not form-urlencoded (RFC 6749 section 2.3.1)")
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return fail(400, "invalid_request", "client_id mismatch")
		}
	case hasPost:
		used, id, secret = "client_secret_post", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		used, id = "none", r.PostForm.Get("client_id")
	}
	op.mu.Lock()
	c, registered := op.clients[id]
	op.mu.Unlock()
	switch {
	case !registered:
		return 0, nil
	case used != c.AuthMethod:
		return fail(401, "invalid_client", "client %q is registered for %s, the request used %s", id, c.AuthMethod, used)
	case used == "private_key_jwt":
		if err := op.checkAssertion(c, r.PostForm); err != nil {
			return fail(401, "invalid_client", "%v", err)
		}
	case used != "none" && secret != c.Secret:
		return fail(401, "invalid_client", "wrong secret for client %q", id)
	}
	return 0, nil
}

// checkAssertion verifies a private_key_jwt client assertion (see Client).
func (op *OP) checkAssertion(c Client, form url.Values) error {
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fmt.Errorf("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	}
	set, err := jwk.Parse(c.JWKS)
	if err != nil {
		return fmt.Errorf("the client's JWKS does not parse: %v", err)
	}
	raw := []byte(form.Get("client_assertion"))
	msg, err := jws.Parse(raw)
	if err != nil || len(msg.Signatures()) != 1 {
		return fmt.Errorf("the client assertion is not a compact JWS")
	}
	alg := msg.Signatures()[0].ProtectedHeaders().Algorithm().String()
	op.mu.Lock()
	allowed, _ := op.meta["token_endpoint_auth_signing_alg_values_supported"].([]string)
	op.mu.Unlock()
	if !slices.Contains(allowed, alg) {
		return fmt.Errorf("alg %q is not allowed for client assertions", alg)
	}
	payload, err := jws.Verify(raw, jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)))
	if err != nil {
		return fmt.Errorf("the client assertion's signature does not verify with the client's keys")
	}
	var cl struct {
		Iss, Sub, Jti string
		Aud           any
		Exp, Iat      *int64
	}
	if err := json.Unmarshal(payload, &cl); err != nil {
		return fmt.Errorf("the client assertion's claims are not JSON")
	}
	now := time.Now().Unix()
	switch {
	case cl.Iss != c.ID || cl.Sub != c.ID:
		return fmt.Errorf("iss and sub must be the client_id")
	case cl.Aud != op.Issuer:
		return fmt.Errorf("audience (aud) must equal the issuer identifier url")
	case cl.Exp == nil:
		return fmt.Errorf("expiration must be specified in the client_assertion JWT")
	case *cl.Exp <= now:
		return fmt.Errorf("the client assertion is expired")
	case cl.Iat != nil && *cl.Iat > now+5:
		return fmt.Errorf("the client assertion is issued in the future")
	case *cl.Exp-now > 300:
		return fmt.Errorf("the client assertion lives too long")
	case cl.Jti == "":
		return fmt.Errorf("unique jti (JWT ID) must be provided in the client_assertion JWT")
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.jtis[c.ID+" "+cl.Jti] {
		return fmt.Errorf("client assertion tokens must only be used once")
	}
	op.jtis[c.ID+" "+cl.Jti] = true
	return nil
}

// SetPARHook makes the pushed authorization request endpoint answer with
// hook's result (as SetTokenHook), after client authentication. Nil (the
// default): requests are checked and stored (see PushedRequest).
func (op *OP) SetPARHook(hook func(form url.Values) (status int, body any)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.parHook = hook
}

// PushedRequest returns the authorization request pushed as requestURI
// (without client authentication parameters), nil when there is none.
func (op *OP) PushedRequest(requestURI string) url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.pushed[requestURI]
}

// par is the RFC 9126 endpoint: a request with request_uri is refused
// (§2.1), so is one without response_type, redirect_uri or an S256 code
// challenge; a good one is stored and answered 201 with a request_uri
// valid for 60 seconds.
func (op *OP) par(r *http.Request) (int, any) {
	form := url.Values{}
	for k, v := range r.PostForm {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type", "basic_client_id", "basic_client_secret":
		default:
			form[k] = v
		}
	}
	bad := func(format string, args ...any) (int, any) {
		return 400, map[string]any{"error": "invalid_request", "error_description": fmt.Sprintf(format, args...)}
	}
	switch {
	case form.Has("request_uri"):
		return bad("request_uri must not be used at the pushed authorization request endpoint")
	case form.Get("response_type") != "code":
		return bad("response_type must be code")
	case form.Get("redirect_uri") == "":
		return bad("redirect_uri is missing")
	case form.Get("code_challenge") == "" || form.Get("code_challenge_method") != "S256":
		return bad("PKCE S256 is required")
	}
	uri := "urn:ietf:params:oauth:request_uri:" + b64(randBytes(16))
	op.mu.Lock()
	op.pushed[uri] = form
	op.mu.Unlock()
	return 201, map[string]any{"request_uri": uri, "expires_in": 60}
}

// token redeems a grant; jkt is the thumbprint of the request's DPoP key
// ("" without a proof).
func (op *OP) token(w http.ResponseWriter, form url.Values, jkt string) {
	key := form.Get("code")
	if form.Get("grant_type") == "refresh_token" {
		key = form.Get("refresh_token")
	}
	g, ok := op.grants[key]
	if !ok {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "unknown or used grant"})
		return
	}
	if want := op.bound[key]; want != "" && want != jkt {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "the refresh token is bound to another DPoP key"})
		return
	}
	delete(op.grants, key)
	if g.Challenge != "" {
		v := form.Get("code_verifier")
		s := sha256.Sum256([]byte(v))
		if b64(s[:]) != g.Challenge {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "PKCE verification failed"})
			return
		}
	}
	at := "at-" + b64(randBytes(12))
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300}
	if g.RefreshToken != "" {
		resp["refresh_token"] = g.RefreshToken
	}
	if jkt != "" {
		resp["token_type"] = "DPoP"
		op.bound[at] = jkt
		if g.RefreshToken != "" {
			op.bound[g.RefreshToken] = jkt
		}
	}
	if !g.NoIDToken {
		claims := map[string]any{}
		for k, v := range g.Claims {
			claims[k] = v
		}
		if _, ok := claims["at_hash"]; !ok {
			claims["at_hash"] = AtHash(op.signer.Alg, at)
		}
		resp["id_token"] = op.signer.Sign(claims, nil)
	}
	writeJSON(w, 200, resp)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
