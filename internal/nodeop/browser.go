package nodeop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// Browser is a scripted browser: an http.Client with a cookie jar that
// follows redirects itself, through the apps under test and the OP, and
// submits the OP's forms the way a person would:
//
//   - the login form (filled with Login and Password; counted by LoginForms),
//   - a consent form, should one appear (this OP grants consent itself),
//   - the end-session confirmation ("yes, sign me out"),
//   - any page that submits a form from script (form_post, the OP's
//     logout without a session).
//
// Other pages end the navigation. A Browser is safe for concurrent use, but
// concurrent navigations share its cookies like tabs of one browser do.
type Browser struct {
	// Client sends every request. Its Jar holds the cookies of the OP and of
	// the apps (a jar ignores ports: apps on 127.0.0.1 share cookies with
	// each other and with the OP, whose cookies are _session, _interaction
	// and _interaction_resume). Its CheckRedirect stops at the first
	// response; the Browser follows redirects itself.
	Client *http.Client
	// Login and Password are typed into the OP's login form.
	Login, Password string
	// CancelLogin presses Cancel on the login page instead of signing in:
	// the OP then redirects to the app with error=access_denied.
	CancelLogin bool
	// MaxSteps bounds the requests of one navigation (default 30).
	MaxSteps int

	mu     sync.Mutex
	counts map[string]int
}

// ErrLoginRejected is returned (wrapped) when the OP shows its login form
// again right after the browser submitted it: wrong login or password.
var ErrLoginRejected = errors.New("nodeop: the OP rejected the login")

// NewBrowser returns a Browser that signs in as login with password.
func NewBrowser(t testing.TB, login, password string) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("nodeop: cookie jar: %v", err)
	}
	c := &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(c.CloseIdleConnections)
	return &Browser{Client: c, Login: login, Password: password}
}

// LoginForms is how many times the browser submitted the OP's login form
// (rejected attempts included). An app that signs in through SSO adds none.
func (b *Browser) LoginForms() int { return b.count("login") }

// LogoutForms is how many end-session confirmations the browser submitted.
func (b *Browser) LogoutForms() int { return b.count("logout") }

// ConsentForms is how many consent forms the browser submitted.
func (b *Browser) ConsentForms() int { return b.count("consent") }

func (b *Browser) count(kind string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[kind]
}

func (b *Browser) add(kind string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.counts == nil {
		b.counts = map[string]int{}
	}
	b.counts[kind]++
}

// Navigate GETs rawURL and keeps going: it follows redirects and submits the
// OP's forms until a response is neither, and returns that response's URL
// and the response (its body is buffered and readable).
//
// stop, when not nil, is asked about every URL the browser is about to visit
// on its own (redirect targets and form actions, not rawURL): when it says
// true, Navigate returns that URL with a nil response and nil error, without
// visiting it. Tests use it to catch the redirect to an app's callback and
// handle the authorization response themselves.
func (b *Browser) Navigate(rawURL string, stop func(*url.URL) bool) (*url.URL, *http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	return b.Do(req, stop)
}

// PostForm is Navigate starting with a form POST (e.g. an app's logout
// button).
func (b *Browser) PostForm(rawURL string, form url.Values, stop func(*url.URL) bool) (*url.URL, *http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req, stop)
}

// Do is Navigate starting with req (any method; its body is read up front so
// that 307/308 redirects can replay it).
func (b *Browser) Do(req *http.Request, stop func(*url.URL) bool) (*url.URL, *http.Response, error) {
	max := b.MaxSteps
	if max <= 0 {
		max = 30
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return req.URL, nil, err
		}
	}
	method, u, ctype := req.Method, req.URL, req.Header.Get("Content-Type")
	header := req.Header.Clone()
	ctx := req.Context()
	lastWasLogin := false
	for step := 0; ; step++ {
		if step >= max {
			return u, nil, fmt.Errorf("nodeop: browser gave up after %d steps at %s", max, redact(u))
		}
		if step > 0 && stop != nil && stop(u) {
			return u, nil, nil
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return u, nil, fmt.Errorf("nodeop: browser cannot visit %s (stop did not catch it)", redact(u))
		}
		r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return u, nil, err
		}
		if step == 0 {
			r.Header = header.Clone()
		}
		if body == nil {
			r.Body, r.ContentLength = nil, 0
		} else if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		resp, err := b.Client.Do(r)
		if err != nil {
			return u, nil, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return u, nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))

		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := u.Parse(loc)
			if err != nil {
				return u, resp, fmt.Errorf("nodeop: bad Location %q: %w", loc, err)
			}
			u = next
			if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
				method, body, ctype = http.MethodGet, nil, ""
			}
			lastWasLogin = false
			continue
		}

		if !strings.Contains(resp.Header.Get("Content-Type"), "html") {
			return u, resp, nil
		}
		doc := string(data)
		f, kind := findSubmittable(doc)
		if f == nil {
			return u, resp, nil
		}
		if kind == "login" {
			if lastWasLogin {
				return u, resp, fmt.Errorf("%w: login %q: %s", ErrLoginRejected, b.Login, pageError(doc))
			}
			if b.CancelLogin {
				href := attrOfMarked(doc, "a", "abort", "href")
				if href == "" {
					return u, resp, errors.New("nodeop: the login page has no Cancel link")
				}
				next, err := u.Parse(href)
				if err != nil {
					return u, resp, err
				}
				u, method, body, ctype = next, http.MethodGet, nil, ""
				continue
			}
		}
		values := f.values()
		if kind == "login" {
			values.Set("login", b.Login)
			values.Set("password", b.Password)
		}
		action, err := u.Parse(f.action)
		if err != nil {
			return u, resp, fmt.Errorf("nodeop: bad form action %q: %w", f.action, err)
		}
		b.add(kind)
		lastWasLogin = kind == "login"
		u = action
		if strings.EqualFold(f.method, http.MethodPost) {
			method, body, ctype = http.MethodPost, []byte(values.Encode()), "application/x-www-form-urlencoded"
		} else {
			q := u.Query()
			for k, vs := range values {
				q[k] = vs
			}
			next := *u
			next.RawQuery = q.Encode()
			u, method, body, ctype = &next, http.MethodGet, nil, ""
		}
	}
}

