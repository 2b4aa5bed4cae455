package devop

import (
	"fmt"
	"io"
	"strings"
)

// WriteSummary writes what a developer needs to point an app at this OP:
// the issuer, every client (id, secret, token endpoint auth method,
// redirect, post-logout and back-channel logout URIs) and every user
// (email, password, sub, roles). It prints the clients' secrets and the
// users' passwords: call it for a development OP only, on the terminal, not
// into logs.
func (o *OP) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Development OP %s\n", o.issuer)
	fmt.Fprintf(&b, "  discovery  %s\n", o.DiscoveryURL())
	fmt.Fprintf(&b, "  home page  %s/ (clients, users, live sessions)\n", o.issuer)

	b.WriteString("\nClients:\n")
	width := 0
	for _, c := range o.cfg.Clients {
		width = max(width, len(c.ID))
	}
	for _, cfg := range o.cfg.Clients {
		c := o.clients[cfg.ID]
		var kind string
		switch {
		case c.Native:
			kind = "native app, public (PKCE S256, no secret)"
		case c.Public():
			kind = "public (PKCE S256, no secret)"
		default:
			kind = fmt.Sprintf("confidential, secret %q", c.Secret)
		}
		fmt.Fprintf(&b, "  %-*s  %s, token_endpoint_auth_method %s\n", width, c.ID, kind, c.registeredAuthMethod())
		pad := strings.Repeat(" ", width+4)
		for _, r := range c.RedirectURIs {
			if c.Native {
				if _, ok := loopbackURL(r); ok {
					r += " (any port)"
				}
			}
			fmt.Fprintf(&b, "%sredirect      %s\n", pad, r)
		}
		for _, r := range c.PostLogoutRedirectURIs {
			fmt.Fprintf(&b, "%spost-logout   %s\n", pad, r)
		}
		if c.BackChannelLogoutURI != "" {
			fmt.Fprintf(&b, "%sback-channel  %s\n", pad, c.BackChannelLogoutURI)
		}
	}

	b.WriteString("\nUsers:\n")
	width = 0
	for _, u := range o.cfg.Users {
		width = max(width, len(u.Email))
	}
	for _, cfg := range o.cfg.Users {
		u := o.users[cfg.ID]
		fmt.Fprintf(&b, "  %-*s  password %q, sub %s", width, u.Email, u.Password, u.ID)
		if len(u.Roles) > 0 {
			fmt.Fprintf(&b, ", roles %s", strings.Join(u.Roles, " "))
		}
		if len(u.Permissions) > 0 {
			fmt.Fprintf(&b, ", permissions %s", strings.Join(u.Permissions, " "))
		}
		b.WriteString("\n")
	}
	if len(o.cfg.AccessTokenAudience) > 0 {
		fmt.Fprintf(&b, "\nAccess tokens carry the audience %s (after the client id).\n", strings.Join(o.cfg.AccessTokenAudience, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
