package acr

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckAndParseList(t *testing.T) {
	cases := []struct {
		list string
		want []string // nil: refused
	}{
		{"urn:example:mfa", []string{"urn:example:mfa"}},
		{" a  b ", []string{"a", "b"}},
		{strings.Repeat("a", 128), []string{strings.Repeat("a", 128)}},
		{strings.Repeat("a", 129), nil},
		{"", nil},
		{"   ", nil},
		{`a"b`, nil},
		{`a\b`, nil},
		{"a\tb", nil},
		{"a\x01", nil},
		{"a\x7f", nil},
		{"élevé", nil},
		{"a\u0085b", nil}, // a Unicode space strings.Fields would split on
	}
	for _, c := range cases {
		got, err := ParseList(c.list)
		if (err == nil) != (c.want != nil) || !slices.Equal(got, c.want) && c.want != nil {
			t.Errorf("ParseList(%q) = %q, %v; want %q", c.list, got, err, c.want)
		}
		if c.want != nil && Check(c.want) != nil {
			t.Errorf("Check(%q) refuses what ParseList accepts", c.want)
		}
	}
	for _, values := range [][]string{{""}, {"a b"}, {`a"`}, {"a", ""}, {strings.Repeat("a", 64), strings.Repeat("b", 64)}} {
		if Check(values) == nil {
			t.Errorf("Check(%q) accepted", values)
		}
	}
	if Check([]string{strings.Repeat("a", 64), strings.Repeat("b", 63)}) != nil {
		t.Error("Check refused 128 bytes")
	}
}
