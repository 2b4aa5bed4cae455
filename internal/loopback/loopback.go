// Package loopback is multiapp's one rule for "this address stays on this
// machine", used wherever plain http is tolerated (the issuer, redirect and
// post-logout URLs, client secrets over http) and wherever cookies may go
// without Secure and the __Host- prefix.
//
// Loopback means the name localhost and IP literals of the loopback ranges
// (127.0.0.0/8, ::1, and their IPv4-mapped forms), nothing else: a DNS
// name that merely starts with "127." (127.example.com) can point anywhere,
// and so can a name under .localhost, whatever resolver a given machine
// happens to run.
package loopback

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Host reports whether host, as in a URL's Host (with or without a port,
// an IPv6 literal with or without brackets), is a loopback address.
func Host(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// PlainHTTP reports whether raw is a plain-http URL to a loopback host:
// local development, where browsers send no Secure cookie and no TLS is
// needed because nothing leaves the machine.
func PlainHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "http" && Host(u.Host)
}
