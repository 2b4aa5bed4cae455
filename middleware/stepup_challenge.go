package middleware

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StepUpFromResponse reads an API's step-up challenge (RFC 9470 §3): a 401
// whose WWW-Authenticate has a Bearer or DPoP challenge with
// error="insufficient_user_authentication". It returns what the API asks
// for (acr_values as StepUp.ACR, max_age as StepUp.MaxAge), ready for
// StartStepUp, and false for any other response. A max_age of 0 ("sign in
// right now") becomes one second, a max_age beyond what a time.Duration
// holds the largest one; a challenge whose max_age is not a non-negative
// integer, or whose acr_values could not be carried through a sign-in
// (StepUp's limits), is not followed: false.
func StepUpFromResponse(resp *http.Response) (StepUp, bool) {
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		return StepUp{}, false
	}
	return parseStepUp(resp.Header.Values("WWW-Authenticate"))
}

// parseStepUp finds the step-up challenge among the WWW-Authenticate field
// values.
func parseStepUp(fields []string) (StepUp, bool) {
	for _, ch := range parseChallenges(strings.Join(fields, ", ")) {
		if (!strings.EqualFold(ch.scheme, "Bearer") && !strings.EqualFold(ch.scheme, "DPoP")) ||
			ch.params["error"] != "insufficient_user_authentication" {
			continue
		}
		if ch.broken {
			return StepUp{}, false
		}
		var su StepUp
		if v, ok := ch.params["acr_values"]; ok {
			if !validACRValues(v) {
				return StepUp{}, false
			}
			su.ACR = strings.Fields(v)
		}
		if v, ok := ch.params["max_age"]; ok {
			n, ok := maxAgeParam(v)
			if !ok {
				return StepUp{}, false
			}
			su.MaxAge = n
		}
		return su, su.validate() == nil
	}
	return StepUp{}, false
}

// maxAgeParam reads max_age: 1*DIGIT.
func maxAgeParam(v string) (time.Duration, bool) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil || n > math.MaxInt64/int64(time.Second):
		// All digits, too large: centuries, "any age" in effect.
		return math.MaxInt64 / time.Second * time.Second, true
	case n == 0:
		return time.Second, true
	}
	return time.Duration(n) * time.Second, true
}

// challenge is one challenge of a WWW-Authenticate field (RFC 9110
// §11.6.1): a scheme and its auth-params (names in lower case; the first of
// a repeated name wins). A token68 is skipped.
type challenge struct {
	scheme string
	params map[string]string
	// broken: the value stopped parsing inside this challenge, so what it
	// says is not known in full.
	broken bool
}

// parseChallenges parses a WWW-Authenticate field value (RFC 9110 §11.6.1,
// §11.2):
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// challenges and auth-params are both comma-separated, so a token followed
// by "=" is a parameter of the current challenge and any other token starts
// a new one. What does not parse ends the parse: the challenges read so far
// are returned, the last one marked broken.
func parseChallenges(s string) []challenge {
	var out []challenge
	p := &challengeScanner{s: s}
	brk := func() []challenge {
		if len(out) > 0 {
			out[len(out)-1].broken = true
		}
		return out
	}
	for {
		p.skipListSep()
		if p.done() {
			return out
		}
		name := p.token()
		if name == "" {
			return brk()
		}
		afterName := p.i
		p.skipWS()
		if p.peek() == '=' {
			// An auth-param of the current challenge.
			if len(out) == 0 {
				return brk()
			}
			p.i++
			p.skipWS()
			v, ok := p.value()
			if !ok {
				return brk()
			}
			if cur := &out[len(out)-1]; cur.params != nil {
				if k := strings.ToLower(name); !has(cur.params, k) {
					cur.params[k] = v
				}
			}
			continue
		}
		out = append(out, challenge{scheme: name, params: map[string]string{}})
		if p.i == afterName {
			continue // the scheme alone, before a comma or the end
		}
		// After 1*SP: a token68 (then the end or a comma), or auth-params.
		start := p.i
		if t := p.token68(); t != "" {
			p.skipWS()
			if p.done() || p.peek() == ',' {
				out[len(out)-1].params = nil // token68: no auth-params
				continue
			}
		}
		p.i = start
	}
}

// challengeScanner reads a header value byte by byte.
type challengeScanner struct {
	s string
	i int
}

func (p *challengeScanner) done() bool { return p.i >= len(p.s) }

func (p *challengeScanner) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *challengeScanner) skipWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipListSep skips whitespace and commas (empty list elements are
// allowed, RFC 9110 §5.6.1).
func (p *challengeScanner) skipListSep() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// token reads an RFC 9110 token.
func (p *challengeScanner) token() string {
	start := p.i
	for !p.done() && tchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68 reads 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func (p *challengeScanner) token68() string {
	start := p.i
	for !p.done() && (isAlnum(p.s[p.i]) || strings.IndexByte("-._~+/", p.s[p.i]) >= 0) {
		p.i++
	}
	if p.i == start {
		return ""
	}
	for !p.done() && p.s[p.i] == '=' {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string (with its quoted-pairs undone).
func (p *challengeScanner) value() (string, bool) {
	if p.peek() != '"' {
		v := p.token()
		return v, v != ""
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '\t' || c >= ' ' && c != 0x7f:
			b.WriteByte(c)
			p.i++
		default:
			return "", false
		}
	}
	return "", false // unterminated
}

func tchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func has(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
