package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Record layout, before encryption (version 2): one version byte, then the
// string fields Issuer, Subject, SID, ClientID, IDToken, AccessToken,
// TokenType, RefreshToken and the Claims bytes, each as a uvarint length and
// the bytes, then the times AccessTokenExpiry, RefreshedAt, CreatedAt,
// LastSeen, ExpiresAt and IssuedAt, each as a uvarint length and
// time.MarshalBinary. Version 1 is the same without IssuedAt (read as
// zero). A binary layout, not JSON: encoding/json would compact and
// HTML-escape the raw claims, and they must come back byte for byte;
// MarshalBinary keeps nanoseconds and the zone offset.
const recordVersion = 2

func encodeSession(s *tokenstore.Session) ([]byte, error) {
	size := 64 + len(s.Issuer) + len(s.Subject) + len(s.SID) + len(s.ClientID) + len(s.IDToken) +
		len(s.AccessToken) + len(s.TokenType) + len(s.RefreshToken) + len(s.Claims)
	b := make([]byte, 0, size+5*16)
	b = append(b, recordVersion)
	for _, v := range [...]string{s.Issuer, s.Subject, s.SID, s.ClientID, s.IDToken, s.AccessToken, s.TokenType, s.RefreshToken} {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Claims)))
	b = append(b, s.Claims...)
	for _, t := range [...]time.Time{s.AccessTokenExpiry, s.RefreshedAt, s.CreatedAt, s.LastSeen, s.ExpiresAt, s.IssuedAt} {
		tb, err := t.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("redisstore: encoding a session time: %w", err)
		}
		b = binary.AppendUvarint(b, uint64(len(tb)))
		b = append(b, tb...)
	}
	return b, nil
}

var errCorrupt = errors.New("redisstore: malformed session record")

func decodeSession(b []byte) (*tokenstore.Session, error) {
	if len(b) == 0 || (b[0] != 1 && b[0] != recordVersion) {
		return nil, errCorrupt
	}
	version := b[0]
	b = b[1:]
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	s := &tokenstore.Session{}
	for _, p := range [...]*string{&s.Issuer, &s.Subject, &s.SID, &s.ClientID, &s.IDToken, &s.AccessToken, &s.TokenType, &s.RefreshToken} {
		v, ok := next()
		if !ok {
			return nil, errCorrupt
		}
		*p = string(v)
	}
	claims, ok := next()
	if !ok {
		return nil, errCorrupt
	}
	if len(claims) > 0 {
		s.Claims = append([]byte(nil), claims...)
	}
	times := []*time.Time{&s.AccessTokenExpiry, &s.RefreshedAt, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt, &s.IssuedAt}
	if version == 1 {
		times = times[:5]
	}
	for _, p := range times {
		v, ok := next()
		if !ok || p.UnmarshalBinary(v) != nil {
			return nil, errCorrupt
		}
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return s, nil
}

// Sealed layout: one version byte, a 4-byte key id (HMAC-SHA256 of a fixed
// label under the key, so it tells nothing about the key), a 12-byte random
// nonce, then the AES-256-GCM ciphertext and tag. The additional data binds
// a record to the key it is stored under, so a record copied to another
// session's key does not open.
const (
	sealVersion = 1
	keyIDLen    = 4
	sealHeader  = 1 + keyIDLen + 12
)

type sealer struct {
	aeads []cipher.AEAD
	ids   [][keyIDLen]byte
}

func newSealer(keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: Keys is empty: give at least one 32-byte key (session records hold refresh tokens and are encrypted at rest)", ErrConfig)
	}
	sl := &sealer{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: Keys[%d] is %d bytes, want 32 (AES-256): generate one with crypto/rand", ErrConfig, i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: Keys[%d]: %v", ErrConfig, i, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: Keys[%d]: %v", ErrConfig, i, err)
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte("multiapp/redisstore key id"))
		var id [keyIDLen]byte
		copy(id[:], m.Sum(nil))
		sl.aeads = append(sl.aeads, gcm)
		sl.ids = append(sl.ids, id)
	}
	return sl, nil
}

// seal encrypts plain under the first key.
func (sl *sealer) seal(plain, aad []byte) []byte {
	out := make([]byte, sealHeader, sealHeader+len(plain)+sl.aeads[0].Overhead())
	out[0] = sealVersion
	copy(out[1:], sl.ids[0][:])
	_, _ = rand.Read(out[1+keyIDLen : sealHeader]) // never fails (Go 1.24+)
	return sl.aeads[0].Seal(out, out[1+keyIDLen:sealHeader], plain, aad)
}

// open decrypts box with whichever key sealed it and reports that key's
// index in Keys.
func (sl *sealer) open(box, aad []byte) ([]byte, int, error) {
	if len(box) < sealHeader || box[0] != sealVersion {
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
