package middleware

import (
	"github.com/multiapp-go/multiapp/internal/acr"
	"iter"
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
// (StepUp's limits), is not followed: false. It reads a bounded part of
// the header: field values over 8 KiB are skipped, and the search ends
// after 16 field values or 32 challenges, or at the step-up challenge.
func StepUpFromResponse(resp *http.Response) (StepUp, bool) {
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		return StepUp{}, false
	}
	return parseStepUp(resp.Header.Values("WWW-Authenticate"))
}

// Bounds of what StepUpFromResponse reads of a response's
// WWW-Authenticate: a hostile or broken API must not make it parse
// megabytes.
const (
	maxChallengeField  = 8 << 10 // bytes of one field value; a longer one is skipped
	maxChallengeFields = 16      // field values looked at
	maxChallenges      = 32      // challenges looked at, across the fields
)

// parseStepUp finds the step-up challenge among the WWW-Authenticate field
// values, within the bounds above, and stops there.
func parseStepUp(fields []string) (StepUp, bool) {
	n := 0
	for i, f := range fields {
		if i == maxChallengeFields {
			break
		}
		if len(f) > maxChallengeField {
			continue
		}
		for ch := range challenges(f) {
			if n++; n > maxChallenges {
				return StepUp{}, false
			}
			if ch.stepUp() {
				return ch.read()
			}
		}
	}
	return StepUp{}, false
}

// stepUp: a Bearer or DPoP challenge with
// error="insufficient_user_authentication".
func (ch *challenge) stepUp() bool {
	return (strings.EqualFold(ch.scheme, "Bearer") || strings.EqualFold(ch.scheme, "DPoP")) &&
		ch.seen&seenError != 0 && ch.err == "insufficient_user_authentication"
}

// read returns what the step-up challenge ch asks for, and false when it
// cannot be followed.
func (ch *challenge) read() (StepUp, bool) {
	if ch.broken {
		return StepUp{}, false
	}
	var su StepUp
	if ch.seen&seenACRValues != 0 {
		values, err := acr.ParseList(ch.acrValues)
		if err != nil {
			return StepUp{}, false
		}
		su.ACR = values
	}
	if ch.seen&seenMaxAge != 0 {
		n, ok := maxAgeParam(ch.maxAge)
		if !ok {
			return StepUp{}, false
		}
		su.MaxAge = n
	}
	return su, su.validate() == nil
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
// §11.6.1): a scheme and the auth-params a step-up reads (error,
// acr_values, max_age; names case-insensitive; the first of a repeated
// name wins). Other auth-params and a token68 are skipped: reading a
// challenge allocates nothing.
type challenge struct {
	scheme                 string
	err, acrValues, maxAge string
	seen                   uint8 // seenError, seenACRValues, seenMaxAge
	token68                bool
	// broken: the value stopped parsing inside this challenge, so what it
	// says is not known in full.
	broken bool
}

const (
	seenError = 1 << iota
	seenACRValues
	seenMaxAge
)

// set records an auth-param of ch.
func (ch *challenge) set(name, v string) {
	var dst *string
	var bit uint8
	switch {
	case ch.token68:
		return
	case strings.EqualFold(name, "error"):
		dst, bit = &ch.err, seenError
	case strings.EqualFold(name, "acr_values"):
		dst, bit = &ch.acrValues, seenACRValues
	case strings.EqualFold(name, "max_age"):
		dst, bit = &ch.maxAge, seenMaxAge
	default:
		return
	}
	if ch.seen&bit == 0 {
		ch.seen |= bit
		*dst = v
	}
}

// challenges yields the challenges of a WWW-Authenticate field value (RFC
// 9110 §11.6.1, §11.2), each once it is complete:
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// challenges and auth-params are both comma-separated, so a token followed
// by "=" is a parameter of the current challenge and any other token starts
// a new one. What does not parse ends the parse: the challenge it stopped
// in is yielded last, marked broken.
func challenges(s string) iter.Seq[challenge] {
	return func(yield func(challenge) bool) {
		var cur challenge
		open := false // cur holds a challenge not yet yielded
		p := &challengeScanner{s: s}
		brk := func() {
			if open {
				cur.broken = true
				yield(cur)
			}
		}
		for {
			p.skipListSep()
			if p.done() {
				if open {
					yield(cur)
				}
				return
			}
			name := p.token()
			if name == "" {
				brk()
				return
			}
			afterName := p.i
			p.skipWS()
			if p.peek() == '=' {
				// An auth-param of the current challenge.
				if !open {
					return
				}
				p.i++
				p.skipWS()
				v, ok := p.value()
				if !ok {
					brk()
					return
				}
				cur.set(name, v)
				continue
			}
			if open && !yield(cur) {
				return
			}
			cur, open = challenge{scheme: name}, true
			if p.i == afterName {
				continue // the scheme alone, before a comma or the end
			}
			// After 1*SP: a token68 (then the end or a comma), or auth-params.
			start := p.i
			if t := p.token68(); t != "" {
				p.skipWS()
				if p.done() || p.peek() == ',' {
					cur.token68 = true // no auth-params
					continue
				}
			}
			p.i = start
		}
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

// value reads a token or a quoted-string (with its quoted-pairs undone;
// only a value that has some is copied).
func (p *challengeScanner) value() (string, bool) {
	if p.peek() != '"' {
		v := p.token()
		return v, v != ""
	}
	p.i++
	start := p.i
	var b *strings.Builder // from the first quoted-pair on
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			if b == nil {
				return p.s[start : p.i-1], true
			}
			return b.String(), true
		case c == '\\' && p.i+1 < len(p.s):
			if b == nil {
				b = &strings.Builder{}
				b.WriteString(p.s[start:p.i])
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '\t' || c >= ' ' && c != 0x7f:
			if b != nil {
				b.WriteByte(c)
			}
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
