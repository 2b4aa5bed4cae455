package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

const (
	api   = "https://api.example.com/orders"
	token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
)

var now = time.Unix(1_800_000_000, 0)

func clock() time.Time { return now }

func newVerifier(t *testing.T, mod func(*dpop.VerifierConfig)) *dpop.Verifier {
	t.Helper()
	cfg := dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{}), Now: clock}
	if mod != nil {
		mod(&cfg)
	}
	v, err := dpop.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// forge builds a proof from header and claims, signed with key under
// header["alg"] (ES256 or HS256 with a []byte key; "none": no signature).
func forge(t *testing.T, key any, header, claims map[string]any) string {
	t.Helper()
	in := b64json(t, header) + "." + b64json(t, claims)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(in))
		sig = m.Sum(nil)
	case string: // a signature of these bytes, valid or not
		sig = []byte(k)
	case nil:
	}
	return in + "." + b64(sig)
}

func ecJWK(k *ecdsa.PublicKey) map[string]any {
	return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))}
}

func goodClaims() map[string]any {
	return map[string]any{"jti": "j-" + rand.Text(), "htm": "GET", "htu": api, "iat": now.Unix(), "ath": dpop.TokenHash(token)}
}

func TestSignerProofsVerify(t *testing.T) {
	for _, alg := range []string{"", "ES256", "ES384", "EdDSA", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			s, err := dpop.GenerateSigner(alg)
			if err != nil {
				t.Fatal(err)
			}
			if alg == "" && s.Algorithm() != dpop.DefaultAlgorithm {
				t.Fatalf("default alg %s", s.Algorithm())
			}
			v := newVerifier(t, func(c *dpop.VerifierConfig) { c.Now = nil })
			proof, err := s.Proof("GET", api+"?page=2#top", token, "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token, Thumbprint: s.Thumbprint()})
			if err != nil {
				t.Fatal(err)
			}
			if p.Thumbprint != s.Thumbprint() || p.URI != api || p.Algorithm != s.Algorithm() {
				t.Fatalf("proof %+v", p)
			}
			// A second proof has a fresh jti.
			again, _ := s.Proof("GET", api, token, "")
			if _, err := v.Verify(context.Background(), again, dpop.Request{Method: "GET", URI: api, AccessToken: token}); err != nil {
				t.Fatalf("second proof: %v", err)
			}
		})
	}
}

