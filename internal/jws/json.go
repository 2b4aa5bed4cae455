package jws

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrJSON is returned by JSONReader for input that is not valid JSON or
// whose value does not have the expected type.
var ErrJSON = errors.New("jws: invalid JSON")

// maxJSONDepth bounds nesting in skipped values, as encoding/json does.
const maxJSONDepth = 10000

// JSONKind is the kind of the next JSON value.
type JSONKind uint8

// JSON value kinds returned by JSONReader.Peek.
const (
	JSONInvalid JSONKind = iota
	JSONString
	JSONNumber
	JSONObject
	JSONArray
	JSONBool
	JSONNull
)

// JSONReader reads one JSON document held in a string, value by value,
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
// NextKey and NextElem return false, and Err reports ErrJSON.
//
// Usage, for an object:
//
//	var r jws.JSONReader
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
type JSONReader struct {
	s   string
	i   int
	err error
}

// Reset starts reading s.
func (r *JSONReader) Reset(s string) { r.s, r.i, r.err = s, 0, nil }

// Err returns ErrJSON after any failure, nil otherwise.
func (r *JSONReader) Err() error { return r.err }

// Fail marks the document as invalid (e.g. a value of the wrong type).
func (r *JSONReader) Fail() {
	r.err = ErrJSON
	r.i = len(r.s)
}

func (r *JSONReader) ws() {
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
// consuming it. JSONInvalid at the end of input, after an error, or when
// the next byte cannot start a value.
func (r *JSONReader) Peek() JSONKind {
	if r.err != nil {
		return JSONInvalid
	}
	r.ws()
	if r.i >= len(r.s) {
		return JSONInvalid
	}
	switch c := r.s[r.i]; {
	case c == '"':
		return JSONString
	case c == '{':
		return JSONObject
	case c == '[':
		return JSONArray
	case c == 't' || c == 'f':
		return JSONBool
	case c == 'n':
		return JSONNull
	case c == '-' || (c >= '0' && c <= '9'):
		return JSONNumber
	}
	return JSONInvalid
}

// BeginObject consumes '{'.
func (r *JSONReader) BeginObject() bool { return r.expect('{') }

// BeginArray consumes '['.
func (r *JSONReader) BeginArray() bool { return r.expect('[') }

func (r *JSONReader) expect(c byte) bool {
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
func (r *JSONReader) NextKey(first bool) (string, bool) {
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
func (r *JSONReader) NextElem(first bool) bool {
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
func (r *JSONReader) End() {
	if r.err != nil {
		return
	}
	r.ws()
	if r.i != len(r.s) {
		r.Fail()
	}
}

// ReadNull consumes null.
func (r *JSONReader) ReadNull() { r.literal("null") }

// ReadBool consumes true or false.
func (r *JSONReader) ReadBool() bool {
	if r.Peek() == JSONBool && r.s[r.i] == 't' {
		r.literal("true")
		return r.err == nil
	}
	r.literal("false")
	return false
}

func (r *JSONReader) literal(lit string) {
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
func (r *JSONReader) ReadNumber() string {
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

// ReadString consumes a string and returns it decoded. Without escapes and
// with valid UTF-8 it is a substring of the input.
func (r *JSONReader) ReadString() string {
	if r.err != nil {
		return ""
	}
	r.ws()
	s := r.s
	if r.i >= len(s) || s[r.i] != '"' {
		r.Fail()
		return ""
	}
	start := r.i + 1
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return s[start:i]
		case c == '\\' || c < 0x20:
			return r.slowString(start)
		case c < utf8.RuneSelf:
			i++
		default:
			rr, size := utf8.DecodeRuneInString(s[i:])
			if rr == utf8.RuneError && size == 1 {
				return r.slowString(start)
			}
			i += size
		}
	}
	r.Fail()
	return ""
}

// slowString decodes a string with escapes or invalid UTF-8 starting at
// s[start] (just after the opening quote), as encoding/json does.
func (r *JSONReader) slowString(start int) string {
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
func (r *JSONReader) Skip() { r.skip(0) }

func (r *JSONReader) skip(depth int) {
	if depth >= maxJSONDepth {
		r.Fail()
		return
	}
	switch r.Peek() {
	case JSONString:
		r.skipString()
	case JSONNumber:
		r.ReadNumber()
	case JSONBool:
		r.ReadBool()
	case JSONNull:
		r.ReadNull()
	case JSONObject:
		r.i++
		for first := true; ; first = false {
			if _, ok := r.NextKey(first); !ok {
				return
			}
			r.skip(depth + 1)
		}
	case JSONArray:
		r.i++
		for first := true; r.NextElem(first); first = false {
			r.skip(depth + 1)
		}
	default:
		r.Fail()
	}
}

// skipString consumes a string without decoding it.
func (r *JSONReader) skipString() {
	s := r.s
	for i := r.i + 1; i < len(s); i++ {
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
func (r *JSONReader) StringField(dst *string) {
	switch r.Peek() {
	case JSONString:
		*dst = r.ReadString()
	case JSONNull:
		r.ReadNull()
	default:
		r.Fail()
	}
}

// StringsField reads an array of strings into *dst as encoding/json
// decodes into a []string field: null sets nil, a null element is "";
// anything else is an error.
func (r *JSONReader) StringsField(dst *[]string) {
	switch r.Peek() {
	case JSONNull:
		r.ReadNull()
		*dst = nil
	case JSONArray:
		*dst = r.readStrings()
	default:
		r.Fail()
	}
}

// readStrings reads an array of strings (null elements are "").
func (r *JSONReader) readStrings() []string {
	r.BeginArray()
	var buf [16]string
	tmp := buf[:0]
	for first := true; r.NextElem(first); first = false {
		var s string
		r.StringField(&s)
		tmp = append(tmp, s)
	}
	if r.err != nil {
		return nil
	}
	out := make([]string, len(tmp)) // exactly one allocation
	copy(out, tmp)
	return out
}
