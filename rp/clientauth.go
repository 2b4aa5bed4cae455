package rp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/multiapp-go/multiapp/internal/loopback"
)

// AuthSource says how a client authentication method was chosen.
type AuthSource string

// How the client authentication method was chosen.
const (
	// AuthFromConfig: Config.AuthMethod (or IntrospectionConfig.AuthMethod).
	AuthFromConfig AuthSource = "config"
	// AuthFromDiscovery: no method was configured. Without a secret the
	// client is public (none); with one, client_secret_basic when the OP
	// lists it or lists nothing (RFC 6749 §2.3.1: every OP must support
	// it; it is the RFC 7591 registration default), client_secret_post when
	// the OP lists only that.
	AuthFromDiscovery AuthSource = "discovery"
	// AuthDetected: the OP refused the method from discovery with
	// invalid_client and accepted the other secret method, so the client is
	// registered for that one (see Client.CheckClientAuth).
	AuthDetected AuthSource = "detected"
)

// authCheckCooldown is how long a check the OP could not answer (network
// error, 5xx) waits before it is tried again: an outage never doubles the
// requests sent to the OP.
const authCheckCooldown = time.Minute

// ClientAuth is how a Client (or an introspecting verifier) authenticates
// to the OP, and why. It contains no secret.
type ClientAuth struct {
	// Method is AuthClientSecretBasic, AuthClientSecretPost,
	// AuthPrivateKeyJWT or AuthNone.
	Method string
	// Source says how Method was chosen.
	Source AuthSource
	// Why explains the choice in one sentence, for logs and `multiapp
	// doctor`.
	Why string
	// Confirmed reports that a check saw the OP accept Method.
	Confirmed bool
}

// ClientAuthError reports that the OP refused the client's credentials
// (invalid_client) in a check. It is a configuration error: errors.Is
// ErrConfig; errors.As also finds the OP's answer (*OPError).
type ClientAuthError struct {
	clientID string
	// Method is the method the OP refused.
	Method string
	// Accepted is the other secret method, when the OP accepted it: the OP
	// enforces the method the client is registered with, and that is
	// Accepted ("this method is rejected"). Empty: the OP refused the other
	// method too, or there is no secret to try it with ("these credentials
	// are rejected": a wrong secret, a client unknown in this OP
	// environment, or one registered for another kind of authentication).
	Accepted string
	// OP is the OP's answer to Method.
	OP *OPError
}

