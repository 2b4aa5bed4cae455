// Package acr is the one rule for the Authentication Context Class
// Reference values a step-up carries (RFC 9470): what an API may ask for
// (bearer.AnyACR), what a web app can follow (middleware.StepUp,
// StepUpFromResponse) and what its login route takes in acr_values. The
// values go through a WWW-Authenticate quoted-string, a URL query and the
// login transaction cookie, so both sides must agree on them.
package acr

import (
	"errors"
	"fmt"
	"strings"
)

// MaxList is the most bytes a list of acr values may take, separating
// spaces included: what a sign-in can carry in its login transaction
// cookie.
const MaxList = 128

// Check reports what is wrong with values as a list of acr values: each
// must be non-empty printable ASCII without a space, a quote or a
// backslash (what an OP's acr values are: URIs and short names), and the
// list at most MaxList bytes joined with spaces.
func Check(values []string) error {
	n := len(values) - 1
	for _, v := range values {
		if v == "" || !printable(v, false) {
			return fmt.Errorf("acr value %q is empty or has a space, a quote, a backslash, a control or non-ASCII character", v)
		}
		n += len(v)
	}
	if n > MaxList {
		return fmt.Errorf("the acr values take %d bytes; a sign-in can carry at most %d", n, MaxList)
	}
	return nil
}

// ParseList reads a space-separated list of acr values (an acr_values
// parameter) that Check accepts.
func ParseList(s string) ([]string, error) {
	if len(s) > MaxList || !printable(s, true) {
		return nil, errors.New("acr_values must be at most 128 bytes of printable ASCII without quotes or backslashes")
	}
	values := strings.Fields(s)
	if len(values) == 0 {
		return nil, errors.New("acr_values is empty")
	}
	return values, Check(values)
}

// printable: s is ASCII from '!' to '~' (and ' ' when spaces are allowed)
// without '"' or '\\'.
func printable(s string, spaces bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '!' || c > '~' || c == '"' || c == '\\') && !(spaces && c == ' ') {
			return false
		}
	}
	return true
}
