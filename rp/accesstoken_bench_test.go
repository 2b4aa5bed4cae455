package rp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// benchClaims are realistic Scalekit access token claims: with an RS256
// signature the token is about 1.2 KB, with ES256 or EdDSA about 1 KB.
func benchClaims(iss string, now time.Time) map[string]any {
	t := now.Unix()
	return map[string]any{
		"iss": iss, "aud": []string{"https://api.acme.example", "skc_58749293298765123"},
		"sub": "usr_63261964573376769", "oid": "org_59615193906282635", "sid": "ses_63261964591202561",
		"jti": "tkn_92847562398476523", "client_id": "skc_58749293298765123",
		"iat": t, "nbf": t, "exp": t + 300,
		"scope":       "openid profile email offline_access orders:read orders:write invoices:read",
		"roles":       []string{"admin", "billing_manager"},
		"permissions": []string{"orders:read", "orders:write", "invoices:read", "customers:read", "customers:write", "reports:export"},
		"xoid":        "ext_org_4711", "xuid": "ext_user_0815",
	}
}

type benchToken struct {
	alg, raw string
	key      *oidctest.Key
}

// floor verifies the token's signature with the standard library alone,
// signature already decoded: the least any verifier must do.
func (bt benchToken) floor(b *testing.B) func() bool {
	tok, err := jws.Parse(bt.raw)
	if err != nil {
		b.Fatal(err)
	}
	input, sig := []byte(tok.SigningInput), tok.Signature
	switch pub := bt.key.Public().(type) {
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		der, err := asn1Sig(sig)
		if err != nil {
			b.Fatal(err)
		}
		return func() bool {
			d := sha256.Sum256(input)
			return ecdsa.VerifyASN1(pub, d[:], der)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, input, sig) }
	}
	b.Fatal("key type")
	return nil
}

func asn1Sig(sig []byte) ([]byte, error) {
	r := new(big.Int).SetBytes(sig[:len(sig)/2])
	s := new(big.Int).SetBytes(sig[len(sig)/2:])
	// Minimal DER of SEQUENCE { INTEGER r, INTEGER s }.
	enc := func(v *big.Int) []byte {
		b := v.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(enc(r), enc(s)...)
	return append([]byte{0x30, byte(len(body))}, body...), nil
}

func benchSetup(b *testing.B) (*oidctest.OP, []benchToken) {
	op := oidctest.New(b)
	var toks []benchToken
	var keys []*oidctest.Key
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k := oidctest.NewKey("snk_"+alg, alg)
		keys = append(keys, k)
		toks = append(toks, benchToken{alg: alg, key: k, raw: k.Sign(benchClaims(op.Issuer, time.Now()), oidctest.Header{"typ": "at+jwt"})})
	}
	op.SetKeys(keys...)
	return op, toks
}

// BenchmarkAccessTokenVerify compares, per algorithm, the standard library
// verifying the signature alone ("floor") with the full validation without
// cache ("uncached") and with a cache hit. The uncached and cache-hit runs
// alternate every iteration with a floor verification, timed apart: x-floor
// is their time over the floor's measured under the same conditions
// (other processes, CPU frequency), and ns/op is theirs alone. The
// comparison with other Go libraries is in ../bench.
func BenchmarkAccessTokenVerify(b *testing.B) {
	op, toks := benchSetup(b)
	ctx := context.Background()
	p := discover(b, op.Issuer, &rp.ProviderOptions{SigningAlgs: []string{"RS256", "ES256", "EdDSA"}})
	mk := func(cache int) *rp.AccessTokenVerifier {
		v, err := p.AccessTokenVerifier(rp.AccessTokenConfig{
			Audiences: []string{"https://api.acme.example"}, StrictRFC9068: true, CacheSize: cache,
		})
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	uncached, cached := mk(-1), mk(0)
	for _, bt := range toks {
		for _, v := range []*rp.AccessTokenVerifier{uncached, cached} {
			if _, err := v.Verify(ctx, bt.raw); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(bt.alg, func(b *testing.B) {
			b.Run("floor", func(b *testing.B) {
				f := bt.floor(b)
				b.ReportAllocs()
				for b.Loop() {
					if !f() {
						b.Fatal("floor failed")
					}
				}
			})
			b.Run("uncached", func(b *testing.B) {
				pairedWithFloor(b, bt.floor(b), func() error { _, err := uncached.Verify(ctx, bt.raw); return err })
			})
			b.Run("cache-hit", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := cached.Verify(ctx, bt.raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// pairedWithFloor times f and the floor alternately and reports f's ns/op,
// the floor's, and their ratio (x-floor).
func pairedWithFloorX(b *testing.B, floor func() bool, f func() error) {
	var tf, tx time.Duration
	for b.Loop() {
		t0 := time.Now()
		if !floor() {
			b.Fatal("floor failed")
		}
		t1 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		tx += time.Since(t1)
		tf += t1.Sub(t0)
	}
	b.ReportMetric(float64(tx.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "floor-ns/op")
	b.ReportMetric(float64(tx)/float64(tf), "x-floor")
}

// BenchmarkParseClaims measures the claims decoder alone on a realistic
// payload.
func BenchmarkParseClaims(b *testing.B) {
	_, toks := benchSetup(b)
	tok, _ := jws.Parse(toks[0].raw)
	payload, _ := tok.Payload()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rp.ParseClaims(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func pairedWithFloor(b *testing.B, floor func() bool, f func() error) {
	var tf, tx time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if !floor() {
			b.Fatal("floor failed")
		}
		tf += time.Since(t1)
		tx += t1.Sub(t0)
	}
	b.ReportMetric(float64(tx.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "floor-ns/op")
	b.ReportMetric(float64(tx)/float64(tf), "x-floor")
}
