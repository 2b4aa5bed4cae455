package demo

import (
	"fmt"
	"strings"

	"github.com/multiapp-go/multiapp/examples/api"
	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/examples/devop"
)

// Guide returns the text the demo command prints: the URLs and a short
// tour.
func (d *Demo) Guide() string {
	u := d.URLs
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("multiapp demo: one sign-in, five apps")
	p("")
	row := func(name, where, what string) { p("  %-10s %-30s %s", name, where, what) }
	row("OP", u.Issuer+"/", "development OpenID Provider: sessions, admin logout")
	row("dashboard", u.Dashboard+"/", `web app, confidential client "dashboard"`)
	row("docs", u.Docs+"/", `web app, confidential client "docs"`)
	row("SPA", u.SPA+"/", `browser app, public client "spa" (PKCE in JavaScript)`)
	row("API", u.API+"/api/me", fmt.Sprintf("bearer tokens; /api/admin needs %q", api.DefaultAdminPermission))
	p("  %-10s %s", "CLI", `native client "cli" (loopback redirect): go run ./examples/cli/cmd/cli login`)
	p("")
	p("Users: alice@example.com (admin) and bob@example.com, password %q.", devop.DemoPassword)
	p("")
	p("Try this:")
	p("  1. Open %s/ and sign in as bob@example.com: the only login form you will see.", u.Dashboard)
	p("  2. Open %s/: you are signed in already (single sign-on, no form).", u.Docs)
	p("  3. Open %s/: the SPA gets its own tokens silently and calls the API;", u.SPA)
	p("     /api/admin answers 403 for bob (sign in as alice to see 200).")
	p("  4. Sign out on docs: the OP tells the dashboard at once (back-channel logout);")
	p("     reload %s/me, and press \"Refresh tokens\" in the SPA: both are signed out.", u.Dashboard)
	p("  5. The OP's home page %s/ lists the sessions and can end one, like an admin.", u.Issuer)
	env := ""
	if u.Issuer != cli.DefaultIssuer {
		env = "MULTIAPP_ISSUER=" + u.Issuer + " "
	}
	p("  6. %sgo run ./examples/cli/cmd/cli login  (then: whoami, call %s/api/me,", env, u.API)
	p("     logout --everywhere): the native client signs in through your browser.")
	p("")
	p("Ctrl-C stops everything.")
	return b.String()
}
