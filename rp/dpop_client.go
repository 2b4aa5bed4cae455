package rp

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/multiapp-go/multiapp/dpop"
)

// useDPoP plugs Config.DPoP into the client's authentication: every token
// request carries a proof, and a use_dpop_nonce answer is retried once
// with the OP's nonce (RFC 9449 §8).
func (c *Client) useDPoP() error {
	s := c.cfg.DPoP
	if s == nil {
		return nil
	}
	algs := c.p.meta.DPoPSigningAlgs
	switch {
	case len(algs) == 0:
		return configError("Config.DPoP is set but the OP does not advertise DPoP (no dpop_signing_alg_values_supported in its discovery document): enable DPoP at the OP, or leave Config.DPoP nil")
	case !slices.Contains(algs, s.Algorithm()):
		return configError("the OP accepts DPoP proofs signed with %v, not %s: use a key for one of those", algs, s.Algorithm())
	}
	c.auth.proof = &dpopProver{signer: s}
	return nil
}

// tokenType checks a token response's token_type: Bearer, or DPoP when the
// client holds a DPoP key, which then is required (RFC 9449 §5: a Bearer
// answer means the OP did not bind the token, so the protection the
// client was configured for is not there).
func (c *Client) tokenType(tt string) (string, error) {
	switch {
	case c.cfg.DPoP != nil && strings.EqualFold(tt, "dpop"):
		return "DPoP", nil
	case c.cfg.DPoP != nil:
		return "", invalid(whatAccessToken, CodeType, "token_type %q is not DPoP: the OP did not bind the token to the client's DPoP key (is DPoP enabled for this client at the OP?)", tt)
	case strings.EqualFold(tt, "bearer"):
		return "Bearer", nil
	}
	return "", invalid(whatAccessToken, CodeType, "token_type %q is not Bearer", tt)
}

// dpopProver is the prover of a client with a DPoP key: a proof for every
// request to the OP, with the OP's latest nonce.
type dpopProver struct {
	signer *dpop.Signer
	mu     sync.Mutex
	nonce  string // the OP's latest DPoP-Nonce
}

func (d *dpopProver) prove(r *authRequest) error {
	d.mu.Lock()
	nonce := d.nonce
	d.mu.Unlock()
	proof, err := d.signer.Proof(http.MethodPost, r.endpoint, "", nonce)
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
