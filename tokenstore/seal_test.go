package tokenstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func newKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func mustSealer(t *testing.T, keys ...[]byte) *tokenstore.Sealer {
	t.Helper()
	sl, err := tokenstore.NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

func TestSealerKeys(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short":     {make([]byte, 31)},
		"long":      {make([]byte, 33)},
		"one short": {newKey(), make([]byte, 16)},
	} {
		if _, err := tokenstore.NewSealer(keys); !errors.Is(err, tokenstore.ErrKeys) {
			t.Errorf("%s: %v, want ErrKeys", name, err)
		}
	}
}

func TestSealerOpens(t *testing.T) {
	sl := mustSealer(t, newKey())
	plain := []byte("a session record")
	box := sl.Seal(plain, []byte("where"))
	if len(box) != len(plain)+tokenstore.SealOverhead {
		t.Errorf("box of %d bytes, want %d + SealOverhead", len(box), len(plain))
	}
	if bytes.Contains(box, plain) {
		t.Error("the box shows the plain text")
	}
	if again := sl.Seal(plain, []byte("where")); bytes.Equal(again, box) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	got, idx, err := sl.Open(box, []byte("where"))
	if err != nil || idx != 0 || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %d, %v", got, idx, err)
	}
}

func TestSealerRefuses(t *testing.T) {
	k := newKey()
	sl := mustSealer(t, k)
	box := sl.Seal([]byte("a session record"), []byte("here"))
	flip := func(i int) []byte { b := bytes.Clone(box); b[i] ^= 1; return b }
	for name, tc := range map[string]struct {
		sl  *tokenstore.Sealer
		box []byte
		aad string
	}{
		"other place":   {sl, box, "there"},
		"other key":     {mustSealer(t, newKey()), box, "here"},
		"version":       {sl, flip(0), "here"},
		"key id":        {sl, flip(1), "here"},
		"nonce":         {sl, flip(8), "here"},
		"ciphertext":    {sl, flip(len(box) - 20), "here"},
		"tag":           {sl, flip(len(box) - 1), "here"},
		"truncated":     {sl, box[:tokenstore.SealOverhead-1], "here"},
		"empty":         {sl, nil, "here"},
		"dropped key":   {mustSealer(t, newKey(), newKey()), box, "here"},
		"same key, far": {mustSealer(t, newKey(), k), box, "there"},
	} {
		if _, _, err := tc.sl.Open(tc.box, []byte(tc.aad)); !errors.Is(err, tokenstore.ErrUndecryptable) {
			t.Errorf("%s: %v, want ErrUndecryptable", name, err)
		}
	}
}

// TestSealerRotation follows the documented rotation: add the new key
// second, move it first, drop the old one.
func TestSealerRotation(t *testing.T) {
	old, next := newKey(), newKey()
	aad := []byte("member")
	sealedOld := mustSealer(t, old).Seal([]byte("old"), aad)

	both := mustSealer(t, old, next)
	if _, idx, err := both.Open(sealedOld, aad); err != nil || idx != 0 {
		t.Fatalf("new key added second: Open = %d, %v", idx, err)
	}
	moved := mustSealer(t, next, old)
	if _, idx, err := moved.Open(sealedOld, aad); err != nil || idx != 1 {
		t.Fatalf("new key moved first: Open = %d, %v; want the old key's index 1 (reseal)", idx, err)
	}
	resealed := moved.Seal([]byte("old"), aad)
	if _, _, err := mustSealer(t, next).Open(resealed, aad); err != nil {
		t.Fatalf("old key dropped: resealed box: %v", err)
	}
	if _, _, err := mustSealer(t, next).Open(sealedOld, aad); !errors.Is(err, tokenstore.ErrUndecryptable) {
		t.Errorf("old key dropped: box sealed under it: %v, want ErrUndecryptable", err)
	}
}
