package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

const iss = "https://op.example"

func session(sid, sub string) *tokenstore.Session {
	now := time.Now()
	return &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: iss, Subject: sub, SID: sid, ClientID: "webc_a",
		Tokens: tokenstore.Tokens{
			IDToken: "id-token-" + tokenstore.NewID(), AccessToken: "access-token-" + tokenstore.NewID(), TokenType: "Bearer",
			Expiry: now.Add(5 * time.Minute), RefreshToken: "refresh-token-" + tokenstore.NewID(),
			Claims: json.RawMessage(`{"sub":"` + sub + `","sid":"` + sid + `"}`),
		},
		CreatedAt: now, LastSeen: now, RefreshedAt: now, ExpiresAt: now.Add(time.Hour),
	}
}

func mustCreate(t *testing.T, s *redisstore.Store, ss ...*tokenstore.Session) {
	t.Helper()
	for _, sess := range ss {
		if err := s.Create(context.Background(), sess); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	for name, opts := range map[string]redisstore.Options{
		"no client":      {Keys: [][]byte{key1}},
		"no keys":        {Client: rdb},
		"short key":      {Client: rdb, Keys: [][]byte{key1[:16]}},
		"one short key":  {Client: rdb, Keys: [][]byte{key1, []byte("short")}},
		"tiny lease":     {Client: rdb, Keys: [][]byte{key1}, LockLease: time.Millisecond},
		"negative poll":  {Client: rdb, Keys: [][]byte{key1}, LockPoll: -time.Second},
		"negative lease": {Client: rdb, Keys: [][]byte{key1}, LockLease: -time.Second},
	} {
		if _, err := redisstore.New(ctx, opts); !errors.Is(err, redisstore.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestNewWhenRedisIsUnreachable: a clear error at start-up, naming the
// address, that callers can tell apart with errors.Is.
func TestNewWhenRedisIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	start := time.Now()
	_, err = redisstore.New(context.Background(), redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	if !errors.Is(err, tokenstore.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("New with Redis down: %v, want ErrUnavailable naming %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %v to fail", d)
	}
	t.Logf("error: %v", err)
}

// TestWrongKey: a store whose keys cannot open what is already in Redis
// refuses to start, instead of reporting every session as missing.
func TestWrongKey(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	a := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	mustCreate(t, a, session("sid-1", "alice"))

	_, err := redisstore.New(context.Background(), redisstore.Options{Client: rdb, Keys: [][]byte{key2}})
	if !errors.Is(err, redisstore.ErrWrongKey) {
		t.Fatalf("New with another key: %v, want ErrWrongKey", err)
	}
	t.Logf("error: %v", err)
	// Another prefix is another application's data: any key goes there.
	newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2}, Prefix: "other"})
}

// TestKeyRotation follows the documented rotation: add the new key second,
// move it first, drop the old one. No session becomes unreadable while both
// keys are listed.
func TestKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	old := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	s1 := session("sid-1", "alice")
	mustCreate(t, old, s1)

	both := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1, key2}}) // step 1: new key second
	if _, err := both.Get(ctx, s1.ID); err != nil {
		t.Fatalf("step 1 reading an old record: %v", err)
	}
	newFirst := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2, key1}}) // step 2
	s2 := session("sid-2", "bob")
	mustCreate(t, newFirst, s2)
	for name, st := range map[string]*redisstore.Store{"old+new": both, "new+old": newFirst} {
		for _, s := range []*tokenstore.Session{s1, s2} {
			if got, err := st.Get(ctx, s.ID); err != nil || got.RefreshToken != s.RefreshToken {
				t.Errorf("%s reading %s: %v", name, s.Subject, err)
			}
		}
	}
	// Step 3, too early: s1 was sealed with the dropped key. Its user is
	// signed out (ErrNotFound), and the reason is visible.
	onlyNew := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2}})
	_, err := onlyNew.Get(ctx, s1.ID)
	if !errors.Is(err, tokenstore.ErrNotFound) || !errors.Is(err, redisstore.ErrUndecryptable) {
		t.Errorf("record sealed with a dropped key: %v, want ErrNotFound and ErrUndecryptable", err)
	}
	if got, err := onlyNew.Get(ctx, s2.ID); err != nil || got.RefreshToken != s2.RefreshToken {
		t.Errorf("new key only, record sealed with it: %v", err)
	}
	// The key check moved to the new key at step 2: an instance with only
	// the old key would write records the others cannot read, so it cannot
	// start.
	if _, err := redisstore.New(ctx, redisstore.Options{Client: rdb, Keys: [][]byte{key1}}); !errors.Is(err, redisstore.ErrWrongKey) {
		t.Errorf("old key only after the rotation: %v, want ErrWrongKey", err)
	}
	if _, err := redisstore.New(ctx, redisstore.Options{Client: rdb, Keys: [][]byte{key3}}); !errors.Is(err, redisstore.ErrWrongKey) {
		t.Errorf("unrelated key: %v, want ErrWrongKey", err)
	}
}

