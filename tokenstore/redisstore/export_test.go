package redisstore

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multiapp-go/multiapp/tokenstore"
)

// Dump renders every key of the store and its value, session records
// decrypted, for storetest.Dumper.
func (s *Store) Dump(ctx context.Context) ([]byte, error) {
	var keys []string
	iter := s.c.Scan(ctx, 0, s.base+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ, err := s.c.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		ttl, _ := s.c.PTTL(ctx, k).Result()
		fmt.Fprintf(&b, "%s (%s, ttl %v):", k, typ, ttl)
		switch typ {
		case "string":
			v, _ := s.c.Get(ctx, k).Result()
			member, isSession := strings.CutPrefix(k, s.base+"s:")
			if !isSession || len(v) < headsLen {
				fmt.Fprintf(&b, " %q", v)
				break
			}
			fmt.Fprintf(&b, " heads=%q", v[:headsLen])
			sess, err := s.open(member, []byte(v[headsLen:]))
			if err != nil {
				fmt.Fprintf(&b, " <%v>", err)
				break
			}
			fmt.Fprintf(&b, " %+v", *sess)
		case "zset":
			zs, _ := s.c.ZRangeWithScores(ctx, k, 0, -1).Result()
			for _, z := range zs {
				fmt.Fprintf(&b, " %v@%v", z.Member, z.Score)
			}
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// Base is the key prefix, "{Prefix}:".
func (s *Store) Base() string { return s.base }

// Client is the store's Redis client.
func (s *Store) Client() redis.UniversalClient { return s.c }

// LockForTest takes the lock like Lock and also returns crash, which stops
// renewing the lease without releasing the lock: the holder died.
func (s *Store) LockForTest(ctx context.Context, id string) (unlock, crash func(), err error) {
	l, err := s.acquire(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return l.unlock, l.stopRenewal, nil
}

// PairHash is the store's keyed hash of (issuer, value).
func (s *Store) PairHash(issuer, value string) string { return s.pairHash(issuer, value) }

// LegacyWriter writes sessions and revocations the way the previous layout
// did (unkeyed index hashes, no issue time in the value head, record
// version 1), as an instance of the previous version would.
type LegacyWriter struct {
	t    testing.TB
	c    redis.UniversalClient
	base string
	seal *tokenstore.Sealer
}

func NewLegacyWriter(t testing.TB, c redis.UniversalClient, prefix string, keys [][]byte) *LegacyWriter {
	seal, err := tokenstore.NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	w := &LegacyWriter{t: t, c: c, base: "{" + prefix + "}:", seal: seal}
	k := w.base + "k"
	c.SetNX(context.Background(), k, seal.Seal([]byte(keyCheckText), []byte(k)), 0)
	return w
}

// Create stores s as the previous layout's create script did.
func (w *LegacyWriter) Create(s *tokenstore.Session) {
	ctx := context.Background()
	c := s.Clone()
	c.ID, c.IssuedAt = "", time.Time{}
	plain, err := c.MarshalBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	zero, _ := time.Time{}.MarshalBinary()
	plain = plain[:len(plain)-1-len(zero)] // record version 1: no IssuedAt
	plain[0] = 1
	member := tokenstore.HashID(s.ID)
	sidHead, subh := noSID, legacyPairHash(s.Issuer, s.Subject)
	a := w.base + "n:" + subh
	if s.SID != "" {
		sidHead = legacyPairHash(s.Issuer, s.SID)
		a = w.base + "x:" + sidHead
	}
	v := append([]byte(sidHead+subh), w.seal.Seal(plain, []byte(member))...)
	var ttl time.Duration
	score := math.Inf(1)
	if !s.ExpiresAt.IsZero() {
		ttl = time.Until(s.ExpiresAt)
		score = float64(time.Now().Add(ttl).UnixMilli())
	}
	if err := w.c.Set(ctx, w.base+"s:"+member, v, ttl).Err(); err != nil {
		w.t.Fatal(err)
	}
	for _, idx := range []string{a, w.base + "u:" + subh} {
		w.c.ZAdd(ctx, idx, redis.Z{Score: score, Member: member})
	}
}

// RevokeSID revokes an OP session as the previous layout did.
func (w *LegacyWriter) RevokeSID(issuer, sid string, ttl time.Duration) {
	w.c.Set(context.Background(), w.base+"r:"+legacyPairHash(issuer, sid), "1", ttl)
}
