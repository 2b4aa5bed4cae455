package redisstore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore"
	"github.com/multiapp-go/multiapp/tokenstore/redisstore/redistest"
)

// Run with:
//
//	go test -run '^$' -bench . -benchtime 2s ./...   (in tokenstore/redisstore)
//
// Each benchmark measures the Redis store against a local redis-server
// (loopback, one connection pool) and the memory store doing the same work
// in the same run, reported as mem-ns/op and the ratio x-memory.

// fakeJWT is a token shaped like an RS256 JWT of the given claims: the
// size of what a Scalekit-like OP issues.
func fakeJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "snk_" + strings.Repeat("k", 20), "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(make([]byte, 256))
}

// typicalSession is a session as a web app of a Scalekit-like OP stores
// it: RS256 ID and access tokens with the usual claims, an opaque refresh
// token, the ID token's claims.
func typicalSession(i int) *tokenstore.Session {
	now := time.Now()
	sub, sid := fmt.Sprintf("usr_%019d", i), fmt.Sprintf("ses_%019d", i)
	idClaims := map[string]any{
		"iss": "https://yourenv.scalekit.com", "aud": []string{"webc_dashboard_0123456789"}, "azp": "webc_dashboard_0123456789",
		"sub": sub, "sid": sid, "oid": "org_0123456789012345678", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"at_hash": strings.Repeat("h", 22), "c_hash": strings.Repeat("c", 22), "amr": []string{"pwd"},
		"email": "someone.with.a.name@example.com", "email_verified": true, "name": "Someone With A Name",
		"client_id": "webc_dashboard_0123456789",
	}
	atClaims := map[string]any{
		"iss": "https://yourenv.scalekit.com", "aud": []string{"webc_dashboard_0123456789"}, "sub": sub, "sid": sid,
		"oid": "org_0123456789012345678", "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": "tkn_" + strings.Repeat("j", 20), "client_id": "webc_dashboard_0123456789",
		"roles": []string{"admin"}, "permissions": []string{"orders:read", "orders:write"}, "scope": "openid profile email offline_access",
	}
	claims, _ := json.Marshal(idClaims)
	return &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: "https://yourenv.scalekit.com", Subject: sub, SID: sid, ClientID: "webc_dashboard_0123456789",
		Tokens: tokenstore.Tokens{
			IDToken: fakeJWT(idClaims), AccessToken: fakeJWT(atClaims), TokenType: "Bearer", Expiry: now.Add(5 * time.Minute),
			RefreshToken: "rt_" + strings.Repeat("r", 64), Claims: claims,
		},
		RefreshedAt: now,
		CreatedAt:   now, LastSeen: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

func benchStore(b *testing.B) (*redisstore.Store, *redis.Client) {
	b.Helper()
	srv := redistest.Start(b)
	rdb := srv.Client(b, 0)
	return newStore(b, redisstore.Options{Client: rdb, Keys: [][]byte{key1}}), rdb
}

// fill creates n typical sessions (numbered from 0) in st, 8 at a time.
func fill(b *testing.B, st tokenstore.Store, n int) []*tokenstore.Session {
	b.Helper()
	ss := make([]*tokenstore.Session, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ss[i] = typicalSession(i)
				if err := st.Create(context.Background(), ss[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return ss
}

// peer times fn n times on the memory store and reports it next to the
// benchmark's own time (testing.Benchmark cannot nest).
func peer(b *testing.B, n int, fn func(i int)) {
	start := time.Now()
	for i := range n {
		fn(i)
	}
	mem := float64(time.Since(start).Nanoseconds()) / float64(n)
	b.ReportMetric(mem, "mem-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/mem, "x-memory")
}

// BenchmarkGet: the lookup every request makes, on a warm store of 1000
// sessions.
func BenchmarkGet(b *testing.B) {
	st, _ := benchStore(b)
	ctx := context.Background()
	ss := fill(b, st, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.Get(ctx, ss[i%len(ss)].ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	mem := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer mem.Close()
	ms := fill(b, mem, 1000)
	peer(b, b.N, func(i int) {
		if _, err := mem.Get(ctx, ms[i%len(ms)].ID); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkGetParallel: the same lookup from many goroutines, as a busy
// instance makes it.
func BenchmarkGetParallel(b *testing.B) {
	st, _ := benchStore(b)
	ctx := context.Background()
	ss := fill(b, st, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := st.Get(ctx, ss[i%len(ss)].ID); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkLogoutSID: what a back-channel logout costs the store,
// RevokeSID then DeleteBySID of an OP session with one session of the app
// (and the subject's sid-less sessions, none here), among b.N sessions.
func BenchmarkLogoutSID(b *testing.B) {
	st, _ := benchStore(b)
	ctx := context.Background()
	ss := fill(b, st, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range ss {
		if err := st.RevokeSID(ctx, s.Issuer, s.SID, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
		if n, err := st.DeleteBySID(ctx, s.Issuer, s.SID, s.Subject); err != nil || n != 1 {
			b.Fatalf("DeleteBySID = %d, %v", n, err)
		}
	}
	b.StopTimer()

	mem := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxSessions: b.N + 1, MaxRevokedSIDs: b.N + 1})
	defer mem.Close()
	ms := fill(b, mem, b.N)
	peer(b, b.N, func(i int) {
		s := ms[i]
		_ = mem.RevokeSID(ctx, s.Issuer, s.SID, 24*time.Hour)
		if n, _ := mem.DeleteBySID(ctx, s.Issuer, s.SID, s.Subject); n != 1 {
			b.Fatalf("memory DeleteBySID = %d", n)
		}
	})
}

// BenchmarkCreate creates typical sessions and reports what each costs in
// Redis memory: the whole used_memory growth per session (record, both
// index entries, key overhead) as redis-B/session, and MEMORY USAGE of
// one encrypted record as record-B.
func BenchmarkCreate(b *testing.B) {
	st, rdb := benchStore(b)
	ctx := context.Background()
	ss := make([]*tokenstore.Session, b.N)
	for i := range ss {
		ss[i] = typicalSession(i)
	}
	before := usedMemory(b, rdb)
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range ss {
		if err := st.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := usedMemory(b, rdb)
	b.ReportMetric(float64(after-before)/float64(b.N), "redis-B/session")
	rec, err := rdb.MemoryUsage(ctx, st.Base()+"s:"+tokenstore.HashID(ss[0].ID)).Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rec), "record-B")
	plain := len(ss[0].IDToken) + len(ss[0].AccessToken) + len(ss[0].RefreshToken) + len(ss[0].Claims)
	b.ReportMetric(float64(plain), "tokens-B")
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkMemoryGet is BenchmarkGet's peer alone: the memory store.
func BenchmarkMemoryGet(b *testing.B) {
	mem := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer mem.Close()
	ctx := context.Background()
	ms := fill(b, mem, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := mem.Get(ctx, ms[i%len(ms)].ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryLogoutSID is BenchmarkLogoutSID's peer alone.
func BenchmarkMemoryLogoutSID(b *testing.B) {
	mem := tokenstore.NewMemory(tokenstore.MemoryOptions{MaxSessions: b.N + 1, MaxRevokedSIDs: b.N + 1})
	defer mem.Close()
	ctx := context.Background()
	ms := fill(b, mem, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range ms {
		_ = mem.RevokeSID(ctx, s.Issuer, s.SID, 24*time.Hour)
		if n, _ := mem.DeleteBySID(ctx, s.Issuer, s.SID, s.Subject); n != 1 {
			b.Fatalf("DeleteBySID = %d", n)
		}
	}
}
