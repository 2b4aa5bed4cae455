package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Two apps share one sign-in at the OP; a back-channel logout of that OP
// session signs the user out of both, and a login for it that was still in
// flight cannot be stored afterwards.
func Example() {
	ctx := context.Background()
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()

	const issuer = "https://op.example"
	login := func(app string) (string, error) {
		// After the callback validated the ID token (sub "alice", sid "op-1"):
		s := &tokenstore.Session{
			ID:        tokenstore.NewID(), // the browser keeps this, in a sealed cookie
			Issuer:    issuer,
			Subject:   "alice",
			SID:       "op-1",
			ClientID:  app,
			ExpiresAt: time.Now().Add(8 * time.Hour),
		}
		return s.ID, store.Create(ctx, s)
	}
	idA, _ := login("app-a")
	idB, _ := login("app-b")

	// On each request, the app finds its session by the cookie's id.
	s, err := store.Get(ctx, idA)
	fmt.Println(s.ClientID, s.Subject, s.SID, err)

	// The OP posts a logout token for sid "op-1". The receiver first revokes
	// the sid, then deletes its sessions: in that order no racing login or
	// refresh can leave a session behind.
	_ = store.RevokeSID(ctx, issuer, "op-1", 10*time.Minute)
	n, _ := store.DeleteBySID(ctx, issuer, "op-1", "alice")
	fmt.Println("sessions ended:", n)

	for _, id := range []string{idA, idB} {
		_, err := store.Get(ctx, id)
		fmt.Println(errors.Is(err, tokenstore.ErrNotFound))
	}
	_, err = login("app-c")
	fmt.Println(errors.Is(err, tokenstore.ErrRevoked))

	// Output:
	// app-a alice op-1 <nil>
	// sessions ended: 2
	// true
	// true
	// true
}

// A refresh takes the session's lock, so that of several requests needing a
// refresh at once only one spends the refresh token; the others wait and then
// see the refreshed session.
func ExampleMemory_Lock() {
	ctx := context.Background()
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()

	s := &tokenstore.Session{ID: tokenstore.NewID(), Issuer: "https://op.example", Subject: "alice",
		Tokens:    tokenstore.Tokens{AccessToken: "old", Expiry: time.Now().Add(-time.Minute)},
		ExpiresAt: time.Now().Add(time.Hour)}
	_ = store.Create(ctx, s)

	unlock, err := store.Lock(ctx, s.ID)
	if err != nil {
		return // ctx ended while waiting
	}
	defer unlock()
	cur, err := store.Get(ctx, s.ID) // read again under the lock
	if err != nil {
		return // logged out meanwhile
	}
	if time.Now().After(cur.Tokens.Expiry) {
		cur.AccessToken = "new" // from the token endpoint
		cur.Tokens.Expiry = time.Now().Add(time.Hour)
		if err := store.Update(ctx, cur); err != nil {
			return // ErrNotFound or ErrRevoked: the user was logged out meanwhile
		}
	}
	cur, _ = store.Get(ctx, s.ID)
	fmt.Println(cur.AccessToken)
	// Output: new
}

// A backend stores records as sealed bytes: encoded by the record codec,
// encrypted by a Sealer, bound to the key the record is filed under.
func ExampleSealer() {
	key := make([]byte, 32) // 32 random bytes from crypto/rand, the same on every instance
	sealer, err := tokenstore.NewSealer([][]byte{key})
	if err != nil {
		panic(err)
	}
	s := &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: "https://op.example", Subject: "alice",
		Tokens: tokenstore.Tokens{RefreshToken: "rt-secret", Claims: []byte(`{"sub":"alice"}`)},
	}

	// Write: the record (without its ID), sealed and bound to its key.
	name := tokenstore.HashID(s.ID)
	plain, _ := s.MarshalBinary()
	stored := sealer.Seal(plain, []byte(name))

	// Read, with the id from the browser's cookie.
	plain, _, err = sealer.Open(stored, []byte(tokenstore.HashID(s.ID)))
	got := &tokenstore.Session{ID: s.ID}
	if err == nil {
		err = got.UnmarshalBinary(plain)
	}
	fmt.Println(got.Subject, got.RefreshToken, err)

	// The same bytes under another session's key do not open.
	_, _, err = sealer.Open(stored, []byte(tokenstore.HashID(tokenstore.NewID())))
	fmt.Println(errors.Is(err, tokenstore.ErrUndecryptable))

	// Output:
	// alice rt-secret <nil>
	// true
}

// The used states of logins, checked through the store, so that a login
// completes once across every instance.
func ExampleOneTimeKeys() {
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()
	ctx := context.Background()
	var keys tokenstore.OneTimeKeys = store // the only role a replay check needs
	for range 2 {
		first, err := keys.UseOnce(ctx, tokenstore.LoginStates, "https://op.example", "state-value", 10*time.Minute)
		fmt.Println(first, err)
	}
	// Output:
	// true <nil>
	// false <nil>
}
