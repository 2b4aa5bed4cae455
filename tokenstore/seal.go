package tokenstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Errors of the Sealer.
var (
	// ErrKeys: NewSealer was given no key, or a key that is not 32 bytes.
	ErrKeys = errors.New("tokenstore: unusable sealing keys")
	// ErrUndecryptable: Open was given a box that none of the Sealer's keys
	// opens: it was sealed under a key since dropped, with other additional
	// data (moved to another record's place), or altered. A store that
	// meets one reports the session missing (wrapping ErrNotFound too): its
	// user signs in again instead of getting errors until it expires.
	ErrUndecryptable = errors.New("tokenstore: sealed record cannot be opened with any of the keys")
)

// Sealed layout: one version byte, a 4-byte key id (an HMAC-SHA256 of a
// fixed label under the key, so it tells nothing about the key), a 12-byte
// random nonce, then the AES-256-GCM ciphertext and its 16-byte tag.
const (
	sealVersion = 1
	keyIDLen    = 4
	sealHeader  = 1 + keyIDLen + 12

	// SealOverhead is how many bytes Seal adds to a value: version, key
	// id, nonce and tag.
	SealOverhead = sealHeader + 16
)

// keyIDLabel derives the key ids. It names redisstore because that store
// sealed records before the Sealer moved here: changing it would make
// every record sealed so far unreadable.
const keyIDLabel = "multiapp/redisstore key id"

// Sealer encrypts values at rest (session records hold refresh tokens,
// which are credentials) with AES-256-GCM and rotating keys: it seals
// under the first key and opens with whichever key sealed, so keys rotate
// without signing anyone out. To rotate, add the new key second on every
// instance, then move it first, then drop the old one once what it sealed
// has expired.
//
// The additional data given to Seal must be given again to Open: bind a
// value to where it is stored (the record's key, e.g. HashID of the session
// id), so that a value copied to another record's place does not open.
//
// A Sealer is safe for concurrent use. A random 96-bit nonce per Seal keeps
// a key safe for about 2^32 seals; rotate keys well before that.
type Sealer struct {
	aeads []cipher.AEAD
	ids   [][keyIDLen]byte
}

// NewSealer returns a Sealer of keys, 32 random bytes each (AES-256): the
// first seals, every one opens. It fails with an error wrapping ErrKeys
// when keys is empty or a key is not 32 bytes.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key: give at least one 32-byte key (session records hold refresh tokens and are encrypted at rest)", ErrKeys)
	}
	sl := &Sealer{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want 32 (AES-256): generate one with crypto/rand", ErrKeys, i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrKeys, i, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrKeys, i, err)
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(keyIDLabel))
		var id [keyIDLen]byte
		copy(id[:], m.Sum(nil))
		sl.aeads = append(sl.aeads, gcm)
		sl.ids = append(sl.ids, id)
	}
	return sl, nil
}

// Seal encrypts plain under the first key, bound to aad, and returns the
// sealed box: len(plain) + SealOverhead bytes.
func (sl *Sealer) Seal(plain, aad []byte) []byte {
	out := make([]byte, sealHeader, len(plain)+SealOverhead)
	out[0] = sealVersion
	copy(out[1:], sl.ids[0][:])
	_, _ = rand.Read(out[1+keyIDLen : sealHeader]) // never fails (Go 1.24+)
	return sl.aeads[0].Seal(out, out[1+keyIDLen:sealHeader], plain, aad)
}

// Open decrypts a box made by Seal with the same aad and returns the plain
// value and the index of the key that sealed it: above zero, the box was
// sealed under an older key, and a store may seal it again under the first
// one. A box no key opens gives ErrUndecryptable.
func (sl *Sealer) Open(box, aad []byte) (plain []byte, key int, err error) {
	if len(box) < SealOverhead || box[0] != sealVersion {
		return nil, -1, ErrUndecryptable
	}
	nonce, ct := box[1+keyIDLen:sealHeader], box[sealHeader:]
	for i, id := range sl.ids {
		if string(id[:]) != string(box[1:1+keyIDLen]) {
			continue
		}
		if plain, err := sl.aeads[i].Open(nil, nonce, ct, aad); err == nil {
			return plain, i, nil
		}
	}
	return nil, -1, ErrUndecryptable
}