// TestEncryptedAtRest: nothing in Redis shows a token, a claim or a raw
// session id, and a record copied under another session's key does not
// open there.
func TestEncryptedAtRest(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	a, b := session("ses_secret", "usr_secret"), session("", "usr_other")
	a.Claims = json.RawMessage(`{"email":"alice@secret.example"}`)
	mustCreate(t, st, a, b)
	unlock, err := st.Lock(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti_secret", time.Hour); err != nil {
		t.Fatal(err)
	}

	var raw bytes.Buffer
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		raw.WriteString(k + "\n")
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			raw.WriteString(v + "\n")
		case "hash":
			m, _ := rdb.HGetAll(ctx, k).Result()
			for f, v := range m {
				raw.WriteString(f + "=" + v + "\n")
			}
		case "zset":
			m, _ := rdb.ZRange(ctx, k, 0, -1).Result()
			raw.WriteString(strings.Join(m, "\n") + "\n")
		}
	}
	for _, secret := range []string{a.ID, b.ID, a.AccessToken, a.RefreshToken, a.IDToken, b.RefreshToken,
		"alice@secret.example", "ses_secret", "usr_secret", "jti_secret", "Bearer", iss} {
		if bytes.Contains(raw.Bytes(), []byte(secret)) {
			t.Errorf("Redis holds %q in the clear", secret)
		}
	}
	if !bytes.Contains(raw.Bytes(), []byte(tokenstore.HashID(a.ID))) {
		t.Error("sessions are not keyed by HashID")
	}

	// Swap: a's sealed record under b's key.
	d, err := rdb.Get(ctx, st.Base()+"s:"+tokenstore.HashID(a.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, st.Base()+"s:"+tokenstore.HashID(b.ID), d, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, b.ID); !errors.Is(err, redisstore.ErrUndecryptable) {
		t.Errorf("record moved to another session's key: %v, want ErrUndecryptable", err)
	}
}

