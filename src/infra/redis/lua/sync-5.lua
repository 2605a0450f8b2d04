--[[
  Replaces a coupon's stock and issued set with what PostgreSQL holds, while
  the caller holds the coupon's sync lock (so no batch is taken) and no batch
  is in flight; then releases the lock, which resumes draining. The queue and
  the waiting requests are kept.

  KEYS[1] meta      HASH  total, stock, closed, paused, ...
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] scratch   SET   the issued users from PostgreSQL (may not exist: nobody issued);
                        it carries an expiry, which the live set must not inherit
  KEYS[4] leases    ZSET  batch id -> lease expiry
  KEYS[5] sync      STRING the token of the sync holding the coupon's lock

  ARGV[1] total quantity
  ARGV[2] remaining stock per PostgreSQL
  ARGV[3] 1 if the event is closed, else 0
  ARGV[4] the caller's lock token
  ARGV[5] 1 if an operator paused the event, else 0 (PostgreSQL's paused_at)

  Returns {1, stock before} when applied, {0} when a batch is in flight
  (the caller settles it and tries again), {-1} when the caller no longer
  holds the lock: it expired (and draining may have resumed, or another sync
  taken over), so the caller's snapshot of PostgreSQL may be older than what
  Redis now holds and is not applied.
]]
if redis.call('GET', KEYS[5]) ~= ARGV[4] then
  redis.call('DEL', KEYS[3])
  return {-1}
end
if redis.call('ZCARD', KEYS[4]) > 0 then
  redis.call('DEL', KEYS[3])
  return {0}
end
local before = redis.call('HGET', KEYS[1], 'stock') or ''
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
  -- RENAME keeps the scratch key's expiry: the live set must not vanish with it.
  redis.call('PERSIST', KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'stock', ARGV[2], 'paused', ARGV[5])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'closed', '1') end
redis.call('DEL', KEYS[5])
return {1, before}
