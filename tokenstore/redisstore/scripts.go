package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts behind every operation that touches more than one key.
// Redis runs a script atomically, so a back-channel logout (RevokeSID, then
// DeleteBySID) and a refresh (Update) never interleave within a script.
//
// Keys, all under one hash tag (base is "{Prefix}:"), so Redis Cluster keeps
// them in one slot:
//
//	base s:<HashID(id)>  string  sid hash (22 dots when the session has no
//	                             sid), subject hash (22 characters each),
//	                             when the session was issued (13 digits, unix
//	                             ms: Session.Issued), then the sealed record
//	base x:<h(iss,sid)>  zset  sessions of the OP session
//	base u:<h(iss,sub)>  zset  every session of the subject
//	base n:<h(iss,sub)>  zset  sessions of the subject stored without a sid
//	base r:<h(iss,sid)>  string  revoked OP session, with a TTL
//	base e:<h(iss,sub)>  string  logged-out subject: its logout time (unix
//	                             ms); sessions issued up to it are revoked; TTL
//	base j:<h(iss,jti)>  string  logout token id (and login state) seen, TTL
//	base l:<HashID(id)>  string  refresh lock: the holder's token, TTL = lease
//	base k               string  key check: a known text sealed with Keys
//	base h               string  index hash key: 32 random bytes sealed with
//	                             Keys, the key of every h(...) above
//	base m               string  layout marker: sessions of the previous
//	                             layout were migrated (migrate.go)
//
// Index members are session hashes, scored by when the session expires in
// Redis time (ms; "inf" when it never does). Every write to an index drops
// members whose score has passed and moves the index's own expiry to its
// last member's, so indexes neither grow with expired sessions nor outlive
// them. A member can still point to a session that expired (its score has
// not been swept yet) or to a later session that reused the id: deletes only
// act on a member whose record still names that index.

// common is prepended to every script that maintains indexes.
const common = `
local base = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n) return string.format('%.0f', n) end

local NOSID = string.rep('.', 22)

-- the sid hash ('' for none), subject hash and issue time at the head of a
-- session value (GETRANGE 0 56 of its key); nil for a missing session, or
-- one of the previous layout (the sealed record's version byte, 1, where
-- the issue time starts: see migrate.go)
local function heads(v)
  if not v or string.len(v) < 57 or string.byte(v, 45) == 1 then return nil end
  local x = string.sub(v, 1, 22)
  if x == NOSID then x = '' end
  return x, string.sub(v, 23, 44), tonumber(string.sub(v, 45, 57))
end

-- revoked reports whether a session with sid hash x, subject hash u and
-- issue time t is revoked: its OP session is, or its subject was logged
-- out at or after t
local function revoked(x, u, t)
  if x ~= '' and redis.call('EXISTS', base .. 'r:' .. x) == 1 then return true end
  local at = redis.call('GET', base .. 'e:' .. u)
  return at ~= false and t <= tonumber(at)
end

-- the two index keys a session is filed under
local function indexes(sidh, subh)
  if sidh ~= '' then return base .. 'x:' .. sidh, base .. 'u:' .. subh end
  return base .. 'n:' .. subh, base .. 'u:' .. subh
end

local function index_add(key, member, score, now)
  redis.call('ZADD', key, score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt(now))
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] == nil then return end
  if top[2] == 'inf' or top[2] == '+inf' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, top[2])
  end
end

-- unlink deletes session member and its index entries; 1 if it existed
local function unlink(member)
  local sk = base .. 's:' .. member
  local x, u = heads(redis.call('GETRANGE', sk, 0, 56))
  if u then
    local a, b = indexes(x, u)
    redis.call('ZREM', a, member)
    redis.call('ZREM', b, member)
  end
  return redis.call('DEL', sk)
end

-- store writes session member (ARGV[2]) with value ARGV[3] (whose head
-- holds sid hash ARGV[5], subject hash ARGV[6] and issue time ARGV[7]) and
-- ttl (ms, 0 = none), and files it in its indexes
local function store(sk, ttl)
  local member, sidh, subh = ARGV[2], ARGV[5], ARGV[6]
  local now = now_ms()
  local score = 'inf'
  if ttl > 0 then
    redis.call('SET', sk, ARGV[3], 'PX', ttl)
    score = fmt(now + ttl)
  else
    redis.call('SET', sk, ARGV[3])
  end
  local a, b = indexes(sidh, subh)
  index_add(a, member, score, now)
  index_add(b, member, score, now)
end

-- sweep deletes the sessions of index key idx whose record has sid hash
-- want_x and subject hash want_u (nil: any), drops members that no longer
-- match, and returns how many sessions it deleted
local function sweep(idx, want_x, want_u)
  local n = 0
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    local x, u = heads(redis.call('GETRANGE', base .. 's:' .. m, 0, 56))
    if u and (want_x == nil or x == want_x) and (want_u == nil or u == want_u) then
      n = n + unlink(m)
    else
      redis.call('ZREM', idx, m)
    end
  end
  return n
end
`

// getScript: KEYS session; ARGV base. The session's value, or false when
// it is missing or revoked (a back-channel logout ends the sessions at
// RevokeSID or RevokeSubject, before DeleteBySID or DeleteBySubject cleans
// up).
var getScript = redis.NewScript(`
local base = ARGV[1]
local v = redis.call('GET', KEYS[1])
if not v or string.len(v) < 57 or string.byte(v, 45) == 1 then return v end
local x = string.sub(v, 1, 22)
if x ~= string.rep('.', 22) and redis.call('EXISTS', base .. 'r:' .. x) == 1 then return false end
local at = redis.call('GET', base .. 'e:' .. string.sub(v, 23, 44))
if at and tonumber(string.sub(v, 45, 57)) <= tonumber(at) then return false end
return v
`)

