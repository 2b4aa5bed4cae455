package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/rp"
)

// Kind is a kind of token, as rp.ValidationError.What names it.
type Kind string

// Token kinds DecodeToken knows.
const (
	KindID     Kind = "id_token"
	KindAccess Kind = "access_token"
	KindLogout Kind = "logout_token"
)

// ParseKind accepts "id", "access", "logout" (or the full names); "" and
// "auto" mean detect.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return "", nil
	case "id", "id_token":
		return KindID, nil
	case "access", "access_token", "at":
		return KindAccess, nil
	case "logout", "logout_token":
		return KindLogout, nil
	}
	return "", fmt.Errorf("unknown token kind %q: use id, access, logout or auto", s)
}

// Verifier validates a token of one kind the way the library does for an
// app, minus what needs the login or a store (the nonce, jti replay).
type Verifier func(ctx context.Context, c *rp.Client, raw, audience string) (*rp.Claims, error)

// verifiers are the library's rules per kind. The access-token entry is
// rp's kind-independent core (signature, iss, aud against the API's
// audience, times) until rp has a dedicated access-token verifier (RFC 9068
// typ, scopes): plug it in here, nothing else changes.
var verifiers = map[Kind]Verifier{
	KindID: func(ctx context.Context, c *rp.Client, raw, _ string) (*rp.Claims, error) {
		return c.InspectIDToken(ctx, raw)
	},
	KindLogout: func(ctx context.Context, c *rp.Client, raw, _ string) (*rp.Claims, error) {
		lt, err := c.VerifyLogoutToken(ctx, raw)
		if err != nil {
			return nil, err
		}
		return &lt.Claims, nil
	},
	KindAccess: func(ctx context.Context, c *rp.Client, raw, audience string) (*rp.Claims, error) {
		return c.InspectJWT(ctx, raw, audience)
	},
}

// TokenOptions say what a token is checked against.
type TokenOptions struct {
	Options
	// Issuer, ClientID and Audience are the app's MULTIAPP_ISSUER,
	// MULTIAPP_CLIENT_ID and (for an API) MULTIAPP_AUDIENCE.
	Issuer   string
	ClientID string
	Audience string
	// Kind forces the kind; empty: detected from the token.
	Kind Kind
	// Offline decodes only: the OP is not contacted (no discovery, no JWKS).
	Offline bool
}

// TimeClaim is a date claim, shown in UTC and relative to this machine's
// clock.
type TimeClaim struct {
	Name     string    `json:"name"`
	Time     time.Time `json:"time"`
	Relative string    `json:"relative"`
}

// TokenReport is what DecodeToken found. It never holds the token or its
// signature.
type TokenReport struct {
	Header *rp.TokenHeader `json:"header,omitempty"`
	Claims json.RawMessage `json:"claims,omitempty"`
	Times  []TimeClaim     `json:"times,omitempty"`
	Kind   Kind            `json:"kind,omitempty"`
	Checks []Check         `json:"checks"`
}

func (t *TokenReport) add(name string, s Status, msg, fix string) {
	t.Checks = append(t.Checks, Check{Name: name, Status: s, Message: msg, Fix: fix})
}

// Failed reports whether any check failed.
func (t *TokenReport) Failed() bool { return (&Report{Checks: t.Checks}).Failed() }

