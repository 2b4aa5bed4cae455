package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/multiapp-go/multiapp/internal/jws"
)

// jwks fetches the OP's key set and reports whether the library can verify
// tokens with it: usable signature keys for the algorithms the OP signs
// with, and no private or symmetric key material published.
func (r *appRun) jwks(ctx context.Context) {
	u := r.meta.JWKSURI
	if u == "" {
		r.add("jwks", Fail, "the OP advertises no jwks_uri: no token can be verified", "check the issuer")
		return
	}
	a, err := r.d.get(ctx, u)
	if err != nil {
		msg, _ := explainNetError(err, r.issuer)
		r.add("jwks", Fail, fmt.Sprintf("%s: %s", u, msg), "the JWKS must be reachable from every app server: check proxies and firewalls")
		return
	}
	if a.resp.StatusCode != 200 {
		r.add("jwks", Fail, fmt.Sprintf("%s answered HTTP %d", u, a.resp.StatusCode), "the OP's jwks_uri must answer 200 with its public keys")
		return
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &doc); err != nil {
		r.add("jwks", Fail, fmt.Sprintf("%s is not a JSON key set: %v", u, err), "the OP's jwks_uri must serve a JWK Set")
		return
	}
	algs := jws.Choose(r.meta.IDTokenSigningAlgs) // as rp.Discover picks them
	var (
		usable    []string // "kid (alg)"
		skipped   []string
		leaked    []string
		covered   = map[string]bool{}
		kids      = map[string]int{}
		firstKid  string
		firstAlg  string
		keyAlgFor = func(keyAlg string, pub any) []string {
			if keyAlg != "" {
				return []string{keyAlg}
			}
			var out []string
			for _, a := range algs {
				if jws.Fits(a, pub) {
					out = append(out, a)
				}
			}
			return out
		}
	)
	for i, raw := range doc.Keys {
		k, err := jwk.ParseKey(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: unparsable (%v)", i, err))
			continue
		}
		name := k.KeyID()
		if name == "" {
			name = fmt.Sprintf("key %d (no kid)", i)
		}
		kids[k.KeyID()]++
		if use := k.KeyUsage(); use != "" && use != "sig" {
			skipped = append(skipped, name+": use "+use)
			continue
		}
		var pub any
		if err := k.Raw(&pub); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		switch p := pub.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			leaked = append(leaked, name+" (private key)")
			continue
		case []byte:
			leaked = append(leaked, name+" (symmetric key)")
			continue
		case *rsa.PublicKey:
			if p.N.BitLen() < jws.MinRSABits {
				skipped = append(skipped, fmt.Sprintf("%s: RSA %d bits, below %d", name, p.N.BitLen(), jws.MinRSABits))
				continue
			}
		}
		keyAlg := ""
		if a := k.Algorithm(); a != nil {
			keyAlg = a.String()
		}
		fits := false
		for _, a := range keyAlgFor(keyAlg, pub) {
			if jws.Supported(a) && jws.Fits(a, pub) {
				covered[a] = true
				fits = true
				if firstKid == "" {
					firstKid, firstAlg = k.KeyID(), a
				}
			}
		}
		if !fits {
			skipped = append(skipped, fmt.Sprintf("%s: alg %q unusable (the library verifies %v)", name, keyAlg, jws.Algorithms()))
			continue
		}
		usable = append(usable, name)
	}
	r.kid, r.alg = firstKid, firstAlg
	if len(leaked) > 0 {
		r.add("jwks", Fail, fmt.Sprintf("%s publishes secret key material: %s; anyone can sign tokens with it", u, strings.Join(leaked, ", ")),
			"remove the key from the JWKS and rotate it at the OP now: publish public signature keys only")
		return
	}
	if len(usable) == 0 {
		r.add("jwks", Fail, fmt.Sprintf("%s holds no key the library can verify with (%d keys; %s)", u, len(doc.Keys), strings.Join(skipped, "; ")),
			fmt.Sprintf("the OP must publish an asymmetric signature key (RSA ≥ %d bits, EC P-256/384/521 or Ed25519)", jws.MinRSABits))
		return
	}
	var missing []string
	for _, a := range algs {
		if !covered[a] {
			missing = append(missing, a)
		}
	}
	var dup []string
	for kid, n := range kids {
		if n > 1 && kid != "" {
			dup = append(dup, kid)
		}
	}
	slices.Sort(dup)
	msg := fmt.Sprintf("%d usable signature %s (%s)", len(usable), plural(len(usable), "key", "keys"), strings.Join(usable, ", "))
	if len(skipped) > 0 {
		msg += fmt.Sprintf("; ignored: %s", strings.Join(skipped, "; "))
	}
	if len(missing) > 0 && len(missing) < len(algs) {
		// OPs (Keycloak, oidctest) advertise algorithms they could be
		// configured to use; only the one they sign with needs a key.
		msg += fmt.Sprintf(" (none for %v, which the OP also advertises: tokens signed with those would be refused)", missing)
	}
	switch {
	case len(missing) > 0 && len(missing) == len(algs):
		r.add("jwks", Fail, fmt.Sprintf("%s; but no key fits the algorithms the OP signs ID tokens with (%v)", msg, algs), "publish a key for the advertised algorithm, or fix id_token_signing_alg_values_supported")
	case len(dup) > 0:
		r.add("jwks", Warn, fmt.Sprintf("%s; kid %s is used by several keys", msg, quoteList(dup)), "give every key its own kid (the library then tries each key of that kid)")
	default:
		r.add("jwks", OK, msg, "")
	}
}
