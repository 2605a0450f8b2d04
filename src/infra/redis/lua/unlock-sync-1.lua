--[[
  Releases a coupon's sync lock if the caller still holds it: a sync whose
  lock expired must not release the lock of the sync that took over.

  KEYS[1] sync      STRING the token of the sync holding the coupon's lock

  ARGV[1] the caller's lock token

  Returns 1 when released, 0 when the lock was not the caller's (or gone).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
