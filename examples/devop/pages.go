package devop

import (
	"bytes"
	"html/template"
	"net/http"
	"slices"
	"strings"
)

const pageCSS = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
main{width:100%;max-width:380px;margin:24px;padding:32px;background:#fff;border-radius:12px;
 box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
main.wide{max-width:760px}
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
td code{word-break:break-all}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px}
h2{font-size:16px;margin:20px 0 4px}
`

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
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
<p class="sub">OpenID Provider for development and tests. Discovery: <code>{{.Issuer}}/.well-known/openid-configuration</code></p>
<h2>Clients</h2>
<table><tr><th>client_id</th><th>type</th><th>redirect URIs</th><th>back-channel logout</th></tr>
{{range .Clients}}<tr><td><code>{{.ID}}</code></td><td>{{if .Native}}native{{else if .Public}}public{{else}}confidential{{end}}</td>
<td>{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</td><td>{{if .BackChannelLogoutURI}}<code>{{.BackChannelLogoutURI}}</code>{{else}}—{{end}}</td></tr>{{end}}
</table>
<h2>Users</h2>
<table><tr><th>sub</th><th>email</th><th>roles</th><th>permissions</th></tr>
{{range .Users}}<tr><td><code>{{.ID}}</code></td><td>{{.Email}}</td><td>{{range .Roles}}<code>{{.}}</code> {{end}}</td><td>{{range .Permissions}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
</table>
<h2>Sessions</h2>
{{if .Sessions}}<table><tr><th>sid</th><th>user</th><th>signed in</th><th>clients</th><th></th></tr>
{{range .Sessions}}<tr><td><code>{{.ID}}</code></td><td><code>{{.UserID}}</code></td><td>{{.AuthTime.Format "15:04:05"}}</td>
<td>{{range .Clients}}<code>{{.}}</code> {{end}}</td>
<td><form method="post" action="` + adminEndPath + `"><input type="hidden" name="sid" value="{{.ID}}"><button class="small" type="submit">End session</button></form></td></tr>{{end}}
</table>{{else}}<p class="note">No live session.</p>{{end}}
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
</main>{{else}}<main>
<span class="badge">Development OP</span>
<h1>{{.Title}}</h1>
<p>{{.Detail}}</p>
</main>{{end}}
</body></html>
`))

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
	Clients       []*Client
	Users         []*User
	Sessions      []SessionInfo
}

func (o *OP) render(w http.ResponseWriter, status int, d pageData) {
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
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
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
	})
}

func (o *OP) handleHome(w http.ResponseWriter, r *http.Request) {
	d := pageData{Kind: "home", Title: "Development OP", Issuer: o.issuer, Sessions: o.Sessions(), Note: o.cfg.LoginPageNote}
	for _, id := range o.clientIDs() {
		d.Clients = append(d.Clients, o.clients[id])
	}
	for _, u := range o.users {
		d.Users = append(d.Users, u)
	}
	slices.SortFunc(d.Users, func(a, b *User) int { return strings.Compare(a.Email, b.Email) })
	o.render(w, http.StatusOK, d)
}
