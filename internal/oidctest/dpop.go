package oidctest

import (
	"context"
	"net/http"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// EnableDPoP makes the token endpoint support DPoP (RFC 9449) as strictly
// as node-oidc-provider: it advertises ES256 and EdDSA
// (dpop_signing_alg_values_supported), checks the proof of every token
// request that has one (dpop.Verifier: typ, alg, public jwk, htm, htu, iat,
// jti never replayed), answers it with token_type DPoP, binds the access
// and refresh tokens it issues to the proof's key, and refuses a refresh
// token bound to a key without a proof by that key (invalid_grant). No
// server nonces (node-oidc-provider's interop tests cover them).
func (op *OP) EnableDPoP() {
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{})})
	if err != nil {
		panic(err)
	}
	op.SetMeta("dpop_signing_alg_values_supported", []string{"ES256", "EdDSA"})
	op.mu.Lock()
	defer op.mu.Unlock()
	op.dpop, op.bound = v, map[string]string{}
}

// DPoPBinding returns the thumbprint (jkt) of the DPoP key a token this OP
// issued is bound to, "" for a bearer token.
func (op *OP) DPoPBinding(token string) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.bound[token]
}

// dpopProof checks r's DPoP proof, when it has one and DPoP is enabled, and
// returns its key's thumbprint ("" without a proof); false after writing
// the refusal.
func (op *OP) dpopProof(ctx context.Context, w http.ResponseWriter, r *http.Request) (string, bool) {
	proof := r.Header.Get("DPoP")
	if op.dpop == nil || proof == "" {
		return "", true
	}
	p, err := op.dpop.Verify(ctx, proof, dpop.Request{Method: r.Method, URI: op.Issuer + r.URL.Path})
	if err != nil {
		writeJSON(w, 400, map[string]any{"error": "invalid_dpop_proof", "error_description": err.Error()})
		return "", false
	}
	return p.Thumbprint, true
}
