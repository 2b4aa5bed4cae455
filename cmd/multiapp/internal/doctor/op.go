package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/multiapp-go/multiapp/internal/loopback"
	"github.com/multiapp-go/multiapp/internal/urldiff"
	"github.com/multiapp-go/multiapp/rp"
)

const scalekitIssuerHint = "the OP's issuer URL: for Scalekit the environment URL (e.g. https://yourenv.scalekit.com), for Keycloak https://host/realms/REALM, for Hydra its public URL"

// config reports what is being checked and stops when nothing can be.
func (r *appRun) config() bool {
	a := r.app
	if a.Issuer == "" {
		r.add("config", Fail, "no issuer configured", "set MULTIAPP_ISSUER (or --issuer, or \"issuer\" in the apps file) to "+scalekitIssuerHint)
		return false
	}
	if a.ClientID == "" {
		r.add("config", Fail, fmt.Sprintf("issuer %s, but no client id: only the OP is checked", a.Issuer), "set MULTIAPP_CLIENT_ID (or --client-id) to this app's client id at the OP")
		return true
	}
	kind := "public client (no secret: PKCE protects the code)"
	switch {
	case a.ClientKey != "":
		kind = "confidential client (private_key_jwt, key from MULTIAPP_CLIENT_KEY)"
	case a.ClientSecret != "":
		kind = "confidential client (with a secret)"
	}
	msg := fmt.Sprintf("issuer %s, client %s, %s", a.Issuer, a.ClientID, kind)
	if a.RedirectURL != "" {
		msg += ", redirect URL " + a.RedirectURL
	}
	if a.SecretEnv != "" && a.ClientSecret == "" {
		r.add("config", Warn, msg+fmt.Sprintf("; but $%s, named by client_secret_env, is empty", a.SecretEnv),
			fmt.Sprintf("export %s with the client's secret, or remove client_secret_env if the app is a public client", a.SecretEnv))
		return true
	}
	r.add("config", OK, msg, "")
	return true
}

// discovery fetches the discovery document, then reports the clock, the
// issuer and https, which the same answer tells.
func (r *appRun) discovery(ctx context.Context) bool {
	docURL := strings.TrimSuffix(r.app.Issuer, "/") + "/.well-known/openid-configuration"
	if u, err := url.Parse(r.app.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		r.add("discovery", Fail, fmt.Sprintf("issuer %q is not an absolute http(s) URL", r.app.Issuer), "set MULTIAPP_ISSUER to "+scalekitIssuerHint)
		return false
	}
	a, err := r.d.get(ctx, docURL)
	if err != nil {
		msg, fix := explainNetError(err, r.app.Issuer)
		r.add("discovery", Fail, fmt.Sprintf("%s: %s", docURL, msg), fix)
		return false
	}
	switch st := a.resp.StatusCode; {
	case st >= 300 && st < 400:
		loc := a.resp.Header.Get("Location")
		fix := "set MULTIAPP_ISSUER to the URL the OP names as its issuer (discovery is never followed through redirects)"
		if to, err := a.resp.Request.URL.Parse(loc); err == nil && strings.HasSuffix(to.Path, "/.well-known/openid-configuration") {
			to.Path = strings.TrimSuffix(to.Path, "/.well-known/openid-configuration")
			to.RawQuery = ""
			fix = fmt.Sprintf("set MULTIAPP_ISSUER to %q if that is the OP's issuer (%s); discovery is never followed through redirects", to.String(), urldiff.Explain(r.app.Issuer, to.String()))
		}
		r.add("discovery", Fail, fmt.Sprintf("%s redirects (HTTP %d) to %s", docURL, st, loc), fix)
		return false
	case st != http.StatusOK:
		r.add("discovery", Fail, fmt.Sprintf("%s answered HTTP %d: no OpenID Provider at this issuer URL", docURL, st), "set MULTIAPP_ISSUER to "+scalekitIssuerHint+"; it is the \"issuer\" value of the OP's /.well-known/openid-configuration")
		return false
	}
	var m rp.Metadata
	if err := json.Unmarshal(a.body, &m); err != nil || m.Issuer == "" {
		r.add("discovery", Fail, fmt.Sprintf("%s is not an OpenID Connect discovery document (no JSON object with an issuer)", docURL), "set MULTIAPP_ISSUER to "+scalekitIssuerHint)
		return false
	}
	r.meta = &m
	r.add("discovery", OK, fmt.Sprintf("%s answered in %v", docURL, a.rtt().Round(time.Millisecond)), "")
	r.clock(a)
	r.checkIssuer()
	r.https()
	return true
}

