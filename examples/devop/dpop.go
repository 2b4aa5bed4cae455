package devop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// DPoP (RFC 9449) at the development OP. DPoP is always on, as at
// node-oidc-provider; a client opts in per request by sending a proof:
//
//   - discovery advertises dpop_signing_alg_values_supported (every
//     asymmetric algorithm package dpop verifies);
//   - a token request with a DPoP header has its proof checked (package
//     dpop's Verifier: typ, alg, a public jwk, signature, htm POST, htu the
//     token endpoint, iat window, jti never used before, no ath, and the
//     nonce with Config.DPoPNonces); a bad proof is answered 400
//     invalid_dpop_proof (use_dpop_nonce with a DPoP-Nonce header for a
//     missing or stale nonce), after client authentication and before the
//     grant is looked at;
//   - the access token of a request with a valid proof is bound to the
//     proof's key (cnf.jkt, RFC 9449 §6) and the answer says token_type
//     DPoP; a public client's refresh token is bound too (§5), so a refresh
//     without a proof by that key is refused invalid_grant; a confidential
//     client's refresh token is bound to its credentials already and is not
//     bound to the key;
//   - an authorization request with dpop_jkt (§10) binds its code to that
//     key: the code exchange needs a proof by it (invalid_grant otherwise);
//   - the userinfo endpoint accepts a bound token with the DPoP scheme and a
//     proof (with ath, by the bound key), and refuses it as a Bearer token
//     (§7.2); introspection reports token_type DPoP and cnf.jkt.
//
// A request without a proof is served as before: Bearer tokens.

// newProofVerifier returns the OP's proof verifier: replays recorded in
// memory (one OP instance), nonces when nonces is set.
func newProofVerifier(nonces bool) (*dpop.Verifier, error) {
	cfg := dpop.VerifierConfig{Replay: tokenstore.NewMemory(tokenstore.MemoryOptions{})}
	if nonces {
		cfg.NonceSecret = make([]byte, 32)
		rand.Read(cfg.NonceSecret)
	}
	return dpop.NewVerifier(cfg)
}

// checkDPoPJKT checks the dpop_jkt authorization request parameter (RFC 9449
// §10): a JWK SHA-256 thumbprint, base64url.
func checkDPoPJKT(jkt string) error {
	if b, err := base64.RawURLEncoding.DecodeString(jkt); err != nil || len(b) != sha256.Size {
		return oidc.ErrInvalidRequest().WithDescription("dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key")
	}
	return nil
}

// dpopJKTContext carries the dpop_jkt parameter of an authorization request
// from handleAuthorize to CreateAuthRequest (zitadel/oidc does not parse it).
type dpopJKTContext struct{}

// proofKeyContext carries the thumbprint of a token request's verified
// proof from handleToken to the storage that records the tokens.
type proofKeyContext struct{}

func withProofKey(ctx context.Context, jkt string) context.Context {
	return context.WithValue(ctx, proofKeyContext{}, jkt)
}

// proofKey returns the thumbprint of the request's verified DPoP proof, or
// "" when the request had none.
func proofKey(ctx context.Context) string {
	jkt, _ := ctx.Value(proofKeyContext{}).(string)
	return jkt
}

// checkTokenProof checks the DPoP proof of a token request from client c
// (already authenticated; the form is parsed) and returns its key's
// thumbprint ("" without a proof) and the DPoP-Nonce to send with a
// successful answer, if any. A grant bound to a key (a refresh token, a code
// requested with dpop_jkt) is refused unless the proof is by that key.
func (o *OP) checkTokenProof(r *http.Request, c *Client) (jkt, nonce string, fail *clientAuthError) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) > 1 {
		return "", "", o.proofError(&dpop.Error{Code: dpop.CodeMalformed, Detail: "more than one DPoP header"})
	}
	if len(proofs) == 1 {
		p, err := o.proofs.Verify(r.Context(), proofs[0], dpop.Request{Method: r.Method, URI: o.issuer + TokenPath})
		if err != nil {
			return "", "", o.proofError(err)
		}
		jkt, nonce = p.Thumbprint, p.NextNonce
	}
	// The grant may be bound to a key: a public client's refresh token
	// (§5), a code whose authorization request had dpop_jkt (§10).
	var bound, grant string
	o.mu.Lock()
	switch r.PostForm.Get("grant_type") {
	case "refresh_token":
		if rt := o.refresh[r.PostForm.Get("refresh_token")]; rt != nil && rt.clientID == c.ID {
			bound, grant = rt.jkt, "the refresh token is bound to a DPoP key (RFC 9449 section 5)"
		}
	case "authorization_code":
		if ar := o.authReqs[o.codes[r.PostForm.Get("code")]]; ar != nil && ar.clientID == c.ID {
			bound, grant = ar.dpopJKT, "the code is bound to a DPoP key by dpop_jkt (RFC 9449 section 10)"
		}
	}
	o.mu.Unlock()
	switch {
	case bound != "" && jkt == "":
		return "", "", &clientAuthError{status: http.StatusBadRequest, code: "invalid_grant", description: grant + ": send a DPoP proof signed by that key"}
	case bound != "" && bound != jkt:
		return "", "", &clientAuthError{status: http.StatusBadRequest, code: "invalid_grant", description: grant + ", and the proof is signed by another key"}
	}
	return jkt, nonce, nil
}

