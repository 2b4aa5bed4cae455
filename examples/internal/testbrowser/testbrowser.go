// Package testbrowser is a scripted browser for tests against the
// development OP: an HTTP client with a cookie jar that follows redirects
// and fills in devop's login form when it is shown.
package testbrowser

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/pkce"
	"github.com/multiapp-go/multiapp/rp"
)

// Browser signs in as one user.
type Browser struct {
	Client   *http.Client
	Email    string
	Password string
	// LoginForms counts the login forms it was shown (and filled in).
	LoginForms int
}

// New returns a browser with an empty cookie jar.
func New(email, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Client: &http.Client{Jar: jar, Timeout: 10 * time.Second}, Email: email, Password: password}
}

var (
	authRequestID = regexp.MustCompile(`name="authRequestID" value="([^"]*)"`)
	formAction    = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// Page is where the browser ended.
type Page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// Get loads raw like a browser navigation: it follows redirects and, when
// it lands on the OP's login form, signs in and goes on.
func (b *Browser) Get(raw string) (*Page, error) {
	return b.Do(http.MethodGet, raw, nil, nil)
}

// Do sends a request like Get, with a form body when form is not nil and
// the given extra headers.
func (b *Browser) Do(method, raw string, form url.Values, header http.Header) (*Page, error) {
	for range 5 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, raw, body)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.Client.Do(req)
		if err != nil {
			return nil, err
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		p := &Page{URL: resp.Request.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
		m := authRequestID.FindStringSubmatch(p.Body)
		a := formAction.FindStringSubmatch(p.Body)
		if m == nil || a == nil || !strings.Contains(p.Body, `name="password"`) {
			return p, nil
		}
		if b.LoginForms > 0 && p.Status == http.StatusUnauthorized {
			return p, fmt.Errorf("testbrowser: the OP refused %s's password", b.Email)
		}
		b.LoginForms++
		action, err := p.URL.Parse(html.UnescapeString(a[1]))
		if err != nil {
			return nil, err
		}
		method, raw, header = http.MethodPost, action.String(), nil
		form = url.Values{"authRequestID": {html.UnescapeString(m[1])}, "username": {b.Email}, "password": {b.Password}}
	}
	return nil, fmt.Errorf("testbrowser: login form shown again and again")
}

// JSON sends a GET as a script would (Accept: application/json), without
// following redirects.
func (b *Browser) JSON(raw string) (status int, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", "application/json")
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data), nil
}

// NativeLogin signs in as a native public client (registered with the
// loopback redirect URI http://127.0.0.1/callback, any port) the way the
// CLI does, with b as the browser, and returns the validated tokens.
func (b *Browser) NativeLogin(ctx context.Context, issuer, clientID string) (*rp.Tokens, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	got := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.RawQuery:
		default:
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	provider, err := rp.Discover(ctx, issuer, nil)
	if err != nil {
		return nil, err
	}
	client, err := provider.Client(rp.Config{ClientID: clientID, RedirectURL: "http://" + ln.Addr().String() + "/callback"})
	if err != nil {
		return nil, err
	}
	tx := pkce.NewTransaction(issuer, "/")
	authURL, err := client.AuthCodeURL(ctx, tx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := b.Get(authURL); err != nil {
		return nil, err
	}
	var query string
	select {
	case query = <-got:
	default:
		return nil, fmt.Errorf("testbrowser: the OP did not redirect to the client")
	}
	resp, err := rp.ParseAuthResponse(query)
	if err != nil {
		return nil, err
	}
	return client.Exchange(ctx, tx, resp)
}
