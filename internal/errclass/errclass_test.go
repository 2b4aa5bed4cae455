package errclass

import (
	"errors"
	"fmt"
	"testing"
)

type typed struct {
	class Class
	err   error
}

func (e *typed) Error() string        { return "typed" }
func (e *typed) Unwrap() error        { return e.err }
func (e *typed) ErrorClass() Class    { return e.class }
func (e *typed) Is(target error) bool { return Matches(e, target) }
func exclusive(t *testing.T, err error, want Class) {
	t.Helper()
	if got := Of(err); got != want {
		t.Errorf("Of(%v) = %v, want %v", err, got, want)
	}
	for _, c := range []Class{Invalid, Temporary, Revoked, Misconfigured} {
		if errors.Is(err, SentinelOf(c)) != (c == want) {
			t.Errorf("errors.Is(%v, %v sentinel) = %v", err, c, !(c == want))
		}
	}
}

func TestInnermostClassWins(t *testing.T) {
	sub := New("sub-kind", Invalid)
	exclusive(t, nil, None)
	exclusive(t, errors.New("plain"), None)
	exclusive(t, sub, Invalid)
	exclusive(t, fmt.Errorf("wrapped: %w", sub), Invalid)
	exclusive(t, fmt.Errorf("%w: config", ErrMisconfigured), Misconfigured)
	exclusive(t, &typed{class: Invalid}, Invalid)
	exclusive(t, &typed{class: Invalid, err: errors.New("cause")}, Invalid)
	// A token that could not be checked because the keys were out of reach.
	exclusive(t, &typed{class: Invalid, err: &typed{class: Temporary}}, Temporary)
	exclusive(t, fmt.Errorf("ctx: %w", &typed{class: Invalid, err: ErrRevoked}), Revoked)
	exclusive(t, errors.Join(errors.New("a"), &typed{class: Temporary}), Temporary)
	if Temporary.String() != "temporary" || Class(99).String() != "unknown" {
		t.Error("names")
	}
}