// proofError is the token endpoint's answer to a refused proof (RFC 9449
// §5 and §8).
func (o *OP) proofError(err error) *clientAuthError {
	var pe *dpop.Error
	switch {
	case errors.As(err, &pe) && pe.Code == dpop.CodeUseNonce:
		return &clientAuthError{status: http.StatusBadRequest, code: "use_dpop_nonce", description: pe.Detail, dpopNonce: o.proofs.Nonce()}
	case errors.As(err, &pe):
		e := &clientAuthError{status: http.StatusBadRequest, code: "invalid_dpop_proof", description: pe.Detail}
		e.dpopNonce = o.proofs.Nonce() // "" without nonces
		return e
	}
	return &clientAuthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: "the DPoP replay check is unavailable: retry with a new proof"}
}

// boundTokenResponse rewrites a successful token answer for tokens bound to
// a DPoP key: token_type DPoP (RFC 9449 §5). body is zitadel/oidc's JSON
// answer.
func boundTokenResponse(body []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m["token_type"] = json.RawMessage(`"DPoP"`)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// boundKey returns the jkt an access token (a JWT this OP issued) is bound
// to, "" when it is not bound or not known.
func (o *OP) boundKey(jwt string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if at := o.access[o.accessByJWT[jwt]]; at != nil {
		return at.jkt
	}
	return ""
}

// handleUserinfo lets DPoP-bound access tokens reach the userinfo endpoint,
// a resource server of this OP (RFC 9449 §7): "Authorization: DPoP <token>"
// with a proof (htm, htu the endpoint, ath, by the bound key) is handed on
// as a Bearer token once the proof is checked; a bound token sent as Bearer
// (header or form) is refused, 401 invalid_token.
func (o *OP) handleUserinfo(w http.ResponseWriter, r *http.Request, next http.Handler) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "DPoP") && token != "":
		proofs := r.Header.Values("DPoP")
		if len(proofs) != 1 {
			o.userinfoChallenge(w, "invalid_dpop_proof", "send exactly one DPoP header with the DPoP scheme")
			return
		}
		_, err := o.proofs.Verify(r.Context(), proofs[0], dpop.Request{
			Method: r.Method, URI: o.issuer + UserinfoPath, AccessToken: token, Thumbprint: o.boundKey(token),
		})
		var pe *dpop.Error
		switch {
		case errors.As(err, &pe) && pe.Code == dpop.CodeUseNonce:
			o.userinfoChallenge(w, "use_dpop_nonce", pe.Detail)
			return
		case errors.As(err, &pe) && pe.Code == dpop.CodeBinding:
			o.userinfoChallenge(w, "invalid_token", "Invalid DPoP key binding")
			return
		case err != nil:
			o.userinfoChallenge(w, "invalid_dpop_proof", "the DPoP proof is refused")
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
	case strings.EqualFold(scheme, "Bearer") && o.boundKey(token) != "",
		r.Header.Get("Authorization") == "" && o.boundKey(r.FormValue("access_token")) != "":
		o.userinfoChallenge(w, "invalid_token", "the access token is bound to a DPoP key: send it with the DPoP scheme and a proof (RFC 9449 section 7.2)")
		return
	}
	next.ServeHTTP(w, r)
}

func (o *OP) userinfoChallenge(w http.ResponseWriter, code, description string) {
	h := w.Header()
	h.Set("WWW-Authenticate", `DPoP algs="`+strings.Join(o.proofs.Algorithms(), " ")+`", error="`+code+`", error_description=`+strconv.Quote(description))
	if n := o.proofs.Nonce(); n != "" {
		h.Set("DPoP-Nonce", n)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
}

// cnf is the confirmation claim of a bound token (RFC 7800, RFC 9449 §6.1).
func cnf(jkt string) map[string]string { return map[string]string{"jkt": jkt} }
