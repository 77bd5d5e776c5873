/**
 * The Lua scripts of the Redis store. Each runs atomically inside Redis, so
 * two policyd instances on two relays never interleave a read and a write
 * of the same counter. They repeat the arithmetic of windows.ts, greylist.ts
 * and burst.ts step for step (the store conformance test runs the same
 * sequence against both stores and compares). Numbers travel as strings
 * formatted with %.17g: Redis turns a Lua number into an integer reply, and
 * tostring() keeps only 14 digits.
 *
 * Counter hashes: sliding window fields s (bucket start), c (current), p
 * (previous); GCRA field t (theoretical arrival time). Algorithm codes in
 * ARGV: 0 sliding window, 1 GCRA.
 */

/** Shared helpers, prepended to every script. */
const PRELUDE = `
local function num(x) return string.format('%.17g', x) end

local function sliding_at(key, now, period)
  local start = math.floor(now / period) * period
  local fields = redis.call('HMGET', key, 's', 'c', 'p')
  local s, c, p = tonumber(fields[1]), tonumber(fields[2]), tonumber(fields[3])
  if s == nil then return start, 0, 0 end
  if s >= start then return s, c or 0, p or 0 end
  if s == start - period then return start, 0, c or 0 end
  return start, 0, 0
end

local function sliding_used(s, c, p, now, period)
  local elapsed = math.min(math.max(now - s, 0), period)
  return p * (1 - elapsed / period) + c
end

local function sliding_retry(s, c, p, period, limit, cost, now)
  if cost > limit then return -1 end
  local room = limit - cost
  if c <= room and p > 0 then
    local t = s + period * (1 - (room - c) / p)
    return math.max(0, math.ceil(t - now))
  end
  local next_start = s + period
  if c == 0 then return math.max(0, next_start - now) end
  local t = next_start + period * math.max(0, 1 - room / c)
  return math.max(0, math.ceil(t - now))
end

local function gcra_tat(key, now)
  local t = tonumber(redis.call('HGET', key, 't'))
  if t == nil then return now end
  return t
end

-- used, fits (1/0), retry (ms, -1 for never)
local function read_window(key, algorithm, period, limit, cost, now)
  if algorithm == 1 then
    local tat = gcra_tat(key, now)
    if limit <= 0 then
      if cost <= 0 then return 0, 1, 0 end
      return 0, 0, -1
    end
    local interval = period / limit
    local used = math.max(tat - now, 0) / interval
    local new_tat = math.max(tat, now) + cost * interval
    if new_tat - now <= period + 1e-9 then return used, 1, 0 end
    if cost > limit then return used, 0, -1 end
    return used, 0, math.ceil(new_tat - now - period)
  end
  local s, c, p = sliding_at(key, now, period)
  local used = sliding_used(s, c, p, now, period)
  if used + cost <= limit then return used, 1, 0 end
  return used, 0, sliding_retry(s, c, p, period, limit, cost, now)
end

local function charge_window(key, algorithm, period, limit, cost, now)
  if algorithm == 1 then
    local tat = gcra_tat(key, now)
    local interval = period
    if limit > 0 then interval = period / limit end
    local new_tat = math.max(tat, now) + cost * interval
    redis.call('HSET', key, 't', num(new_tat))
    redis.call('PEXPIREAT', key, math.max(math.ceil(new_tat), now + 1))
    return
  end
  local s, c, p = sliding_at(key, now, period)
  redis.call('HSET', key, 's', num(s), 'c', num(c + cost), 'p', num(p))
  redis.call('PEXPIREAT', key, s + 2 * period)
end
`;

/** KEYS: counters. ARGV: now, then algorithm, period, limit, cost per counter. Returns used, fits, retry per counter. */
export const READ_COUNTERS = `${PRELUDE}
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local used, fits, retry = read_window(key, tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]),
    tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4]), now)
  out[#out + 1] = num(used)
  out[#out + 1] = fits
  out[#out + 1] = retry
end
return out
`;

/**
 * KEYS[1]: the transaction marker; KEYS[2..]: counters. ARGV: now, marker
 * TTL, then algorithm, period, limit, cost per counter. Returns 1 when
 * charged, 0 when the transaction was charged before.
 */
export const CHARGE_COUNTERS = `${PRELUDE}
local now = tonumber(ARGV[1])
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) == false then return 0 end
for i = 2, #KEYS do
  local base = 2 + (i - 2) * 4
  charge_window(KEYS[i], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]),
    tonumber(ARGV[base + 4]), now)
end
return 1
`;

/**
 * KEYS: triplet hash (f first seen, l last seen, x passed), client hash
 * (n passes, l last seen). ARGV: now, delay, retry window, max age, auto
 * whitelist after. Returns kind and a number (delayed or retry-in ms) and,
 * for deferrals, 1 on a first attempt.
 */
