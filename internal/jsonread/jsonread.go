// Package jsonread is multiapp's JSON reader for the token hot path: one
// document held in a string, read value by value, without reflection. The
// JWS header decoder (internal/jws) and the claims decoder (rp) are built on
// it. Two tests keep it honest and must stay: a differential test and a fuzz
// target (FuzzReader) that check it accepts exactly what encoding/json
// accepts and decodes the same values.
package jsonread

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid is returned by Reader for input that is not valid JSON or
// whose value does not have the expected type.
var ErrInvalid = errors.New("jsonread: invalid JSON")

// maxDepth bounds nesting in skipped values, as encoding/json does.
const maxDepth = 10000

// Kind is the kind of the next JSON value.
type Kind uint8

// JSON value kinds returned by Reader.Peek.
const (
	Invalid Kind = iota
	String
	Number
	Object
	Array
	Bool
	Null
)

// Reader reads one JSON document held in a string, value by value,
// without reflection: the token header and claims decoders are built on
// it, because they sit on the bearer hot path where encoding/json costs
// several times what the whole rest of the validation does.
//
// It accepts exactly the documents encoding/json accepts (RFC 8259, with
// leading and trailing white space) and decodes strings exactly as
// encoding/json does (invalid UTF-8 and lone surrogates become U+FFFD).
// Strings without escapes are substrings of the input: no copy.
//
// Errors are sticky: after the first one every read returns a zero value,
// NextKey and NextElem return false, and Err reports ErrInvalid.
//
// Usage, for an object:
//
//	var r jsonread.Reader
//	r.Reset(doc)
//	r.BeginObject()
//	for first := true; ; first = false {
//		key, ok := r.NextKey(first)
//		if !ok {
//			break
//		}
//		switch key {
//		case "iss":
//			iss = r.ReadString()
//		default:
//			r.Skip()
//		}
//	}
//	r.End()
//	err := r.Err()
type Reader struct {
	s   string
	i   int
	err error
}

// Reset starts reading s.
func (r *Reader) Reset(s string) { r.s, r.i, r.err = s, 0, nil }

// Err returns ErrInvalid after any failure, nil otherwise.
func (r *Reader) Err() error { return r.err }

// Fail marks the document as invalid (e.g. a value of the wrong type).
func (r *Reader) Fail() {
	r.err = ErrInvalid
	r.i = len(r.s)
}

func (r *Reader) ws() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// Peek skips white space and returns the kind of the next value without
// consuming it. Invalid at the end of input, after an error, or when
// the next byte cannot start a value.
func (r *Reader) Peek() Kind {
	if r.err != nil {
		return Invalid
	}
	r.ws()
	if r.i >= len(r.s) {
		return Invalid
	}
	switch c := r.s[r.i]; {
	case c == '"':
		return String
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	}
	return Invalid
}

// BeginObject consumes '{'.
func (r *Reader) BeginObject() bool { return r.expect('{') }

// BeginArray consumes '['.
func (r *Reader) BeginArray() bool { return r.expect('[') }

func (r *Reader) expect(c byte) bool {
	if r.err != nil {
		return false
	}
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	r.Fail()
	return false
}

// NextKey reads the next member name of the object being read and the ':'
// after it; first is true for the first call after BeginObject. It returns
// false at the closing '}' (consumed) or on error. The caller must then
// read or Skip the member's value.
func (r *Reader) NextKey(first bool) (string, bool) {
	// Fast path for compact JSON: [,]"key": with a plain key. After an
	// error r.i is at the end, so the general path below reports it.
	if s, i := r.s, r.i; i < len(s) {
		switch c := s[i]; {
		case c == '}':
			r.i = i + 1
			return "", false
		case c == ',' && !first:
			i++
		case c != '"' || !first:
			i = -1
		}
		if i >= 0 && i < len(s) && s[i] == '"' {
			j := i + 1
			for j < len(s) && plain[s[j]] {
				j++
			}
			if j+1 < len(s) && s[j] == '"' && s[j+1] == ':' {
				r.i = j + 2
				return s[i+1 : j], true
			}
		}
	}
	if r.err != nil {
		return "", false
	}
	r.ws()
	if r.i >= len(r.s) {
		r.Fail()
		return "", false
	}
	switch c := r.s[r.i]; {
	case c == '}':
		r.i++
		return "", false
	case !first && c == ',':
		r.i++
		r.ws()
	case !first:
		r.Fail()
		return "", false
	}
	if r.i >= len(r.s) || r.s[r.i] != '"' {
		r.Fail()
		return "", false
	}
	key := r.ReadString()
	if !r.expect(':') {
		return "", false
	}
	return key, true
}

