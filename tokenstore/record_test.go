package tokenstore_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// goldenSession is the session the golden records below encode.
func goldenSession() *tokenstore.Session {
	return &tokenstore.Session{
		Issuer: "https://op.example", Subject: "alice", SID: "ses_1", ClientID: "app-a",
		Tokens: tokenstore.Tokens{
			IDToken: "id.token.sig", AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
			Expiry: time.Date(2031, 2, 3, 4, 5, 6, 7, time.UTC),
			Claims: []byte(`{"sub":"alice", "x":"<&>"}`),
		},
		RefreshedAt: time.Date(2031, 2, 3, 3, 5, 6, 0, time.FixedZone("", 2*3600)),
		CreatedAt:   time.Date(2031, 2, 3, 3, 0, 0, 0, time.UTC),
		LastSeen:    time.Date(2031, 2, 3, 3, 5, 6, 0, time.UTC),
		ExpiresAt:   time.Date(2031, 2, 4, 3, 0, 0, 0, time.UTC),
		IssuedAt:    time.Date(2031, 2, 3, 2, 59, 59, 0, time.UTC),
	}
}

// goldenV2 is goldenSession as redisstore encoded it (layout 2) before the
// codec moved to this package; goldenBox is that record sealed under
// goldenKey with additional data "member". Records of both kinds sit in
// Redis today: they must keep opening and decoding.
const (
	goldenV2  = "021268747470733a2f2f6f702e6578616d706c6505616c696365057365735f31056170702d610c69642e746f6b656e2e736967026174064265617265720272741a7b22737562223a22616c696365222c202278223a223c263e227d0f010000000eea7abdf200000007ffff0f010000000eea7a93c20000000000780f010000000eea7aaeb000000000ffff0f010000000eea7aafe200000000ffff0f010000000eea7c003000000000ffff0f010000000eea7aaeaf00000000ffff"
	goldenBox = "01ca17cb146e293c2c06d75db2dc12e9236d9dfe2b11fba26e1ae3757e76341c70747ca0e34deccf253479fb2b6d84b1c3df66233237ab189fa72c5f608ee52a12b413980c9040c8cda42750a8d2d945961f0e95368fb497c5affca6abdf4998096b4dbe107984b97fa1975db92bf61b67e45783257cd3c6f1f935d741f2396b5466993e48a4b84786217f49fe8a4593aa8c0594a9d63af2915f7964288dffdda94052823d03a7bcb51aa4190860d85effa6efff85a6895a45d1ecf8746c140e13da30ad75e21e899c39ce4e3cc7e64a374ace166d4f909c70d77c9d"
)

func goldenKey() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenV1 is goldenV2 in layout 1: version 1, no IssuedAt.
func goldenV1(t testing.TB) []byte {
	b := bytes.Clone(mustHex(t, goldenV2))
	b[0] = 1
	issued, _ := goldenSession().IssuedAt.MarshalBinary()
	return b[:len(b)-1-len(issued)]
}