// createScript: KEYS session; ARGV base, member, value (heads and sealed
// record), ttl (ms; 0 none; negative: already expired), sid hash, subject
// hash, issue time (unix ms).
var createScript = redis.NewScript(common + `
if revoked(ARGV[5], ARGV[6], tonumber(ARGV[7])) then return 'revoked' end
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- the same sealed record (random nonce): the client retried a create
  -- whose reply was lost
  if redis.call('GET', KEYS[1]) == ARGV[3] then return 'ok' end
  return 'exists'
end
local ttl = tonumber(ARGV[4])
if ttl >= 0 then store(KEYS[1], ttl) end
return 'ok'
`)

// updateScript: as createScript; replaces an existing session only, and
// neither a revoked one nor with a revoked one.
var updateScript = redis.NewScript(common + `
local x, u, t = heads(redis.call('GETRANGE', KEYS[1], 0, 56))
if not u then return 'notfound' end
if revoked(x, u, t) or revoked(ARGV[5], ARGV[6], tonumber(ARGV[7])) then return 'revoked' end
unlink(ARGV[2])
local ttl = tonumber(ARGV[4])
if ttl >= 0 then store(KEYS[1], ttl) end
return 'ok'
`)

// touchScript: KEYS session; ARGV SHA-1 (hex) of the value the caller
// read, the new value. Replaces the value, keeping its TTL (and so its
// index scores), unless it changed since it was read.
var touchScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 'notfound' end
if redis.sha1hex(v) ~= ARGV[1] then return 'changed' end
local p = redis.call('PTTL', KEYS[1])
if p == -1 then
  redis.call('SET', KEYS[1], ARGV[2])
elseif p > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', p)
else
  return 'notfound'
end
return 'ok'
`)

// deleteScript: KEYS session; ARGV base, member.
var deleteScript = redis.NewScript(common + `
return unlink(ARGV[2])
`)

// deleteBySIDScript: KEYS sid index, sid-less index of the subject; ARGV
// base, sid hash ("": none), subject hash ("": none).
var deleteBySIDScript = redis.NewScript(common + `
local n = 0
if ARGV[2] ~= '' then n = n + sweep(KEYS[1], ARGV[2], nil) end
if ARGV[3] ~= '' then n = n + sweep(KEYS[2], '', ARGV[3]) end
return n
`)

// deleteBySubjectScript: KEYS subject index; ARGV base, subject hash.
var deleteBySubjectScript = redis.NewScript(common + `
return sweep(KEYS[1], nil, ARGV[2])
`)

// setOnceScript: KEYS key; ARGV token, ttl (ms). Sets key to the caller's
// random token unless it exists (SET NX PX) and returns 1 when the caller
// holds it: also when the key already holds the caller's token, because the
// client retried a SET whose reply was lost (a plain SET NX would then
// report a logout token as replayed, or a lock as someone else's).
var setOnceScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// revokeScript: KEYS revocation; ARGV ttl (ms). Never shortens an existing
// revocation (nor one without expiry).
var revokeScript = redis.NewScript(`
local p = redis.call('PTTL', KEYS[1])
if p == -1 then return 0 end
local ttl = tonumber(ARGV[1])
if p < ttl then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
  return 1
end
return 0
`)

// migrateScript: KEYS session; ARGV base, member, value in the current
// layout, (unused), sid hash, subject hash, issue time (as createScript),
// the value in the previous layout, the previous layout's revocation key of
// the sid and the current one (empty without sid). Moves the session from
// its old indexes to its new ones with its remaining TTL, unless its value
// changed meanwhile; carries an old revocation of its sid over; ends it when
// it is revoked.
var migrateScript = redis.NewScript(common + `
local old = ARGV[8]
if redis.call('GET', KEYS[1]) ~= old then return 'changed' end
local ox, ou = string.sub(old, 1, 22), string.sub(old, 23, 44)
if ox == NOSID then ox = '' end
local a, b = indexes(ox, ou)
redis.call('ZREM', a, ARGV[2])
redis.call('ZREM', b, ARGV[2])
if ARGV[9] ~= '' then
  local p = redis.call('PTTL', ARGV[9])
  if p == -1 then
    redis.call('SET', ARGV[10], '1')
  elseif p > 0 then
    local q = redis.call('PTTL', ARGV[10])
    if q ~= -1 and q < p then redis.call('SET', ARGV[10], '1', 'PX', p) end
  end
  redis.call('DEL', ARGV[9])
end
if revoked(ARGV[5], ARGV[6], tonumber(ARGV[7])) then
  redis.call('DEL', KEYS[1])
  return 'revoked'
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  ttl = 0
elseif ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 'expired'
end
store(KEYS[1], ttl)
return 'ok'
`)

// revokeSubjectScript: KEYS subject revocation; ARGV logout time (unix
// ms), ttl (ms). Keeps the later time and never shortens the revocation
// (nor one without expiry).
var revokeSubjectScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local at = tonumber(ARGV[1])
if cur and tonumber(cur) > at then at = tonumber(cur) end
local v = string.format('%.0f', at)
local p = redis.call('PTTL', KEYS[1])
if cur and p == -1 then
  redis.call('SET', KEYS[1], v)
  return 1
end
local ttl = tonumber(ARGV[2])
if p > ttl then ttl = p end
redis.call('SET', KEYS[1], v, 'PX', ttl)
return 1
`)

// renewScript: KEYS lock; ARGV token, lease (ms). Extends the lease only
// while the lock is still this holder's.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// unlockScript: KEYS lock; ARGV token. Deletes the lock only while it is
// still this holder's.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
