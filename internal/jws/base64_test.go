package jws

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func checkB64(t *testing.T, src string) {
	t.Helper()
	want, err := base64.RawURLEncoding.Strict().DecodeString(src)
	ok := err == nil && !strings.ContainsAny(src, "\r\n")
	dst := make([]byte, decodedLen(len(src)))
	n, gotOK := decodeB64(dst, src)
	if gotOK != ok {
		t.Fatalf("%q: decodeB64 ok=%v, package base64 err=%v", src, gotOK, err)
	}
	if ok && !bytes.Equal(dst[:n], want) {
		t.Fatalf("%q: got %x, want %x", src, dst[:n], want)
	}
}

var b64Cases = []string{"", "A", "QQ", "QR", "QUE", "QUF", "QUFB", "QUFBQQ", "QUFBQUFBQUFB", "QUFBQUFBQUFBQUFBQUFBQUFBQQ",
	"a+b/", "a-b_", "QUFB\nQUFB", "QUFB\rQUFB", "QUFB=", "QQ==", "////", "____", "-_-_-_-_-_-_-_-_x", "ZW1vamkg8J+YgA", "\xff\xfe"}

func TestDecodeB64MatchesStrictPackageBase64(t *testing.T) {
	for _, c := range b64Cases {
		checkB64(t, c)
	}
	// Every length and every alphabet position.
	var b strings.Builder
	for i := range 300 {
		b.WriteByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i*7%64])
		checkB64(t, b.String())
	}
}

func FuzzDecodeB64(f *testing.F) {
	for _, c := range b64Cases {
		f.Add(c)
	}
	f.Fuzz(checkB64)
}
