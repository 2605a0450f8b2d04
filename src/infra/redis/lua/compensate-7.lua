--[[
  Undoes a batch that PostgreSQL does not hold: gives its stock back, takes
  its users out of the issued set and puts every request back in the queue at
  its original arrival score. Does nothing if the batch was already settled.

  KEYS[1] meta      HASH  stock
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] queue     ZSET  user id -> arrival score
  KEYS[4] requests  HASH  arrival score -> "<userId>|<nonce>" (kept: still pending)
  KEYS[5] inflight  HASH  user id -> arrival score
  KEYS[6] batches   HASH  batch id -> JSON of the decided batch
  KEYS[7] leases    ZSET  batch id -> lease expiry

  ARGV[1] batch id
  ARGV[2] the gate epoch the batch was taken under

  Returns 1 when the batch was compensated now, 0 when it was already settled,
  -1 when the gate was rebuilt since the batch was taken (Redis lost its data,
  and the batch's requests with it).
]]
local raw = redis.call('HGET', KEYS[6], ARGV[1])
if not raw then
  if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then return -1 end
  return 0
end
local items = cjson.decode(raw).i
local restored = 0
for i = 1, #items, 3 do
  local user, arrival, outcome = items[i], items[i + 1], items[i + 2]
  -- Only ISSUED added the user to the set; ALREADY_ISSUED found them there.
  if outcome == 1 then
    redis.call('SREM', KEYS[2], user)
    restored = restored + 1
  end
  redis.call('ZADD', KEYS[3], arrival, user)
  redis.call('HDEL', KEYS[5], user)
end
if restored > 0 then redis.call('HINCRBY', KEYS[1], 'stock', restored) end
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
return 1
