package devop

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ClientFlagUsage describes the -client flag of the commands that run a
// development OP (cmd/devop, the demo).
const ClientFlagUsage = `add a client (repeatable): id=ID,secret=SECRET,origin=http://localhost:PORT registers a web app ` +
	`with the routes of multiapp's web middleware (/auth/callback, /, /auth/backchannel-logout); ` +
	`without secret it is a public client (SPA). More keys: redirect=URL, post_logout=URL (both repeatable), ` +
	`backchannel=URL, auth_method=client_secret_basic|client_secret_post, name=TEXT, native=true`

// ClientFlag collects the clients of repeated -client flags; it is a
// flag.Value:
//
//	var extra devop.ClientFlag
//	flag.Var(&extra, "client", devop.ClientFlagUsage)
//	flag.Parse()
//	cfg := devop.DemoConfig()
//	cfg.Clients = append(cfg.Clients, extra...)
type ClientFlag []Client

// String lists the client ids.
func (f *ClientFlag) String() string {
	if f == nil {
		return ""
	}
	ids := make([]string, len(*f))
	for i, c := range *f {
		ids[i] = c.ID
	}
	return strings.Join(ids, ", ")
}

// Set parses one client with [ParseClient] and adds it.
func (f *ClientFlag) Set(s string) error {
	c, err := ParseClient(s)
	if err != nil {
		return err
	}
	*f = append(*f, c)
	return nil
}

// ParseClient parses a client from comma-separated key=value pairs, the
// value of the -client flag:
//
//	id=shop,secret=shop-secret,origin=http://localhost:8086
//
// registers a confidential web app "shop" (client_secret_basic) with the
// routes multiapp's web middleware serves: the redirect URI
// http://localhost:8086/auth/callback, the post-logout redirect URI
// http://localhost:8086/ and the back-channel logout URI
// http://localhost:8086/auth/backchannel-logout. Without a secret, the
// client is public (an SPA: PKCE, no back-channel logout).
//
// Keys: id (required), secret, origin (scheme://host:port), redirect and
// post_logout (full URIs, repeatable, added to those of origin),
// backchannel (replaces that of origin), auth_method
// (client_secret_basic, client_secret_post or none), name, native
// (true: a native app, any port on a loopback redirect URI). origin or
// redirect is required. Values cannot contain commas. The client is
// checked as [New] checks it; the errors never repeat the secret.
func ParseClient(s string) (Client, error) {
	var (
		c                  Client
		origin, authMethod string
		redirects, posts   []string
		seen               = map[string]bool{}
	)
	single := map[string]*string{
		"id": &c.ID, "secret": &c.Secret, "origin": &origin, "backchannel": &c.BackChannelLogoutURI,
		"auth_method": &authMethod, "name": &c.Name,
	}
	fail := func(format string, args ...any) (Client, error) {
		return Client{}, fmt.Errorf("devop: -client: "+format, args...)
	}
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return fail("%q has no value (write key=value, separated by commas)", k)
		}
		switch p := single[k]; {
		case p != nil:
			if seen[k] {
				return fail("%q given twice", k)
			}
			seen[k] = true
			*p = v
		case k == "redirect":
			redirects = append(redirects, v)
		case k == "post_logout":
			posts = append(posts, v)
		case k == "native":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fail("native=%q: use true or false", v)
			}
			c.Native = b
		default:
			return fail("unknown key %q (keys: id, secret, origin, redirect, post_logout, backchannel, auth_method, name, native)", k)
		}
	}
	if c.ID == "" {
		return fail("id is required, e.g. id=shop,secret=shop-secret,origin=http://localhost:8086")
	}
	if origin == "" && len(redirects) == 0 {
		return fail("client %q needs origin or redirect, e.g. origin=http://localhost:8086", c.ID)
	}
	if origin != "" {
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fail("client %q: origin is scheme://host:port, like http://localhost:8086 (for another path, use redirect=URL)", c.ID)
		}
		o := webClient(c.ID, c.Name, c.Secret, u.Scheme+"://"+u.Host)
		c.RedirectURIs, c.PostLogoutRedirectURIs = o.RedirectURIs, o.PostLogoutRedirectURIs
		if c.BackChannelLogoutURI == "" {
			c.BackChannelLogoutURI = o.BackChannelLogoutURI
		}
	}
	c.RedirectURIs = append(c.RedirectURIs, redirects...)
	c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, posts...)
	c.AuthMethod = authMethod
	if errs := c.problems("client " + strconv.Quote(c.ID)); len(errs) > 0 {
		return Client{}, fmt.Errorf("devop: -client: %w", errors.Join(errs...))
	}
	return c, nil
}