// NextElem prepares the next element of the array being read; first is
// true for the first call after BeginArray. It returns false at the
// closing ']' (consumed) or on error. The caller must then read or Skip
// the element.
func (r *Reader) NextElem(first bool) bool {
	if i := r.i; i < len(r.s) { // fast path for compact JSON
		switch c := r.s[i]; {
		case c == ']':
			r.i = i + 1
			return false
		case c == ',' && !first:
			r.i = i + 1
			return true
		case first && c != ' ' && c != '\t' && c != '\n' && c != '\r':
			return true
		}
	}
	if r.err != nil {
		return false
	}
	r.ws()
	if r.i >= len(r.s) {
		r.Fail()
		return false
	}
	switch c := r.s[r.i]; {
	case c == ']':
		r.i++
		return false
	case !first && c == ',':
		r.i++
	case !first:
		r.Fail()
		return false
	}
	return true
}

// End checks that only white space follows the document.
func (r *Reader) End() {
	if r.err != nil {
		return
	}
	r.ws()
	if r.i != len(r.s) {
		r.Fail()
	}
}

// ReadNull consumes null.
func (r *Reader) ReadNull() { r.literal("null") }

// ReadBool consumes true or false.
func (r *Reader) ReadBool() bool {
	if r.Peek() == Bool && r.s[r.i] == 't' {
		r.literal("true")
		return r.err == nil
	}
	r.literal("false")
	return false
}

func (r *Reader) literal(lit string) {
	if r.err != nil {
		return
	}
	r.ws()
	if len(r.s)-r.i >= len(lit) && r.s[r.i:r.i+len(lit)] == lit {
		r.i += len(lit)
		return
	}
	r.Fail()
}

// ReadNumber consumes a number and returns its literal text, checked
// against the JSON grammar.
func (r *Reader) ReadNumber() string {
	if r.err != nil {
		return ""
	}
	r.ws()
	s, start := r.s, r.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		r.Fail()
		return ""
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			r.Fail()
			return ""
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			r.Fail()
			return ""
		}
	}
	r.i = i
	return s[start:i]
}

// ReadUint reads a number written as 1 to maxDigits decimal digits
// (maxDigits <= 19) and nothing else: no sign, fraction or exponent. When
// the next value is not such a number it consumes nothing and returns
// false: read it another way.
func (r *Reader) ReadUint(maxDigits int) (uint64, bool) {
	r.ws()
	s, i := r.s, r.i
	var v uint64
	for i < len(s) && i-r.i < maxDigits && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + uint64(s[i]-'0')
		i++
	}
	n := i - r.i
	if n == 0 || (n > 1 && s[r.i] == '0') || r.err != nil {
		return 0, false
	}
	if i < len(s) {
		switch s[i] {
		case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return 0, false
		}
	}
	r.i = i
	return v, true
}

// ReadString consumes a string and returns it decoded. Without escapes and
// with valid UTF-8 it is a substring of the input.
func (r *Reader) ReadString() string {
	if r.err != nil {
		return ""
	}
	r.ws()
	if r.i >= len(r.s) || r.s[r.i] != '"' {
		r.Fail()
		return ""
	}
	return r.str()
}

