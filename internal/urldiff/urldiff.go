// Package urldiff says how two URLs that must be identical differ: the
// issuer a developer configured and the one the OP names, the redirect URL
// an app sends and the one registered at the OP. rp's errors and `multiapp
// doctor` explain every such mismatch with it.
package urldiff

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/multiapp-go/multiapp/internal/loopback"
)

// Explain says how two URLs that must be identical differ, in
// the terms of the classic misconfigurations: a trailing slash, http vs
// https, the port, localhost vs 127.0.0.1, another host (another OP
// environment?), the path, the query, letter case. It returns "" when they
// are identical.
//
// OPs compare issuers and redirect URIs as exact strings, so every
// difference it names is one the OP refuses. want is what is configured or
// registered, got what was found or sent.
func Explain(want, got string) string {
	if want == got {
		return ""
	}
	if strings.EqualFold(want, got) {
		return "only letter case differs"
	}
	if strings.TrimSuffix(want, "/") == strings.TrimSuffix(got, "/") {
		if strings.HasSuffix(want, "/") {
			return fmt.Sprintf("only a trailing slash differs (%q ends with one, %q does not)", want, got)
		}
		return fmt.Sprintf("only a trailing slash differs (%q ends with one, %q does not)", got, want)
	}
	w, err1 := url.Parse(want)
	g, err2 := url.Parse(got)
	if err1 != nil || err2 != nil || w.Host == "" || g.Host == "" {
		return fmt.Sprintf("%q and %q differ", want, got)
	}
	var diffs []string
	if !strings.EqualFold(w.Scheme, g.Scheme) {
		diffs = append(diffs, fmt.Sprintf("the scheme differs (%s vs %s)", w.Scheme, g.Scheme))
	}
	wh, gh := strings.ToLower(w.Hostname()), strings.ToLower(g.Hostname())
	switch {
	case wh == gh:
	case loopback.Host(wh) && loopback.Host(gh):
		diffs = append(diffs, fmt.Sprintf("the host differs (%s vs %s: the same machine, but different names to the OP and to browsers)", wh, gh))
	default:
		diffs = append(diffs, fmt.Sprintf("the host differs (%s vs %s: another environment, tenant or domain?)", wh, gh))
	}
	wp, gp := w.Port(), g.Port()
	switch {
	case wp == gp:
	case effectivePort(w) == effectivePort(g):
		diffs = append(diffs, fmt.Sprintf("one names the default port explicitly (%q vs %q)", w.Host, g.Host))
	default:
		diffs = append(diffs, fmt.Sprintf("the port differs (%s vs %s)", portOrDefault(w), portOrDefault(g)))
	}
	wpath, gpath := w.EscapedPath(), g.EscapedPath()
	switch {
	case wpath == gpath:
	case strings.TrimSuffix(wpath, "/") == strings.TrimSuffix(gpath, "/"):
		diffs = append(diffs, fmt.Sprintf("the trailing slash of the path differs (%q vs %q)", orSlash(wpath), orSlash(gpath)))
	case strings.EqualFold(wpath, gpath):
		diffs = append(diffs, fmt.Sprintf("the letter case of the path differs (%q vs %q)", wpath, gpath))
	default:
		diffs = append(diffs, fmt.Sprintf("the path differs (%q vs %q)", orSlash(wpath), orSlash(gpath)))
	}
	if w.RawQuery != g.RawQuery {
		diffs = append(diffs, fmt.Sprintf("the query differs (%q vs %q)", w.RawQuery, g.RawQuery))
	}
	if len(diffs) == 0 {
		return fmt.Sprintf("%q and %q differ", want, got)
	}
	return strings.Join(diffs, "; ")
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

func portOrDefault(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if p := effectivePort(u); p != "" {
		return "none, i.e. " + p
	}
	return "none"
}

func orSlash(p string) string {
	if p == "" {
		return "(empty)"
	}
	return p
}
