package doctor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// The token endpoint probes. Every one redeems madeUpCode, which no OP
// issued, so no probe can ever obtain a token.
const (
	madeUpCode = "multiapp-doctor-made-up-code"
	// wrongSecret is the deliberately wrong secret of the control probe.
	wrongSecret = "multiapp-doctor-deliberately-wrong-secret"
	// unknownClientPrefix starts the client id of the public client's
	// control probe (followed by random hex).
	unknownClientPrefix = "multiapp-doctor-unknown-client-"
)

// authMethod reports which token endpoint authentication method the
// library uses for the app, and why, as the library says it
// (rp.Client.ClientAuth).
func (r *appRun) authMethod() {
	if r.client == nil {
		r.add("auth_method", Skip, "not run: the library refused the configuration", "")
		return
	}
	a := r.client.ClientAuth()
	if a.Source == rp.AuthFromConfig {
		from := r.app.AuthMethodFrom
		switch {
		case from == "" && r.app.AuthMethod == "" && r.app.ClientKey != "":
			from = "a client key (MULTIAPP_CLIENT_KEY)"
		case from == "":
			from = "MULTIAPP_AUTH_METHOD"
		}
		r.add("auth_method", OK, fmt.Sprintf("%s, chosen with %s", a.Method, from), "")
		return
	}
	msg := fmt.Sprintf("%s (the library's default): %s", a.Method, a.Why)
	if a.Method != rp.AuthNone {
		msg += "; MULTIAPP_AUTH_METHOD chooses another"
	}
	r.add("auth_method", OK, msg, "")
}

// tokenProbe redeems madeUpCode through the library, as clientID with
// secret sent by method, and returns the library's error (nil: the OP
// redeemed it).
func (r *appRun) tokenProbe(ctx context.Context, clientID, secret, method string) error {
	cfg := r.rpConfig()
	cfg.ClientID, cfg.ClientSecret, cfg.AuthMethod = clientID, secret, method
	return r.redeemMadeUp(ctx, cfg)
}

// redeemMadeUp redeems madeUpCode through the library as the client cfg
// describes, and returns the library's error.
func (r *appRun) redeemMadeUp(ctx context.Context, cfg rp.Config) error {
	c, err := r.client.Provider().Client(cfg)
	if err != nil {
		return err
	}
	if cfg.Profile == rp.FAPI2 && cfg.DPoP == nil {
		// A FAPI 2.0 web app holds a DPoP key per session
		// (middleware.WebConfig.DPoP): the probe makes one of its own, as
		// a new session would.
		key, err := dpop.GenerateSigner("")
		if err != nil {
			return err
		}
		ctx = rp.WithDPoPKey(ctx, key)
	}
	tx := pkce.NewTransaction(c.Issuer(), "/")
	_, err = c.Exchange(ctx, tx, &rp.AuthResponse{Code: madeUpCode, State: tx.State, Iss: c.Issuer()})
	return err
}

// opCode is the OAuth error code of err ("" when the OP sent none).
func opCode(err error) (string, *rp.OPError) {
	var oe *rp.OPError
	if errors.As(err, &oe) {
		return oe.Code, oe
	}
	return "", nil
}

// clientAuth checks the app's client authentication at the token endpoint
// with a made-up code. An OP that checks the client before the code (Ory
// Hydra, node-oidc-provider, the dev OP) answers invalid_client for wrong
// credentials and invalid_grant for right ones. An OP that judges the code
// first answers invalid_grant whatever the credentials: a control probe
// with credentials that cannot be right tells the two kinds apart, and
// with the second kind the verdict is inconclusive, never OK.
func (r *appRun) clientAuth(ctx context.Context) {
	// An API that only verifies tokens never redeems a code.
	if !r.signsIn("client_auth", "an app that does not sign users in redeems no codes") {
		return
	}
	id, method := r.app.ClientID, r.client.ClientAuth().Method
	switch method {
	case rp.AuthNone:
		r.publicClientAuth(ctx)
		return
	case rp.AuthPrivateKeyJWT:
		r.keyClientAuth(ctx)
		return
	}
	err := r.tokenProbe(ctx, id, r.app.ClientSecret, method)
	switch code, oe := opCode(err); code {
	case "invalid_grant":
		control := wrongSecret
		if control == r.app.ClientSecret {
			control += "-2"
		}
		cerr := r.tokenProbe(ctx, id, control, method)
		switch ccode, coe := opCode(cerr); ccode {
		case "invalid_client":
			r.add("client_auth", OK, fmt.Sprintf("the token endpoint accepts the secret of client %s with %s (a made-up code got invalid_grant; a deliberately wrong secret got invalid_client, so the OP checks the client before the code)", id, method), "")
		case "invalid_grant":
			r.add("client_auth", Warn, fmt.Sprintf("inconclusive: a made-up code got invalid_grant, but a deliberately wrong secret got invalid_grant too: this OP checks the code before the client, so a probe cannot confirm the secret of client %s or the method %s", id, method),
				"sign in once through the app: a wrong secret or method then fails at the code exchange with invalid_client")
		default:
			r.add("client_auth", Warn, fmt.Sprintf("inconclusive: a made-up code got invalid_grant, but a deliberately wrong secret got %s instead of invalid_client: the secret of client %s is not confirmed", answerText(coe, cerr), id),
				"sign in once through the app to confirm the code exchange works")
		}
	case "invalid_client":
		r.refusedCredentials(ctx, method, oe)
	default:
		r.otherTokenAnswer(err, oe)
	}
}

