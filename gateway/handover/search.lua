-- A page of search results in one round trip, read-only: the conversations in every term's zset (SEARCH), newest
-- match first, narrowed by the filters; gateway/handover/search.py calls it and describes the index.
--
-- KEYS[1..n] = the query's term zsets, KEYS[n + 1] = a label's zset to narrow to (optional). ARGV = n, the
-- conversation hash's key prefix, the terms (JSON), the cursor (score, conversation, driver: '' for the first page),
-- the page's size, how many candidates to look at before answering, the filters (status, owner, channel, since,
-- until: '' for any) and the suffixes of a conversation's SEARCH_TERMS and MESSAGES keys.
--
-- One term's zset drives (the smallest, or the cursor's): its members are read from its newest down and each is kept
-- when it is in every other zset and passes the filters. The answer is JSON {hits = {{id, {hash}, message id,
-- {the message}}...},
-- more = whether to ask again, last = {score, id, driver} to continue after}.

local n = tonumber(ARGV[1])
local prefix, wanted = ARGV[2], cjson.decode(ARGV[3])
local after_score, after_id, after_driver = ARGV[4], ARGV[5], ARGV[6]
local limit, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local status, owner, channel, since, until_ = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local terms_suffix, messages_suffix = ARGV[14], ARGV[15]
local label = KEYS[n + 1]

local driver = nil
if after_driver ~= '' then
  driver = tonumber(after_driver) + 1
  if driver > n then return cjson.encode({hits = {}, more = false}) end
else
  local smallest = nil
  for i = 1, n do
    local size = redis.call('ZCARD', KEYS[i])
    if size == 0 then return cjson.encode({hits = {}, more = false}) end
    if not smallest or size < smallest then smallest, driver = size, i end
  end
end
local zset = KEYS[driver]

-- Where to start reading: after the cursor (by its rank when it has not moved, else by its score), and not above
-- `until`.
local start = 0
if after_score ~= '' then
  if redis.call('ZSCORE', zset, after_id) == after_score then
    start = redis.call('ZREVRANK', zset, after_id) + 1
  else
    start = redis.call('ZCOUNT', zset, '(' .. after_score, '+inf')
    for _, tied in ipairs(redis.call('ZREVRANGEBYSCORE', zset, after_score, after_score)) do
      if tied > after_id then start = start + 1 end
    end
  end
end
if until_ ~= '' then start = math.max(start, redis.call('ZCOUNT', zset, '(' .. until_, '+inf')) end
local lowest = since ~= '' and tonumber(since) or nil

local function passes(id)
  for i = 1, n do
    if i ~= driver and not redis.call('ZSCORE', KEYS[i], id) then return false end
  end
  if label and not redis.call('ZSCORE', label, id) then return false end
  local found = redis.call('HMGET', prefix .. id, 'status', 'owner', 'channel')
  if not found[1] then return false end -- indexed, since deleted
  if status ~= '' and found[1] ~= status then return false end
  if owner ~= '' and found[2] ~= owner then return false end
  if channel ~= '' and found[3] ~= channel then return false end
  return true
end

-- The newest message holding one of the terms (ids are "<ms>-<place>").
local function matching_message(id)
  local fields = {}
  for i, term in ipairs(wanted) do fields[i] = 'm:' .. term end
  local best, best_ms = '', -1
  for _, mid in ipairs(redis.call('HMGET', prefix .. id .. terms_suffix, unpack(fields))) do
    if mid then
      local ms = tonumber(string.match(mid, '^(%d+)-')) or 0
      if ms > best_ms then best, best_ms = mid, ms end
    end
  end
  return best
end

local hits, last, looked, more = {}, nil, 0, false
local position = start
while true do
  local batch = redis.call('ZREVRANGE', zset, position, position + 199, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    if lowest and tonumber(score) < lowest then batch = {} break end
    if #hits == limit then more = true break end
    if looked == budget then more = true break end
    looked = looked + 1
    last = {score, id, driver - 1}
    if passes(id) then
      local flat = redis.call('HGETALL', prefix .. id)
      local hash = {}
      for j = 1, #flat, 2 do hash[flat[j]] = flat[j + 1] end
      local mid = matching_message(id)
      local message = {}
      if mid ~= '' then
        local raw = redis.call('LINDEX', prefix .. id .. messages_suffix, tonumber(string.match(mid, '-(%d+)$')))
        if raw then message = cjson.decode(raw) end
      end
      hits[#hits + 1] = {id, hash, mid, message}
    end
  end
  if more or #batch == 0 then break end
  position = position + 200
end
return cjson.encode({hits = hits, more = more, last = last})
