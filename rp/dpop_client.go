package rp

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/multiapp-go/multiapp/dpop"
)

// dpopKeyKey is the context key of WithDPoPKey.
type dpopKeyKey struct{}

// WithDPoPKey returns a copy of ctx under which a Client's requests to the
// token endpoint (Exchange, Refresh) prove possession of key instead of
// Config.DPoP's: the tokens they get are bound to key and must say
// token_type DPoP. It is how one Client keeps a key per user session (the
// web layer's WebConfig.DPoP does it): the key travels with the request
// and the Client's one DPoP mechanism (proofs, the OP's nonce, the
// use_dpop_nonce retry) signs with it. The OP must advertise DPoP with
// key's algorithm (a ClassMisconfigured error otherwise).
func WithDPoPKey(ctx context.Context, key *dpop.Signer) context.Context {
	return context.WithValue(ctx, dpopKeyKey{}, key)
}

// DPoPKey returns the client's own DPoP key (Config.DPoP), nil without
// one. A key given per request (WithDPoPKey) is not the client's.
func (c *Client) DPoPKey() *dpop.Signer { return c.cfg.DPoP }

// dpopKey is the key the token requests under ctx prove possession of:
// WithDPoPKey's, else Config.DPoP (nil: none).
func (c *Client) dpopKey(ctx context.Context) *dpop.Signer {
	if k, _ := ctx.Value(dpopKeyKey{}).(*dpop.Signer); k != nil {
		return k
	}
	return c.cfg.DPoP
}

// useDPoP gives the client's authentication its DPoP prover: every token
// request made with a key (Config.DPoP, or WithDPoPKey) carries a proof,
// and a use_dpop_nonce answer is retried once with the OP's nonce (RFC
// 9449 §8). Config.DPoP is checked against the OP here, a key in a
// context at each request.
func (c *Client) useDPoP() error {
	d := &dpopProver{key: c.dpopKey, algs: c.p.meta.DPoPSigningAlgs}
	if s := c.cfg.DPoP; s != nil {
		if err := d.supports(s); err != nil {
			return err
		}
	}
	c.auth.proof = d
	return nil
}

// tokenType checks a token response's token_type: Bearer, or DPoP when the
// request was made with a DPoP key, which then is required (RFC 9449 §5: a
// Bearer answer means the OP did not bind the token, so the protection the
// client was configured for is not there).
func (c *Client) tokenType(ctx context.Context, tt string) (string, error) {
	bound := c.dpopKey(ctx) != nil
	switch {
	case bound && strings.EqualFold(tt, "dpop"):
		return "DPoP", nil
	case bound:
		return "", invalid(whatAccessToken, CodeType, "token_type %q is not DPoP: the OP did not bind the token to the client's DPoP key (is DPoP enabled for this client at the OP?)", tt)
	case strings.EqualFold(tt, "bearer"):
		return "Bearer", nil
	}
	return "", invalid(whatAccessToken, CodeType, "token_type %q is not Bearer", tt)
}

// dpopProver is the prover of a client: a proof by the request's DPoP key
// (none without one) for every request to the OP, with the OP's latest
// nonce, which is the OP's and not the key's, so every session of the
// client shares it.
type dpopProver struct {
	key   func(context.Context) *dpop.Signer
	algs  []string // the OP's dpop_signing_alg_values_supported
	mu    sync.Mutex
	nonce string // the OP's latest DPoP-Nonce
}

// supports checks that the OP takes proofs signed by s.
func (d *dpopProver) supports(s *dpop.Signer) error {
	switch {
	case len(d.algs) == 0:
		return configError("a DPoP key is set (Config.DPoP, WithDPoPKey or WebConfig.DPoP) but the OP does not advertise DPoP (no dpop_signing_alg_values_supported in its discovery document): enable DPoP at the OP, or leave it off")
	case !slices.Contains(d.algs, s.Algorithm()):
		return configError("the OP accepts DPoP proofs signed with %v, not %s: use a key for one of those", d.algs, s.Algorithm())
	}
	return nil
}

func (d *dpopProver) prove(ctx context.Context, r *authRequest) error {
	s := d.key(ctx)
	if s == nil {
		return nil
	}
	if err := d.supports(s); err != nil {
		return err
	}
	d.mu.Lock()
	nonce := d.nonce
	d.mu.Unlock()
	proof, err := s.Proof(http.MethodPost, r.endpoint, "", nonce)
	if err != nil {
		return err
	}
	r.header.Set("DPoP", proof)
	return nil
}

// retry keeps the answer's DPoP-Nonce and asks for the request again when
// the OP answered use_dpop_nonce with one (RFC 9449 §8).
func (d *dpopProver) retry(resp *http.Response, body []byte) bool {
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		return false
	}
	d.mu.Lock()
	d.nonce = nonce
	d.mu.Unlock()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error == "use_dpop_nonce"
}
