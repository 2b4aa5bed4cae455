package middleware

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/cookie"
)

// FuzzCookieValue: cookieValue finds what Request.Cookie finds, for any
// Cookie headers (one or two lines) and any name.
func FuzzCookieValue(f *testing.F) {
	for _, seed := range [][3]string{
		{"ma-app=abc", "", "ma-app"},
		{`a=1; ma-app="quoted"; b=2`, "", "ma-app"},
		{"ma-app=bad\\value; ma-app=good", "", "ma-app"},
		{"  ma-app = spaced ;x=y", "ma-app=second-line", "ma-app"},
		{"ma-app", "ma-app=", "ma-app"},
		{"ma-app=\"\"; ma-app=\"", "", "ma-app"},
		{"bad name=1", "", "bad name"},
		{"=v; ;;", "", ""},
		{"__Host-ma-app=v1", "__Host-ma-app=v2", "__Host-ma-app"},
		{"ma-app=v\x7f; ma-app=w", "", "ma-app"},
		{strings.Repeat("x=1;", maxCookies) + "ma-app=late", "", "ma-app"},
		{strings.Repeat("x=1;", maxCookies-2) + "ma-app=just", "", "ma-app"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, line1, line2, name string) {
		h := http.Header{"Cookie": {line1}}
		if line2 != "" {
			h["Cookie"] = append(h["Cookie"], line2)
		}
		want, err := (&http.Request{Header: h}).Cookie(name)
		got, ok := cookieValue(h, name)
		switch {
		case err != nil && ok:
			t.Fatalf("cookieValue found %q where Request.Cookie found none", got)
		case err == nil && (!ok || got != want.Value):
			t.Fatalf("cookieValue = %q, %v; Request.Cookie = %q", got, ok, want.Value)
		}
	})
}

// TestSealedAt reads the timestamp securecookie seals into a value, and
// refuses what is not one.
func TestSealedAt(t *testing.T) {
	codecs, err := cookie.Codecs([][]byte{[]byte(strings.Repeat("k", 32))}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := securecookie.EncodeMulti("ma-app", strings.Repeat("i", 43), codecs...)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	if at, ok := sealedAt(v); !ok || at < before-2 || at > before+1 {
		t.Fatalf("sealedAt = %d, %v; sealed about %d", at, ok, before)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 16), "%%%%%%%%%%%%%%%%%%%%", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="} {
		if at, ok := sealedAt(bad); ok {
			t.Errorf("sealedAt(%q) = %d, want no timestamp", bad, at)
		}
	}
}