// refusedCredentials explains an invalid_client for a confidential client:
// the OP rejects the method, or the secret (or the client). The same
// secret sent the other way tells which, where the OP offers both;
// otherwise the OP's description does.
func (r *appRun) refusedCredentials(ctx context.Context, method string, first *rp.OPError) {
	id := r.app.ClientID
	other := rp.AuthClientSecretPost
	if method == rp.AuthClientSecretPost {
		other = rp.AuthClientSecretBasic
	}
	listed := r.meta.TokenEndpointAuthMethods
	chosen := r.app.AuthMethod != ""
	firstText := errorText(first.Code, first.Description)
	methodFix := func(registered string) string {
		if chosen {
			return fmt.Sprintf("set %s, or register the client for %s at the OP", r.methodSetting(registered), method)
		}
		return fmt.Sprintf("set MULTIAPP_AUTH_METHOD=%s (rp.Config.AuthMethod) so the library uses the method the client is registered for, or register the client for %s at the OP", registered, method)
	}
	secretFix := "set MULTIAPP_CLIENT_SECRET to this client's current secret in this environment (secrets differ per environment and change when rotated)"
	if len(listed) == 0 || slices.Contains(listed, other) {
		err := r.tokenProbe(ctx, id, r.app.ClientSecret, other)
		code, oe := opCode(err)
		switch code {
		case "invalid_grant":
			if !chosen && r.libraryDetects(ctx, other) {
				r.add("client_auth", OK, fmt.Sprintf("the token endpoint refuses %s for client %s (%s) but accepts the secret with %s: the client is registered for %s, and the library detects it with one check before its first token request (MULTIAPP_AUTH_METHOD=%s skips that check)", method, id, firstText, other, other, other), "")
				return
			}
			r.add("client_auth", Fail, fmt.Sprintf("the token endpoint refuses %s for client %s (%s), but accepts the same secret with %s: the client is registered for %s", method, id, firstText, other, other),
				methodFix(other))
			return
		case "invalid_client":
			msg := fmt.Sprintf("the token endpoint refuses the secret of client %s with both secret methods (%s: %s; %s: %s)", id, method, firstText, other, errorText(oe.Code, oe.Description))
			switch a, b := mentionsMethod(first.Description), mentionsMethod(oe.Description); {
			case a && b:
				r.add("client_auth", Fail, msg+": the client is registered for neither secret method (private_key_jwt?)",
					"register the client for client_secret_basic or client_secret_post at the OP, or configure the method it is registered for")
				return
			case a:
				msg += fmt.Sprintf(": the OP's answers say the client is registered for %s, where this secret is refused too", other)
			case b:
				msg += fmt.Sprintf(": the OP's answers say the client is registered for %s, where this secret is refused", method)
			default:
				msg += ": the secret is wrong, or the client is unknown in this environment"
			}
			r.add("client_auth", Fail, msg, secretFix)
			return
		}
	}
	if mentionsMethod(first.Description) {
		r.add("client_auth", Fail, fmt.Sprintf("the token endpoint refuses %s for client %s (%s): the OP says the client uses another token endpoint auth method", method, id, firstText),
			"configure the method the client is registered for with MULTIAPP_AUTH_METHOD (client_secret_basic or client_secret_post), or change the client's token endpoint auth method at the OP to "+method)
		return
	}
	r.add("client_auth", Fail, fmt.Sprintf("the token endpoint refuses the secret of client %s (%s, sent with %s)", id, firstText, method),
		secretFix+", and check the client's token endpoint auth method at the OP")
}

