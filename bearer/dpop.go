package bearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/internal/errclass"
	"github.com/multiapp-go/multiapp/rp"
)

// BoundVerifier is a Verifier that also accepts tokens bound to a DPoP key
// when they come with a proof: *rp.AccessTokenVerifier and
// *rp.MultiIssuerVerifier implement it. It must keep refusing such tokens
// in Verify (RFC 9449 §7.2).
type BoundVerifier interface {
	Verifier
	// VerifyBound validates a token presented with the DPoP scheme;
	// Claims.Confirmation.JKT names the key the proof must be signed with
	// (nil Confirmation: an unbound token).
	VerifyBound(ctx context.Context, raw string) (*rp.Claims, error)
}

// DPoPConfig turns on DPoP-bound access tokens (RFC 9449) next to bearer
// tokens: a request with "Authorization: DPoP <token>" and a DPoP header
// is accepted when the token is valid, the proof is valid for this request
// (dpop.Verifier: typ, alg, public jwk, signature, htm, htu, iat, jti not
// replayed, ath, nonce) and the proof's key is the one the token is bound
// to (cnf.jkt). A DPoP-bound token sent as a bearer token is refused.
// Answers carry the RFC 9449 §7.1 challenge (WWW-Authenticate: DPoP
// algs="...") next to the Bearer one, and a DPoP-Nonce when the proofs
// verifier requires nonces.
type DPoPConfig struct {
	// Proofs checks the proofs. Required: dpop.NewVerifier with the
	// session store as its Replay, so that a proof is used once across
	// every instance of the API.
	Proofs *dpop.Verifier
	// PublicOrigin is the scheme://host[:port] clients send requests to:
	// the origin of every proof's htu. Set it when the API is behind a
	// proxy or load balancer. Empty: taken from each request (https when
	// it came over TLS, http otherwise, and its Host), which is right only
	// when clients reach this server directly.
	PublicOrigin string
	// Required accepts DPoP-bound tokens only: a bearer token, or an
	// unbound token with a proof, is refused, and the answers offer the
	// DPoP challenge only.
	Required bool
}

// ErrDPoPRequired: the API accepts DPoP-bound tokens only
// (DPoPConfig.Required), and the request used a bearer token or a token
// that is not bound (401 invalid_token).
var ErrDPoPRequired error = errclass.New("bearer: this API accepts DPoP-bound access tokens only", errclass.Invalid)

// dpopLayer is a Middleware's DPoP configuration, checked.
type dpopLayer struct {
	verifier  BoundVerifier
	proofs    *dpop.Verifier
	origin    string // normalised, without a trailing slash; empty: per request
	required  bool
	challenge string // `DPoP realm="...", algs="..."`
}

func newDPoPLayer(cfg *DPoPConfig, v Verifier, realm string) (*dpopLayer, error) {
	if cfg == nil {
		return nil, nil
	}
	bv, ok := v.(BoundVerifier)
	if !ok {
		return nil, fmt.Errorf("bearer: %w: Config.DPoP is set but the Verifier (%T) cannot verify DPoP-bound tokens: use an *rp.AccessTokenVerifier or *rp.MultiIssuerVerifier", rp.ErrConfig, v)
	}
	if cfg.Proofs == nil {
		return nil, fmt.Errorf("bearer: %w: DPoPConfig.Proofs is nil: create it with dpop.NewVerifier(dpop.VerifierConfig{Replay: store})", rp.ErrConfig)
	}
	l := &dpopLayer{verifier: bv, proofs: cfg.Proofs, required: cfg.Required,
		challenge: `DPoP realm="` + quoteEscape(realm) + `", algs="` + strings.Join(cfg.Proofs.Algorithms(), " ") + `"`}
	if cfg.PublicOrigin != "" {
		u, err := url.Parse(cfg.PublicOrigin)
		n, ok := dpop.NormalizeURI(cfg.PublicOrigin)
		if err != nil || !ok || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("bearer: %w: DPoPConfig.PublicOrigin %q is not an origin like https://api.example.com", rp.ErrConfig, cfg.PublicOrigin)
		}
		l.origin = strings.TrimSuffix(n, "/")
	}
	return l, nil
}

// applies reports whether the DPoP layer handles r: the request uses the
// DPoP scheme, or only DPoP is accepted.
func (l *dpopLayer) applies(r *http.Request) bool {
	if l == nil {
		return false
	}
	if l.required {
		return true
	}
	a := r.Header["Authorization"]
	return len(a) == 1 && len(a[0]) >= 4 && strings.EqualFold(a[0][:4], "DPoP") && (len(a[0]) == 4 || a[0][4] == ' ')
}