func (e *ClientAuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rp: the OP refuses client %q with %s (%s", e.clientID, e.Method, e.OP.Code)
	if e.OP.Description != "" {
		fmt.Fprintf(&b, ": %q", e.OP.Description)
	}
	b.WriteString(")")
	switch {
	case e.Accepted != "":
		fmt.Fprintf(&b, hintOtherMethodAccepted, e.Accepted, e.Accepted, e.Accepted)
	case e.Method == AuthNone:
		b.WriteString(hintPublicRefused)
	case e.Method == AuthPrivateKeyJWT:
		b.WriteString(hintKeyRefused)
	default:
		b.WriteString(hintCredentialsRefused)
	}
	return b.String()
}

// Unwrap returns ErrConfig and the OP's answer.
func (e *ClientAuthError) Unwrap() []error { return []error{ErrConfig, e.OP} }

// clientAuth authenticates the client on every request this package sends
// to the OP with its credentials: code exchange and refresh (RFC 6749
// §2.3), revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1). It
// is the one place where the method is chosen and applied: a Client has
// one (its Config's credentials), an introspecting AccessTokenVerifier
// another (the API's), and every such request goes through send.
//
// Two seams take what the client proves on each request, so that a new
// kind plugs in here and no call site changes: a credential (one per
// method, see credentials; private_key_jwt signs a fresh assertion there)
// and a prover (a proof of possession with one retry; DPoP's proofs and
// use_dpop_nonce go there).
//
// When no method was configured and the OP lists both secret methods, the
// method is settled by a check before the first request that needs it
// (see Client.CheckClientAuth for why a check and not a retry).
type clientAuth struct {
	p          *Provider
	id, secret string
	// key signs private_key_jwt assertions (nil for the other methods).
	key *signingKey
	// endpoint names the endpoint the check goes to, for OPError.
	endpoint string
	// checkURL and checkForm make the check request: a made-up code (token
	// endpoint) or token (introspection endpoint), which the OP can only
	// refuse.
	checkURL  string
	checkForm func() url.Values
	// detect: the method may change after a check (not configured, a
	// secret, two secret methods to choose from).
	detect  bool
	observe func(ClientAuth, error)
	// proof, when set, adds a proof of possession to every request made
	// with a key (Config.DPoP, WithDPoPKey).
	proof prover

	sem     chan struct{} // one check at a time
	mu      sync.Mutex
	state   ClientAuth
	settled bool      // a check concluded: no automatic check any more
	retryAt time.Time // after an inconclusive check
}

// authSetup is what newClientAuth needs.
type authSetup struct {
	id, secret, method string
	key                *signingKey
	// listed is the OP's *_endpoint_auth_methods_supported.
	listed    []string
	endpoint  string
	checkURL  string
	checkForm func() url.Values
	observe   func(ClientAuth, error)
}

func newClientAuth(p *Provider, s authSetup) *clientAuth {
	a := &clientAuth{
		p: p, id: s.id, secret: s.secret, key: s.key, endpoint: s.endpoint, checkURL: s.checkURL, checkForm: s.checkForm,
		observe: s.observe, sem: make(chan struct{}, 1),
	}
	switch {
	case s.method == AuthPrivateKeyJWT:
		a.state = ClientAuth{Method: s.method, Source: AuthFromConfig,
			Why: fmt.Sprintf("private_key_jwt is configured: a %s assertion signed with key %q, audience the issuer, on every request", s.key.alg, s.key.kid)}
	case s.method != "":
		a.state = ClientAuth{Method: s.method, Source: AuthFromConfig, Why: s.method + " is configured"}
	case s.secret == "":
		a.state = ClientAuth{Method: AuthNone, Source: AuthFromDiscovery, Why: "no client secret is configured: a public client, protected by PKCE"}
	default:
		var secretMethods []string
		for _, m := range s.listed {
			if m == AuthClientSecretBasic || m == AuthClientSecretPost {
				secretMethods = append(secretMethods, m)
			}
		}
		a.state = ClientAuth{Method: AuthClientSecretBasic, Source: AuthFromDiscovery}
		switch {
		case len(s.listed) == 0:
			a.state.Why = "the OP lists no authentication methods: client_secret_basic, the default every OP must support (RFC 6749 §2.3.1, RFC 8414)"
		case slices.Contains(secretMethods, AuthClientSecretBasic):
			a.state.Why = "the OP lists client_secret_basic, the method every OP must support (RFC 6749 §2.3.1) and the RFC 7591 registration default"
		case slices.Contains(secretMethods, AuthClientSecretPost):
			a.state.Method = AuthClientSecretPost
			a.state.Why = "the OP lists client_secret_post and not client_secret_basic"
		default:
			a.state.Why = fmt.Sprintf("the OP lists no secret method (%v): client_secret_basic, the method every OP must support (RFC 6749 §2.3.1)", s.listed)
		}
		a.detect = len(secretMethods) != 1
	}
	return a
}

// current returns the method in use and why.
func (a *clientAuth) current() ClientAuth {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// due reports whether the method still has to be settled by a check.
func (a *clientAuth) due() bool {
	if !a.detect {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.settled && !a.p.now().Before(a.retryAt)
}

// sendsSecret reports whether method puts a credential on the wire that
// someone reading it could use: a secret, or a private_key_jwt assertion
// (valid for a minute).
func sendsSecret(method string) bool { return method != AuthNone }

// checkTransport refuses to send a secret over plain http to anything but a
// loopback OP.
func checkTransport(field, endpoint, method string) error {
	if !sendsSecret(method) {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return configError("the OP's %s %q is not an absolute URL", field, endpoint)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopback.Host(u.Host)) {
		return nil
	}
	return configError(hintSecretInClear, field, endpoint)
}

// send POSTs form to endpoint, authenticated with the client's method,
// settling the method first when it is due. listed is the endpoint's own
// *_endpoint_auth_methods_supported when it differs from the one the
// method was chosen with (the revocation endpoint's), nil otherwise; see
// methodAt. Transport failures are ErrTemporary.
func (a *clientAuth) send(ctx context.Context, hc *http.Client, endpoint string, listed []string, form url.Values) (*http.Response, []byte, error) {
	if a.due() {
		// Whatever the check concludes is in a.current(); one the OP could
		// not answer leaves the method as it was, and the request itself
		// then tells the caller about the outage.
		_ = a.check(ctx, hc, true)
	}
	return a.sendWith(ctx, hc, endpoint, form, a.methodAt(listed))
}

// methodAt is the method to use at an endpoint that lists the methods it
// accepts: the client's, when the list is empty or names it; otherwise the
// other secret method when the list names that one (the client has one
// secret, and either method sends it); otherwise the client's anyway, and
// the OP's answer says what is wrong. An empty list keeps the client's
// method, although RFC 8414 §2 makes client_secret_basic the revocation
// endpoint's default: the OPs that publish no list (node-oidc-provider)
// apply the client's registered method at every endpoint.
func (a *clientAuth) methodAt(listed []string) string {
	method := a.current().Method
	if len(listed) == 0 || slices.Contains(listed, method) || a.secret == "" {
		return method
	}
	for _, m := range []string{AuthClientSecretBasic, AuthClientSecretPost} {
		if slices.Contains(listed, m) {
			return m
		}
	}
	return method
}

// authRequest is one request to the OP being authenticated: a POST of form
// to endpoint. A credential and a prover add to form and header.
type authRequest struct {
	// endpoint is the absolute URL the request goes to: a DPoP proof's htu;
	// with the Provider's issuer, what an assertion's audience is chosen
	// from.
	endpoint string
	form     url.Values
	header   http.Header
}

// A credential puts one client authentication method on a request: the
// form members and headers that say who the client is. It runs for every
// request (and every retry), so a method that signs makes a fresh
// assertion each time.
type credential func(a *clientAuth, r *authRequest) error

// credentials are the client authentication methods, by their RFC 7591
// name: the one table a new method (private_key_jwt, RFC 7523 §2.2) joins.
var credentials = map[string]credential{
	AuthClientSecretBasic: func(a *clientAuth, r *authRequest) error {
		// RFC 6749 §2.3.1: both are form-urlencoded before the Basic
		// encoding, so ':' '%' '+' and spaces survive.
		r.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(a.id)+":"+url.QueryEscape(a.secret))))
		return nil
	},
	AuthClientSecretPost: func(a *clientAuth, r *authRequest) error {
		r.form.Set("client_id", a.id)
		r.form.Set("client_secret", a.secret)
		return nil
	},
	// RFC 7523 §2.2: a fresh assertion for every request; the OP refuses a
	// jti it has seen.
	AuthPrivateKeyJWT: func(a *clientAuth, r *authRequest) error {
		if a.key == nil {
			return configError("client %q has no key for %s", a.id, AuthPrivateKeyJWT)
		}
		assertion, err := a.key.assertion(a.id, a.p.meta.Issuer, a.p.now())
		if err != nil {
			return err
		}
		r.form.Set("client_id", a.id)
		r.form.Set("client_assertion_type", assertionType)
		r.form.Set("client_assertion", assertion)
		return nil
	},
	AuthNone: func(a *clientAuth, r *authRequest) error {
		r.form.Set("client_id", a.id)
		return nil
	},
}

