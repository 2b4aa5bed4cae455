package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// DPoP for web sessions (WebConfig.DPoP, RFC 9449): each login gets a key
// of its own, made at the callback just before the code exchange (the
// proof is only needed at the token endpoint, so the key never travels in
// the login cookie), and sealed in the session record. The record, not
// the configuration, decides afterwards: a session with a key is refreshed
// with it and calls APIs with proofs by it, one without keeps bearer
// tokens, whatever WebConfig.DPoP says today.

// checkDPoP refuses a web client with a DPoP key of its own, whose tokens
// Session.Client could not prove (the records hold no key), and
// WebConfig.DPoP with an OP that would not bind the tokens to the
// sessions' ES256 keys.
func checkDPoP(cfg *WebConfig) error {
	if cfg.Client.DPoPKey() != nil {
		return configError("the rp.Client has a DPoP key of its own (rp.Config.DPoP): a web app's sessions each get their own key; leave rp.Config.DPoP nil and set WebConfig.DPoP")
	}
	if !cfg.DPoP {
		return nil
	}
	algs := cfg.Client.Provider().Metadata().DPoPSigningAlgs
	if !slices.Contains(algs, dpop.DefaultAlgorithm) {
		return configError("WebConfig.DPoP is set but the OP does not accept %s DPoP proofs (its dpop_signing_alg_values_supported: %v): enable DPoP at the OP, or leave WebConfig.DPoP off", dpop.DefaultAlgorithm, algs)
	}
	return nil
}

// newDPoPKey makes a new login's key: ctx carries it to the code exchange
// (rp.WithDPoPKey), and the private JWK is what the session record keeps.
func (w *Web) newDPoPKey(ctx context.Context) (context.Context, []byte, error) {
	if !w.cfg.DPoP {
		return ctx, nil, nil
	}
	key, err := dpop.GenerateSigner("")
	if err != nil {
		return ctx, nil, err
	}
	jwk, err := key.MarshalPrivateJWK()
	if err != nil {
		return ctx, nil, err
	}
	return rp.WithDPoPKey(ctx, key), jwk, nil
}

// dpopKey decodes the DPoP key of rec (nil, nil when it has none). It is
// decoded only when needed (a refresh, Session.Client), never on the
// warm path of Require. A key that does not decode makes the session
// unusable (its tokens are bound to it); that is logged, never the key.
func (w *Web) dpopKey(ctx context.Context, rec *tokenstore.Session) (*dpop.Signer, error) {
	if len(rec.DPoPKey) == 0 {
		return nil, nil
	}
	key, err := dpop.ParseSigner(rec.DPoPKey)
	if err != nil {
		w.audit(ctx, rec, event.Event{Name: event.SessionInvalid, Level: slog.LevelError, Reason: "dpop_key_unreadable", Err: err})
		return nil, ErrSignedOut
	}
	return key, nil
}

// tokenType is the scheme rec's access token is sent with: DPoP for a
// token bound to the session's key, Bearer otherwise.
func tokenType(rec *tokenstore.Session) string {
	if strings.EqualFold(rec.TokenType, "DPoP") {
		return "DPoP"
	}
	return "Bearer"
}

// dpopClient is Session.Client for a session with a DPoP key: every
// request gets the access token with the DPoP scheme and a fresh proof
// (dpop.Transport, which retries a resource server's use_dpop_nonce once).
func (s *Session) dpopClient(ctx context.Context, rec *tokenstore.Session) *http.Client {
	key, err := s.web.dpopKey(ctx, rec)
	if err != nil {
		return &http.Client{Transport: failing{err}}
	}
	var base http.RoundTripper
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		base = hc.Transport
	}
	return &http.Client{Transport: &dpop.Transport{
		Signer: key,
		Base:   base,
		Nonces: &s.web.apiNonces, // the APIs' nonces, learnt once for every session
		AccessToken: func(*http.Request) (string, error) {
			t, err := s.TokenContext(ctx)
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		},
	}}
}

// failing is the transport of a client that cannot send: every request
// fails with err.
type failing struct{ err error }

func (f failing) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return nil, f.err
}
