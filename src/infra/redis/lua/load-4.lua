--[[
  Writes a coupon's gate state, unless it is already there, and puts the
  coupon in the worker's rounds, in one step: a gate loaded but missing from
  the rounds would hold accepted requests that no worker ever decides.

  KEYS[1] meta      HASH  total, stock, startsAt, endsAt, closed, paused, epoch, since
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] scratch   SET   the issued users from PostgreSQL, built beforehand (may not exist);
                        it carries an expiry, which the live set must not inherit
  KEYS[4] active    SET   coupon ids the worker drains (one set for the deployment)

  ARGV[1] total quantity
  ARGV[2] remaining stock
  ARGV[3] startsAt ms or ''
  ARGV[4] endsAt ms or ''
  ARGV[5] 1 if the event is closed, else 0
  ARGV[6] epoch: a fresh random id naming this load of the gate
  ARGV[7] the coupon id, for KEYS[4]
  ARGV[8] 1 if an operator paused the event, else 0

  Returns 1 when loaded now, 0 when the gate was already there.

  A meta hash holding only `closed` or `paused` (a close, pause or resume that
  came before the load) is not a loaded gate; the close is kept, and so is the
  pause flag: it was written after PostgreSQL recorded it, so it is at least
  as new as the snapshot this load carries. `since` is the Redis time (microseconds)
  of the load: a request that arrived before it and is neither in Redis nor in
  PostgreSQL was lost with an earlier Redis.

  Not Redis Cluster safe: KEYS[4] is outside the coupon's hash slot. On one
  Redis (or a primary with replicas) the script is atomic; on a cluster it
  would need the rounds kept per slot.
]]
-- The gate already there is put in the rounds too: the rounds may have lost it.
redis.call('SADD', KEYS[4], ARGV[7])
if redis.call('HEXISTS', KEYS[1], 'stock') == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
  -- RENAME keeps the scratch key's expiry: the live set must not vanish with it.
  redis.call('PERSIST', KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
local closed = ARGV[5]
if redis.call('HGET', KEYS[1], 'closed') == '1' then closed = '1' end
local paused = redis.call('HGET', KEYS[1], 'paused') or ARGV[8]
local time = redis.call('TIME')
local since = string.format('%.0f', tonumber(time[1]) * 1000000 + tonumber(time[2]))
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'stock', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
  'closed', closed, 'paused', paused, 'epoch', ARGV[6], 'since', since)
return 1
