package dpop

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Transport is an http.RoundTripper for requests to resource servers with
// a DPoP-bound access token (RFC 9449 §7): it sets "Authorization: DPoP
// <token>" and a DPoP header with a fresh proof (htm, htu, ath, and the
// server's latest nonce) on every request, and when the server answers 401
// use_dpop_nonce with a DPoP-Nonce, sends the request once more with a
// proof carrying it. Nonces are kept per origin. A redirect to another
// origin than the first request's is followed without the token or a
// proof. It is safe for concurrent use.
//
//	client := &http.Client{Transport: &dpop.Transport{Signer: key, AccessToken: func(*http.Request) (string, error) { return tokens.AccessToken, nil }}}
type Transport struct {
	// Signer is the key the access token is bound to. Required.
	Signer *Signer
	// AccessToken returns the token for a request (a refreshed one when it
	// expired). Required.
	AccessToken func(r *http.Request) (string, error)
	// Base sends the requests. Nil: http.DefaultTransport.
	Base http.RoundTripper
	// Nonces, when set, keeps the servers' nonces for this Transport and
	// every other given the same Nonces, so that a short-lived Transport
	// (one per user session and request, as a web app's Session.Client
	// makes) starts with the nonces the others learnt instead of paying a
	// use_dpop_nonce round trip. A server's nonce is the server's, not the
	// key's: sharing it between keys is safe. Nil: the Transport keeps its
	// own.
	Nonces *Nonces

	own Nonces
}

// Nonces holds the latest DPoP-Nonce of each server origin, for
// Transports to share (Transport.Nonces). The zero value is ready to use;
// it is safe for concurrent use.
type Nonces struct {
	m sync.Map // origin -> the server's latest DPoP-Nonce
}

func (t *Transport) nonces() *Nonces {
	if t.Nonces != nil {
		return t.Nonces
	}
	return &t.own
}

// RoundTrip implements http.RoundTripper. It does not modify r.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.Signer == nil || t.AccessToken == nil {
		return nil, errors.New("dpop: Transport needs a Signer and an AccessToken function")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	origin := originOf(r.URL)
	if first := firstRequest(r); first != r && originOf(first.URL) != origin {
		// A redirect to another origin: no token, no proof (as net/http
		// drops the first request's Authorization header there).
		return base.RoundTrip(r)
	}
	token, err := t.AccessToken(r)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		req, err := t.prepare(r, token, origin, attempt)
		if err != nil {
			return nil, err
		}
		resp, err := base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		nonce := resp.Header.Get("DPoP-Nonce")
		if nonce != "" {
			t.nonces().m.Store(origin, nonce)
		}
		if attempt > 0 || nonce == "" || resp.StatusCode != http.StatusUnauthorized || !asksForNonce(resp.Header) ||
			(r.Body != nil && r.GetBody == nil) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

func originOf(u *url.URL) string { return u.Scheme + "://" + strings.ToLower(u.Host) }

// firstRequest follows a redirected request (http.Client sets Response to
// the answer that redirected it) back to the one the caller sent.
func firstRequest(r *http.Request) *http.Request {
	for r.Response != nil && r.Response.Request != nil {
		r = r.Response.Request
	}
	return r
}

// prepare clones r with the token and a new proof (and, for a retry, a
// fresh body).
func (t *Transport) prepare(r *http.Request, token, origin string, attempt int) (*http.Request, error) {
	req := r.Clone(r.Context())
	if attempt > 0 && r.Body != nil {
		body, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		req.Body = body
	}
	var nonce string
	if n, ok := t.nonces().m.Load(origin); ok {
		nonce = n.(string)
	}
	u := url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	proof, err := t.Signer.Proof(r.Method, u.String(), token, nonce)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	return req, nil
}

// asksForNonce reports whether a WWW-Authenticate challenge of the answer
// is DPoP's use_dpop_nonce (RFC 9449 §9).
func asksForNonce(h http.Header) bool {
	for _, c := range h.Values("WWW-Authenticate") {
		if strings.Contains(c, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}
