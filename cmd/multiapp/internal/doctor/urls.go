package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/multiapp-go/multiapp/internal/jws"
	"github.com/multiapp-go/multiapp/rp"
)

// checkAppURL reports the classic shape problems of a URL the OP must
// send the browser to: the parsed URL (nil on a FAIL) and the verdict.
func checkAppURL(field, env, raw string) (u *url.URL, status Status, msg, fix string) {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "http" && u.Scheme != "https" && strings.Contains(u.Scheme, ".") && u.Fragment == "" {
		return u, OK, fmt.Sprintf("%s (a native app's private-use scheme, RFC 8252)", raw), ""
	}
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return nil, Fail, fmt.Sprintf("%s %q is not an absolute URL", field, raw), fmt.Sprintf("set %s to the full URL registered at the OP, e.g. https://app.example.com/auth/callback", env)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, Fail, fmt.Sprintf("%s %q has a fragment (#...), which OAuth forbids", field, raw), fmt.Sprintf("remove the fragment from %s", env)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return nil, Fail, fmt.Sprintf("%s %q uses plain http outside localhost: the library refuses it, and OPs refuse to register it in production", field, raw), fmt.Sprintf("use https in %s (plain http is for localhost development only)", env)
	case u.User != nil:
		return nil, Fail, fmt.Sprintf("%s has user information (user:password@)", field), fmt.Sprintf("remove it from %s", env)
	}
	return u, OK, raw, ""
}

// redirectURL checks the redirect URL's shape, and its port against the
// port the app listens on in local development.
func (r *appRun) redirectURL() {
	raw := r.app.RedirectURL
	if raw == "" {
		r.add("redirect_url", Skip, "no redirect URL configured: the login checks are skipped (fine for an API that only verifies tokens)", "set MULTIAPP_REDIRECT_URL for an app that signs users in")
		return
	}
	u, st, msg, fix := checkAppURL("the redirect URL", "MULTIAPP_REDIRECT_URL", raw)
	if st != OK {
		r.add("redirect_url", st, msg, fix)
		return
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if port, ok := listenPort(r.app.Addr); ok && isLoopbackHost(u.Hostname()) && effectivePort(u) != port {
			r.add("redirect_url", Warn, fmt.Sprintf("%s points to port %s, but the app listens on %s (MULTIAPP_ADDR): after login the OP sends the browser to a port where this app is not", raw, effectivePort(u), r.app.Addr),
				"make MULTIAPP_REDIRECT_URL and MULTIAPP_ADDR agree on the port (and register that exact URL at the OP)")
			return
		}
		if u.RawQuery != "" {
			msg += " (with a query: the OP must have it registered with exactly this query)"
		}
		if strings.HasSuffix(u.Path, "/auth/callback/") {
			msg += " (with a trailing slash: multiapp's web middleware serves /auth/callback, without one)"
		} else if !strings.HasSuffix(u.Path, "/auth/callback") {
			msg += " (multiapp's web middleware serves /auth/callback; a custom route is fine if the app serves it)"
		}
		if u.Scheme == "http" {
			msg += " (plain http: local development only)"
		}
	}
	r.add("redirect_url", OK, msg, "")
}

// listenPort extracts the port of a listen address like ":8081",
// "localhost:8081" or "0.0.0.0:8081".
func listenPort(addr string) (string, bool) {
	if addr == "" {
		return "", false
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", false
	}
	return port, true
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// library asks rp.Discover and Provider.Client, exactly as the app would,
// whether the configuration can work.
func (r *appRun) library(ctx context.Context) {
	if r.app.ClientID == "" {
		r.add("library", Skip, "no client id", "")
		return
	}
	p, err := rp.Discover(ctx, r.issuer, r.providerOptions())
	var c *rp.Client
	if err == nil {
		c, err = p.Client(r.rpConfig())
	}
	if err != nil {
		fix := "change what the message names in the app's configuration (MULTIAPP_* variables)"
		if errors.Is(err, rp.ErrTemporary) {
			fix = "the OP did not answer properly: retry, and check its availability"
		}
		r.add("library", Fail, fmt.Sprintf("the library (rp.Discover, Provider.Client) refuses this configuration: %v", err), fix)
		return
	}
	r.client = c
	kind := fmt.Sprintf("confidential client (%s)", c.ClientAuth().Method)
	if c.ClientAuth().Method == rp.AuthPrivateKeyJWT {
		kind = "confidential client (" + c.ClientAuth().Why + ")"
	}
	if c.ClientAuth().Method == rp.AuthNone {
		kind = "public client (PKCE, no secret)"
	}
	r.add("library", OK, fmt.Sprintf("the library (rp.Discover, Provider.Client) accepts the configuration: %s, tokens signed with %v", kind, jws.Choose(p.Metadata().IDTokenSigningAlgs)), "")
}

// providerOptions are the options the doctor discovers the OP with: its
// HTTP client and clock, the apps' clock skew.
func (r *appRun) providerOptions() *rp.ProviderOptions {
	return &rp.ProviderOptions{
		ClockSkew:               r.d.opts.ClockSkew,
		HTTPClient:              r.d.http,
		InsecureAllowHTTPIssuer: r.d.opts.InsecureAllowHTTPIssuer,
		Now:                     r.d.now,
	}
}

// rpConfig is the app's configuration as the library gets it.
func (r *appRun) rpConfig() rp.Config {
	return rp.Config{
		ClientID:              r.app.ClientID,
		ClientSecret:          r.app.ClientSecret,
		Key:                   r.key,
		Profile:               r.app.Profile,
		AuthMethod:            r.authMethodSetting(),
		RedirectURL:           r.app.RedirectURL,
		PostLogoutRedirectURL: r.app.PostLogoutRedirectURL,
		Scopes:                r.app.Scopes,
	}
}

// redirectVariants are the near misses of a redirect URL that developers
// register by mistake: the trailing slash, the scheme, localhost vs
// 127.0.0.1, an explicit default port, the port the app listens on.
func redirectVariants(raw, addr string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	seen := map[string]bool{raw: true}
	var out []string
	add := func(v *url.URL) {
		s := v.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	clone := func() *url.URL { c := *u; return &c }

	v := clone()
	if strings.HasSuffix(v.Path, "/") && len(v.Path) > 1 {
		v.Path = strings.TrimSuffix(v.Path, "/")
	} else {
		v.Path += "/"
	}
	v.RawPath = ""
	add(v)

	v = clone()
	if v.Scheme == "https" {
		v.Scheme = "http"
	} else {
		v.Scheme = "https"
	}
	add(v)

	host, port := u.Hostname(), u.Port()
	withHost := func(h string) {
		v := clone()
		if port != "" {
			v.Host = net.JoinHostPort(h, port)
		} else if strings.Contains(h, ":") {
			v.Host = "[" + h + "]"
		} else {
			v.Host = h
		}
		add(v)
	}
	switch host {
	case "localhost":
		withHost("127.0.0.1")
	case "127.0.0.1", "::1":
		withHost("localhost")
	}
	if port != "" && port == effectivePort(&url.URL{Scheme: u.Scheme}) {
		v := clone()
		v.Host = u.Hostname()
		add(v)
	}
	if p, ok := listenPort(addr); ok && p != effectivePort(u) {
		v := clone()
		v.Host = net.JoinHostPort(host, p)
		add(v)
	}
	return out
}