// sameSession compares every field, times with Equal and their offsets.
func sameSession(t *testing.T, what string, got, want *tokenstore.Session) {
	t.Helper()
	sameFields(t, what, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
}

func sameFields(t *testing.T, what string, gv, wv reflect.Value) {
	t.Helper()
	for i := range gv.NumField() {
		f := gv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			sameFields(t, what, gv.Field(i), wv.Field(i))
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		eq := reflect.DeepEqual(g, w)
		if gt, ok := g.(time.Time); ok {
			wt := w.(time.Time)
			_, go1 := gt.Zone()
			_, wo := wt.Zone()
			eq = gt.Equal(wt) && go1 == wo
		}
		if !eq {
			t.Errorf("%s: %s = %v, want %v", what, f.Name, g, w)
		}
	}
}

func TestRecordGolden(t *testing.T) {
	want := goldenSession()
	got, err := tokenstore.NewSealer([][]byte{goldenKey()})
	if err != nil {
		t.Fatal(err)
	}
	plain, idx, err := got.Open(mustHex(t, goldenBox), []byte("member"))
	if err != nil || idx != 0 {
		t.Fatalf("Open(golden box) = %d, %v", idx, err)
	}
	if !bytes.Equal(plain, mustHex(t, goldenV2)) {
		t.Fatal("the golden box does not hold the golden record")
	}
	enc, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, plain) {
		t.Errorf("MarshalBinary changed layout 2:\n got %x\nwant %x", enc, plain)
	}
	for name, b := range map[string][]byte{"layout 2": plain, "layout 1": goldenV1(t)} {
		s := &tokenstore.Session{ID: "kept"}
		if err := s.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := *want
		w.ID = "kept"
		if name == "layout 1" {
			w.IssuedAt = time.Time{}
		}
		sameSession(t, name, s, &w)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	idle := goldenSession()
	idle.IdleTimeout = 30 * time.Minute
	bound := goldenSession()
	bound.DPoPKey = []byte(`{"kty":"EC","d":"secret"}`)
	boundIdle := bound.Clone()
	boundIdle.IdleTimeout = time.Hour
	for name, s := range map[string]*tokenstore.Session{
		"every field":            goldenSession(),
		"idle timeout":           idle,
		"DPoP key":               bound,
		"DPoP key, idle timeout": boundIdle,
		"zero":                   {},
		"id only":                {ID: "not-stored"},
	} {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := &tokenstore.Session{}
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := *s
		want.ID = ""
		sameSession(t, name, got, &want)
		b[len(b)/2] ^= 0xff // the decoded session shares no memory with b
		if name == "every field" && !bytes.Equal(got.Claims, s.Claims) {
			t.Errorf("%s: the decoded claims share the input's memory", name)
		}
		if name == "DPoP key" && !bytes.Equal(got.DPoPKey, s.DPoPKey) {
			t.Errorf("%s: the decoded key shares the input's memory", name)
		}
	}
}

// TestRecordIdleLayout: a session with an IdleTimeout is written in layout
// 3 (layout 2 and the timeout); every other one stays in layout 2, which
// earlier versions read.
func TestRecordIdleLayout(t *testing.T) {
	s := goldenSession()
	s.IdleTimeout = 90 * time.Second
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustHex(t, goldenV2)
	if b[0] != 3 || !bytes.Equal(b[1:len(v2)], v2[1:]) {
		t.Fatalf("a session with an IdleTimeout encodes as\n%x\nwant 03, layout 2's fields, then the timeout", b)
	}
	if tail := b[len(v2):]; !bytes.Equal(tail, []byte{0x80, 0x90, 0xd8, 0xc6, 0x9e, 0x05}) {
		t.Errorf("the timeout encodes as %x, want the (zigzag) varint of 90 s in nanoseconds", tail)
	}
}

// TestRecordDPoPLayout: a session with a DPoP key is written in layout 4
// (layout 2, the idle timeout, zero or not, then the key); records without
// a key keep layouts 2 and 3, so older readers still read them.
func TestRecordDPoPLayout(t *testing.T) {
	s := goldenSession()
	s.DPoPKey = []byte("key")
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustHex(t, goldenV2)
	if b[0] != 4 || !bytes.Equal(b[1:len(v2)], v2[1:]) {
		t.Fatalf("a session with a DPoP key encodes as\n%x\nwant 04, layout 2's fields, then the timeout and the key", b)
	}
	if tail := b[len(v2):]; !bytes.Equal(tail, []byte{0, 3, 'k', 'e', 'y'}) {
		t.Errorf("timeout and key encode as %x, want 00 03 6b6579", tail)
	}
	c := s.Clone()
	c.DPoPKey[0] = 'x'
	if string(s.DPoPKey) != "key" {
		t.Error("Clone shares the DPoP key's memory")
	}
	s.ExpiresAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	var ee *tokenstore.ExpiredError
	if err := s.CheckLifetime(time.Now()); !errors.As(err, &ee) || ee.Session.DPoPKey != nil || ee.Session.RefreshToken != "" {
		t.Errorf("an ended session's report keeps its secrets: %v", err)
	}
}

func TestRecordMalformed(t *testing.T) {
	v2 := mustHex(t, goldenV2)
	for name, b := range map[string][]byte{
		"empty":                  nil,
		"unknown version":        append([]byte{5}, v2[1:]...),
		"truncated":              v2[:len(v2)-1],
		"trailing byte":          append(bytes.Clone(v2), 0),
		"huge length":            {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad time":               append(bytes.Clone(v2[:len(v2)-16]), 15, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"layout 3, no timeout":   append([]byte{3}, v2[1:]...),
		"layout 3, zero timeout": append(append([]byte{3}, v2[1:]...), 0),
		"layout 4, no key":       append(append([]byte{4}, v2[1:]...), 0),
		"layout 4, empty key":    append(append([]byte{4}, v2[1:]...), 0, 0),
		"layout 4, short key":    append(append([]byte{4}, v2[1:]...), 0, 3, 'k'),
	} {
		s := &tokenstore.Session{ID: "x", Subject: "kept"}
		if err := s.UnmarshalBinary(b); !errors.Is(err, tokenstore.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if s.Subject != "kept" || s.ID != "x" {
			t.Errorf("%s: a failed UnmarshalBinary changed the session", name)
		}
	}
}

// FuzzUnmarshalBinary: any bytes decode or fail with ErrMalformed, never a
// panic, and what decodes encodes back to a record that decodes the same.
func FuzzUnmarshalBinary(f *testing.F) {
	f.Add(mustHex(f, goldenV2))
	f.Add(goldenV1(f))
	f.Add([]byte{2})
	f.Add(append(append([]byte{4}, mustHex(f, goldenV2)[1:]...), 0, 3, 'k', 'e', 'y'))
	f.Add(append(append([]byte{3}, mustHex(f, goldenV2)[1:]...), 0x80, 0x90, 0xd8, 0xc6, 0x9e, 0x05))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &tokenstore.Session{}
		if err := s.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, tokenstore.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			return // a time MarshalBinary refuses (an offset it cannot keep)
		}
		again := &tokenstore.Session{}
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		sameSession(t, "re-decoded", again, s)
	})
}
