package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/internal/urldiff"
)

// AppsFile is the format of the file that lists several apps to check
// together (multiapp doctor --apps FILE):
//
//	{
//	  "issuer": "https://yourenv.scalekit.com",
//	  "apps": [
//	    {"name": "dashboard", "client_id": "webc_1", "client_secret_env": "DASHBOARD_SECRET",
//	     "auth_method": "client_secret_post",
//	     "redirect_url": "https://dashboard.example.com/auth/callback",
//	     "post_logout_redirect_url": "https://dashboard.example.com/",
//	     "backchannel": true},
//	    {"name": "spa", "client_id": "spac_2", "redirect_url": "https://spa.example.com/callback"}
//	  ]
//	}
//
// The top-level issuer is the default of every app (and MULTIAPP_ISSUER
// the default of the file). Secrets never go in the file: client_secret_env
// names the environment variable that holds one.
type AppsFile struct {
	Issuer string     `json:"issuer,omitempty"`
	Apps   []AppEntry `json:"apps"`
}

// AppEntry is one app of an AppsFile.
type AppEntry struct {
	Name            string `json:"name,omitempty"`
	Issuer          string `json:"issuer,omitempty"`
	ClientID        string `json:"client_id"`
	ClientSecretEnv string `json:"client_secret_env,omitempty"`
	// ClientKeyEnv names the environment variable holding the private key
	// of a private_key_jwt client (PEM, JWK, or a file path).
	ClientKeyEnv string `json:"client_key_env,omitempty"`
	// AuthMethod is the token endpoint auth method the app uses
	// (MULTIAPP_AUTH_METHOD); empty: the library's default.
	AuthMethod            string `json:"auth_method,omitempty"`
	RedirectURL           string `json:"redirect_url,omitempty"`
	PostLogoutRedirectURL string `json:"post_logout_redirect_url,omitempty"`
	// BackchannelURL, when set, is checked; Backchannel checks the default
	// <redirect URL origin>/auth/backchannel-logout.
	BackchannelURL string   `json:"backchannel_url,omitempty"`
	Backchannel    bool     `json:"backchannel,omitempty"`
	Addr           string   `json:"addr,omitempty"`
	Scopes         []string `json:"scopes,omitempty"`
}

// LoadApps reads an AppsFile. getenv reads the secrets the file names;
// defaultIssuer applies to apps without one (after the file's own).
func LoadApps(r io.Reader, getenv func(string) string, defaultIssuer string) ([]App, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBody))
	if err != nil {
		return nil, err
	}
	var f AppsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var list []AppEntry // a bare array of apps is accepted too
		ldec := json.NewDecoder(bytes.NewReader(data))
		ldec.DisallowUnknownFields()
		if lerr := ldec.Decode(&list); lerr != nil || len(list) == 0 {
			return nil, appsFileError(err)
		}
		f = AppsFile{Apps: list}
	}
	if len(f.Apps) == 0 {
		return nil, errors.New(`the apps file lists no apps (expected {"issuer": ..., "apps": [{"name": ..., "client_id": ..., "redirect_url": ...}]})`)
	}
	if f.Issuer == "" {
		f.Issuer = defaultIssuer
	}
	var apps []App
	names := map[string]bool{}
	for i, e := range f.Apps {
		if e.ClientID == "" {
			return nil, fmt.Errorf("app %d (%q) has no client_id", i+1, e.Name)
		}
		a := App{
			Name: e.Name, Issuer: e.Issuer, ClientID: e.ClientID, SecretEnv: e.ClientSecretEnv, AuthMethod: e.AuthMethod,
			RedirectURL: e.RedirectURL, PostLogoutRedirectURL: e.PostLogoutRedirectURL,
			BackchannelURL: e.BackchannelURL, CheckBackchannel: e.Backchannel, Addr: e.Addr, Scopes: e.Scopes,
		}
		if a.Name == "" {
			a.Name = a.ClientID
		}
		if a.AuthMethod != "" {
			a.AuthMethodFrom = `"auth_method" in the apps file`
		}
		if names[a.Name] {
			return nil, fmt.Errorf("two apps are named %q: give each a distinct name", a.Name)
		}
		names[a.Name] = true
		if a.Issuer == "" {
			a.Issuer = f.Issuer
		}
		if e.ClientSecretEnv != "" && getenv != nil {
			a.ClientSecret = getenv(e.ClientSecretEnv)
		}
		if e.ClientKeyEnv != "" && getenv != nil {
			a.ClientKey = getenv(e.ClientKeyEnv)
			if a.ClientKey == "" {
				return nil, fmt.Errorf("app %q: $%s, named by client_key_env, is empty", a.Name, e.ClientKeyEnv)
			}
		}
		apps = append(apps, a)
	}
	return apps, nil
}

