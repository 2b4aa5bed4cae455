package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

const audience = "https://api.acme.example"

// claims are realistic Scalekit access token claims: with an RS256
// signature the token is about 1.2 KB, with ES256 or EdDSA about 1 KB.
func claims(iss string, now time.Time) map[string]any {
	t := now.Unix()
	return map[string]any{
		"iss": iss, "aud": []string{audience, "skc_58749293298765123"},
		"sub": "usr_63261964573376769", "oid": "org_59615193906282635", "sid": "ses_63261964591202561",
		"jti": "tkn_92847562398476523", "client_id": "skc_58749293298765123",
		"iat": t, "nbf": t, "exp": t + 300,
		"scope":       "openid profile email offline_access orders:read orders:write invoices:read",
		"roles":       []string{"admin", "billing_manager"},
		"permissions": []string{"orders:read", "orders:write", "invoices:read", "customers:read", "customers:write", "reports:export"},
		"xoid":        "ext_org_4711", "xuid": "ext_user_0815",
	}
}

// peerClaims is what the peers decode the claims into: the same typed
// claims multiapp's rp.Claims gives.
type peerClaims struct {
	gojwt.RegisteredClaims
	SID         string   `json:"sid"`
	OID         string   `json:"oid"`
	ClientID    string   `json:"client_id"`
	Scope       string   `json:"scope"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// verifier is one way of validating an access token: signature with the
// issuer's key and the alg allow-list, iss, aud, exp, and the claims
// decoded into typed values.
type verifier struct {
	name   string
	verify func(raw string) error
}

type fixture struct {
	alg    string
	key    *oidctest.Key
	raw    string
	forged string
	floor  func() bool
	peers  []verifier
}

func setup(tb testing.TB) []*fixture {
	tb.Helper()
	op := oidctest.New(tb)
	var fs []*fixture
	var keys []*oidctest.Key
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k := oidctest.NewKey("snk_"+alg, alg)
		keys = append(keys, k)
		raw := k.Sign(claims(op.Issuer, time.Now()), oidctest.Header{"typ": "at+jwt"})
		fs = append(fs, &fixture{alg: alg, key: k, raw: raw, forged: raw[:len(raw)-6] + "AAAAAA"})
	}
	op.SetKeys(keys...)
	ctx := context.Background()
	provider, err := rp.Discover(ctx, op.Issuer, &rp.ProviderOptions{SigningAlgs: []string{"RS256", "ES256", "EdDSA"}})
	if err != nil {
		tb.Fatal(err)
	}
	newMultiapp := func(cache int) *rp.AccessTokenVerifier {
		v, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{
			Audiences: []string{audience}, StrictRFC9068: true, CacheSize: cache,
		})
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	uncached, cached := newMultiapp(-1), newMultiapp(0)

	for _, f := range fs {
		f.floor = floor(tb, f)
		pub := f.key.Public()
		kid := f.key.Kid

		// golang-jwt/v5: typed claims, issuer, audience, required exp,
		// alg allow-list, key by kid.
		gjParser := gojwt.NewParser(gojwt.WithValidMethods([]string{f.alg}), gojwt.WithIssuer(op.Issuer),
			gojwt.WithAudience(audience), gojwt.WithExpirationRequired())
		gjKey := func(t *gojwt.Token) (any, error) {
			if t.Header["kid"] != kid {
				return nil, gojwt.ErrTokenUnverifiable
			}
			return pub, nil
		}

		// go-oidc: IDTokenVerifier on a static key set (it checks iss, aud
		// as ClientID, exp and the alg list), then the claims.
		goidc := oidc.NewVerifier(op.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
			&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{f.alg}})

		// jwx/v2: jwt.Parse with the key set, validation of iss and aud.
		jk, err := jwk.FromRaw(pub)
		if err != nil {
			tb.Fatal(err)
		}
		_ = jk.Set(jwk.KeyIDKey, kid)
		_ = jk.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(f.alg))
		set := jwk.NewSet()
		_ = set.AddKey(jk)

		f.peers = []verifier{
			{"multiapp", func(raw string) error { _, err := uncached.Verify(ctx, raw); return err }},
			{"multiapp-cache-hit", func(raw string) error { _, err := cached.Verify(ctx, raw); return err }},
			{"golang-jwt-v5", func(raw string) error {
				var c peerClaims
				_, err := gjParser.ParseWithClaims(raw, &c, gjKey)
				return err
			}},
			{"go-oidc", func(raw string) error {
				t, err := goidc.Verify(ctx, raw)
				if err != nil {
					return err
				}
				var c peerClaims
				return t.Claims(&c)
			}},
			{"jwx-v2", func(raw string) error {
				_, err := jwxjwt.Parse([]byte(raw), jwxjwt.WithKeySet(set), jwxjwt.WithValidate(true),
					jwxjwt.WithIssuer(op.Issuer), jwxjwt.WithAudience(audience))
				return err
			}},
		}
	}
	return fs
}

// floor is the standard library alone verifying the token's signature,
// already decoded: the least any verifier has to do.
func floor(tb testing.TB, f *fixture) func() bool {
	i := strings.LastIndexByte(f.raw, '.')
	input := []byte(f.raw[:i])
	sig, err := base64.RawURLEncoding.DecodeString(f.raw[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	switch pub := f.key.Public().(type) {
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		der := derSignature(sig)
		return func() bool {
			d := sha256.Sum256(input)
			return ecdsa.VerifyASN1(pub, d[:], der)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, input, sig) }
	}
	tb.Fatalf("key type %T", f.key.Public())
	return nil
}

func derSignature(sig []byte) []byte {
	enc := func(b []byte) []byte {
		v := new(big.Int).SetBytes(b).Bytes()
		if len(v) == 0 || v[0]&0x80 != 0 {
			v = append([]byte{0}, v...)
		}
		return append([]byte{0x02, byte(len(v))}, v...)
	}
	body := append(enc(sig[:len(sig)/2]), enc(sig[len(sig)/2:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// TestEveryVerifierAcceptsTheTokenAndRefusesAForgery makes sure the
// benchmarks compare verifiers doing the same job.
func TestEveryVerifierAcceptsTheTokenAndRefusesAForgery(t *testing.T) {
	for _, f := range setup(t) {
		if !f.floor() {
			t.Fatalf("%s: floor refuses the token", f.alg)
		}
		for _, p := range f.peers {
			if err := p.verify(f.raw); err != nil {
				t.Errorf("%s %s: %v", f.alg, p.name, err)
			}
			if err := p.verify(f.forged); err == nil {
				t.Errorf("%s %s accepts a forged signature", f.alg, p.name)
			}
		}
		if len(f.raw) < 900 || len(f.raw) > 1300 {
			t.Errorf("%s token is %d bytes, want about 1 KB", f.alg, len(f.raw))
		}
	}
}

// BenchmarkVerify: per algorithm, the crypto floor, then every verifier.
// Each verifier's iterations alternate with a floor verification, timed
// apart: x-floor is its time over the floor's under the same conditions
// (CPU frequency, other processes), and ns/op is its own time alone.
func BenchmarkVerify(b *testing.B) {
	for _, f := range setup(b) {
		b.Run(f.alg, func(b *testing.B) {
			b.Run("floor", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !f.floor() {
						b.Fatal("floor failed")
					}
				}
			})
			for _, p := range f.peers {
				if err := p.verify(f.raw); err != nil { // warm caches (JWKS, verified tokens)
					b.Fatal(err)
				}
				b.Run(p.name, func(b *testing.B) {
					var tf, tv time.Duration
					for b.Loop() {
						t0 := time.Now()
						if !f.floor() {
							b.Fatal("floor failed")
						}
						t1 := time.Now()
						if err := p.verify(f.raw); err != nil {
							b.Fatal(err)
						}
						tv += time.Since(t1)
						tf += t1.Sub(t0)
					}
					b.ReportMetric(float64(tv.Nanoseconds())/float64(b.N), "ns/op")
					b.ReportMetric(float64(tv)/float64(tf), "x-floor")
				})
			}
		})
	}
}

// BenchmarkAllocs reports each verifier's allocations (not paired with
// the floor, which allocates too).
func BenchmarkAllocs(b *testing.B) {
	for _, f := range setup(b) {
		for _, p := range f.peers {
			b.Run(f.alg+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := p.verify(f.raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
