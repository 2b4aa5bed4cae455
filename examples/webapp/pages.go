package webapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/middleware"
)

// apiResult is the outcome of the home page's call to the API.
type apiResult struct {
	Status int
	Body   string
	Err    string
}

func readAPIResult(resp *http.Response) apiResult {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var v any
	if json.Unmarshal(b, &v) == nil {
		if compact, err := json.Marshal(v); err == nil {
			b = bytes.ReplaceAll(compact, []byte(`,"`), []byte(`, "`))
		}
	}
	return apiResult{Status: resp.StatusCode, Body: string(b)}
}

type homeData struct {
	Name        string
	Accent      string
	Links       []Link
	Issuer      string
	ClientID    string
	Me          *Me
	ExpiresIn   string
	APIURL      string
	API         *apiResult
	LoginURL    string
	LogoutURL   string
	SignedOutAt string
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	d := homeData{
		Name: a.cfg.Name, Accent: a.cfg.Accent, Links: a.cfg.Links, Issuer: a.client.Issuer(),
		ClientID: a.cfg.ClientID, APIURL: a.cfg.APIURL,
		LoginURL: a.web.LoginURL("/"), LogoutURL: "/auth/logout",
	}
	if s, ok := middleware.SessionFrom(r.Context()); ok {
		me := a.sessionInfo(s)
		d.Me = &me
		if exp := s.Expiry(); !exp.IsZero() {
			d.ExpiresIn = time.Until(exp).Round(time.Second).String()
		}
		if a.cfg.APIURL != "" {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			res := a.callAPI(ctx, s)
			cancel()
			d.API = &res
		}
	}
	a.render(w, http.StatusOK, d)
}

func (a *App) render(w http.ResponseWriter, status int, d homeData) {
	var buf bytes.Buffer
	if err := homeTmpl.Execute(&buf, d); err != nil {
		a.log.Error("render", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The sign-out form posts here, and the answer redirects to the OP:
	// form-action must allow both, or the browser stops at the redirect.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' "+origin(a.client.Provider().Metadata().EndSessionEndpoint))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func origin(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.IndexByte(raw[i+3:], '/'); j >= 0 {
			return raw[:i+3+j]
		}
	}
	return raw
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// accentFor picks a header colour from the app's name, so two apps side by
// side are told apart at a glance.
func accentFor(name string) string {
	palette := []string{"#2563eb", "#059669", "#d97706", "#db2777", "#7c3aed", "#0891b2"}
	switch strings.ToLower(name) {
	case "dashboard":
		return palette[0]
	case "docs":
		return palette[1]
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return palette[int(h.Sum32()%uint32(len(palette)))]
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

var homeTmpl = template.Must(template.New("home").Funcs(template.FuncMap{
	"join": func(s []string) string {
		if len(s) == 0 {
			return "—"
		}
		return strings.Join(s, ", ")
	},
	"ok":  func(status int) bool { return status >= 200 && status < 300 },
	"str": func(v any) string { return fmt.Sprint(v) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Name}}</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
header{background:{{.Accent}};color:#fff;padding:14px 24px;display:flex;align-items:center;gap:24px}
header strong{font-size:18px}
header nav{display:flex;gap:16px;margin-left:auto;font-size:14px}
header a{color:#fff;opacity:.9}
main{max-width:760px;margin:32px auto;padding:0 16px}
.card{background:#fff;border-radius:12px;padding:24px 28px;margin-bottom:20px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.05)}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:16px;margin:0 0 10px}
p.sub{margin:0 0 16px;color:#6b7280}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{width:34%;color:#6b7280;font-weight:600}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;overflow:auto;margin:8px 0 0;white-space:pre-wrap;word-break:break-word}
.btn{display:inline-block;padding:9px 18px;font:inherit;font-weight:600;color:#fff;background:{{.Accent}};border:0;border-radius:8px;cursor:pointer;text-decoration:none}
.btn.secondary{background:#e5e7eb;color:#111827}
.row{display:flex;gap:12px;align-items:center;margin-top:18px}
.pill{display:inline-block;font-size:12px;font-weight:600;border-radius:999px;padding:2px 10px}
.pill.ok{background:#dcfce7;color:#166534}.pill.no{background:#fee2e2;color:#991b1b}.pill.off{background:#e5e7eb;color:#374151}
</style></head>
<body>
<header><strong>{{.Name}}</strong><span>multiapp demo</span>
<nav>{{range .Links}}<a href="{{.URL}}">{{.Name}}</a>{{end}}</nav></header>
<main>
{{if .Me}}
<div class="card" id="signed-in">
<span class="pill ok">signed in</span>
<h1>Hello, {{if .Me.Name}}{{.Me.Name}}{{else}}{{.Me.Email}}{{end}}</h1>
<p class="sub">You are signed in to <strong>{{.Name}}</strong> (client <code>{{.ClientID}}</code>) with your shared sign-in at <code>{{.Issuer}}</code>.</p>
<table>
<tr><th>email</th><td id="email">{{.Me.Email}}</td></tr>
<tr><th>sub</th><td><code>{{.Me.Subject}}</code></td></tr>
<tr><th>OP session (sid)</th><td><code id="sid">{{.Me.SessionID}}</code></td></tr>
<tr><th>roles</th><td>{{join .Me.Roles}}</td></tr>
<tr><th>permissions</th><td>{{join .Me.Permissions}}</td></tr>
<tr><th>access token</th><td>expires in {{.ExpiresIn}}, refreshed by the middleware</td></tr>
</table>
<div class="row">
<form method="post" action="{{.LogoutURL}}"><button class="btn" id="sign-out" type="submit">Sign out everywhere</button></form>
<a class="btn secondary" href="/me">/me as JSON</a>
</div>
</div>
{{with .API}}<div class="card" id="api">
<h2>The API, called by this server as you</h2>
<p class="sub">GET <code>{{$.APIURL}}/api/me</code> with the session's access token:
{{if .Err}}<span class="pill no">{{.Err}}</span>{{else if ok .Status}}<span class="pill ok">{{.Status}}</span>{{else}}<span class="pill no">{{.Status}}</span>{{end}}</p>
{{if .Body}}<pre>{{.Body}}</pre>{{end}}
</div>{{end}}
{{else}}
<div class="card" id="signed-out">
<span class="pill off">not signed in</span>
<h1>{{.Name}}</h1>
<p class="sub">Sign in once at the OP, and every app of the demo knows you. Signing out of any app signs you out of all of them.</p>
<a class="btn" id="sign-in" href="{{.LoginURL}}">Sign in</a>
</div>
{{end}}
</main></body></html>
`))