func appsFileError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, `"client_secret"`):
		return errors.New(`the apps file has a "client_secret": keep secrets out of files, put it in an environment variable and name that variable in "client_secret_env"`)
	case strings.Contains(msg, "unknown field"):
		return fmt.Errorf("the apps file: %v (app fields: name, issuer, client_id, client_secret_env, client_key_env, auth_method, redirect_url, post_logout_redirect_url, backchannel_url, backchannel, addr, scopes)", err)
	}
	return fmt.Errorf("the apps file is not valid JSON: %v", err)
}

// acrossApps checks what several apps must share to share a sign-in: one
// issuer; and what they must not share: a client id, cookie names.
func acrossApps(runs []*appRun) []Check {
	var out []Check
	add := func(name string, s Status, msg, fix string) {
		out = append(out, Check{Name: name, Status: s, Message: msg, Fix: fix})
	}

	// One issuer, as configured (what the apps send and compare) and as
	// the OPs name themselves.
	byIssuer := map[string][]string{}
	var order []string
	for _, r := range runs {
		if r.app.Issuer == "" {
			continue
		}
		if _, ok := byIssuer[r.app.Issuer]; !ok {
			order = append(order, r.app.Issuer)
		}
		byIssuer[r.app.Issuer] = append(byIssuer[r.app.Issuer], r.app.Name)
	}
	switch len(order) {
	case 0:
	case 1:
		add("shared_issuer", OK, fmt.Sprintf("all %d apps use issuer %s: one OP session signs users in to all of them", len(runs), order[0]), "")
	default:
		var groups []string
		for _, iss := range order {
			groups = append(groups, fmt.Sprintf("%s (%s)", iss, strings.Join(byIssuer[iss], ", ")))
		}
		msg := fmt.Sprintf("the apps use %d issuers: %s; apps at different issuers (OP environments) cannot share a sign-in session, so users sign in again on each", len(order), strings.Join(groups, "; "))
		if len(order) == 2 {
			msg += " (" + urldiff.Explain(order[0], order[1]) + ")"
		}
		best := order[0]
		for _, iss := range order {
			if len(byIssuer[iss]) > len(byIssuer[best]) {
				best = iss
			}
		}
		for _, r := range runs {
			if r.meta != nil && r.meta.Issuer != "" && r.app.Issuer == best {
				best = r.meta.Issuer
				break
			}
		}
		add("shared_issuer", Fail, msg, fmt.Sprintf("register every app in one OP environment and configure all of them with exactly the same issuer (e.g. %q)", best))
	}

	// Distinct client ids.
	byClient := map[string][]string{}
	var dups []string
	for _, r := range runs {
		byClient[r.app.ClientID] = append(byClient[r.app.ClientID], r.app.Name)
		if len(byClient[r.app.ClientID]) == 2 {
			dups = append(dups, r.app.ClientID)
		}
	}
	if len(dups) > 0 {
		var parts []string
		for _, id := range dups {
			parts = append(parts, fmt.Sprintf("%s (%s)", id, strings.Join(byClient[id], ", ")))
		}
		add("client_ids", Warn, fmt.Sprintf("several apps share a client id: %s; the OP sees them as one app (one set of redirect URIs, one back-channel URL), and on one host their cookies collide", strings.Join(parts, "; ")),
			"register each app as its own client at the OP")
	} else {
		add("client_ids", OK, fmt.Sprintf("each of the %d apps has its own client id", len(runs)), "")
	}

	// Cookies are per host, not per port.
	byHost := map[string][]string{}
	var hosts []string
	for _, r := range runs {
		u, err := url.Parse(r.app.RedirectURL)
		if err != nil || u.Host == "" {
			continue
		}
		h := strings.ToLower(u.Hostname())
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], fmt.Sprintf("%s on %s", r.app.Name, u.Host))
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		if len(byHost[h]) < 2 {
			continue
		}
		add("cookies", OK, fmt.Sprintf("%s share the cookies of host %s (browsers ignore the port): multiapp names each app's cookies after its client id, so they do not overwrite each other; keep any custom cookie names distinct too", strings.Join(byHost[h], ", "), h), "")
	}
	return out
}
