--[[
  Forgets a batch that PostgreSQL holds, applying the corrections PostgreSQL
  made to Redis's decisions. Does nothing if the batch was already settled.

  KEYS[1] meta      HASH  stock
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[4] inflight  HASH  user id -> arrival score
  KEYS[5] batches   HASH  batch id -> JSON of the decided batch
  KEYS[6] leases    ZSET  batch id -> lease expiry

  ARGV[1]   batch id
  ARGV[2]   the gate epoch the batch was taken under
  ARGV[3..] pairs of (user id, recorded outcome code) where PostgreSQL
            recorded another outcome than Redis decided:
            ISSUED -> ALREADY_ISSUED: another request holds the coupon; give the stock back
            ISSUED -> SOLD_OUT: PostgreSQL had no stock left; Redis's stock was wrong

  Returns 1 when the batch was settled now, 0 when it was already settled,
  -1 when the gate was rebuilt since the batch was taken (Redis lost its
  data): the batch is gone and the gate must be synced from PostgreSQL.
]]
local raw = redis.call('HGET', KEYS[5], ARGV[1])
if not raw then
  if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then return -1 end
  return 0
end
local batch = cjson.decode(raw)
local corrected = {}
for i = 3, #ARGV, 2 do corrected[ARGV[i]] = tonumber(ARGV[i + 1]) end

local returned = 0
local soldOut = false
local items = batch.i
local arrivals, users = {}, {}
for i = 1, #items, 3 do
  local user, arrival, outcome = items[i], items[i + 1], items[i + 2]
  arrivals[#arrivals + 1] = arrival
  users[#users + 1] = user
  local now = corrected[user]
  if outcome == 1 and now == 3 then
    returned = returned + 1
  elseif outcome == 1 and now == 2 then
    redis.call('SREM', KEYS[2], user)
    soldOut = true
  end
end
-- A few thousand arguments per call (Lua's unpack is limited to about 8,000 values).
for from = 1, #users, 4000 do
  local to = math.min(#users, from + 3999)
  redis.call('HDEL', KEYS[3], unpack(arrivals, from, to))
  redis.call('HDEL', KEYS[4], unpack(users, from, to))
end
if soldOut then
  redis.call('HSET', KEYS[1], 'stock', 0)
elseif returned > 0 then
  redis.call('HINCRBY', KEYS[1], 'stock', returned)
end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
