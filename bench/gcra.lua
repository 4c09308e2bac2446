-- THROTTLE for Redis as a Lua script: the semantics of docs/spec/throttle.md
-- (Sluice's, which match redis-cell v0.5.0 except where the spec says
-- otherwise), for the benchmark's redis-lua peer.
--
--   EVALSHA <sha> 1 <key> <max_burst> <count> <period> [<quantity>]
--   -> {limited, limit, remaining, retry_after, reset_after}
--
-- State: the key holds the theoretical arrival time (TAT) as a decimal string
-- of Unix nanoseconds, with a PX expiry at (or just after) the TAT, so a key
-- whose TAT has passed is gone.
--
-- Redis's Lua numbers are doubles, exact for integers below 2^53. Unix
-- nanoseconds (~1.8e18) are not, so the clock is kept as whole seconds plus
-- nanoseconds and only differences from now are computed, and the script
-- rejects limits whose tolerance (or quantity * interval) reaches 2^53 ns
-- (about 104 days) instead of rounding. Within that range every result is the
-- exact integer arithmetic of the spec. The clock is Redis's TIME
-- (microseconds), read once per call.

local NS = 1000000000
local EXACT = 9007199254740992 -- 2^53

local function int(s)
  if type(s) ~= 'string' then return nil end
  local sign, digits = string.match(s, '^([+-]?)(%d+)$')
  if not digits then return nil end
  -- Drop leading zeros so the length test below means magnitude.
  digits = string.gsub(digits, '^0+(%d)', '%1')
  if #digits > 16 then return nil end -- not exact as a double
  local n = tonumber(digits)
  if sign == '-' then n = -n end
  return n
end

-- floor(a / b) for non-negative integers a < 2^53 and positive b, exactly.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

-- Whole seconds the redis-cell v0.5.0 way: truncate, then add 1 when the
-- truncated part holds at least one whole millisecond. -1 stays -1.
local function seconds(d)
  if d < 0 then return -1 end
  local s = idiv(d, NS)
  if d - s * NS >= 1000000 then s = s + 1 end
  return s
end

if #KEYS ~= 1 or (#ARGV ~= 3 and #ARGV ~= 4) then
  return redis.error_reply("ERR wrong number of arguments for 'throttle' command")
end
local key = KEYS[1]
local max_burst, count, period = int(ARGV[1]), int(ARGV[2]), int(ARGV[3])
local quantity = 1
if #ARGV == 4 then quantity = int(ARGV[4]) end
if not (max_burst and count and period and quantity) then
  return redis.error_reply('ERR value is not an integer or out of range')
end
if max_burst < 0 then return redis.error_reply('ERR invalid max_burst: must be >= 0') end
if count < 1 then return redis.error_reply('ERR invalid count: must be >= 1') end
if period < 1 then return redis.error_reply('ERR invalid period: must be >= 1 second') end
if period * NS >= EXACT then
  return redis.error_reply('ERR limit arithmetic overflows this script (2^53 ns)')
end

local T = idiv(period * NS, count)
if T == 0 then return redis.error_reply('ERR zero rates are not supported') end
local limit = max_burst + 1
local tau = T * limit
local inc = T * quantity
if tau >= EXACT or math.abs(inc) >= EXACT then
  return redis.error_reply('ERR limit arithmetic overflows this script (2^53 ns)')
end

local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000

-- diff = max(tat - now, 0): the stored TAT relative to now.
local diff = 0
local stored = redis.call('GET', key)
if stored then
  local tat_s = tonumber(string.sub(stored, 1, -10)) or 0
  local tat_ns = tonumber(string.sub(stored, -9)) or 0
  diff = (tat_s - now_s) * NS + (tat_ns - now_ns)
  if diff < 0 then diff = 0 end
end

local new = diff + inc -- new_tat - now
if new < 0 then new = 0 end -- a refund never goes past full capacity
local allow_at = new - tau -- allow_at - now

local limited, ttl, retry
if allow_at > 0 then
  limited, ttl = 1, diff
  if inc > tau then retry = -1 else retry = allow_at end
else
  limited, ttl, retry = 0, new, -1
  if new > 0 then
    local total = now_ns + new
    local carry = idiv(total, NS)
    local value = string.format('%d%09d', now_s + carry, total - carry * NS)
    redis.call('SET', key, value, 'PX', math.ceil(new / 1000000))
  elseif stored then
    redis.call('DEL', key) -- back to full capacity: no state
  end
end

local remaining = 0
if tau > ttl then remaining = idiv(tau - ttl, T) end
if remaining > limit then remaining = limit end

local retry_s = -1
if retry >= 0 then retry_s = seconds(retry) end
return {limited, limit, remaining, retry_s, seconds(ttl)}
