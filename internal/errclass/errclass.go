// Package errclass is the mechanism behind multiapp's error classes; the
// documentation users read is on rp.Class (package rp re-exports
// everything here). It is internal so that packages below rp (event) can
// read classes, and others classify their errors, without an import cycle.
//
// The rules, in short: an error's class is the class of the innermost error
// in its chain that has one (a cause is the more specific fact: a token
// that could not be checked because the keys were out of reach is
// temporary, not invalid). An error type declares its own class with an
// ErrorClass method and matches the class sentinels with an Is method that
// calls Matches, so errors.Is(err, <class sentinel>) is true for exactly
// the class Of reports.
package errclass

// Class is what a caller must do about an error.
type Class uint8

// The classes. None is the class of nil, and of errors this module did not
// classify (which it never returns).
const (
	None Class = iota
	Invalid
	Temporary
	Revoked
	Misconfigured
)

var names = [...]string{"none", "invalid", "temporary", "revoked", "misconfigured"}

// String returns the class name used in logs: "invalid", "temporary",
// "revoked" or "misconfigured".
func (c Class) String() string {
	if int(c) < len(names) {
		return names[c]
	}
	return "unknown"
}

// Sentinel is a named error of one class: the four class sentinels, and
// sub-kinds such as rp.ErrLoginRequired or middleware.ErrSignedOut, each of which
// also matches its class's sentinel with errors.Is.
type Sentinel struct {
	msg   string
	class Class
}

// New returns a sentinel of class c.
func New(msg string, c Class) *Sentinel { return &Sentinel{msg: msg, class: c} }

func (s *Sentinel) Error() string { return s.msg }

// ErrorClass returns the sentinel's class.
func (s *Sentinel) ErrorClass() Class { return s.class }

// Is makes a sub-kind match its class sentinel.
func (s *Sentinel) Is(target error) bool { return Matches(s, target) }

// The class sentinels (rp.ErrInvalidToken, rp.ErrTemporary,
// rp.ErrSessionRevoked, rp.ErrConfig).
var (
	ErrInvalid       = New("rp: invalid token", Invalid)
	ErrTemporary     = New("rp: OP temporarily unavailable", Temporary)
	ErrRevoked       = New("rp: OP session revoked", Revoked)
	ErrMisconfigured = New("rp: invalid configuration", Misconfigured)
)

// SentinelOf returns the class sentinel of c (nil for None).
func SentinelOf(c Class) error {
	switch c {
	case Invalid:
		return ErrInvalid
	case Temporary:
		return ErrTemporary
	case Revoked:
		return ErrRevoked
	case Misconfigured:
		return ErrMisconfigured
	}
	return nil
}

// Of returns the class of err: that of the innermost error in its chain
// that declares one (an ErrorClass method), None when none does.
func Of(err error) Class {
	if err == nil {
		return None
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if c := Of(u.Unwrap()); c != None {
			return c
		}
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if c := Of(e); c != None {
				return c
			}
		}
	}
	if d, ok := err.(interface{ ErrorClass() Class }); ok {
		return d.ErrorClass()
	}
	return None
}

// Matches reports whether target is the class sentinel of err's class: the
// Is method of every classified error type.
func Matches(err, target error) bool {
	s := SentinelOf(Of(err))
	return s != nil && target == s
}

// Wrap gives err the class c, for packages that cannot use rp's error
// types (packages rp does not import). err must not have a class of its own.
func Wrap(err error, c Class) error { return &wrapped{err: err, class: c} }

type wrapped struct {
	err   error
	class Class
}

func (w *wrapped) Error() string        { return w.err.Error() }
func (w *wrapped) Unwrap() error        { return w.err }
func (w *wrapped) ErrorClass() Class    { return w.class }
func (w *wrapped) Is(target error) bool { return Matches(w, target) }
