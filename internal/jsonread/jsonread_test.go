package jsonread_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/jsonread"
)

// decodeAny reads any value with a Reader into the shapes encoding/json
// produces with UseNumber: map[string]any, []any, string, json.Number,
// bool, nil.
func decodeAny(r *jsonread.Reader) any {
	switch r.Peek() {
	case jsonread.String:
		return r.ReadString()
	case jsonread.Number:
		return json.Number(r.ReadNumber())
	case jsonread.Bool:
		return r.ReadBool()
	case jsonread.Null:
		r.ReadNull()
		return nil
	case jsonread.Object:
		r.BeginObject()
		m := map[string]any{}
		for first := true; ; first = false {
			k, ok := r.NextKey(first)
			if !ok {
				break
			}
			m[k] = decodeAny(r)
		}
		return m
	case jsonread.Array:
		r.BeginArray()
		l := []any{}
		for first := true; r.NextElem(first); first = false {
			l = append(l, decodeAny(r))
		}
		return l
	}
	r.Fail()
	return nil
}

func readerDecode(doc string) (any, error) {
	var r jsonread.Reader
	r.Reset(doc)
	v := decodeAny(&r)
	r.End()
	return v, r.Err()
}

func stdDecode(doc string) (any, bool) {
	if !json.Valid([]byte(doc)) {
		return nil, false
	}
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

var jsonCases = []string{
	`{}`, `[]`, ` {"a" : [1, -2.5e+3, 0, -0, 0.1E-2, true, false, null, "x"]} `,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \u20ac \ud83d\ude00"`,
	`"lone \ud800 surrogate"`, `"bad pair \ud800\u0041"`, `"\udc00"`, "\"inv\xffalid utf8\"", "\"ok é €\"",
	`{"a":{"b":{"c":[[[]]]}}}`, `{"dup":1,"dup":2}`, `[1,]`, `[,1]`, `{"a":1,}`, `{,}`, `{"a"}`,
	`{"a":1 "b":2}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nul`, `"\x"`, `"\u12"`, "\"ctl\x01\"",
	`{"a":1}x`, `{"a":1}{}`, ``, ` `, `{"a":"b"`, `["a"`, `"abc`, `[1 2]`, `{1:2}`, `NaN`, `1e400`,
}

func TestReaderMatchesEncodingJSON(t *testing.T) {
	for _, doc := range jsonCases {
		checkJSON(t, doc)
	}
	for _, n := range []int{10000, 10001} {
		deep := strings.Repeat("[", n) + strings.Repeat("]", n)
		var r jsonread.Reader
		r.Reset(deep)
		r.Skip()
		if (r.Err() == nil) != json.Valid([]byte(deep)) {
			t.Errorf("nesting %d: Skip err %v, encoding/json valid %v", n, r.Err(), json.Valid([]byte(deep)))
		}
	}
}

func checkJSON(t *testing.T, doc string) {
	t.Helper()
	want, ok := stdDecode(doc)
	got, err := readerDecode(doc)
	if ok != (err == nil) {
		t.Fatalf("%q: encoding/json valid=%v, Reader err=%v", doc, ok, err)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: Reader %#v, encoding/json %#v", doc, got, want)
	}
	// Skip must accept exactly the same documents.
	var r jsonread.Reader
	r.Reset(doc)
	r.Skip()
	r.End()
	if ok != (r.Err() == nil) {
		t.Fatalf("%q: encoding/json valid=%v, Skip err=%v", doc, ok, r.Err())
	}
}

func TestFieldsDecodeLikeEncodingJSON(t *testing.T) {
	type fields struct {
		S string   `json:"s"`
		L []string `json:"l"`
	}
	for _, doc := range []string{
		`{"s":"a","l":["x",null,"y"]}`, `{"s":null,"l":null}`, `{"s":"a","s":null}`, `{"l":[]}`,
		`{"s":1}`, `{"l":"x"}`, `{"l":[1]}`, `{"s":{}}`,
	} {
		var want fields
		wantErr := json.Unmarshal([]byte(doc), &want)
		var got fields
		var r jsonread.Reader
		r.Reset(doc)
		r.BeginObject()
		for first := true; ; first = false {
			k, ok := r.NextKey(first)
			if !ok {
				break
			}
			switch k {
			case "s":
				r.StringField(&got.S)
			case "l":
				r.StringsField(&got.L)
			default:
				r.Skip()
			}
		}
		r.End()
		if (wantErr == nil) != (r.Err() == nil) {
			t.Errorf("%s: encoding/json %v, Reader %v", doc, wantErr, r.Err())
			continue
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", doc, got, want)
		}
	}
}

// FuzzReader: Reader accepts exactly what encoding/json accepts and
// decodes it to the same values.
func FuzzReader(f *testing.F) {
	for _, doc := range jsonCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Count(b, []byte("[")) > 1000 {
			return // deep nesting is tested once, not fuzzed
		}
		checkJSON(t, string(b))
	})
}