// TestRecordRoundTrip: every field comes back exactly, times with their
// nanoseconds and zone, claims byte for byte (whitespace and & included).
func TestRecordRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, redisstore.Options{Client: srv.Client(t, 0), Keys: [][]byte{key1}})
	ctx := context.Background()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	s := session("sid-1", "alice")
	s.CreatedAt = time.Date(2031, 2, 3, 4, 5, 6, 789012345, zone)
	s.LastSeen = time.Time{}
	s.RefreshedAt = time.Unix(0, 0)
	s.Tokens.Expiry = time.Date(2031, 2, 3, 4, 5, 6, 1, time.UTC)
	s.IssuedAt = time.Date(2031, 2, 3, 4, 5, 0, 0, time.UTC)
	s.Claims = json.RawMessage("{ \"url\": \"https://x.example/?a=1&b=<2>\",\n \"\u00e9\": true }")
	s.TokenType = ""
	mustCreate(t, st, s)
	got, err := st.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Claims, s.Claims) {
		t.Errorf("claims %q, want %q", got.Claims, s.Claims)
	}
	for name, pair := range map[string][2]time.Time{
		"CreatedAt": {got.CreatedAt, s.CreatedAt}, "LastSeen": {got.LastSeen, s.LastSeen},
		"RefreshedAt": {got.RefreshedAt, s.RefreshedAt}, "Tokens.Expiry": {got.Tokens.Expiry, s.Tokens.Expiry},
		"ExpiresAt": {got.ExpiresAt, s.ExpiresAt}, "IssuedAt": {got.IssuedAt, s.IssuedAt},
	} {
		if !pair[0].Equal(pair[1]) || pair[0].IsZero() != pair[1].IsZero() {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	if _, off := got.CreatedAt.Zone(); off != 5*3600+1800 {
		t.Errorf("CreatedAt zone offset %d", off)
	}
	if got.ID != s.ID || got.TokenType != "" || got.RefreshToken != s.RefreshToken {
		t.Errorf("got %+v", got)
	}
}

// TestIndexHygiene: index entries of expired sessions are dropped by later
// writes, indexes expire with their last session, and a session without
// ExpiresAt keeps its indexes.
func TestIndexHygiene(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	ctx := context.Background()
	sidIdx := st.Base() + "x:" + st.PairHash(iss, "sid-1")
	subIdx := st.Base() + "u:" + st.PairHash(iss, "alice")
	for range 5 {
		s := session("sid-1", "alice")
		s.ExpiresAt = time.Now().Add(300 * time.Millisecond)
		mustCreate(t, st, s)
	}
	if n, _ := rdb.ZCard(ctx, sidIdx).Result(); n != 5 {
		t.Fatalf("sid index has %d members, want 5", n)
	}
	if ttl, _ := rdb.PTTL(ctx, sidIdx).Result(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Errorf("sid index TTL %v, want the sessions' (at most 300ms)", ttl)
	}
	time.Sleep(350 * time.Millisecond)
	if n, _ := rdb.Exists(ctx, sidIdx, subIdx).Result(); n != 0 {
		t.Errorf("%d indexes outlived all their sessions", n)
	}

	for range 5 {
		s := session("sid-1", "alice")
		s.ExpiresAt = time.Now().Add(200 * time.Millisecond)
		mustCreate(t, st, s)
	}
	forever := session("sid-1", "alice")
	forever.ExpiresAt = time.Time{}
	mustCreate(t, st, forever)
	time.Sleep(250 * time.Millisecond)
	mustCreate(t, st, session("sid-1", "alice")) // a write prunes
	if n, _ := rdb.ZCard(ctx, sidIdx).Result(); n != 2 {
		t.Errorf("sid index has %d members after a write, want 2 (expired ones dropped)", n)
	}
	if ttl, _ := rdb.PTTL(ctx, sidIdx).Result(); ttl != -1 {
		t.Errorf("index of a session without expiry has TTL %v, want none", ttl)
	}
	if ttl, _ := rdb.PTTL(ctx, st.Base()+"s:"+tokenstore.HashID(forever.ID)).Result(); ttl != -1 {
		t.Errorf("session without ExpiresAt has TTL %v", ttl)
	}
	if n, err := st.DeleteBySID(ctx, iss, "sid-1", ""); err != nil || n != 2 {
		t.Errorf("DeleteBySID = %d, %v; want 2", n, err)
	}
	if n, _ := rdb.Exists(ctx, sidIdx, subIdx).Result(); n != 0 {
		t.Errorf("%d indexes left after their sessions were deleted", n)
	}
}

// TestLogoutRaceAcrossInstances: one instance refreshes a session in a
// loop (Lock, Get, Update) while another receives the back-channel logout
// (RevokeSID, DeleteBySID). Once the logout returned the session is gone
// for good, on both.
func TestLogoutRaceAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0)
	a := newStore(t, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}})
	b := newStore(t, redisstore.Options{Client: srv.NewClient(t, 0), Keys: [][]byte{key1}})
	ctx := context.Background()
	for round := range 20 {
		sid := fmt.Sprintf("sid-%d", round)
		sessions := []*tokenstore.Session{session(sid, "alice"), session(sid, "alice"), session("", "alice")}
		mustCreate(t, a, sessions...)
		var loggedOut atomic.Bool
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Go(func() {
				for i := 0; ; i++ {
					unlock, err := a.Lock(ctx, s.ID)
					if err != nil {
						t.Error(err)
						return
					}
					cur, err := a.Get(ctx, s.ID)
					if errors.Is(err, tokenstore.ErrNotFound) {
						unlock()
						return
					}
					after := loggedOut.Load()
					next := cur.Clone()
					next.RefreshToken = fmt.Sprintf("rt-%d", i)
					err = a.Update(ctx, next)
					unlock()
					switch {
					case err == nil && after:
						t.Errorf("Update succeeded after the logout returned")
						return
					case errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrRevoked):
						return
					case err != nil:
						t.Error(err)
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		if err := b.RevokeSID(ctx, iss, sid, time.Hour); err != nil {
			t.Fatal(err)
		}
		n, err := b.DeleteBySID(ctx, iss, sid, "alice")
		if err != nil || n != 3 {
			t.Fatalf("DeleteBySID = %d, %v; want 3", n, err)
		}
		loggedOut.Store(true)
		wg.Wait()
		for _, s := range sessions {
			for _, st := range []*redisstore.Store{a, b} {
				if _, err := st.Get(ctx, s.ID); !errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("round %d: session alive after the logout: %v", round, err)
				}
			}
		}
	}
}