// A prover adds a proof of possession of the client's key to every
// request and may ask for the request again, once: DPoP (RFC 9449) puts a
// proof in the DPoP header and retries with the nonce of a use_dpop_nonce
// answer (§8). The credential is applied anew for the retry.
type prover interface {
	// prove adds the proof of the key ctx names (none when it names none).
	prove(ctx context.Context, r *authRequest) error
	// retry reports whether the answer asks for the same request with a
	// new proof.
	retry(resp *http.Response, body []byte) bool
}

// sendWith sends form to endpoint authenticated with method.
func (a *clientAuth) sendWith(ctx context.Context, hc *http.Client, endpoint string, form url.Values, method string) (*http.Response, []byte, error) {
	if err := checkTransport("endpoint", endpoint, method); err != nil {
		return nil, nil, err
	}
	apply, ok := credentials[method]
	if !ok {
		return nil, nil, configError("client authentication method %q is not supported", method)
	}
	for attempt := 0; ; attempt++ {
		r := &authRequest{endpoint: endpoint, form: maps.Clone(form), header: http.Header{}}
		if r.form == nil {
			r.form = url.Values{}
		}
		if err := apply(a, r); err != nil {
			return nil, nil, err
		}
		if a.proof != nil {
			if err := a.proof.prove(ctx, r); err != nil {
				return nil, nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(r.form.Encode()))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: request to %s: %v", ErrConfig, endpoint, err)
		}
		maps.Copy(req.Header, r.header)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, body, err := doRequest(hc, req)
		// The prover sees every answer (a DPoP-Nonce may come with any).
		if err != nil || a.proof == nil || !a.proof.retry(resp, body) || attempt > 0 {
			return resp, body, err
		}
	}
}

