package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
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
			plain, _, err := s.seal.open([]byte(v[headsLen:]), []byte(member))
			if err != nil {
				fmt.Fprintf(&b, " <%v>", err)
				break
			}
			sess, err := decodeSession(plain)
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

// PairHash exposes pairHash.
func PairHash(issuer, value string) string { return pairHash(issuer, value) }