// authenticate checks the DPoP token and proof of r and returns r with
// the claims in its context, or answers the refusal and returns nil
// claims.
func (m *Middleware) authenticateDPoP(w http.ResponseWriter, r *http.Request) (*http.Request, *rp.Claims) {
	l := m.dpop
	raw, err := dpopToken(r)
	if err != nil {
		m.refuse(w, r, err, nil)
		return r, nil
	}
	cl, err := l.verifier.VerifyBound(r.Context(), raw)
	if err != nil {
		if !b64token(raw) {
			err = fmt.Errorf("%w: the token has characters RFC 9449 does not allow", ErrBadRequest)
		}
		m.refuse(w, r, err, nil)
		return r, nil
	}
	var jkt string
	switch {
	case cl.Confirmation != nil:
		jkt = cl.Confirmation.JKT
	case l.required:
		m.refuse(w, r, fmt.Errorf("%w: the access token is not DPoP-bound", ErrDPoPRequired), nil)
		return r, nil
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		m.refuse(w, r, &dpop.Error{Code: dpop.CodeMalformed, Detail: "send exactly one DPoP header with the DPoP scheme"}, nil)
		return r, nil
	}
	checked := &checkedProof{proofs: l.proofs, proof: proofs[0], token: raw, htu: l.requestURI(r), jkt: jkt}
	if outer, ok := r.Context().Value(claimsKey{}).(*claimsCtx); !ok || outer.proof == nil || *outer.proof != *checked {
		p, err := l.proofs.Verify(r.Context(), checked.proof, dpop.Request{Method: r.Method, URI: checked.htu, AccessToken: raw, Thumbprint: jkt})
		if err != nil {
			m.refuse(w, r, err, nil)
			return r, nil
		}
		if p.NextNonce != "" {
			w.Header().Set("DPoP-Nonce", p.NextNonce)
		}
	}
	return r.WithContext(&claimsCtx{Context: r.Context(), by: m, claims: cl, proof: checked}), cl
}

// checkedProof is a DPoP proof a bearer layer accepted for a request. An
// inner layer with the same proof verifier, for the same proof, token,
// htu and binding, accepts it without a second check: the second check
// would find its jti used (by the outer layer) and refuse every request.
type checkedProof struct {
	proofs                 *dpop.Verifier
	proof, token, htu, jkt string
}

// dpopToken extracts the token of "Authorization: DPoP <token>" (RFC 9449
// §7.1); with DPoPConfig.Required, a bearer token or none is refused here.
func dpopToken(r *http.Request) (string, error) {
	authz := r.Header["Authorization"]
	switch {
	case len(authz) == 0:
		return "", ErrNoToken
	case len(authz) > 1:
		return "", fmt.Errorf("%w: %d Authorization headers", ErrBadRequest, len(authz))
	}
	scheme, rest, _ := strings.Cut(authz[0], " ")
	if !strings.EqualFold(scheme, "DPoP") {
		if strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: send the token with the DPoP scheme and a DPoP proof", ErrDPoPRequired)
		}
		return "", ErrNoToken
	}
	return credentials("DPoP", rest, strings.Contains(r.URL.RawQuery, "access_token="))
}

// requestURI is the htu a proof for r must carry.
func (l *dpopLayer) requestURI(r *http.Request) string {
	origin := l.origin
	if origin == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	return origin + r.URL.EscapedPath()
}

// dpopAnswer maps the refusals of DPoP requests that answerFor does not
// know (ok false for the others).
func dpopAnswer(err error) (answer, bool) {
	var e *dpop.Error
	switch {
	case errors.As(err, &e) && e.Code == dpop.CodeUseNonce:
		return answer{status: http.StatusUnauthorized, code: "use_dpop_nonce", desc: e.Detail, reason: "dpop_" + string(e.Code)}, true
	case e != nil && e.Code == dpop.CodeBinding:
		return answer{status: http.StatusUnauthorized, code: "invalid_token", desc: e.Detail, reason: "dpop_" + string(e.Code)}, true
	case e != nil:
		return answer{status: http.StatusUnauthorized, code: "invalid_dpop_proof", desc: e.Detail, reason: "dpop_" + string(e.Code)}, true
	case errors.Is(err, ErrDPoPRequired):
		// Our own fixed texts.
		return answer{status: http.StatusUnauthorized, code: "invalid_token", desc: strings.TrimPrefix(err.Error(), "bearer: "), reason: "dpop_required"}, true
	}
	return answer{}, false
}

// challenges sets the WWW-Authenticate fields of an answer when DPoP is
// on: the Bearer challenge (unless DPoP is required) and the DPoP one, the
// error attributes in the challenge of the scheme the request used (RFC
// 9449 §7.2), and a DPoP-Nonce for a 401 when nonces are required.
func (m *Middleware) challenges(h http.Header, a answer, usedDPoP bool) {
	l := m.dpop
	if !l.required {
		h.Set("WWW-Authenticate", challenge(m.challenge, a, !usedDPoP))
	}
	h.Add("WWW-Authenticate", challenge(l.challenge, a, usedDPoP || l.required))
	if a.status == http.StatusUnauthorized && l.proofs.NoncesRequired() {
		h.Set("DPoP-Nonce", l.proofs.Nonce())
	}
}
