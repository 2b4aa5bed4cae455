package devop

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const pageCSS = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
main{width:100%;max-width:380px;margin:24px;padding:32px;background:#fff;border-radius:12px;
 box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
main.wide{max-width:1040px}
.badge{display:inline-block;font-size:12px;font-weight:600;letter-spacing:.04em;text-transform:uppercase;
 color:#6d28d9;background:#ede9fe;border-radius:999px;padding:2px 10px;margin-bottom:12px}
h1{font-size:22px;margin:0 0 4px}
p.sub{margin:0 0 24px;color:#6b7280}
label{display:block;font-weight:600;font-size:13px;margin:16px 0 6px}
input[type=text],input[type=password],input[type=email]{width:100%;padding:10px 12px;font:inherit;
 border:1px solid #d1d5db;border-radius:8px;outline:none}
input:focus{border-color:#7c3aed;box-shadow:0 0 0 3px rgba(124,58,237,.18)}
button{margin-top:24px;width:100%;padding:11px;font:inherit;font-weight:600;color:#fff;background:#7c3aed;
 border:0;border-radius:8px;cursor:pointer}
button:hover{background:#6d28d9}
button.small{width:auto;margin:0;padding:4px 10px;font-size:13px;background:#dc2626}
.error{margin:16px 0 0;padding:10px 12px;border-radius:8px;background:#fef2f2;color:#991b1b;font-size:14px}
.note{margin-top:20px;font-size:13px;color:#6b7280}
table{width:100%;border-collapse:collapse;font-size:14px;margin:8px 0 20px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}
code.id{white-space:nowrap}
nav.apps{margin:0 0 8px;font-size:14px}
nav.apps a{display:inline-block;margin:4px 6px 0 0;padding:4px 10px;border-radius:999px;background:#ede9fe;color:#5b21b6;text-decoration:none;white-space:nowrap}
nav.apps a:hover{background:#ddd6fe}
.muted{color:#6b7280;font-size:13px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px}
h2{font-size:16px;margin:20px 0 4px}
`

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"url": breakableURL}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}} · devop</title><style>` + pageCSS + `</style></head>
<body>{{if eq .Kind "login"}}<main>
<span class="badge">Development OP</span>
<h1>Sign in</h1>
<p class="sub">to continue to <strong>{{.ClientName}}</strong></p>
<form method="post" action="{{.Action}}" autocomplete="on">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="username">Email</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<button type="submit">Sign in</button>
</form>
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
</main>{{else if eq .Kind "home"}}<main class="wide">
<span class="badge">Development OP</span>
<h1>{{.Issuer}}</h1>
<p class="sub">OpenID Provider for development and tests. Discovery: <code>{{url (print .Issuer "/.well-known/openid-configuration")}}</code></p>
{{template "apps" .}}
<h2>Clients</h2>
<table><tr><th>client_id</th><th>type and token endpoint auth method</th><th>secret</th><th>redirect URIs</th><th>post-logout</th><th>back-channel logout</th></tr>
{{range .Clients}}<tr><td><code class=id>{{.ID}}</code>{{if .Name}}<br><span class="muted">{{.Name}}</span>{{end}}</td>
<td>{{if .Native}}native, public{{else if .Public}}public{{else}}confidential{{end}}<br><code class=id>{{.Method}}</code></td>
<td>{{if .Secret}}<code class=id>{{.Secret}}</code>{{else}}—{{end}}</td>
<td>{{range .RedirectURIs}}<code>{{url .}}</code><br>{{end}}{{if .Native}}<span class="muted">any port on a loopback URI</span>{{end}}</td>
<td>{{range .PostLogoutRedirectURIs}}<code>{{url .}}</code><br>{{else}}—{{end}}</td>
<td>{{if .BackChannelLogoutURI}}<code>{{url .BackChannelLogoutURI}}</code>{{else}}—{{end}}</td></tr>{{end}}
</table>
<h2>Users</h2>
<table><tr><th>email</th><th>sub</th><th>roles</th><th>permissions</th></tr>
{{range .Users}}<tr><td>{{.Email}}</td><td><code class=id>{{.ID}}</code></td><td>{{range .Roles}}<code class=id>{{.}}</code> {{end}}</td><td>{{range .Permissions}}<code class=id>{{.}}</code> {{end}}</td></tr>{{end}}
</table>
<h2>Sessions</h2>
{{if .Sessions}}<table><tr><th>sid</th><th>user</th><th>signed in</th><th>clients</th><th></th></tr>
{{range .Sessions}}<tr><td><code class=id>{{.ID}}</code></td><td><code class=id>{{.UserID}}</code></td><td>{{.AuthTime.Format "15:04:05"}}</td>
<td>{{range .Clients}}<code class=id>{{.}}</code> {{end}}</td>
<td><form method="post" action="` + adminEndPath + `"><input type="hidden" name="sid" value="{{.ID}}"><button class="small" type="submit">End session</button></form></td></tr>{{end}}
</table>{{else}}<p class="note">No live session.</p>{{end}}
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
</main>{{else}}<main>
<span class="badge">Development OP</span>
<h1>{{.Title}}</h1>
<p>{{.Detail}}</p>
{{template "apps" .}}
</main>{{end}}
</body></html>
{{define "apps"}}<nav class="apps" aria-label="Apps">{{if eq .Kind "home"}}Apps:{{else}}Back to{{end}} {{range .Apps}}<a href="{{.URL}}">{{.Name}}</a>{{end}}{{if ne .Kind "home"}}<a href="/">the OP's home page</a>{{end}}</nav>{{end}}
`))

// breakableURL lets a long URL wrap after the slashes of its path only:
// never inside a word, nor inside scheme://host:port.
func breakableURL(u string) template.HTML {
	head, path := u, ""
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			head, path = u[:i+3+j+1], u[i+3+j+1:]
		}
	}
	var b strings.Builder
	b.WriteString(template.HTMLEscapeString(head))
	for seg := range strings.SplitAfterSeq(path, "/") {
		b.WriteString("<wbr>")
		b.WriteString(template.HTMLEscapeString(seg))
	}
	return template.HTML(b.String())
}

// appLink is a link from the OP's pages to an app.
type appLink struct{ Name, URL string }

// clientRow is a client on the home page.
type clientRow struct {
	*Client
	Method string
}

type pageData struct {
	Kind          string
	Title         string
	Detail        string
	ClientName    string
	Action        string
	AuthRequestID string
	Username      string
	Error         string
	Note          string
	Issuer        string
	Apps          []appLink
	Clients       []clientRow
	Users         []*User
	Sessions      []SessionInfo
}

// render writes a page. Its forms may post to this OP only; formTargets
// adds the origins a form's answer redirects to: browsers apply form-action
// to every redirect after a form submission, so the login form, whose answer
// redirects to the client's redirect URI, needs that origin.
func (o *OP) render(w http.ResponseWriter, status int, d pageData, formTargets ...string) {
	d.Apps = o.appLinks()
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		o.cfg.Logger.Error("render page", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	formAction := "'self'"
	for _, t := range formTargets {
		if u, err := url.Parse(t); err == nil && u.Scheme != "" && u.Host != "" {
			formAction += " " + u.Scheme + "://" + u.Host
		} else if err == nil && u.Scheme != "" {
			formAction += " " + u.Scheme + ":" // a native app's custom scheme
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (o *OP) renderMessage(w http.ResponseWriter, status int, title, detail string) {
	o.render(w, status, pageData{Kind: "message", Title: title, Detail: detail})
}

func (o *OP) renderLogin(w http.ResponseWriter, status int, ar *authRequest, username, errMsg string) {
	name := ar.clientID
	if c := o.clients[ar.clientID]; c != nil && c.Name != "" {
		name = c.Name
	}
	o.render(w, status, pageData{
		Kind:          "login",
		Title:         "Sign in",
		ClientName:    name,
		Action:        loginPath,
		AuthRequestID: ar.id,
		Username:      username,
		Error:         errMsg,
		Note:          o.cfg.LoginPageNote,
	}, ar.redirectURI)
}

// appLinks are the home pages of the clients that have one: their first
// post-logout redirect URI, else the origin of their first redirect URI.
// Native apps have none.
func (o *OP) appLinks() []appLink {
	var out []appLink
	for _, c := range o.cfg.Clients {
		if c.Native {
			continue
		}
		home := ""
		if len(c.PostLogoutRedirectURIs) > 0 {
			home = c.PostLogoutRedirectURIs[0]
		} else if u, err := url.Parse(c.RedirectURIs[0]); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			home = u.Scheme + "://" + u.Host + "/"
		}
		if home == "" {
			continue
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		out = append(out, appLink{Name: name, URL: home})
	}
	return out
}

func (o *OP) handleHome(w http.ResponseWriter, r *http.Request) {
	d := pageData{Kind: "home", Title: "Development OP", Issuer: o.issuer, Sessions: o.Sessions(), Note: o.cfg.LoginPageNote}
	for _, c := range o.cfg.Clients {
		c := o.clients[c.ID]
		d.Clients = append(d.Clients, clientRow{c, c.registeredAuthMethod()})
	}
	for _, u := range o.users {
		d.Users = append(d.Users, u)
	}
	slices.SortFunc(d.Users, func(a, b *User) int { return strings.Compare(a.Email, b.Email) })
	o.render(w, http.StatusOK, d)
}