// redact drops the query (codes, tokens) from a URL for error messages.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}

// ---- a small HTML form reader (enough for the OP's pages and simple apps)

type field struct {
	name, value, typ string
	checked          bool
}

type form struct {
	attrs      map[string]string
	action     string
	method     string
	fields     []field
	submitters []field
}

// values is what submitting the form with its first submit button sends.
func (f *form) values() url.Values {
	v := url.Values{}
	for _, fl := range f.fields {
		if fl.name == "" {
			continue
		}
		switch fl.typ {
		case "submit", "button", "image", "reset", "file":
			continue
		case "checkbox", "radio":
			if !fl.checked {
				continue
			}
			if fl.value == "" {
				fl.value = "on"
			}
		}
		v.Add(fl.name, fl.value)
	}
	if len(f.submitters) > 0 && f.submitters[0].name != "" {
		v.Add(f.submitters[0].name, f.submitters[0].value)
	}
	return v
}

func (f *form) hasField(name, typ string) bool {
	for _, fl := range f.fields {
		if (name == "" || fl.name == name) && (typ == "" || fl.typ == typ) {
			return true
		}
	}
	return false
}

func (f *form) onlyHidden() bool {
	for _, fl := range f.fields {
		if fl.typ != "hidden" {
			return false
		}
	}
	return true
}

// findSubmittable returns the form the browser should submit on this page,
// and what it is: "login", "consent", "logout" or "auto" (submitted by a
// script). It returns nil for pages a person would have to act on.
func findSubmittable(doc string) (*form, string) {
	forms := parseForms(doc)
	lower := strings.ToLower(doc)
	autoSubmit := strings.Contains(lower, "<script") && strings.Contains(lower, ".submit()")
	for _, f := range forms {
		marker := f.attrs["data-nodeop"]
		switch {
		case marker == "login" || (f.hasField("login", "") && f.hasField("password", "password")):
			return f, "login"
		case marker == "consent" || hasValue(f, "prompt", "consent"):
			return f, "consent"
		case marker == "logout" || f.attrs["id"] == "op.logoutForm":
			return f, "logout"
		}
	}
	if autoSubmit && len(forms) > 0 && forms[0].onlyHidden() {
		return forms[0], "auto"
	}
	return nil, ""
}

func hasValue(f *form, name, value string) bool {
	for _, fl := range f.fields {
		if fl.name == name && fl.value == value {
			return true
		}
	}
	return false
}

// pageError returns the text of the OP's error paragraph, if any.
func pageError(doc string) string {
	for _, tg := range tokenize(doc) {
		if tg.name == "p" && !tg.end {
			if _, ok := tg.attrs["data-nodeop-error"]; ok {
				rest := doc[tg.endPos:]
				if i := strings.Index(rest, "<"); i >= 0 {
					rest = rest[:i]
				}
				return strings.TrimSpace(html.UnescapeString(rest))
			}
		}
	}
	return "(no message)"
}

func attrOfMarked(doc, tagName, marker, attr string) string {
	for _, tg := range tokenize(doc) {
		if tg.name == tagName && !tg.end && tg.attrs["data-nodeop"] == marker {
			return tg.attrs[attr]
		}
	}
	return ""
}

