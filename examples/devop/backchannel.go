package devop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// BackChannelLogoutEvent is the member of the logout token's `events` claim
// (OpenID Connect Back-Channel Logout 1.0, section 2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenType is the "typ" header of logout tokens (section 2.4 of the
// specification recommends explicit typing).
const LogoutTokenType = "logout+jwt"

// logoutToken builds and signs the logout token for one client of a session.
func (o *OP) logoutToken(clientID string, s *session) (jti, token string, err error) {
	now := time.Now()
	jti = newID(logoutTokenIDPrefix)
	claims := map[string]any{
		"iss":    o.issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(LogoutTokenLifetime).Unix(),
		"jti":    jti,
		"sub":    s.userID,
		"sid":    s.id,
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
	}
	token, err = o.key.sign(claims, LogoutTokenType)
	return jti, token, err
}

// sendBackChannelLogouts POSTs a logout token to every participant of s that
// registered a back-channel logout URI, all at once, and waits for every
// answer or timeout. Failures are recorded, never returned: a logout always
// completes at the OP.
func (o *OP) sendBackChannelLogouts(ctx context.Context, s *session) []Delivery {
	var targets []*Client
	for _, id := range s.clients {
		if c := o.clients[id]; c != nil && c.BackChannelLogoutURI != "" {
			targets = append(targets, c)
		}
	}
	out := make([]Delivery, len(targets))
	var wg sync.WaitGroup
	// The browser's request may be cancelled while we wait; the POSTs still go.
	ctx = context.WithoutCancel(ctx)
	for i, c := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = o.deliver(ctx, c, s)
		}()
	}
	wg.Wait()
	for i := range out {
		d := out[i]
		if d.Err != nil {
			o.cfg.Logger.Warn("back-channel logout failed", "client_id", d.ClientID, "sid", d.SessionID, "uri", d.URI, "status", d.StatusCode, "error", d.Err, "duration", d.Duration)
		} else {
			o.cfg.Logger.Info("back-channel logout delivered", "client_id", d.ClientID, "sid", d.SessionID, "uri", d.URI, "status", d.StatusCode, "duration", d.Duration)
		}
		o.emit(Event{Kind: EventBackChannelLogout, ClientID: d.ClientID, UserID: d.UserID, SessionID: d.SessionID, Delivery: &d})
	}
	return out
}

func (o *OP) deliver(ctx context.Context, c *Client, s *session) (d Delivery) {
	d = Delivery{ClientID: c.ID, SessionID: s.id, UserID: s.userID, URI: c.BackChannelLogoutURI, Start: time.Now()}
	defer func() { d.Duration = time.Since(d.Start) }()
	jti, token, err := o.logoutToken(c.ID, s)
	if err != nil {
		d.Err = err
		return d
	}
	d.JTI = jti
	ctx, cancel := context.WithTimeout(ctx, o.cfg.BackChannelTimeout)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackChannelLogoutURI, strings.NewReader(body))
	if err != nil {
		d.Err = err
		return d
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	resp, err := o.httpClient.Do(req)
	if err != nil {
		// The URL error would repeat the request body's URL only; no token.
		d.Err = err
		return d
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	d.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		d.Err = fmt.Errorf("back-channel logout endpoint answered %s", resp.Status)
	}
	return d
}
