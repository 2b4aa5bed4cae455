package bearer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// BenchmarkDPoP is the bearer layer alone (a recorder, no network) on a
// DPoP request: a cached DPoP-bound token and a fresh proof (parsing, the
// proof's signature, htm, htu, ath, binding, and its jti recorded in the
// memory store). Each iteration also times, apart, the same layer on a
// cached bearer token and the named peer "floor": the bare standard-library
// verification of one signature of the proof's algorithm, which no proof
// check can avoid. ns/op is the DPoP request's; x-floor its time over the
// floor's, x-bearer over the bearer request's; alternating keeps the
// ratios fair on a busy machine. Proofs are made before the timer starts.
// The whole request over loopback HTTP is BenchmarkDPoPThroughput.
func BenchmarkDPoP(b *testing.B) {
	api, bound, plain, signers := benchDPoP(b)
	h := api.Require(bearer.AnyScope("orders:read"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	bearerReq := httptest.NewRequest("GET", orders, nil)
	bearerReq.Header.Set("Authorization", "Bearer "+plain)
	floors := floors()
	for _, s := range signers {
		b.Run(s.Algorithm(), func(b *testing.B) {
			token := bound[s.Thumbprint()]
			reqs := make([]*http.Request, b.N)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", orders, nil)
				reqs[i].Header.Set("Authorization", "DPoP "+token)
				reqs[i].Header.Set("DPoP", mustProof(b, s, "GET", orders, token, ""))
			}
			floor := floors[s.Algorithm()]
			w := httptest.NewRecorder()
			var td, tb, tf time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				h.ServeHTTP(w, bearerReq)
				t1 := time.Now()
				if !floor() {
					b.Fatal("floor")
				}
				t2 := time.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, reqs[i])
				td += time.Since(t2)
				tb += t1.Sub(t0)
				tf += t2.Sub(t1)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Header())
				}
			}
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
			b.ReportMetric(float64(td.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "floor-ns/op")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "bearer-ns/op")
			b.ReportMetric(float64(td)/float64(tf), "x-floor")
			b.ReportMetric(float64(td)/float64(tb), "x-bearer")
		})
	}
}

// BenchmarkDPoPThroughput sends requests over loopback HTTP to one API,
// alternating a bearer token and a DPoP-bound token with a fresh ES256
// proof (made before the timer starts), timed apart: ns/op is the DPoP
// request's, x-bearer its time over the bearer request's.
func BenchmarkDPoPThroughput(b *testing.B) {
	api, bound, plain, signers := benchDPoP(b)
	srv := httptest.NewServer(api.Require(bearer.AnyScope("orders:read"))(hello))
	defer srv.Close()
	s := signers[0]
	token := bound[s.Thumbprint()]
	url := srv.URL + "/orders"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(scheme, tok, proof string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", scheme+" "+tok)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d %v", resp.StatusCode, resp.Header)
		}
	}
	get("Bearer", plain, "")
	get("DPoP", token, mustProof(b, s, "GET", url, token, ""))
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = mustProof(b, s, "GET", url, token, "")
	}
	var tb, td time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		get("Bearer", plain, "")
		t1 := time.Now()
		get("DPoP", token, proofs[i])
		td += time.Since(t1)
		tb += t1.Sub(t0)
	}
	b.ReportMetric(float64(td.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "bearer-ns/op")
	b.ReportMetric(float64(td)/float64(tb), "x-bearer")
}

// benchDPoP returns an API accepting both schemes, a DPoP-bound token per
// signer's thumbprint, a bearer token, and the signers (ES256, EdDSA,
// PS256).
func benchDPoP(b *testing.B) (*bearer.Middleware, map[string]string, string, []*dpop.Signer) {
	op := oidctest.New(b)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{bearerAud}, StrictRFC9068: true})
	if err != nil {
		b.Fatal(err)
	}
	api := mustNew(b, bearer.Config{Verifier: v, DPoP: &bearer.DPoPConfig{Proofs: proofVerifier(b, nil)}})
	bound := map[string]string{}
	var signers []*dpop.Signer
	for _, key := range []crypto.Signer{ecKey, edKey, rsaKey} {
		s, err := dpop.NewSigner(key, "")
		if err != nil {
			b.Fatal(err)
		}
		signers = append(signers, s)
		bound[s.Thumbprint()] = bearerToken(op, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": s.Thumbprint()} })
	}
	return api, bound, bearerToken(op, nil), signers
}

var (
	ecKey, _                   = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edPriv, _               = ed25519.GenerateKey(rand.Reader)
	edKey        crypto.Signer = edPriv
	rsaKey, _                  = rsa.GenerateKey(rand.Reader, 2048)
	benchMessage               = sha256.Sum256([]byte("eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0"))
)

// floors returns, per algorithm, one bare verification of a signature.
func floors() map[string]func() bool {
	ecSig, _ := ecdsa.SignASN1(rand.Reader, ecKey, benchMessage[:])
	edSig := ed25519.Sign(edPriv, benchMessage[:])
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	rsaSig, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, benchMessage[:], pss)
	return map[string]func() bool{
		"ES256": func() bool { return ecdsa.VerifyASN1(&ecKey.PublicKey, benchMessage[:], ecSig) },
		"EdDSA": func() bool { return ed25519.Verify(edPriv.Public().(ed25519.PublicKey), benchMessage[:], edSig) },
		"PS256": func() bool {
			return rsa.VerifyPSS(&rsaKey.PublicKey, crypto.SHA256, benchMessage[:], rsaSig, pss) == nil
		},
	}
}
