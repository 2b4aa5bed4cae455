package tokenstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

type decoded struct{ Sub string }

// counter is a claims parser that counts its calls.
type counter struct{ n atomic.Int32 }

func (c *counter) parse(b []byte) (*decoded, error) {
	c.n.Add(1)
	var d decoded
	if err := json.Unmarshal(b, &struct {
		Sub *string `json:"sub"`
	}{&d.Sub}); err != nil {
		return nil, err
	}
	return &d, nil
}

func claimed(sub string) *tokenstore.Session {
	return &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: "https://op.example", Subject: sub,
		Tokens:    tokenstore.Tokens{AccessToken: "at", Claims: json.RawMessage(`{"sub":"` + sub + `"}`)},
		ExpiresAt: time.Now().Add(time.Hour),
	}
}

// TestParsedClaimsOncePerRecord: the copies a memory store returns of one
// record share its parsed claims, so a session read on every request is
// parsed once.
func TestParsedClaimsOncePerRecord(t *testing.T) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer m.Close()
	ctx := context.Background()
	s := claimed("alice")
	mustCreate(t, m, s)
	var c counter
	var first *decoded
	for i := range 5 {
		got, err := m.Get(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		d, err := tokenstore.ParsedClaims(&got.Tokens, c.parse)
		if err != nil || d.Sub != "alice" {
			t.Fatalf("ParsedClaims = %+v, %v", d, err)
		}
		if i == 0 {
			first = d
		} else if d != first {
			t.Error("a later Get parsed the claims again")
		}
	}
	if n := c.n.Load(); n != 1 {
		t.Errorf("parsed %d times in 5 Gets, want 1", n)
	}

	// An update replaces the token set: its claims are parsed anew.
	u := claimed("alice")
	u.ID = s.ID
	u.Claims = json.RawMessage(`{"sub":"alice","refreshed":true}`)
	if err := m.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Get(ctx, s.ID)
	if d, _ := tokenstore.ParsedClaims(&got.Tokens, c.parse); d == first || c.n.Load() != 2 {
		t.Errorf("after Update: parsed %d times in all, same value %v; want 2 and a new value", c.n.Load(), d == first)
	}
}

// TestSetParsedClaims: claims decoded by the caller (the relying party
// validating the ID token) travel with the record into the store.
func TestSetParsedClaims(t *testing.T) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer m.Close()
	s := claimed("alice")
	seeded := &decoded{Sub: "alice"}
	tokenstore.SetParsedClaims(&s.Tokens, seeded)
	mustCreate(t, m, s)
	got, err := m.Get(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var c counter
	if d, _ := tokenstore.ParsedClaims(&got.Tokens, c.parse); d != seeded || c.n.Load() != 0 {
		t.Errorf("ParsedClaims = %p after %d parses, want the value set (%p) and none", d, c.n.Load(), seeded)
	}
}

// TestParsedClaimsFollowsTheBytes: the cache answers only for the bytes it
// was decoded from, and only in the type asked for; errors are not kept.
func TestParsedClaimsFollowsTheBytes(t *testing.T) {
	s := claimed("alice")
	var c counter
	a, _ := tokenstore.ParsedClaims(&s.Tokens, c.parse)
	copyOf := s.Clone()
	copyOf.Claims = json.RawMessage(`{"sub":"bob"}`)
	if b, _ := tokenstore.ParsedClaims(&copyOf.Tokens, c.parse); b.Sub != "bob" {
		t.Errorf("after the claims changed: %q, want bob", b.Sub)
	}
	copyOf.Claims[10] = 'x' // in place: {"sub":"box"}
	if b, _ := tokenstore.ParsedClaims(&copyOf.Tokens, c.parse); b.Sub != "box" {
		t.Errorf("after the claims changed in place: %q, want box", b.Sub)
	}
	if again, _ := tokenstore.ParsedClaims(&s.Tokens, c.parse); again.Sub != "alice" || a.Sub != "alice" {
		t.Errorf("the original: %q (first %q), want alice", again.Sub, a.Sub)
	}

	asMap := func(b []byte) (map[string]any, error) {
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	if m, err := tokenstore.ParsedClaims(&s.Tokens, asMap); err != nil || m["sub"] != "alice" {
		t.Errorf("another type: %v, %v", m, err)
	}

	bad := claimed("x")
	bad.Claims = json.RawMessage(`not json`)
	for range 2 {
		if _, err := tokenstore.ParsedClaims(&bad.Tokens, c.parse); err == nil {
			t.Fatal("no error for claims that do not parse")
		}
	}
	fails := func([]byte) (*decoded, error) { return nil, errors.New("no") }
	if _, err := tokenstore.ParsedClaims(&bad.Tokens, fails); err == nil {
		t.Error("an error was cached as a value")
	}
}

// TestParsedClaimsConcurrent: copies from a store and decoded records may
// be parsed from many goroutines at once (run with -race).
func TestParsedClaimsConcurrent(t *testing.T) {
	m := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer m.Close()
	s := claimed("alice")
	mustCreate(t, m, s)
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	decodedRec := &tokenstore.Session{}
	if err := decodedRec.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	var c counter
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := m.Get(context.Background(), s.ID)
			if err != nil {
				t.Error(err)
				return
			}
			for _, tk := range []*tokenstore.Tokens{&got.Tokens, &decodedRec.Tokens} {
				if d, err := tokenstore.ParsedClaims(tk, c.parse); err != nil || d.Sub != "alice" {
					t.Errorf("ParsedClaims = %+v, %v", d, err)
				}
			}
		})
	}
	wg.Wait()
}
