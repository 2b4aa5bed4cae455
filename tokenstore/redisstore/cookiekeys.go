package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrCookieKeys: CheckCookieKeys found an instance of the same store running
// with cookie keys that disagree with the ones given.
var ErrCookieKeys = errors.New("redisstore: the cookie keys differ from those of the running instances")

// CookieKeysTTL is how long a registration of CheckCookieKeys outlives an
// instance that stopped renewing it without calling its stop function (a
// crash). A running instance renews it every third of that.
const CookieKeysTTL = 30 * time.Second

var cookieKeysTTL = CookieKeysTTL // tests shorten it

// CheckCookieKeys guards against the mistake that makes a fleet answer 401
// to everyone without an error anywhere: instances of one app that share
// this store's sessions but seal their session cookies with different keys
// (middleware.WebConfig.CookieKeys), so that a user signed in by one
// instance is unknown to the next. Call it at start with the cookie keys,
// before serving; it fails with ErrCookieKeys, saying what to fix, when an
// instance running with the same store (same Prefix) seals cookies with a
// key these keys lack, or lacks the key these keys seal with (the first).
// A rotation done as documented (the new key added second on every
// instance, then moved first, then the old one dropped) passes at every
// step.
//
// Redis holds only a fingerprint of each key (an HMAC under the key), in a
// registration that the Store renews in the background until stop is
// called (stop it when the instance shuts down; a crashed instance's
// registration ends CookieKeysTTL later). ctx bounds the check.
func (s *Store) CheckCookieKeys(ctx context.Context, keys [][]byte) (stop func(), err error) {
	r, err := s.checkCookieKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	return r.stop, nil
}

// cookieReg is one instance's registration, renewed until stop or abandon.
type cookieReg struct {
	s      *Store
	member string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (s *Store) checkCookieKeys(ctx context.Context, keys [][]byte) (*cookieReg, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: CheckCookieKeys needs the cookie keys", ErrConfig)
	}
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = cookieKeyFingerprint(k)
	}
	member := rand.Text()[:12] + "|" + strings.Join(fps, ",")
	res, err := cookieKeysScript.Run(ctx, s.c, []string{s.base + "c"}, member, cookieKeysTTL.Milliseconds(), 1).Text()
	if err != nil {
		return nil, s.unavailable("check cookie keys", err)
	}
	if res != "ok" {
		return nil, cookieKeysError(fps, res)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &cookieReg{s: s, member: member, cancel: cancel, done: make(chan struct{})}
	go r.renew(rctx)
	return r, nil
}

// renew keeps the registration alive: a failure (Redis down) is tried
// again at the next tick, and the registration comes back after Redis
// lost it.
func (r *cookieReg) renew(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(cookieKeysTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c, cancel := context.WithTimeout(ctx, cookieKeysTTL/3)
			_ = cookieKeysScript.Run(c, r.s.c, []string{r.s.base + "c"}, r.member, cookieKeysTTL.Milliseconds(), 0).Err()
			cancel()
		}
	}
}

// stop ends the registration: renewals stop and it is removed.
func (r *cookieReg) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.s.c.ZRem(ctx, r.s.base+"c", r.member).Err() // else it expires
	})
}

// abandon stops the renewals and leaves the registration to expire.
func (r *cookieReg) abandon() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

// cookieKeyFingerprint names a key without revealing it: 72 bits of an
// HMAC-SHA256 under the key.
func cookieKeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("multiapp/redisstore cookie key fingerprint v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

// cookieKeysError explains how the fingerprints fps of this instance's keys
// disagree with theirs, a registration ("id|fp,fp,...").
func cookieKeysError(fps []string, theirs string) error {
	_, list, _ := strings.Cut(theirs, "|")
	other := strings.Split(list, ",")
	var why []string
	if !slices.Contains(other, fps[0]) {
		why = append(why, fmt.Sprintf("a running instance cannot open the cookies this one would seal (with the key of fingerprint %s, which it lacks)", fps[0]))
	}
	if !slices.Contains(fps, other[0]) {
		why = append(why, fmt.Sprintf("this instance cannot open the cookies the running one seals (with the key of fingerprint %s, which these keys lack)", other[0]))
	}
	return fmt.Errorf("%w: %s, so users signed in by one would get 401 from the other. "+
		"Give every instance the same cookie keys (middleware.WebConfig.CookieKeys); to rotate, add the new key second on every instance, then move it first. "+
		"A stopped instance no longer counts; a crashed one stops counting %v after its last renewal",
		ErrCookieKeys, strings.Join(why, ", and "), CookieKeysTTL)
}

// cookieKeysScript: KEYS registrations (a sorted set of "id|fp,fp,..."
// scored by expiry, Redis time in ms); ARGV member, ttl (ms), check (1: refuse
// a member whose list disagrees with a live one). Returns "ok" or the first
// disagreeing registration.
var cookieKeysScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', now))
local function fps(m)
  local list = {}
  for fp in string.gmatch(string.match(m, '|(.*)$'), '[^,]+') do list[#list + 1] = fp end
  return list
end
local function has(list, fp)
  for _, x in ipairs(list) do if x == fp then return true end end
  return false
end
if ARGV[3] == '1' then
  local mine = fps(ARGV[1])
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local theirs = fps(m)
    if not has(theirs, mine[1]) or not has(mine, theirs[1]) then return m end
  end
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
return 'ok'
`)