// publicClientAuth checks a client without a secret. Its control probe is
// a client id no OP knows: an OP that checks the client first refuses it
// with invalid_client.
func (r *appRun) publicClientAuth(ctx context.Context) {
	id := r.app.ClientID
	err := r.tokenProbe(ctx, id, "", rp.AuthNone)
	switch code, oe := opCode(err); code {
	case "invalid_grant":
		unknown := unknownClientPrefix + rand.Text()
		cerr := r.tokenProbe(ctx, unknown, "", rp.AuthNone)
		switch ccode, coe := opCode(cerr); ccode {
		case "invalid_client":
			r.add("client_auth", OK, fmt.Sprintf("the token endpoint accepts client %s as a public client (a made-up code got invalid_grant; an unknown client id got invalid_client, so the OP checks the client before the code)", id), "")
		case "invalid_grant":
			r.add("client_auth", Warn, fmt.Sprintf("inconclusive: a made-up code got invalid_grant, but an unknown client id got invalid_grant too: this OP checks the code before the client, so a probe cannot confirm that client %s may redeem codes without a secret", id),
				"a web app registered as a confidential client needs its secret: set MULTIAPP_CLIENT_SECRET; for an SPA or native app, sign in once through the app to confirm")
		default:
			r.add("client_auth", Warn, fmt.Sprintf("inconclusive: a made-up code got invalid_grant, but an unknown client id got %s instead of invalid_client: client %s is not confirmed as a public client", answerText(coe, cerr), id),
				"sign in once through the app to confirm the code exchange works")
		}
	case "invalid_client":
		why := "it is registered as a confidential client, or unknown in this environment"
		if mentionsMethod(oe.Description) {
			why = "the OP's answer names the method it is registered for: it is a confidential client, which needs its secret"
		}
		r.add("client_auth", Fail, fmt.Sprintf("the token endpoint refuses client %s without a secret (%s): %s", id, errorText(oe.Code, oe.Description), why),
			"set MULTIAPP_CLIENT_SECRET for a web app, or register the app as a public client (SPA, native) at the OP")
	default:
		r.otherTokenAnswer(err, oe)
	}
}

// libraryDetects asks the library, as the app would run it, whether it
// settles on method by itself: with no method configured, rp checks the
// client's credentials once before its first token request and keeps the
// secret method the OP accepts (rp.Client.CheckClientAuth).
func (r *appRun) libraryDetects(ctx context.Context, method string) bool {
	c, err := r.client.Provider().Client(r.rpConfig())
	if err != nil || c.CheckClientAuth(ctx) != nil {
		return false
	}
	a := c.ClientAuth()
	return a.Source == rp.AuthDetected && a.Method == method
}

// otherTokenAnswer reports a probe answer that is neither invalid_grant
// nor invalid_client.
func (r *appRun) otherTokenAnswer(err error, oe *rp.OPError) {
	var ve *rp.ValidationError
	switch {
	case err == nil:
		r.add("client_auth", Fail, "the token endpoint redeemed a made-up code", "the OP is badly broken: report it")
	case errors.As(err, &ve):
		r.add("client_auth", Fail, fmt.Sprintf("the token endpoint redeemed a made-up code (the library refused what it answered: %v)", err), "the OP is badly broken: report it")
	case oe != nil && oe.Code == "unauthorized_client":
		r.add("client_auth", Fail, fmt.Sprintf("client %s may not use the authorization code grant (%s)", r.app.ClientID, errorText(oe.Code, oe.Description)), "enable the authorization code grant for the client at the OP")
	case oe != nil:
		r.add("client_auth", Warn, fmt.Sprintf("the token endpoint answered a made-up code with %s: client authentication not confirmed", errorText(oe.Code, oe.Description)), "sign in once through the app to confirm the code exchange works")
	case errors.Is(err, rp.ErrTemporary):
		r.add("client_auth", Fail, fmt.Sprintf("the token endpoint did not answer properly: %v", err), "check that the OP's token endpoint is reachable from the app servers")
	default:
		r.add("client_auth", Warn, fmt.Sprintf("client authentication not confirmed: %v", err), "")
	}
}

// methodSetting is the setting that chose the app's auth method, with
// value m.
func (r *appRun) methodSetting(m string) string {
	switch from := r.app.AuthMethodFrom; from {
	case "", "MULTIAPP_AUTH_METHOD":
		return "MULTIAPP_AUTH_METHOD=" + m
	case "--auth-method":
		return "--auth-method " + m
	default:
		return fmt.Sprintf("%s to %q", from, m)
	}
}

// mentionsMethod reports whether an OP's invalid_client description is
// about the authentication method rather than the secret (Hydra: "supports
// client authentication method 'client_secret_basic', but method
// 'client_secret_post' was requested"; the dev OP: "registered for
// token_endpoint_auth_method ...").
func mentionsMethod(desc string) bool {
	d := strings.ToLower(desc)
	return strings.Contains(d, "method") || strings.Contains(d, "client_secret_basic") || strings.Contains(d, "client_secret_post")
}

func answerText(oe *rp.OPError, err error) string {
	switch {
	case oe != nil:
		return errorText(oe.Code, oe.Description)
	case err == nil:
		return "a token"
	}
	return err.Error()
}
