-- A page of a list (an inbox view, Contacts) in one round trip: the members of a zset from the highest score down,
-- ties by member from the highest, after a cursor (the score and member of the last one already read), each with its
-- hash, and the size of every zset of KEYS after the first. Read-only; gateway/handover/store.py calls it.
--
-- KEYS[1] = the zset, KEYS[2..] = zsets to count; ARGV = the hash's key prefix (the member is appended), the cursor's
-- score and member ('' for the first page), the page's size, and a suffix naming a further zset per member to read
-- whole (a contact's conversations; '' for none). The answer is JSON: {page = {{member, score, {hash}, {zset}}...},
-- more = whether members follow the page, sizes = {...}}.

local zset, prefix, score, member, limit, extra = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]

local found = {}
local function take(flat, after_member)
  for i = 1, #flat, 2 do
    if #found > limit then return end
    if not after_member or flat[i] < after_member then found[#found + 1] = {flat[i], flat[i + 1]} end
  end
end
if score == '' then
  take(redis.call('ZREVRANGEBYSCORE', zset, '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1))
else -- those tied with the cursor's score (rare: ms), then the lower scores
  take(redis.call('ZREVRANGEBYSCORE', zset, score, score, 'WITHSCORES'), member)
  take(redis.call('ZREVRANGEBYSCORE', zset, '(' .. score, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1))
end

local page = {}
for i = 1, math.min(#found, limit) do
  local id = found[i][1]
  local flat = redis.call('HGETALL', prefix .. id)
  local hash = {}
  for j = 1, #flat, 2 do hash[flat[j]] = flat[j + 1] end
  local row = {id, found[i][2], hash}
  if extra ~= '' then row[4] = redis.call('ZRANGE', prefix .. id .. extra, 0, -1) end
  page[#page + 1] = row
end

local sizes = {}
for i = 2, #KEYS do sizes[#sizes + 1] = redis.call('ZCARD', KEYS[i]) end
return cjson.encode({page = page, more = #found > limit, sizes = sizes})