// doRequest sends req and reads the whole (capped) body. Transport failures
// are ErrTemporary.
func doRequest(hc *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, temporary(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, temporary(err)
	}
	return resp, body, nil
}

// verdict is what a check request says about a method.
type verdict int

const (
	inconclusive verdict = iota // the OP did not answer properly
	accepted                    // the OP authenticated the client
	refused                     // invalid_client
)

// probe sends the made-up request with method. Any OAuth answer other than
// invalid_client means the client was authenticated: RFC 6749 §5.2 reserves
// invalid_client for failed client authentication, and the other errors
// (invalid_grant for the made-up code, unauthorized_client: "the
// authenticated client is not authorized...") come after it.
func (a *clientAuth) probe(ctx context.Context, hc *http.Client, method string) (verdict, *OPError, error) {
	resp, body, err := a.sendWith(ctx, hc, a.checkURL, a.checkForm(), method)
	if err != nil {
		return inconclusive, nil, err
	}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	isJSON := json.Unmarshal(body, &e) == nil
	switch {
	case resp.StatusCode == http.StatusUnauthorized || e.Error == "invalid_client":
		if e.Error == "" {
			e.Error = "invalid_client"
		}
		return refused, &OPError{Endpoint: a.endpoint, Code: e.Error, Description: e.ErrorDescription, Status: resp.StatusCode}, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300,
		resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && isJSON && e.Error != "":
		return accepted, nil, nil
	}
	return inconclusive, nil, temporary(fmt.Errorf("the %s endpoint answered the client authentication check with HTTP %d", a.endpoint, resp.StatusCode))
}

// check asks the OP whether it accepts the client's credentials with the
// current method and, when it refuses them, with the other secret method.
// When the method was not configured, the one the OP accepts is kept. auto:
// the check runs because a request needs the method (skip it if another
// check settled the method meanwhile).
func (a *clientAuth) check(ctx context.Context, hc *http.Client, auto bool) error {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	if auto && !a.due() {
		return nil
	}
	state := a.current()
	v, answer, err := a.probe(ctx, hc, state.Method)
	if v == refused && a.secret != "" {
		other := AuthClientSecretPost
		if state.Method == AuthClientSecretPost {
			other = AuthClientSecretBasic
		}
		v2, _, err2 := a.probe(ctx, hc, other)
		switch {
		case v2 == accepted && a.detect:
			state = ClientAuth{
				Method: other, Source: AuthDetected, Confirmed: true,
				Why: fmt.Sprintf("the OP refused %s with invalid_client and accepted %s: the client is registered for %s", state.Method, other, other),
			}
			v, err = accepted, nil
		case v2 == accepted:
			err = &ClientAuthError{clientID: a.id, Method: state.Method, Accepted: other, OP: answer}
		case v2 == refused:
			err = &ClientAuthError{clientID: a.id, Method: state.Method, OP: answer}
		default:
			v, err = inconclusive, err2
		}
	} else if v == refused {
		err = &ClientAuthError{clientID: a.id, Method: state.Method, OP: answer}
	}
	a.mu.Lock()
	switch v {
	case inconclusive:
		a.retryAt = a.p.now().Add(authCheckCooldown)
	case accepted:
		state.Confirmed = true
		fallthrough
	default:
		a.state, a.settled = state, true
	}
	a.mu.Unlock()
	if v != inconclusive && a.observe != nil {
		a.observe(state, err)
	}
	return err
}

// madeUp returns a random value no OP has issued.
func madeUp(prefix string) string { return prefix + rand.Text() + rand.Text() }
