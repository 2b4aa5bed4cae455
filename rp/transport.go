package rp

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Limits on every call this package makes to the OP.
const (
	// defaultTimeout bounds each outbound request when
	// ProviderOptions.HTTPClient has no timeout of its own.
	defaultTimeout = 10 * time.Second
	// maxResponseBytes caps every response body read from the OP
	// (discovery, JWKS, token, userinfo, revocation, introspection).
	maxResponseBytes = 1 << 20
)

// errTooLarge is returned by reads past maxResponseBytes.
var errTooLarge = errors.New("rp: OP response larger than the size cap")

// httpClient returns a client that caps response bodies and has a timeout,
// built on base (nil: http.DefaultTransport). base itself is not modified.
func httpClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: defaultTimeout}
	if base != nil {
		*c = *base
		if c.Timeout == 0 {
			c.Timeout = defaultTimeout
		}
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = capTransport{rt}
	// The OP's answers are read, never followed: a redirect from a token
	// or JWKS endpoint is an error, not a hop.
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

type capTransport struct{ rt http.RoundTripper }

func (t capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &capReader{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

// capReader fails, instead of silently truncating, when the body is larger
// than the cap: a truncated JSON document must never parse as something else.
type capReader struct {
	rc   io.ReadCloser
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Probe for one more byte: exactly the cap is fine.
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capReader) Close() error { return c.rc.Close() }
