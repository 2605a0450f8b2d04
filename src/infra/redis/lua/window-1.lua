--[[
  Writes a loaded coupon's window; a coupon not loaded is left alone (its
  gate is built from PostgreSQL, which already holds the new window).

  KEYS[1] meta      HASH  stock, startsAt, endsAt

  ARGV[1] startsAt ms or ''
  ARGV[2] endsAt ms or ''

  Returns 1 when written, 0 when the coupon is not loaded.
]]
if redis.call('HEXISTS', KEYS[1], 'stock') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'startsAt', ARGV[1], 'endsAt', ARGV[2])
return 1