// explainNetError turns a transport failure into words and a fix.
func explainNetError(err error, issuer string) (msg, fix string) {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the host name does not resolve (%v)", dnsErr), "check the host in MULTIAPP_ISSUER for typos, and this machine's DNS"
	case errors.As(err, &unknownAuthority), errors.As(err, &hostErr), errors.As(err, &certErr):
		return fmt.Sprintf("the TLS certificate is not trusted (%v)", err), "use the OP's public https URL; for a local OP with its own CA, add the CA to this machine's trust store (SSL_CERT_FILE)"
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the server speaks plain http, not https", "use http:// in MULTIAPP_ISSUER for a local development OP, or enable TLS on it"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there", "start the OP, or fix the host and port in MULTIAPP_ISSUER"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "no answer in time", "check that the OP is up and reachable from this machine (firewall, proxy: HTTPS_PROXY)"
	}
	return err.Error(), "check MULTIAPP_ISSUER and that the OP is reachable from this machine"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clock compares the OP's Date header with this machine's clock.
func (r *appRun) clock(a *answer) {
	date, err := http.ParseTime(a.resp.Header.Get("Date"))
	if err != nil {
		r.add("clock", Skip, "the OP's answer has no usable Date header: the clock offset cannot be measured", "")
		return
	}
	// Date has a one-second resolution; a cached answer is Age seconds old.
	opNow := date.Add(500 * time.Millisecond)
	if age, err := strconv.Atoi(a.resp.Header.Get("Age")); err == nil && age > 0 {
		opNow = opNow.Add(time.Duration(age) * time.Second)
	}
	local := a.sent.Add(a.rtt() / 2)
	offset := opNow.Sub(local) // > 0: the OP is ahead, this machine behind
	uncertainty := a.rtt()/2 + 500*time.Millisecond
	sure := abs(offset) - uncertainty // the offset is at least this
	dir := "behind"
	if offset < 0 {
		dir = "ahead of"
	}
	shown := abs(offset).Round(time.Second)
	skew := r.d.skew
	ntp := "synchronise this machine's clock (NTP: timedatectl set-ntp true, or chrony/ntpd; in a VM or container, the host's clock)"
	switch {
	case sure >= skew:
		consequence := "ID and access tokens are refused as issued in the future (iat, nbf) as soon as they arrive"
		if offset < 0 {
			consequence = "tokens look expired early, fresh logout tokens look too old, and short-lived access tokens are refused on arrival"
		}
		r.add("clock", Fail, fmt.Sprintf("this machine's clock is about %v %s the OP's, more than the %v the library tolerates: %s", shown, dir, skew, consequence), ntp)
	case sure > WarnClockOffset:
		r.add("clock", Warn, fmt.Sprintf("this machine's clock is about %v %s the OP's: still within the %v tolerance, but not synchronised, and it drifts", shown, dir, skew), ntp)
	default:
		r.add("clock", OK, fmt.Sprintf("within %v of the OP's clock (offset %v ± %v; tolerance %v)", max(shown, time.Second), offset.Round(100*time.Millisecond), uncertainty.Round(100*time.Millisecond), skew), "")
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// checkIssuer compares the configured issuer with the OP's. On a mismatch
// the later checks use the OP's issuer, to find the other problems too.
func (r *appRun) checkIssuer() {
	got := r.meta.Issuer
	if got == r.app.Issuer {
		r.add("issuer", OK, fmt.Sprintf("the OP's issuer is exactly %q", got), "")
		r.issuer = got
		return
	}
	r.add("issuer", Fail, fmt.Sprintf("configured issuer %q, but the OP names itself %q: %s; the library refuses the mismatch (tokens carry the OP's string in iss), and apps configured with different issuer strings do not share a session (the checks below use the OP's issuer)", r.app.Issuer, got, urldiff.Explain(r.app.Issuer, got)),
		fmt.Sprintf("set MULTIAPP_ISSUER to exactly %q, in every app", got))
	r.issuer = got
}

// https reports the scheme of the issuer and of the endpoints.
func (r *appRun) https() {
	iu, _ := url.Parse(r.issuer)
	if iu == nil {
		return
	}
	if iu.Scheme == "http" {
		if isLoopbackHost(iu.Hostname()) {
			r.add("https", Warn, fmt.Sprintf("the OP %s uses plain http on this machine: fine for local development only", r.issuer), "use an https issuer in every shared or production environment")
			return
		}
		if r.d.opts.InsecureAllowHTTPIssuer {
			r.add("https", Warn, fmt.Sprintf("the OP %s uses plain http over the network (allowed by --insecure-http-issuer): codes and tokens travel in clear text", r.issuer), "use https")
			return
		}
		r.add("https", Fail, fmt.Sprintf("the OP %s uses plain http over the network: the library refuses it (codes and tokens would travel in clear text)", r.issuer), "use the OP's https URL (rp.ProviderOptions.InsecureAllowHTTPIssuer exists for isolated test networks only)")
		return
	}
	var plain []string
	for name, e := range map[string]string{
		"authorization_endpoint": r.meta.AuthorizationEndpoint, "token_endpoint": r.meta.TokenEndpoint,
		"jwks_uri": r.meta.JWKSURI, "end_session_endpoint": r.meta.EndSessionEndpoint,
		"userinfo_endpoint": r.meta.UserinfoEndpoint, "revocation_endpoint": r.meta.RevocationEndpoint,
	} {
		if strings.HasPrefix(e, "http:") {
			plain = append(plain, name)
		}
	}
	if len(plain) > 0 {
		slices.Sort(plain)
		r.add("https", Warn, fmt.Sprintf("the issuer uses https but the OP advertises plain http for %s", strings.Join(plain, ", ")), "fix the OP's public URL setting (behind a TLS-terminating proxy it must know its external https URL)")
		return
	}
	r.add("https", OK, "the issuer and the endpoints it advertises use https", "")
}

func isLoopbackHost(h string) bool { return loopback.Host(h) }

func isPrivateHost(h string) bool {
	if isLoopbackHost(h) {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && (ip.IsPrivate() || ip.IsLinkLocalUnicast())
}

// features reports what the OP advertises that a multi-app setup relies on.
func (r *appRun) features() {
	m := r.meta
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" || m.JWKSURI == "" {
		r.add("endpoints", Fail, "the discovery document lacks authorization_endpoint, token_endpoint or jwks_uri", "this is not a usable OpenID Provider for the authorization code flow: check the issuer")
	} else {
		r.add("endpoints", OK, fmt.Sprintf("authorization %s, token %s", m.AuthorizationEndpoint, m.TokenEndpoint), "")
	}
	if m.EndSessionEndpoint != "" {
		r.add("end_session", OK, fmt.Sprintf("RP-initiated logout at %s: signing out of one app can end the shared OP session", m.EndSessionEndpoint), "")
	} else {
		r.add("end_session", Warn, "the OP advertises no end_session_endpoint: signing out of an app cannot end the shared OP session, so the next login on any app is silent", "enable RP-initiated logout at the OP; until then apps can only clear their own session")
	}
	switch {
	case m.BackchannelLogoutSupported && m.BackchannelLogoutSessionSupported:
		r.add("backchannel_logout", OK, "back-channel logout supported, with sid: the OP tells every app when the shared session ends", "")
	case m.BackchannelLogoutSupported:
		r.add("backchannel_logout", OK, "back-channel logout supported (without sid: apps match logout tokens by sub only)", "")
	default:
		r.add("backchannel_logout", Warn, "the OP does not advertise back-channel logout: when a user signs out of one app, the other apps keep their local sessions until a refresh fails", "enable back-channel logout at the OP and register each web app's "+DefaultBackchannelPath+" URL; otherwise keep access tokens short-lived")
	}
	switch {
	case slices.Contains(m.CodeChallengeMethods, "S256"):
		r.add("pkce", OK, "PKCE S256 supported", "")
	case len(m.CodeChallengeMethods) == 0:
		r.add("pkce", Warn, "the OP does not advertise code_challenge_methods_supported: the library sends PKCE S256 anyway, but an OP that ignores it leaves public clients unprotected", "check that the OP enforces PKCE S256 (Scalekit does for SPA and native apps)")
	default:
		r.add("pkce", Fail, fmt.Sprintf("the OP advertises PKCE methods %v without S256; the library never sends plain", m.CodeChallengeMethods), "enable PKCE S256 at the OP")
	}
	if m.AuthorizationResponseIssParameterSupported {
		r.add("iss_parameter", OK, "authorization responses carry iss (RFC 9207): the library checks it, a defence against mix-up attacks", "")
	} else {
		r.add("iss_parameter", OK, "the OP does not advertise RFC 9207 iss in authorization responses: the library checks it when present", "")
	}
	if m.RevocationEndpoint != "" {
		r.add("revocation", OK, "token revocation supported: refresh tokens can be revoked at logout", "")
	} else {
		r.add("revocation", Warn, "the OP advertises no revocation_endpoint: refresh tokens cannot be revoked at logout and stay usable until the OP ends them", "if the OP ends refresh tokens with its session (Scalekit, node-oidc-provider without offline_access), nothing to do; otherwise keep refresh tokens short-lived")
	}
	r.refreshTokens()
}

func (r *appRun) refreshTokens() {
	m := r.meta
	scopes := r.scopes()
	if len(m.GrantTypesSupported) > 0 && !slices.Contains(m.GrantTypesSupported, "refresh_token") {
		r.add("refresh", Warn, fmt.Sprintf("the OP's grant_types_supported %v lacks refresh_token: sessions end when the access token expires", m.GrantTypesSupported), "enable refresh tokens at the OP, or expect users to sign in again after each access token lifetime")
		return
	}
	if !slices.Contains(scopes, "offline_access") {
		r.add("refresh", Warn, fmt.Sprintf("the app's scopes %v do not ask for offline_access: most OPs (Scalekit, Hydra) then issue no refresh token, and users sign in again when the access token expires", scopes), "add offline_access to the app's scopes (rp.DefaultScopes has it)")
		return
	}
	if len(m.ScopesSupported) > 0 && !slices.Contains(m.ScopesSupported, "offline_access") {
		r.add("refresh", Warn, fmt.Sprintf("the app asks for offline_access but the OP's scopes_supported %v lacks it: the OP may refuse the login (invalid_scope) or issue no refresh token", m.ScopesSupported), "enable offline_access (refresh tokens) for the client at the OP, or remove it from the app's scopes")
		return
	}
	r.add("refresh", OK, "refresh tokens via offline_access: sessions outlive the access token", "")
}
