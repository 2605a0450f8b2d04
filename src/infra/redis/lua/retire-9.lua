--[[
  Deletes every key of a finished coupon and drops it from the worker's
  rounds, in one step, provided nothing of it is left to decide or to record.

  KEYS[1] meta      HASH
  KEYS[2] issued    SET
  KEYS[3] queue     ZSET  must be empty
  KEYS[4] requests  HASH  must be empty: a record here is a request not final yet
  KEYS[5] inflight  HASH  must be empty
  KEYS[6] batches   HASH  must be empty: a batch here is not settled in PostgreSQL yet
  KEYS[7] leases    ZSET  must be empty
  KEYS[8] sync      STRING must not exist: a sync is rebuilding the gate
  KEYS[9] active    SET   coupon ids the worker drains (one set for the deployment)

  ARGV[1] the coupon id, for KEYS[9]

  Returns 1 when the keys are gone (also when there were none), 0 when
  something is still queued, in flight or syncing (nothing changed).

  The caller checked in PostgreSQL that the event is closed or sold out, so
  no request can join the queue once it is empty: accept refuses a closed or
  sold-out gate, and once the gate is gone the service never loads it again.

  Not Redis Cluster safe: KEYS[9] is outside the coupon's hash slot (as in
  load-4.lua).
]]
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('HLEN', KEYS[4]) > 0
  or redis.call('HLEN', KEYS[5]) > 0 or redis.call('HLEN', KEYS[6]) > 0
  or redis.call('ZCARD', KEYS[7]) > 0 or redis.call('EXISTS', KEYS[8]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('SREM', KEYS[9], ARGV[1])
return 1