// RFC 7638 §3.1's example key has this thumbprint.
func TestThumbprintRFC7638(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	s, err := dpop.NewSigner(fakeSigner{pub}, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
}

type fakeSigner struct{ pub crypto.PublicKey }

func (f fakeSigner) Public() crypto.PublicKey { return f.pub }
func (fakeSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

func TestVerifyRefuses(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	hdr := func() map[string]any {
		return map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(&key.PublicKey)}
	}
	withClaim := func(k string, v any) map[string]any {
		c := goodClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	withHeader := func(k string, v any) map[string]any {
		h := hdr()
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	privJWK := ecJWK(&key.PublicKey)
	privJWK["d"] = b64(key.D.FillBytes(make([]byte, 32)))
	tp := func(s *dpop.Signer) string { return s.Thumbprint() }
	otherSigner, _ := dpop.NewSigner(other, "")
	req := dpop.Request{Method: "GET", URI: api, AccessToken: token}
	cases := []struct {
		name  string
		proof string
		req   dpop.Request
		code  dpop.Code
	}{
		{"empty", "", req, dpop.CodeMalformed},
		{"huge", strings.Repeat("a", dpop.MaxProofSize+1), req, dpop.CodeMalformed},
		{"not a JWS", "a.b", req, dpop.CodeMalformed},
		{"alg none", forge(t, nil, withHeader("alg", "none"), goodClaims()), req, dpop.CodeAlgorithm},
		{"alg HS256", forge(t, []byte("secret-secret-secret-secret-1234"), withHeader("alg", "HS256"), goodClaims()), req, dpop.CodeAlgorithm},
		{"typ JWT", forge(t, key, withHeader("typ", "JWT"), goodClaims()), req, dpop.CodeType},
		{"typ missing", forge(t, key, withHeader("typ", nil), goodClaims()), req, dpop.CodeType},
		{"jwk missing", forge(t, key, withHeader("jwk", nil), goodClaims()), req, dpop.CodeKey},
		{"jwk private", forge(t, key, withHeader("jwk", privJWK), goodClaims()), req, dpop.CodeKey},
		{"jwk symmetric", forge(t, key, withHeader("jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"}), goodClaims()), req, dpop.CodeKey},
		{"jwk RSA 1024", forge(t, key, withHeader("jwk", map[string]any{"kty": "RSA", "n": b64(rsaSmall.N.Bytes()), "e": "AQAB"}), goodClaims()), req, dpop.CodeKey},
		{"jwk not an object", forge(t, key, withHeader("jwk", "x"), goodClaims()), req, dpop.CodeKey},
		{"crit", forge(t, key, withHeader("crit", []string{"exp"}), goodClaims()), req, dpop.CodeMalformed},
		{"signed by another key", forge(t, other, hdr(), goodClaims()), req, dpop.CodeSignature},
		{"jti missing", forge(t, key, hdr(), withClaim("jti", nil)), req, dpop.CodeMalformed},
		{"jti huge", forge(t, key, hdr(), withClaim("jti", strings.Repeat("j", 300))), req, dpop.CodeMalformed},
		{"iat missing", forge(t, key, hdr(), withClaim("iat", nil)), req, dpop.CodeMalformed},
		{"iat string", forge(t, key, hdr(), withClaim("iat", "1800000000")), req, dpop.CodeMalformed},
		{"htm missing", forge(t, key, hdr(), withClaim("htm", nil)), req, dpop.CodeMalformed},
		{"wrong htm", forge(t, key, hdr(), withClaim("htm", "POST")), req, dpop.CodeMethod},
		{"htm lower case", forge(t, key, hdr(), withClaim("htm", "get")), req, dpop.CodeMethod},
		{"wrong htu path", forge(t, key, hdr(), withClaim("htu", "https://api.example.com/admin")), req, dpop.CodeURI},
		{"wrong htu host", forge(t, key, hdr(), withClaim("htu", "https://evil.example.com/orders")), req, dpop.CodeURI},
		{"wrong htu scheme", forge(t, key, hdr(), withClaim("htu", "http://api.example.com/orders")), req, dpop.CodeURI},
		{"htu relative", forge(t, key, hdr(), withClaim("htu", "/orders")), req, dpop.CodeURI},
		{"stale iat", forge(t, key, hdr(), withClaim("iat", now.Add(-61*time.Second).Unix())), req, dpop.CodeTime},
		{"future iat", forge(t, key, hdr(), withClaim("iat", now.Add(time.Minute).Unix())), req, dpop.CodeTime},
		{"ath missing", forge(t, key, hdr(), withClaim("ath", nil)), req, dpop.CodeTokenHash},
		{"ath mismatch", forge(t, key, hdr(), withClaim("ath", dpop.TokenHash("another token"))), req, dpop.CodeTokenHash},
		{"bound to another key", forge(t, key, hdr(), goodClaims()), dpop.Request{Method: "GET", URI: api, AccessToken: token, Thumbprint: tp(otherSigner)}, dpop.CodeBinding},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, nil)
			_, err := v.Verify(context.Background(), tc.proof, tc.req)
			var e *dpop.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err %v, want code %s", err, tc.code)
			}
			if !errors.Is(err, dpop.ErrInvalidProof) || rp.ClassOf(err) != rp.ClassInvalid || !errors.Is(err, rp.ErrInvalidToken) {
				t.Fatalf("class of %v: %v", err, rp.ClassOf(err))
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hdr := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(&key.PublicKey)}
	for _, tc := range []struct{ name, htu, uri string }{
		{"default port", "https://API.example.com:443/orders", api},
		{"query and fragment ignored", api + "?x=1#f", api + "?y=2"},
		{"percent-encoded unreserved", "https://api.example.com/%6Frders", api},
		{"escape hex case", "https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"},
		{"dot segments", "https://api.example.com/x/../orders", api},
		{"empty path", "http://api.example.com", "http://api.example.com:80/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodClaims()
			c["htu"] = tc.htu
			v := newVerifier(t, nil)
			if _, err := v.Verify(context.Background(), forge(t, key, hdr, c), dpop.Request{Method: "GET", URI: tc.uri, AccessToken: token}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("iat within leeway", func(t *testing.T) {
		c := goodClaims()
		c["iat"] = now.Add(4 * time.Second).Unix()
		if _, err := newVerifier(t, nil).Verify(context.Background(), forge(t, key, hdr, c), dpop.Request{Method: "GET", URI: api, AccessToken: token}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no access token: ath not needed", func(t *testing.T) {
		c := goodClaims()
		delete(c, "ath")
		if _, err := newVerifier(t, nil).Verify(context.Background(), forge(t, key, hdr, c), dpop.Request{Method: "GET", URI: api}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReplay(t *testing.T) {
	s, _ := dpop.GenerateSigner("")
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	v1 := newVerifier(t, func(c *dpop.VerifierConfig) { c.Replay = store; c.Now = nil })
	v2 := newVerifier(t, func(c *dpop.VerifierConfig) { c.Replay = store; c.Now = nil }) // another instance
	proof, _ := s.Proof("GET", api, token, "")
	req := dpop.Request{Method: "GET", URI: api, AccessToken: token}
	if _, err := v1.Verify(context.Background(), proof, req); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*dpop.Verifier{v1, v2} {
		_, err := v.Verify(context.Background(), proof, req)
		var e *dpop.Error
		if !errors.As(err, &e) || e.Code != dpop.CodeReplay {
			t.Fatalf("replay: %v", err)
		}
	}
}

type downStore struct{}

func (downStore) UseOnce(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

func TestReplayStoreDownIsTemporary(t *testing.T) {
	s, _ := dpop.GenerateSigner("")
	v := newVerifier(t, func(c *dpop.VerifierConfig) { c.Replay = downStore{}; c.Now = nil })
	proof, _ := s.Proof("GET", api, token, "")
	_, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token})
	if !errors.Is(err, dpop.ErrReplayCheckUnavailable) || rp.ClassOf(err) != rp.ClassTemporary || errors.Is(err, dpop.ErrInvalidProof) {
		t.Fatalf("err %v class %v", err, rp.ClassOf(err))
	}
}

func TestNonces(t *testing.T) {
	at := now
	secret := []byte(strings.Repeat("k", 32))
	v := newVerifier(t, func(c *dpop.VerifierConfig) { c.NonceSecret = secret; c.Now = func() time.Time { return at } })
	s, _ := dpop.GenerateSigner("")
	req := dpop.Request{Method: "GET", URI: api, AccessToken: token}
	verify := func(nonce string) (*dpop.Proof, error) {
		t.Helper()
		proof, _ := s.Proof("GET", api, token, nonce)
		return v.Verify(context.Background(), proof, req)
	}
	code := func(err error) dpop.Code {
		var e *dpop.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	at = time.Now()
	if _, err := verify(""); code(err) != dpop.CodeUseNonce {
		t.Fatalf("no nonce: %v", err)
	}
	n := v.Nonce()
	if n == "" {
		t.Fatal("no nonce issued")
	}
	if p, err := verify(n); err != nil || p.NextNonce != "" {
		t.Fatalf("fresh nonce: %v %+v", err, p)
	}
	// Past half its lifetime the nonce is still accepted, and a new one is
	// offered; past its lifetime it is refused.
	v = newVerifier(t, func(c *dpop.VerifierConfig) {
		c.NonceSecret, c.MaxAge = secret, time.Hour
		c.Now = func() time.Time { return at }
	})
	n = v.Nonce()
	at = at.Add(3 * time.Minute)
	if p, err := verify(n); err != nil || p.NextNonce == "" || p.NextNonce == n {
		t.Fatalf("aging nonce: %v %+v", err, p)
	}
	at = at.Add(3 * time.Minute)
	if _, err := verify(n); code(err) != dpop.CodeUseNonce {
		t.Fatalf("expired nonce: %v", err)
	}
	other := newVerifier(t, func(c *dpop.VerifierConfig) { c.NonceSecret = []byte(strings.Repeat("x", 32)) })
	if _, err := verify(other.Nonce()); code(err) != dpop.CodeUseNonce {
		t.Fatalf("another server's nonce: %v", err)
	}
	if _, err := verify(n + "A"); code(err) != dpop.CodeUseNonce {
		t.Fatalf("tampered nonce: %v", err)
	}
	// Nonces of any length are refused, never decoded past a buffer (a
	// 36+ character nonce once panicked the verifier).
	for _, l := range []int{1, 31, 33, 35, 36, 40, 41, 64, 1000} {
		if _, err := verify(strings.Repeat("A", l)); code(err) != dpop.CodeUseNonce {
			t.Fatalf("nonce of %d characters: %v", l, err)
		}
	}
	if _, err := dpop.NewVerifier(dpop.VerifierConfig{InsecureSkipReplayCheck: true, NonceSecret: []byte("short")}); !errors.Is(err, rp.ErrConfig) {
		t.Fatalf("short secret: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]dpop.VerifierConfig{
		"no replay store": {},
		"HS256 allowed":   {Algorithms: []string{"HS256"}, InsecureSkipReplayCheck: true},
		"none allowed":    {Algorithms: []string{"none"}, InsecureSkipReplayCheck: true},
	} {
		if _, err := dpop.NewVerifier(cfg); !errors.Is(err, rp.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := dpop.NewSigner(edKey, "ES256"); !errors.Is(err, rp.ErrConfig) {
		t.Errorf("Ed25519 key for ES256: %v", err)
	}
	if _, err := dpop.NewSigner(edKey, "HS256"); !errors.Is(err, rp.ErrConfig) {
		t.Errorf("HS256: %v", err)
	}
	if _, err := dpop.GenerateSigner("none"); !errors.Is(err, rp.ErrConfig) {
		t.Errorf("none: %v", err)
	}
}

// The jti keys go to the namespace tokenstore names for them, in the
// store's OneTimeKeys role.
func TestReplayNamespace(t *testing.T) {
	var _ dpop.ReplayStore = tokenstore.OneTimeKeys(nil)
	rec := &recordingStore{}
	s, _ := dpop.GenerateSigner("")
	v := newVerifier(t, func(c *dpop.VerifierConfig) { c.Replay = rec; c.Now = nil })
	proof, _ := s.Proof("GET", api, token, "")
	if _, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token}); err != nil {
		t.Fatal(err)
	}
	if rec.namespace != tokenstore.DPoPProofIDs || rec.scope != api || rec.ttl != dpop.DefaultMaxAge+dpop.DefaultLeeway {
		t.Fatalf("UseOnce(%q, %q, _, %v)", rec.namespace, rec.scope, rec.ttl)
	}
}

type recordingStore struct {
	namespace, scope string
	ttl              time.Duration
}

func (r *recordingStore) UseOnce(_ context.Context, namespace, scope, _ string, ttl time.Duration) (bool, error) {
	r.namespace, r.scope, r.ttl = namespace, scope, ttl
	return true, nil
}

func TestPrivateJWKRoundTrip(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256", "RS256"} {
		s, _ := dpop.GenerateSigner(alg)
		b, err := s.MarshalPrivateJWK()
		if err != nil {
			t.Fatal(err)
		}
		back, err := dpop.ParseSigner(b)
		if err != nil || back.Thumbprint() != s.Thumbprint() || back.Algorithm() != alg {
			t.Fatalf("%s: %v %+v", alg, err, back)
		}
		// The public JWK alone is not a signer.
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for _, k := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			delete(m, k)
		}
		pub, _ := json.Marshal(m)
		if _, err := dpop.ParseSigner(pub); !errors.Is(err, rp.ErrConfig) {
			t.Fatalf("%s public JWK: %v", alg, err)
		}
	}
}

// TestHugeProofKeysRefusedCheaply: a proof's jwk is the sender's choice. An
// RSA key far larger than any client needs (or with a huge exponent) makes
// each signature check cost tens of milliseconds, so it is refused before
// any check; and the binding to the token's key is compared before the
// signature, so a proof by a key other than the token's costs no
// signature check at all.
func TestHugeProofKeysRefusedCheaply(t *testing.T) {
	v := newVerifier(t, nil)
	code := func(err error) dpop.Code {
		var e *dpop.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	huge, err := rsa.GenerateKey(rand.Reader, 4096+64)
	if err != nil {
		t.Fatal(err)
	}
	rsaJWK := func(k *rsa.PublicKey, e int) map[string]any {
		return map[string]any{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(new(big.Int).SetInt64(int64(e)).Bytes())}
	}
	ok, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, jwk := range map[string]map[string]any{
		"4160-bit modulus":  rsaJWK(&huge.PublicKey, 65537),
		"exponent 2^31 - 1": rsaJWK(&ok.PublicKey, 1<<31-1),
	} {
		proof := forge(t, strings.Repeat("s", 256), map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}, goodClaims())
		if _, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token}); code(err) != dpop.CodeKey {
			t.Errorf("%s: %v, want %s", name, err, dpop.CodeKey)
		}
	}
	// Bound to another key, with a signature that does not verify: the
	// binding answers first.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	proof := forge(t, signer, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(&key.PublicKey)}, goodClaims())
	if _, err := v.Verify(context.Background(), proof, dpop.Request{Method: "GET", URI: api, AccessToken: token, Thumbprint: "another-key"}); code(err) != dpop.CodeBinding {
		t.Errorf("proof by another key: %v, want %s before any signature check", err, dpop.CodeBinding)
	}
}
