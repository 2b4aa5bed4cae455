package middleware

import (
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseStepUp (RFC 9470 §3, RFC 9110 §11.6.1): the step-up challenge
// is found among several challenges and header lines, its auth-params read
// as tokens or quoted-strings, and a challenge that cannot be followed
// safely is not followed.
func TestParseStepUp(t *testing.T) {
	const iua = `error="insufficient_user_authentication"`
	maxDur := time.Duration(math.MaxInt64) / time.Second * time.Second
	cases := []struct {
		name   string
		fields []string
		want   StepUp
		ok     bool
	}{
		{"RFC 9470 figure 2", []string{`Bearer ` + iua + `, error_description="A different authentication level is required", acr_values="myACR"`}, StepUp{ACR: []string{"myACR"}}, true},
		{"RFC 9470 figure 3", []string{`Bearer ` + iua + `, error_description="More recent authentication is required", max_age="5"`}, StepUp{MaxAge: 5 * time.Second}, true},
		{"both, token syntax", []string{`Bearer realm="api", error=insufficient_user_authentication, acr_values="urn:a urn:b", max_age=300`}, StepUp{ACR: []string{"urn:a", "urn:b"}, MaxAge: 300 * time.Second}, true},
		{"BWS around =", []string{`Bearer error = "insufficient_user_authentication" , acr_values = x`}, StepUp{ACR: []string{"x"}}, true},
		{"scheme case", []string{`bEaReR ` + iua + `, max_age=1`}, StepUp{MaxAge: time.Second}, true},
		{"param name case", []string{`Bearer ERROR="insufficient_user_authentication", ACR_VALUES="x"`}, StepUp{ACR: []string{"x"}}, true},
		{"DPoP scheme", []string{`DPoP algs="ES256 PS256", ` + iua + `, acr_values="x"`}, StepUp{ACR: []string{"x"}}, true},
		{"after another challenge", []string{`Basic realm="x", Bearer ` + iua + `, acr_values="x"`}, StepUp{ACR: []string{"x"}}, true},
		{"after a token68 challenge", []string{`Negotiate abc==, Bearer ` + iua + `, acr_values="x"`}, StepUp{ACR: []string{"x"}}, true},
		{"on a second line", []string{`Basic realm="x"`, `Bearer ` + iua + `, max_age=60`}, StepUp{MaxAge: time.Minute}, true},
		{"empty list elements", []string{`, Bearer ,` + iua + `,, acr_values="x",`}, StepUp{ACR: []string{"x"}}, true},
		{"quoted-pair", []string{`Bearer error="insufficient_user_\authentication", acr_values="\x"`}, StepUp{ACR: []string{"x"}}, true},
		{"neither: a fresh sign-in", []string{`Bearer ` + iua}, StepUp{}, true},
		{"max_age 0: one second", []string{`Bearer ` + iua + `, max_age=0`}, StepUp{MaxAge: time.Second}, true},
		{"huge max_age: the largest", []string{`Bearer ` + iua + `, max_age=99999999999999999999999999`}, StepUp{MaxAge: maxDur}, true},
		{"max_age just fits", []string{`Bearer ` + iua + `, max_age=9223372036`}, StepUp{MaxAge: 9223372036 * time.Second}, true},
		{"first of a repeated param", []string{`Bearer ` + iua + `, max_age=5, max_age=99999`}, StepUp{MaxAge: 5 * time.Second}, true},

		{"another error", []string{`Bearer error="invalid_token", acr_values="x"`}, StepUp{}, false},
		{"insufficient_scope", []string{`Bearer error="insufficient_scope", scope="a"`}, StepUp{}, false},
		{"no error", []string{`Bearer realm="api"`}, StepUp{}, false},
		{"another scheme", []string{`Basic ` + iua}, StepUp{}, false},
		{"param of another challenge", []string{`Basic realm="x", ` + iua + `, Bearer realm="y"`}, StepUp{}, false},
		{"nothing", nil, StepUp{}, false},
		{"negative max_age", []string{`Bearer ` + iua + `, max_age=-5`}, StepUp{}, false},
		{"fractional max_age", []string{`Bearer ` + iua + `, max_age="1.5"`}, StepUp{}, false},
		{"max_age with a sign", []string{`Bearer ` + iua + `, max_age="+5"`}, StepUp{}, false},
		{"max_age a word", []string{`Bearer ` + iua + `, max_age=soon`}, StepUp{}, false},
		{"empty max_age", []string{`Bearer ` + iua + `, max_age=""`}, StepUp{}, false},
		{"empty acr_values", []string{`Bearer ` + iua + `, acr_values=""`}, StepUp{}, false},
		{"acr_values with a control character", []string{"Bearer " + iua + ", acr_values=\"a\x01b\""}, StepUp{}, false},
		{"acr_values with a quote", []string{`Bearer ` + iua + `, acr_values="a\"b"`}, StepUp{}, false},
		{"acr_values too long", []string{`Bearer ` + iua + `, acr_values="` + strings.Repeat("a ", 100) + `"`}, StepUp{}, false},
		{"unterminated quote", []string{`Bearer ` + iua + `, acr_values="x`}, StepUp{}, false},
		{"error after broken syntax", []string{`Bearer realm=, ` + iua}, StepUp{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseStepUp(c.fields)
			if ok != c.ok || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestStepUpFromResponse(t *testing.T) {
	h := http.Header{"Www-Authenticate": {`Bearer error="insufficient_user_authentication", acr_values="x"`}}
	for status, want := range map[int]bool{401: true, 403: false, 200: false} {
		if _, ok := StepUpFromResponse(&http.Response{StatusCode: status, Header: h}); ok != want {
			t.Errorf("%d: %v", status, ok)
		}
	}
	if _, ok := StepUpFromResponse(nil); ok {
		t.Error("nil response")
	}
}

// FuzzParseChallenges: any WWW-Authenticate value parses without a panic,
// and a step-up read from it is one StartStepUp can follow.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"`,
		`Bearer realm="api", error=insufficient_user_authentication, acr_values="urn:a urn:b", max_age=300`,
		`Negotiate abc==, Bearer error="insufficient_user_authentication", acr_values="x"`,
		`DPoP algs="ES256", error="insufficient_user_authentication", max_age=0`,
		`Basic realm="x", , Bearer`, `Bearer x="\"`, `Bearer max_age=99999999999999999999`, `=`, `a=b`, `Bearer a b c`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		for ch := range challenges(s) {
			if ch.scheme == "" || !strings.Contains(s, ch.scheme) {
				t.Fatalf("scheme %q from %q", ch.scheme, s)
			}
			if ch.seen&seenACRValues != 0 && !strings.Contains(s, `\`) && !strings.Contains(s, ch.acrValues) {
				t.Fatalf("acr_values %q not from %q", ch.acrValues, s)
			}
			if n++; n > len(s) {
				t.Fatalf("more challenges than bytes in %q", s)
			}
		}
		if su, ok := parseStepUp([]string{s}); ok {
			if err := su.validate(); err != nil || su.MaxAge < 0 {
				t.Fatalf("%q gave %+v: %v", s, su, err)
			}
		}
	})
}

// TestParseStepUpBounds: an API (or whatever answers in its place) that
// sends a huge or endless WWW-Authenticate makes StepUpFromResponse read a
// bounded part of it: a field over 8 KiB is skipped, the search stops after
// a bounded number of challenges and fields, and it ends at the step-up
// challenge.
func TestParseStepUpBounds(t *testing.T) {
	const stepUp = `Bearer error="insufficient_user_authentication", max_age=60`
	big := `Basic realm="` + strings.Repeat("x", 8<<10) + `"`
	cases := []struct {
		name   string
		fields []string
		ok     bool
	}{
		{"field over 8 KiB skipped", []string{stepUp + `, ` + big}, false},
		{"field over 8 KiB skipped, the next read", []string{big, stepUp}, true},
		{"field of 8 KiB read", []string{stepUp + `, Basic realm="` + strings.Repeat("x", 8<<10-len(stepUp)-16) + `"`}, true},
		{"after 31 other challenges", []string{strings.Repeat(`Basic realm="x", `, 31) + stepUp}, true},
		{"after 32 other challenges: not searched", []string{strings.Repeat(`Basic realm="x", `, 32) + stepUp}, false},
		{"challenges counted across fields", slices.Repeat([]string{`Basic realm="x", Digest realm="y"`}, 16), false},
		{"after 16 fields: not searched", append(slices.Repeat([]string{`,`}, 16), stepUp), false},
		{"ends at the step-up challenge: broken syntax after it ignored", []string{stepUp + `, Basic realm="x`}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := parseStepUp(c.fields); ok != c.ok {
				t.Fatalf("found %v, want %v", ok, c.ok)
			}
		})
	}
}

// TestParseStepUpAllocs: reading challenges allocates nothing per
// challenge, however many there are (up to the bound), and nothing for a
// field over the bound.
func TestParseStepUpAllocs(t *testing.T) {
	const stepUp = `Bearer error="insufficient_user_authentication", acr_values="urn:a urn:b", max_age=60`
	alone := []string{stepUp}
	one := testing.AllocsPerRun(100, func() { parseStepUp(alone) })
	fields := []string{strings.Repeat(`Basic realm="x", Negotiate abc==, `, 15) + stepUp}
	many := testing.AllocsPerRun(100, func() { parseStepUp(fields) })
	if many != one || one > 8 {
		t.Fatalf("%v allocations after 30 challenges, %v alone", many, one)
	}
	huge := []string{strings.Repeat(`Basic realm="x", `, 1<<16)}
	if n := testing.AllocsPerRun(10, func() { parseStepUp(huge) }); n > 0 {
		t.Fatalf("%v allocations for a 1 MB field", n)
	}
}

// BenchmarkStepUpFromResponseHuge: a 1 MB WWW-Authenticate, as one field
// and as a thousand fields of 1 KB.
func BenchmarkStepUpFromResponseHuge(b *testing.B) {
	for name, fields := range map[string][]string{
		"one field":   {strings.Repeat(`Basic realm="x", `, 1<<16)},
		"1000 fields": slices.Repeat([]string{strings.Repeat(`Basic realm="x", `, 60)}, 1000),
	} {
		resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": fields}}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				StepUpFromResponse(resp)
			}
		})
	}
}
