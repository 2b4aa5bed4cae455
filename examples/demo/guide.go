package demo

import (
	"fmt"
	"strings"

	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/examples/devop"
)

// runs names what the demo runs for each client id it starts; a client not
// listed here is registered for the user's own app.
var runs = map[string]string{
	"dashboard": "web app",
	"docs":      "web app",
	"spa":       "single-page app",
	"cli":       "command-line app",
}

// Guide returns the text the demo command prints: the URLs, every client
// registered at the OP with its secret and URLs, the API's audience, the
// users, and a short tour.
func (d *Demo) Guide() string {
	u := d.URLs
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("multiapp demo: one sign-in, five apps")
	p("")
	row := func(name, where, what string) { p("  %-10s %-30s %s", name, where, what) }
	row("OP", u.Issuer+"/", "development OpenID Provider (issuer "+u.Issuer+"): sessions, admin logout")
	row("dashboard", u.Dashboard+"/", `web app, confidential client "dashboard"`)
	row("docs", u.Docs+"/", `web app, confidential client "docs"`)
	row("SPA", u.SPA+"/", `browser app, public client "spa" (PKCE in JavaScript)`)
	row("API", u.API+"/api/me", fmt.Sprintf("bearer tokens for audience %q; /api/admin needs %q", devop.DemoAPIAudience, api.DefaultAdminPermission))
	p("  %-10s %s", "CLI", `native client "cli" (loopback redirect): go run ./examples/cli/cmd/cli login`)
	if u.Metrics != "" {
		row("metrics", u.Metrics, "Prometheus page: sign-ins, refreshes, logouts, token cache, OP and store latencies")
	}
	p("")
	p("Clients registered at the OP. Unless shown: a secret is sent with client_secret_basic,")
	p("post-logout redirect = origin + \"/\", back-channel logout = origin + \"/auth/backchannel-logout\".")
	for _, c := range d.Clients {
		secret := c.Secret
		switch {
		case c.Native:
			secret = "(public, native)"
		case c.Public():
			secret = "(public, PKCE)"
		}
		redirect := strings.Join(c.RedirectURIs, " ")
		if c.Native {
			redirect += " (any port)"
		}
		what := runs[c.ID]
		if what == "" {
			what = "not run by the demo: for your own app"
		}
		p("  %-10s %-17s %-38s %s", c.ID, secret, redirect, what)
		if m := c.AuthMethod; !c.Public() && m != "" && m != devop.AuthMethodBasic {
			p("  %-10s %-17s token endpoint auth method %s", "", "", m)
		}
		origin := originOf(c.RedirectURIs)
		for _, pl := range c.PostLogoutRedirectURIs {
			if pl != origin+"/" {
				p("  %-10s %-17s post-logout %s", "", "", pl)
			}
		}
		if bc := c.BackChannelLogoutURI; bc != "" && bc != origin+"/auth/backchannel-logout" {
			p("  %-10s %-17s back-channel logout %s", "", "", bc)
		} else if bc == "" && !c.Public() {
			p("  %-10s %-17s no back-channel logout", "", "")
		}
	}
	p("Access tokens carry aud %s (the API's audience) besides the client id.", quoteAll(d.Audiences))
	p("")
	p("Users: alice@example.com (admin) and bob@example.com, password %q.", devop.DemoPassword)
	p("")
	p("Try this:")
	p("  1. Open %s/ and sign in as bob@example.com: the only login form you will see.", u.Dashboard)
	p("  2. Open %s/: you are signed in already (single sign-on, no form).", u.Docs)
	p("  3. Open %s/: the SPA gets its own tokens silently and calls the API;", u.SPA)
	p("     /api/admin answers 403 for bob (sign in as alice to see 200).")
	p("  4. Sign out on docs: the OP tells the dashboard at once (back-channel logout) and")
	p("     the API refuses the session's tokens; reload %s/me or the SPA: signed out.", u.Dashboard)
	p("  5. The OP's home page %s/ lists the sessions and can end one, like an admin.", u.Issuer)
	env := ""
	if u.Issuer != cli.DefaultIssuer {
		env = "MULTIAPP_ISSUER=" + u.Issuer + " "
	}
	p("  6. %sgo run ./examples/cli/cmd/cli login  (then: whoami, call %s/api/me,", env, u.API)
	p("     logout --everywhere): the native client signs in through your browser.")
	p("  7. The same with %sgo run ./examples/cli/cmd/cli --dpop login: DPoP-bound tokens", env)
	p("     (RFC 9449); call still works (with proofs), the token alone as Bearer gets 401.")
	p("")
	p("Ctrl-C stops everything.")
	return b.String()
}

// originOf returns the scheme://host[:port] of the first URL.
func originOf(urls []string) string {
	if len(urls) == 0 {
		return ""
	}
	s := urls[0]
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexByte(s[i+3:], '/'); j >= 0 {
			return s[:i+3+j]
		}
	}
	return s
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