func parseForms(doc string) []*form {
	var forms []*form
	byID := map[string]*form{}
	var cur *form
	type orphan struct {
		owner string
		fl    field
		sub   bool
	}
	var orphans []orphan
	for _, tg := range tokenize(doc) {
		switch tg.name {
		case "form":
			if tg.end {
				cur = nil
				continue
			}
			cur = &form{attrs: tg.attrs, action: tg.attrs["action"], method: tg.attrs["method"]}
			if cur.method == "" {
				cur.method = http.MethodGet
			}
			forms = append(forms, cur)
			if id := tg.attrs["id"]; id != "" {
				byID[id] = cur
			}
		case "input", "button":
			if tg.end {
				continue
			}
			typ := strings.ToLower(tg.attrs["type"])
			if typ == "" {
				typ = "text"
				if tg.name == "button" {
					typ = "submit"
				}
			}
			_, checked := tg.attrs["checked"]
			fl := field{name: tg.attrs["name"], value: tg.attrs["value"], typ: typ, checked: checked}
			sub := typ == "submit" || (tg.name == "input" && typ == "image")
			if owner := tg.attrs["form"]; owner != "" {
				orphans = append(orphans, orphan{owner, fl, sub})
				continue
			}
			if cur == nil {
				continue
			}
			if sub {
				cur.submitters = append(cur.submitters, fl)
			} else if tg.name == "input" {
				cur.fields = append(cur.fields, fl)
			}
		}
	}
	for _, o := range orphans {
		f := byID[o.owner]
		if f == nil {
			continue
		}
		if o.sub {
			f.submitters = append(f.submitters, o.fl)
		} else {
			f.fields = append(f.fields, o.fl)
		}
	}
	return forms
}

type tag struct {
	name   string
	end    bool
	attrs  map[string]string
	endPos int // index just past '>'
}

// tokenize returns the tags of doc, skipping comments and the contents of
// script and style elements. Attribute values are unescaped.
func tokenize(doc string) []tag {
	var tags []tag
	i := 0
	for i < len(doc) {
		lt := strings.IndexByte(doc[i:], '<')
		if lt < 0 {
			break
		}
		i += lt
		if strings.HasPrefix(doc[i:], "<!--") {
			end := strings.Index(doc[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		j := i + 1
		end := false
		if j < len(doc) && doc[j] == '/' {
			end = true
			j++
		}
		k := j
		for k < len(doc) && (isAlnum(doc[k]) || doc[k] == '-') {
			k++
		}
		if k == j {
			i = j
			continue
		}
		name := strings.ToLower(doc[j:k])
		attrs, next := parseAttrs(doc, k)
		tags = append(tags, tag{name: name, end: end, attrs: attrs, endPos: next})
		i = next
		if !end && (name == "script" || name == "style") {
			closeTag := "</" + name
			c := strings.Index(strings.ToLower(doc[i:]), closeTag)
			if c < 0 {
				break
			}
			i += c
		}
	}
	return tags
}

func parseAttrs(doc string, i int) (map[string]string, int) {
	attrs := map[string]string{}
	for i < len(doc) {
		for i < len(doc) && isSpace(doc[i]) {
			i++
		}
		if i >= len(doc) {
			break
		}
		if doc[i] == '>' {
			return attrs, i + 1
		}
		if doc[i] == '/' {
			i++
			continue
		}
		start := i
		for i < len(doc) && !isSpace(doc[i]) && doc[i] != '=' && doc[i] != '>' && doc[i] != '/' {
			i++
		}
		name := strings.ToLower(doc[start:i])
		for i < len(doc) && isSpace(doc[i]) {
			i++
		}
		value := ""
		if i < len(doc) && doc[i] == '=' {
			i++
			for i < len(doc) && isSpace(doc[i]) {
				i++
			}
			if i < len(doc) && (doc[i] == '"' || doc[i] == '\'') {
				q := doc[i]
				e := strings.IndexByte(doc[i+1:], q)
				if e < 0 {
					value, i = doc[i+1:], len(doc)
				} else {
					value, i = doc[i+1:i+1+e], i+1+e+1
				}
			} else {
				s := i
				for i < len(doc) && !isSpace(doc[i]) && doc[i] != '>' {
					i++
				}
				value = doc[s:i]
			}
		}
		if name != "" {
			if _, dup := attrs[name]; !dup {
				attrs[name] = html.UnescapeString(value)
			}
		}
	}
	return attrs, len(doc)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// SignIn runs one login of c in this browser (the authorization request,
// the OP's pages, the redirect to c's callback at callbackPath, the code
// exchange) and returns the tokens; it fails the test on any error.
func (b *Browser) SignIn(t testing.TB, c *rp.Client, callbackPath string) *rp.Tokens {
	t.Helper()
	ctx := context.Background()
	tx := pkce.NewTransaction(c.Issuer(), "/")
	authURL, err := c.AuthCodeURL(ctx, tx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb, _, err := b.Navigate(authURL, func(u *url.URL) bool { return u.Path == callbackPath })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rp.ParseAuthResponse(cb.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := c.Exchange(ctx, tx, resp)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tokens
}
