package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/multiapp-go/multiapp/rp"
)

// authMethodSetting is the auth method the app configures: App.AuthMethod,
// or private_key_jwt when it has a key.
func (r *appRun) authMethodSetting() string {
	if r.app.AuthMethod == "" && r.app.ClientKey != "" {
		return rp.AuthPrivateKeyJWT
	}
	return r.app.AuthMethod
}

// clientKey checks the private_key_jwt key of an app that has one: that it
// loads (rp.LoadClientKey) and that the OP offers private_key_jwt. Whether
// the OP allows its algorithm is the library check's verdict (Provider.Client
// chooses it from the OP's token_endpoint_auth_signing_alg_values_supported),
// and whether the OP accepts its assertions client_auth's.
func (r *appRun) clientKey() {
	if r.app.ClientKey == "" {
		return
	}
	k, err := rp.LoadClientKey(r.app.ClientKey)
	if err != nil {
		r.add("client_key", Fail, fmt.Sprintf("the client key does not load: %v", err),
			"set MULTIAPP_CLIENT_KEY to the client's private key: PEM (-----BEGIN PRIVATE KEY-----), a private JWK, or the path of a file holding one")
		return
	}
	r.key = k
	listed := r.meta.TokenEndpointAuthMethods
	if len(listed) > 0 && !slices.Contains(listed, rp.AuthPrivateKeyJWT) {
		r.add("client_key", Fail, fmt.Sprintf("the client key loads, but the OP does not offer private_key_jwt (token_endpoint_auth_methods_supported: %v)", listed),
			"enable private_key_jwt client authentication at the OP, or configure a client secret instead of MULTIAPP_CLIENT_KEY")
		return
	}
	algs := "the OP does not list the algorithms it accepts for assertions"
	if a := r.meta.TokenEndpointAuthSigningAlgs; len(a) > 0 {
		algs = fmt.Sprintf("the OP accepts assertions signed with %v", a)
	}
	r.add("client_key", OK, fmt.Sprintf("the client key loads (%T) and the OP offers private_key_jwt; %s", k.Signer.Public(), algs), "")
}

// keyProbe redeems madeUpCode through the library as the app, its
// assertions signed with key, and returns the library's error.
func (r *appRun) keyProbe(ctx context.Context, key *rp.ClientKey) error {
	cfg := r.rpConfig()
	cfg.Key, cfg.AuthMethod = key, rp.AuthPrivateKeyJWT
	return r.redeemMadeUp(ctx, cfg)
}

// keyClientAuth checks a private_key_jwt client the way clientAuth checks
// a secret: a made-up code with the app's assertion must get invalid_grant,
// and the control, an assertion signed by a key made up for the probe,
// invalid_client.
func (r *appRun) keyClientAuth(ctx context.Context) {
	id, why := r.app.ClientID, r.client.ClientAuth().Why
	err := r.keyProbe(ctx, r.key)
	switch code, oe := opCode(err); code {
	case "invalid_grant":
		made, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			r.add("client_auth", Warn, fmt.Sprintf("no control probe: %v", kerr), "")
			return
		}
		cerr := r.keyProbe(ctx, &rp.ClientKey{Signer: made, KeyID: r.key.KeyID})
		switch ccode, coe := opCode(cerr); ccode {
		case "invalid_client":
			r.add("client_auth", OK, fmt.Sprintf("the token endpoint accepts the private_key_jwt assertions of client %s (%s; a made-up code got invalid_grant, an assertion signed with a made-up key got invalid_client)", id, why), "")
		default:
			r.add("client_auth", Warn, fmt.Sprintf("inconclusive: a made-up code got invalid_grant, but an assertion signed with a made-up key got %s instead of invalid_client: the key of client %s is not confirmed", answerText(coe, cerr), id),
				"sign in once through the app to confirm the code exchange works")
		}
	case "invalid_client":
		jwks, _ := rp.JWKS(r.key)
		r.add("client_auth", Fail, fmt.Sprintf("the token endpoint refuses the private_key_jwt assertion of client %s (%s; %s)", id, errorText(oe.Code, oe.Description), why),
			fmt.Sprintf("register client %s at the OP for private_key_jwt with this public key (its jwks, or a jwks_uri serving it): %s; check that the OP allows the alg and that this machine's clock is right (see the clock check)", id, jwks))
	default:
		r.otherTokenAnswer(err, oe)
	}
}
