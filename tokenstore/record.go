package tokenstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrMalformed: UnmarshalBinary was given bytes that are not a session
// record of any layout this package reads. A store that meets one should
// report the session missing (wrapping ErrNotFound too), as for a record it
// cannot decrypt: its user signs in again.
var ErrMalformed = errors.New("tokenstore: malformed session record")

// recordVersion is the layout MarshalBinary writes.
//
// Layout 2: one version byte, then the string fields Issuer, Subject, SID,
// ClientID, IDToken, AccessToken, TokenType, RefreshToken and the Claims
// bytes, each as a uvarint length and the bytes, then the times Expiry (of
// the access token), RefreshedAt, CreatedAt, LastSeen, ExpiresAt and
// IssuedAt, each as a uvarint length and time.MarshalBinary. Layout 1 is
// the same without IssuedAt (read as zero). Layout 3 is layout 2 followed
// by IdleTimeout in nanoseconds as a varint; MarshalBinary writes it only
// for a session with an IdleTimeout, so that a version of this package
// that reads layout 2 only still reads every other record. Layout 4 is
// layout 2 followed by IdleTimeout as a varint (zero allowed) and DPoPKey
// as a uvarint length and the bytes (not empty); it is written only for a
// session with a DPoP key, so every other record keeps its layout.
//
// Binary, not JSON: encoding/json would compact and HTML-escape the raw
// claims, which must come back byte for byte, and MarshalBinary keeps a
// time's nanoseconds and zone offset. A change of layout takes a new
// version, and UnmarshalBinary keeps reading every earlier one: records
// outlive the code that wrote them.
const (
	recordVersion     = 2
	recordVersionIdle = 3
	recordVersionDPoP = 4
)

// MarshalBinary encodes the session record for a store to keep as bytes
// (implementing encoding.BinaryMarshaler): every field but ID, which a
// store never persists (it files the record under HashID(ID)). The record
// holds the refresh token, a credential: seal it (Sealer) before it leaves
// the process.
func (s *Session) MarshalBinary() ([]byte, error) {
	size := 64 + len(s.Issuer) + len(s.Subject) + len(s.SID) + len(s.ClientID) + len(s.IDToken) +
		len(s.AccessToken) + len(s.TokenType) + len(s.RefreshToken) + len(s.Claims) + len(s.DPoPKey)
	b := make([]byte, 0, size+6*16+3*binary.MaxVarintLen64)
	version := byte(recordVersion)
	switch {
	case len(s.DPoPKey) > 0:
		version = recordVersionDPoP
	case s.IdleTimeout != 0:
		version = recordVersionIdle
	}
	b = append(b, version)
	for _, v := range [...]string{s.Issuer, s.Subject, s.SID, s.ClientID, s.IDToken, s.AccessToken, s.TokenType, s.RefreshToken} {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Claims)))
	b = append(b, s.Claims...)
	for _, t := range [...]time.Time{s.Tokens.Expiry, s.RefreshedAt, s.CreatedAt, s.LastSeen, s.ExpiresAt, s.IssuedAt} {
		tb, err := t.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("tokenstore: encoding a session time: %w", err)
		}
		b = binary.AppendUvarint(b, uint64(len(tb)))
		b = append(b, tb...)
	}
	if version >= recordVersionIdle {
		b = binary.AppendVarint(b, int64(s.IdleTimeout))
	}
	if version == recordVersionDPoP {
		b = binary.AppendUvarint(b, uint64(len(s.DPoPKey)))
		b = append(b, s.DPoPKey...)
	}
	return b, nil
}

// UnmarshalBinary decodes a record written by MarshalBinary, of this
// version or an earlier one (implementing encoding.BinaryUnmarshaler). It
// sets every field but ID, which it leaves as it was, and keeps no
// reference to b. Bytes of no known layout give an error wrapping
// ErrMalformed, and s is then unchanged.
func (s *Session) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] < 1 || b[0] > recordVersionDPoP {
		return ErrMalformed
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
	d := Session{ID: s.ID, Tokens: Tokens{parsed: new(claimsCache)}}
	for _, p := range [...]*string{&d.Issuer, &d.Subject, &d.SID, &d.ClientID, &d.IDToken, &d.AccessToken, &d.TokenType, &d.RefreshToken} {
		v, ok := next()
		if !ok {
			return ErrMalformed
		}
		*p = string(v)
	}
	claims, ok := next()
	if !ok {
		return ErrMalformed
	}
	if len(claims) > 0 {
		d.Claims = append([]byte(nil), claims...)
	}
	times := []*time.Time{&d.Tokens.Expiry, &d.RefreshedAt, &d.CreatedAt, &d.LastSeen, &d.ExpiresAt, &d.IssuedAt}
	if version == 1 {
		times = times[:5]
	}
	for _, p := range times {
		v, ok := next()
		if !ok || p.UnmarshalBinary(v) != nil {
			return ErrMalformed
		}
	}
	if version >= recordVersionIdle {
		idle, k := binary.Varint(b)
		if k <= 0 || (idle == 0 && version == recordVersionIdle) {
			return ErrMalformed // layout 3 is written for an IdleTimeout only
		}
		d.IdleTimeout = time.Duration(idle)
		b = b[k:]
	}
	if version == recordVersionDPoP {
		key, ok := next()
		if !ok || len(key) == 0 {
			return ErrMalformed // layout 4 is written for a DPoP key only
		}
		d.DPoPKey = append([]byte(nil), key...)
	}
	if len(b) != 0 {
		return ErrMalformed
	}
	*s = d
	return nil
}