export const GREYLIST = `${PRELUDE}
local now = tonumber(ARGV[1])
local delay, retry_window, max_age, awl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('HMGET', KEYS[1], 'f', 'l', 'x')
local c = redis.call('HMGET', KEYS[2], 'n', 'l')
local first, last, passed = tonumber(t[1]), tonumber(t[2]), t[3] == '1'
local passes, client_last = tonumber(c[1]), tonumber(c[2])
if passes ~= nil and awl > 0 and passes >= awl and now - client_last <= max_age then
  redis.call('HSET', KEYS[2], 'l', num(now))
  redis.call('PEXPIREAT', KEYS[2], now + max_age)
  return {'whitelisted', '0', '0'}
end
if first ~= nil and passed and now - last <= max_age then
  redis.call('HSET', KEYS[1], 'l', num(now))
  redis.call('PEXPIREAT', KEYS[1], now + max_age)
  return {'known', '0', '0'}
end
if first ~= nil and not passed and now - first <= retry_window then
  local waited = now - first
  if waited >= delay then
    local current = 0
    if passes ~= nil and now - client_last <= max_age then current = passes end
    redis.call('HSET', KEYS[1], 'f', num(first), 'l', num(now), 'x', '1')
    redis.call('PEXPIREAT', KEYS[1], now + max_age)
    redis.call('HSET', KEYS[2], 'n', num(current + 1), 'l', num(now))
    redis.call('PEXPIREAT', KEYS[2], now + max_age)
    return {'passed', num(waited), '0'}
  end
  redis.call('HSET', KEYS[1], 'l', num(now))
  return {'deferred', num(delay - waited), '0'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'f', num(now), 'l', num(now), 'x', '0')
redis.call('PEXPIREAT', KEYS[1], now + retry_window)
return {'deferred', num(delay), '1'}
`;

/**
 * KEYS: burst hash (i interval start, v volume, d distinct, bv, bd
 * baselines), the HyperLogLog of this interval's recipients, the hold hash.
 * ARGV: now, interval, baseline intervals, factor, min recipients, min
 * distinct, recipients, login, then the recipient addresses.
 * Returns {'normal'} or {'held', new (1/0), since, reason, volume, distinct,
 * volume threshold, distinct threshold}.
 */
export const RECORD_BURST = `${PRELUDE}
local now, interval, intervals = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local factor, min_volume, min_distinct = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local recipients, login = tonumber(ARGV[7]), ARGV[8]
local start = math.floor(now / interval) * interval
local h = redis.call('HMGET', KEYS[1], 'i', 'v', 'd', 'bv', 'bd')
local i, v, d, bv, bd = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if i == nil then
  i, v, d, bv, bd = start, 0, 0, 0, 0
elseif i < start then
  local weight = 2 / (intervals + 1)
  bv = bv + weight * (v - bv)
  bd = bd + weight * (d - bd)
  local silent = math.min((start - i) / interval - 1, 10000)
  if silent > 0 then
    local decay = (1 - weight) ^ silent
    bv = bv * decay
    bd = bd * decay
  end
  i, v, d = start, 0, 0
end
if #ARGV > 8 then
  redis.call('PFADD', KEYS[2], unpack(ARGV, 9))
  redis.call('PEXPIRE', KEYS[2], 2 * interval)
end
local counted = redis.call('PFCOUNT', KEYS[2])
v = v + recipients
d = math.max(counted, d)
redis.call('HSET', KEYS[1], 'i', num(i), 'v', num(v), 'd', num(d), 'bv', num(bv), 'bd', num(bd))
redis.call('PEXPIREAT', KEYS[1], i + interval * (intervals * 4 + 2))
local held = redis.call('HMGET', KEYS[3], 'since', 'reason')
if held[1] then
  return {'held', '0', held[1], held[2] or '', num(v), num(d), '0', '0'}
end
local vt = math.max(min_volume, factor * bv)
local dt = math.max(min_distinct, factor * bd)
if v <= vt and d <= dt then return {'normal'} end
local reason
if v > vt then
  reason = string.format('%d recipients this interval, above %d', v, math.ceil(vt))
else
  reason = string.format('%d distinct recipients this interval, above %d', d, math.ceil(dt))
end
redis.call('HSET', KEYS[3], 'login', login, 'since', num(now), 'reason', reason)
return {'held', '1', num(now), reason, num(v), num(d), num(vt), num(dt)}
`;

/** KEYS: hold hash, burst hash, this interval's HyperLogLog. Returns 1 when a hold was ended. */
export const RELEASE = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'v', '0', 'd', '0') end
redis.call('DEL', KEYS[3])
return 1
`;