// str reads the string starting at r.s[r.i] == '"'.
func (r *Reader) str() string {
	s := r.s
	start := r.i + 1
	i := start
	for {
		for i+8 <= len(s) && special(load64(s, i), true) == 0 {
			i += 8
		}
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i >= len(s) {
			r.Fail()
			return ""
		}
		switch c := s[i]; {
		case c == '"':
			r.i = i + 1
			return s[start:i]
		case c == '\\' || c < 0x20:
			return r.slowString(start)
		default: // non-ASCII: valid UTF-8 stays as is
			rr, size := utf8.DecodeRuneInString(s[i:])
			if rr == utf8.RuneError && size == 1 {
				return r.slowString(start)
			}
			i += size
		}
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns zero when none of the 8 bytes in x is '"', '\\' or a
// control character (nor, with high, a byte >= 0x80): the string scanners
// then skip all 8 at once. A non-zero result may flag bytes wrongly, but
// only when some byte really is special, and the byte loop decides then.
func special(x uint64, high bool) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	m := (q-lsb)&^q | (b-lsb)&^b | (x-lsb*0x20)&^x
	if high {
		m |= x
	}
	return m & msb
}

// load64 reads 8 bytes of s at i, little-endian (one load on amd64 and
// arm64).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plain marks the bytes a string holds as themselves: printable ASCII
// except '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// inString marks the bytes skipString passes over: everything but '"',
// '\\' and control characters.
var inString = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// slowString decodes a string with escapes or invalid UTF-8 starting at
// s[start] (just after the opening quote), as encoding/json does.
func (r *Reader) slowString(start int) string {
	s := r.s
	b := make([]byte, 0, 2*16)
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return string(b)
		case c < 0x20:
			r.Fail()
			return ""
		case c == '\\':
			if i+1 >= len(s) {
				r.Fail()
				return ""
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(s, i+2)
				if rr < 0 {
					r.Fail()
					return ""
				}
				i += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						rr1 = hex4(s, i+2)
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
						i += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default:
				r.Fail()
				return ""
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			rr, size := utf8.DecodeRuneInString(s[i:])
			if rr == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	r.Fail()
	return ""
}

// hex4 decodes the 4 hex digits at s[i:], or returns -1.
func hex4(s string, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var v rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		v = v<<4 | rune(c)
	}
	return v
}

// Skip consumes the next value, whatever it is, checking its syntax.
func (r *Reader) Skip() { r.skip(0) }

func (r *Reader) skip(depth int) {
	if depth >= maxDepth {
		r.Fail()
		return
	}
	switch r.Peek() {
	case String:
		r.skipString()
	case Number:
		r.ReadNumber()
	case Bool:
		r.ReadBool()
	case Null:
		r.ReadNull()
	case Object:
		r.i++
		for first := true; ; first = false {
			if _, ok := r.NextKey(first); !ok {
				return
			}
			r.skip(depth + 1)
		}
	case Array:
		r.i++
		for first := true; r.NextElem(first); first = false {
			r.skip(depth + 1)
		}
	default:
		r.Fail()
	}
}

// skipString consumes a string without decoding it.
func (r *Reader) skipString() {
	s := r.s
	for i := r.i + 1; i < len(s); i++ {
		for i+8 <= len(s) && special(load64(s, i), false) == 0 {
			i += 8
		}
		for i < len(s) && inString[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		switch c := s[i]; {
		case c == '"':
			r.i = i + 1
			return
		case c < 0x20:
			r.Fail()
			return
		case c == '\\':
			i++
			if i >= len(s) {
				r.Fail()
				return
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if hex4(s, i+1) < 0 {
					r.Fail()
					return
				}
				i += 4
			default:
				r.Fail()
				return
			}
		}
	}
	r.Fail()
}

// StringField reads a string into *dst as encoding/json decodes into a
// string field: null leaves *dst unchanged; any other kind is an error.
func (r *Reader) StringField(dst *string) {
	if r.i < len(r.s) && r.s[r.i] == '"' { // after an error, r.i is at the end
		*dst = r.str()
		return
	}
	switch r.Peek() {
	case String:
		*dst = r.ReadString()
	case Null:
		r.ReadNull()
	default:
		r.Fail()
	}
}

// StringsField reads an array of strings into *dst as encoding/json
// decodes into a []string field: null sets nil, a null element is "";
// anything else is an error.
func (r *Reader) StringsField(dst *[]string) {
	var buf [16]string
	l, null := r.AppendStrings(buf[:0])
	switch {
	case r.err != nil:
	case null:
		*dst = nil
	default:
		*dst = append(make([]string, 0, len(l)), l...)
	}
}

// AppendStrings reads an array of strings (a null element is "") and
// appends its elements to dst; for null it appends nothing and reports
// null. Any other value is an error.
func (r *Reader) AppendStrings(dst []string) (out []string, null bool) {
	switch r.Peek() {
	case Null:
		r.ReadNull()
		return dst, true
	case Array:
	default:
		r.Fail()
		return dst, false
	}
	r.BeginArray()
	for first := true; r.NextElem(first); first = false {
		var s string
		r.StringField(&s)
		dst = append(dst, s)
	}
	return dst, false
}
