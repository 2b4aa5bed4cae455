package rp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// redeem sends a token request (the code exchange of RFC 6749 §4.1.3, the
// refresh of §6) with the client's authentication, and parses the answer
// (§5.1, §5.2) the way x/oauth2 does: an OAuth error answer is an
// *oauth2.RetrieveError, a failure to reach the OP or an unusable success
// answer another error (tokenError sorts them). A refresh answer without
// refresh_token keeps the one that was sent.
func (c *Client) redeem(ctx context.Context, form url.Values) (*oauth2.Token, error) {
	return c.redeemWith(ctx, c.p.http, form)
}

// redeemWith is redeem with the HTTP client hc (Refresh's traces the
// request and obeys ctx's deadline).
func (c *Client) redeemWith(ctx context.Context, hc *http.Client, form url.Values) (*oauth2.Token, error) {
	if err := c.senderConstrained(ctx); err != nil {
		return nil, err
	}
	resp, body, err := c.auth.send(ctx, hc, c.p.meta.TokenEndpoint, nil, form)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		re := &oauth2.RetrieveError{Response: resp, Body: body}
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			ErrorURI         string `json:"error_uri"`
		}
		if json.Unmarshal(body, &e) == nil {
			re.ErrorCode, re.ErrorDescription, re.ErrorURI = e.Error, e.ErrorDescription, e.ErrorURI
		}
		return nil, re
	}
	tok, err := parseTokenResponse(body, c.p.now())
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			re.Response = resp
		}
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = form.Get("refresh_token")
	}
	return tok, nil
}

// parseTokenResponse parses a 2xx token endpoint answer. Missing or
// ill-typed members are left for tokens() to judge, except access_token,
// which RFC 6749 §5.1 requires and nothing can stand in for.
func parseTokenResponse(body []byte, now time.Time) (*oauth2.Token, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New("the token endpoint's answer is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("the token endpoint's answer has data after the JSON object")
	}
	if code, _ := raw["error"].(string); code != "" {
		desc, _ := raw["error_description"].(string)
		uri, _ := raw["error_uri"].(string)
		return nil, &oauth2.RetrieveError{Body: body, ErrorCode: code, ErrorDescription: desc, ErrorURI: uri}
	}
	str := func(name string) (string, error) {
		switch v := raw[name].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		}
		return "", fmt.Errorf("the token endpoint's %s is not a string", name)
	}
	t := &oauth2.Token{}
	var err error
	if t.AccessToken, err = str("access_token"); err != nil {
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, errors.New("the token endpoint's answer has no access_token")
	}
	if t.TokenType, err = str("token_type"); err != nil {
		return nil, err
	}
	if t.RefreshToken, err = str("refresh_token"); err != nil {
		return nil, err
	}
	var secs int64
	switch v := raw["expires_in"].(type) {
	case nil:
	case json.Number:
		secs, err = strconv.ParseInt(string(v), 10, 64)
	case string: // some OPs quote it
		secs, err = strconv.ParseInt(v, 10, 64)
	default:
		err = errors.New("not a number")
	}
	if err != nil || secs < 0 || secs > 1<<31 {
		return nil, fmt.Errorf("the token endpoint's expires_in %v is not a number of seconds", raw["expires_in"])
	}
	if secs > 0 {
		t.ExpiresIn = secs
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	}
	return t.WithExtra(raw), nil
}