// DecodeToken shows a token's header and claims and says what the library's
// validation would say about it for the configured issuer, client and
// audience. The token is never sent anywhere: only the OP's discovery
// document and JWKS are fetched (not even those when Offline).
func DecodeToken(ctx context.Context, raw string, opts TokenOptions) *TokenReport {
	d := newDoctor(opts.Options)
	t := &TokenReport{}
	raw = strings.TrimSpace(raw)
	if f := strings.Fields(raw); len(f) == 2 && strings.EqualFold(f[0], "bearer") {
		raw = f[1]
	}
	h, cl, err := rp.DecodeUnverified(raw)
	if err != nil {
		st := Fail
		if msg := err.Error(); strings.Contains(msg, "opaque") || strings.Contains(msg, "encrypted") {
			st = Warn
		}
		t.add("decode", st, err.Error(), "pass the token itself (a JWT has three base64url parts separated by dots)")
		return t
	}
	t.Header = &h
	var pretty bytes.Buffer
	if json.Indent(&pretty, cl.Raw, "", "  ") == nil {
		t.Claims = pretty.Bytes()
	} else {
		t.Claims = cl.Raw
	}
	now := d.now()
	for _, tc := range []struct {
		name string
		v    rp.NumericDate
	}{{"iat", cl.IssuedAt}, {"nbf", cl.NotBefore}, {"exp", cl.Expiry}, {"auth_time", cl.AuthTime}} {
		if tc.v != 0 {
			t.Times = append(t.Times, TimeClaim{Name: tc.name, Time: tc.v.Time().UTC(), Relative: relative(tc.v.Time(), now)})
		}
	}
	t.add("decode", OK, fmt.Sprintf("a JWS: alg %s, kid %q, typ %q (decoded, not yet verified)", h.Alg, h.Kid, h.Typ), "")

	kind, why := opts.Kind, "as requested"
	if kind == "" {
		kind, why = detectKind(h, cl, opts.ClientID, opts.Audience)
	}
	t.Kind = kind
	t.add("kind", OK, fmt.Sprintf("%s (%s)", kindName(kind), why), "")

	switch {
	case opts.Offline:
		t.add("verify", Skip, "offline: signature, issuer and audience not checked", "")
		return t
	case opts.Issuer == "":
		fix := "set MULTIAPP_ISSUER (or --issuer) to the app's issuer"
		if cl.Issuer != "" {
			fix += fmt.Sprintf("; the token says it comes from %q", cl.Issuer)
		}
		t.add("verify", Skip, "no issuer configured: signature, issuer and audience not checked", fix)
		return t
	}
	audience := opts.Audience
	switch {
	case kind == KindAccess && audience == "" && opts.ClientID == "":
		t.add("verify", Skip, "no audience configured for an access token", "set MULTIAPP_AUDIENCE (or --audience) to the API's audience")
		return t
	case kind == KindAccess && audience == "":
		audience = opts.ClientID
	case kind != KindAccess && opts.ClientID == "":
		t.add("verify", Skip, fmt.Sprintf("no client id configured: an %s is checked against the app it was issued to", kindName(kind)), "set MULTIAPP_CLIENT_ID (or --client-id)")
		return t
	}
	clientID := opts.ClientID
	if clientID == "" {
		clientID = "multiapp-doctor" // an API: only the audience matters
	}
	p, err := rp.Discover(ctx, opts.Issuer, &rp.ProviderOptions{
		ClockSkew:               opts.ClockSkew,
		HTTPClient:              d.http,
		Now:                     d.now,
		InsecureAllowHTTPIssuer: opts.InsecureAllowHTTPIssuer,
	})
	var c *rp.Client
	if err == nil {
		c, err = p.Client(rp.Config{
			ClientID: clientID,
			// Decoding never calls the token endpoint: a placeholder secret
			// keeps the OP's accepted auth methods out of the way.
			ClientSecret: "unused-by-token-decode",
		})
	}
	if err != nil {
		t.add("verify", Fail, fmt.Sprintf("cannot check the token: %v", err), "run `multiapp doctor` to diagnose the issuer")
		return t
	}
	verify, ok := verifiers[kind]
	if !ok {
		t.add("verify", Skip, fmt.Sprintf("no verifier for %s", kind), "")
		return t
	}
	if _, err := verify(ctx, c, raw, audience); err != nil {
		t.add("verify", Fail, err.Error(), tokenFix(err, kind, opts))
		return t
	}
	against := fmt.Sprintf("client %s", clientID)
	if kind == KindAccess {
		against = fmt.Sprintf("audience %s", audience)
	}
	note := ""
	switch kind {
	case KindID:
		note = "; the nonce belongs to the login and is not checked here"
	case KindLogout:
		note = "; jti replay is the receiver's check"
	case KindAccess:
		note = "; signature, iss, aud and times checked (typ and scopes are the API's policy)"
	}
	t.add("verify", OK, fmt.Sprintf("the library accepts this %s for %s at %s%s", kindName(kind), against, c.Issuer(), note), "")
	return t
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// detectKind guesses the kind from the header and claims.
func detectKind(h rp.TokenHeader, cl *rp.Claims, clientID, audience string) (Kind, string) {
	typ := strings.ToLower(h.Typ)
	var extra struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	_ = cl.Decode(&extra)
	_, hasEvent := extra.Events[backchannelEvent]
	switch {
	case strings.HasSuffix(typ, "at+jwt"):
		return KindAccess, "typ " + h.Typ
	case strings.HasSuffix(typ, "logout+jwt"):
		return KindLogout, "typ " + h.Typ
	case hasEvent:
		return KindLogout, "it carries the back-channel logout event"
	case cl.Nonce != "":
		return KindID, "it carries a nonce"
	case audience != "" && slices.Contains(cl.Audience, audience):
		return KindAccess, "its aud is the API audience " + audience
	case cl.AccessTokenHash != "":
		return KindID, "it carries at_hash"
	case len(cl.Scopes) > 0:
		return KindAccess, "it carries scopes"
	case clientID != "" && slices.Contains(cl.Audience, clientID):
		return KindID, "its aud is the client id " + clientID
	}
	return KindID, "nothing says otherwise; use --kind to choose"
}

func kindName(k Kind) string {
	switch k {
	case KindID:
		return "ID token"
	case KindAccess:
		return "access token"
	case KindLogout:
		return "logout token"
	}
	return string(k)
}

// tokenFix names the likely misconfiguration behind a validation failure.
func tokenFix(err error, kind Kind, opts TokenOptions) string {
	var ve *rp.ValidationError
	if !errors.As(err, &ve) {
		return ""
	}
	switch ve.Code {
	case rp.CodeIssuer:
		return "the token comes from another issuer or OP environment than MULTIAPP_ISSUER: sign in through an app of this environment, or fix MULTIAPP_ISSUER (every app of one sign-in uses the same one)"
	case rp.CodeAudience, rp.CodeAuthorizedBy:
		if kind == KindAccess {
			return "the token was issued for another API: request it with the API's audience (resource), or fix MULTIAPP_AUDIENCE"
		}
		return fmt.Sprintf("the token was issued to another app than client %s: check MULTIAPP_CLIENT_ID", opts.ClientID)
	case rp.CodeExpired:
		return "an old token: refresh it; if it was issued just now, this machine's clock is ahead of the OP's (`multiapp doctor` measures it)"
	case rp.CodeIssuedAt, rp.CodeNotYetValid:
		return "synchronise this machine's clock (NTP); `multiapp doctor` measures the offset to the OP"
	case rp.CodeUnknownKey:
		return "no key of the OP's JWKS has this kid: the token was signed by another issuer or environment, or by a key the OP has since removed"
	case rp.CodeSignature:
		return "the signature does not verify with the OP's key: the token was altered, or it comes from another environment that reuses the kid"
	case rp.CodeAlgorithm:
		return "the library accepts only the asymmetric algorithms the OP advertises (never none or HMAC)"
	case rp.CodeType, rp.CodeEvents, rp.CodeNonce, rp.CodeSessionID, rp.CodeTokenID:
		return "probably another kind of token: choose with --kind id|access|logout"
	case rp.CodeSubject:
		return "the OP must put the user in sub"
	}
	return ""
}

// relative says "in 4m59s" or "2h0m0s ago".
func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}

// WriteText writes the header, the claims, the dates and the checks.
func (t *TokenReport) WriteText(w io.Writer) error {
	var b strings.Builder
	if t.Header != nil {
		hb, _ := json.Marshal(t.Header)
		fmt.Fprintf(&b, "header  %s\n", hb)
	}
	if len(t.Claims) > 0 {
		lines := strings.Split(string(t.Claims), "\n")
		for i, l := range lines {
			label := "        "
			if i == 0 {
				label = "claims  "
			}
			fmt.Fprintf(&b, "%s%s\n", label, oneLine(l))
		}
	}
	for i, tc := range t.Times {
		label := "        "
		if i == 0 {
			label = "times   "
		}
		fmt.Fprintf(&b, "%s%-9s %s (%s)\n", label, tc.Name, tc.Time.Format(time.RFC3339), tc.Relative)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return (&Report{Checks: t.Checks}).WriteText(w)
}

// WriteJSON writes the report as one JSON object.
func (t *TokenReport) WriteJSON(w io.Writer) error {
	out := struct {
		OK bool `json:"ok"`
		*TokenReport
	}{!t.Failed(), t}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
