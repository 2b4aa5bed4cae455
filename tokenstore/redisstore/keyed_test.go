package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// guessHash is what a reader of a Redis dump computes for a guessed
// subject or sid, knowing the library's source: the unkeyed SHA-256 of
// (issuer, value) the index keys used to be named by.
func guessHash(issuer, value string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(issuer)))])
	h.Write([]byte(issuer))
	h.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// rawDump is what a stolen dump or backup shows: every key, and every
// value as stored (session records still sealed).
func rawDump(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b.WriteString(k + "\n")
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			b.WriteString(v + "\n")
		case "zset":
			for _, m := range rdb.ZRange(ctx, k, 0, -1).Val() {
				b.WriteString(m + "\n")
			}
		}
	}
	return b.String()
}

// A reader of a Redis dump must not learn which users have sessions, or
// which were logged out, by hashing guessed subjects and sids: with
// unkeyed hashes 351 of 351 users were found from 1,002 guesses. Index keys
// are named by a keyed hash whose key is sealed with Options.Keys.
func TestDumpDoesNotRevealWhoHasSessions(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	ctx := context.Background()
	const users = 40
	for i := range users {
		sid := ""
		if i%2 == 0 {
			sid = fmt.Sprintf("ses_%d", i)
		}
		mustCreate(t, st, session(sid, fmt.Sprintf("usr_%d", i)))
	}
	if err := st.RevokeSID(ctx, iss, "ses_100", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSubject(ctx, iss, "usr_101", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UseOnce(ctx, tokenstore.LogoutTokenIDs, iss, "jti_7", time.Hour); err != nil {
		t.Fatal(err)
	}
	dump := rawDump(t, rdb)
	found := 0
	for i := range 200 {
		for _, guess := range []string{fmt.Sprintf("usr_%d", i), fmt.Sprintf("ses_%d", i), fmt.Sprintf("jti_%d", i)} {
			if strings.Contains(dump, guessHash(iss, guess)) || strings.Contains(dump, guess) {
				found++
				t.Logf("the dump reveals %q", guess)
			}
		}
	}
	if found > 0 {
		t.Fatalf("a dump reader confirmed %d of 600 guesses (%d users have sessions)", found, users)
	}
}

// The index hash key is sealed with Options.Keys and survives their
// rotation: sessions written before a rotation are still found by sid and
// subject after it, with the old key gone.
func TestIndexHashKeySurvivesKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	old := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	a, b := session("ses_a", "usr_a"), session("", "usr_b")
	mustCreate(t, old, a, b)
	newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1, key2}}) // new key added
	newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2, key1}}) // moved first: reseals
	rotated := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key2}})
	if n, err := rotated.DeleteBySID(ctx, iss, "ses_a", ""); err != nil || n != 1 {
		t.Errorf("DeleteBySID after the rotation = %d, %v; want 1", n, err)
	}
	if n, err := rotated.DeleteBySubject(ctx, iss, "usr_b"); err != nil || n != 1 {
		t.Errorf("DeleteBySubject after the rotation = %d, %v; want 1", n, err)
	}
	// A store with other keys cannot use the data: ErrWrongKey, as before.
	if _, err := redisstore.New(ctx, redisstore.Options{Client: rdb, Keys: [][]byte{key3}}); !errors.Is(err, redisstore.ErrWrongKey) {
		t.Errorf("New with foreign keys: %v, want ErrWrongKey", err)
	}
}

// Data written by the previous layout (unkeyed index hashes, no issue time
// in the value) is migrated by New: sessions stay readable and are found by
// a logout; a session whose OP session was logged out under the old layout
// stays logged out (and its sid stays revoked); the old, guessable keys are
// gone. A session written in the old layout later (an instance of the
// previous version still running) is migrated when it is read.
func TestMigratesPreviousLayout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	ctx := context.Background()
	legacy := redisstore.NewLegacyWriter(t, rdb, "", [][]byte{key1})
	alive, sidless, loggedOut := session("ses_1", "usr_1"), session("", "usr_2"), session("ses_gone", "usr_3")
	forever := session("ses_4", "usr_4")
	forever.ExpiresAt = time.Time{}
	for _, s := range []*tokenstore.Session{alive, sidless, loggedOut, forever} {
		legacy.Create(s)
	}
	legacy.RevokeSID(iss, "ses_gone", time.Hour)

	st := newStore(t, redisstore.Options{Client: rdb, Keys: [][]byte{key1}})
	for _, s := range []*tokenstore.Session{alive, sidless, forever} {
		got, err := st.Get(ctx, s.ID)
		if err != nil || got.RefreshToken != s.RefreshToken {
			t.Fatalf("Get of a migrated session: %v", err)
		}
	}
	if _, err := st.Get(ctx, loggedOut.ID); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("a session logged out under the old layout: %v, want ErrNotFound", err)
	}
	if revoked, _ := st.SIDRevoked(ctx, iss, "ses_gone"); !revoked {
		t.Error("the revoked sid of the old layout is not revoked after the migration")
	}
	if ttl := rdb.PTTL(ctx, st.Base()+"s:"+tokenstore.HashID(forever.ID)).Val(); ttl != -1 {
		t.Errorf("a session without expiry has TTL %v after the migration", ttl)
	}
	if ttl := rdb.PTTL(ctx, st.Base()+"s:"+tokenstore.HashID(alive.ID)).Val(); ttl < 50*time.Minute || ttl > time.Hour {
		t.Errorf("a migrated session's TTL is %v, want its remaining hour", ttl)
	}
	for _, guess := range []string{"usr_1", "usr_2", "usr_4", "ses_1", "ses_4"} {
		if strings.Contains(rawDump(t, rdb), guessHash(iss, guess)) {
			t.Errorf("the old index key of %q is still there", guess)
		}
	}
	if n, err := st.DeleteBySID(ctx, iss, "ses_1", "usr_2"); err != nil || n != 2 {
		t.Errorf("DeleteBySID of migrated sessions = %d, %v; want 2", n, err)
	}

	// A straggler of the previous version writes the old layout.
	late := session("ses_5", "usr_5")
	legacy.Create(late)
	if got, err := st.Get(ctx, late.ID); err != nil || got.AccessToken != late.AccessToken {
		t.Fatalf("Get of a session written in the old layout after the migration: %v", err)
	}
	if n, err := st.DeleteBySubject(ctx, iss, "usr_5"); err != nil || n != 1 {
		t.Errorf("DeleteBySubject of a session migrated on read = %d, %v; want 1", n, err)
	}
	if n, err := st.DeleteBySubject(ctx, iss, "usr_4"); err != nil || n != 1 {
		t.Errorf("DeleteBySubject = %d, %v; want 1", n, err)
	}
}
