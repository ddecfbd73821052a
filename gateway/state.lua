-- Baton's conversation state machine. One script, so that every change of owner, every message,
-- every timer and the inbox event that announces it happen in one atomic step.
-- ARGV[1] = operation, ARGV[2] = workspace id, ARGV[3] = JSON arguments. Returns JSON.
-- Keys are built here from the workspace prefix (see gateway/keys.py for the same templates):
-- Baton targets a standalone Redis/Valkey, not a cluster.

local op, ws, args = ARGV[1], ARGV[2], cjson.decode(ARGV[3])
local P = 'baton:' .. ws .. ':'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function conv_key(cid) return P .. 'conv:' .. cid end
local function msgs_key(cid) return P .. 'conv:' .. cid .. ':messages' end
local function awaiting_key(cid) return P .. 'conv:' .. cid .. ':awaiting-human' end
local function view_key(view) return P .. 'view:' .. view end
local TIMERS = P .. 'timers:no-human'

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function load(cid)
  local flat = redis.call('HGETALL', conv_key(cid))
  if #flat == 0 then return nil end
  return hash_to_table(flat)
end

local function ai_published()
  local override = redis.call('HGET', P .. 'ai-agent', 'published')
  if override then return override == '1' end
  return args.ai_published == true
end

local function view_of(c)
  if c.status == 'closed' then return 'closed' end
  if c.owner == 'ai' then return 'ai' end
  if c.owner == 'none' then return 'waiting' end
  return c.owner
end

local function event(kind, data)
  data.type = kind
  data.at = now
  return redis.call('XADD', P .. 'events', 'MAXLEN', '~', 10000, '*', 'data', cjson.encode(data))
end

-- Append to the conversation's history; `m` holds author, text and optional kind, visibility, data…
local function append(c, m)
  m.created_at = now
  local fields = {}
  for k, v in pairs(m) do
    if type(v) == 'table' then v = cjson.encode(v) end
    fields[#fields + 1] = k
    fields[#fields + 1] = tostring(v)
  end
  local mid = redis.call('XADD', msgs_key(c.id), '*', unpack(fields))
  local visible = (m.visibility or 'public') == 'public'
  if visible and m.author ~= 'system' then
    redis.call('HSET', conv_key(c.id), 'last_text', m.text or '', 'last_author', m.author,
      'last_message_at', now, 'updated_at', now)
    redis.call('ZADD', view_key(view_of(c)), now, c.id)
    if c.status == 'open' then redis.call('ZADD', P .. 'view:open', now, c.id) end
  end
  event('message.created', {conversation = c.id, message = mid, author = m.author, kind = m.kind or 'message',
    text = m.text or '', visibility = m.visibility or 'public', channel = c.channel})
  return mid
end

local function note(c, kind, text, data, visibility)
  return append(c, {author = 'system', kind = kind, text = text, visibility = visibility or 'internal',
    data = data or {}})
end

local function disarm(c)
  if c.waits then redis.call('ZREM', TIMERS, c.id .. '|' .. c.waits) end
  redis.call('DEL', awaiting_key(c.id))
end

local function arm(c, timeout_ms)
  local waits = tonumber(c.waits or 0) + 1
  c.waits = tostring(waits)
  redis.call('HSET', conv_key(c.id), 'waits', waits, 'waiting_since', now, 'form_state', '')
  redis.call('ZADD', TIMERS, now + timeout_ms, c.id .. '|' .. waits)
  redis.call('SET', awaiting_key(c.id), waits, 'PX', math.floor(timeout_ms))
end

-- Move the conversation to a new owner; the caller has checked that the move is allowed.
local function set_owner(c, owner)
  local before = view_of(c)
  local score = tonumber(c.last_message_at or c.created_at or now)
  c.owner = owner
  c.epoch = tostring(tonumber(c.epoch or 0) + 1)
  redis.call('HSET', conv_key(c.id), 'owner', owner, 'epoch', c.epoch, 'updated_at', now)
  local after = view_of(c)
  if before ~= after then
    redis.call('ZREM', view_key(before), c.id)
    redis.call('ZADD', view_key(after), score, c.id)
  end
  if owner ~= 'none' then
    disarm(c)
    redis.call('HDEL', conv_key(c.id), 'waiting_since')
  elseif args.timeout_ms then
    arm(c, args.timeout_ms)
  end
end

local function ok(t) t.ok = true return cjson.encode(t) end
local function fail(code, t) t = t or {} t.ok = false t.error = code return cjson.encode(t) end

local function open_conversation(c)
  if not c then return nil, fail('not_found') end
  if c.status ~= 'open' then return nil, fail('closed', {status = c.status}) end
  return c
end

local function new_contact()
  local by_identity = P .. 'contact-by:' .. args.channel .. ':' .. args.sender
  local contact = redis.call('GET', by_identity)
  if contact then
    if args.profile_name and args.profile_name ~= '' then
      redis.call('HSETNX', P .. 'contact:' .. contact, 'name', args.profile_name)
    end
    return contact
  end
  contact = tostring(redis.call('INCR', P .. 'seq:contact'))
  local ck = P .. 'contact:' .. contact
  redis.call('HSET', ck, 'id', contact, 'created_at', now, 'updated_at', now,
    'identities', cjson.encode({args.channel .. ':' .. args.sender}))
  if args.profile_name and args.profile_name ~= '' then redis.call('HSET', ck, 'name', args.profile_name) end
  if args.phone and args.phone ~= '' then redis.call('HSET', ck, 'phone', args.phone) end
  redis.call('SET', by_identity, contact)
  redis.call('ZADD', P .. 'contacts', now, contact)
  return contact
end

local function start_conversation()
  local cid = tostring(redis.call('INCR', P .. 'seq:conversation'))
  local contact = new_contact()
  local latest_key = P .. 'latest:' .. args.channel .. ':' .. args.sender
  local previous = redis.call('GET', latest_key)
  local c = {id = cid, channel = args.channel, sender = args.sender, contact = contact, status = 'open',
    owner = 'ai', epoch = '0', created_at = tostring(now), profile_name = args.profile_name or ''}
  if not ai_published() then c.owner = 'none' end
  redis.call('HSET', conv_key(cid), 'id', cid, 'channel', c.channel, 'sender', c.sender, 'contact', contact,
    'status', 'open', 'owner', c.owner, 'epoch', 0, 'created_at', now, 'updated_at', now,
    'profile_name', c.profile_name, 'previous', previous or '')
  redis.call('SET', P .. 'active:' .. args.channel .. ':' .. args.sender, cid)
  redis.call('SET', latest_key, cid)
  redis.call('ZADD', P .. 'contact:' .. contact .. ':conversations', now, cid)
  redis.call('ZADD', view_key(view_of(c)), now, cid)
  redis.call('ZADD', P .. 'view:open', now, cid)
  event('conversation.created', {conversation = cid, channel = c.channel, owner = c.owner, contact = contact,
    previous = previous or ''})
  if c.owner == 'none' then
    arm(c, args.timeout_ms)
    redis.call('HSET', conv_key(cid), 'handover_reason', 'AI agent is unpublished', 'handover_at', now)
    event('conversation.handover', {conversation = cid, channel = c.channel,
      reason = 'AI agent is unpublished', summary = '', customer = c.profile_name})
  end
  return c
end

local ops = {}

-- A customer message arrived: dedupe, find or start the conversation, append, queue the AI's turn.
function ops.inbound()
  local dedupe = nil
  if args.provider_id and args.provider_id ~= '' then
    dedupe = P .. 'dedupe:' .. args.channel .. ':' .. args.provider_id
    local seen = redis.call('GET', dedupe)
    if seen then
      local cid, mid = string.match(seen, '^([^|]*)|(.*)$')
      return ok({duplicate = true, conversation = cid, message = mid})
    end
  end
  local cid = redis.call('GET', P .. 'active:' .. args.channel .. ':' .. args.sender)
  local c = cid and load(cid)
  local created = false
  if not c or c.status ~= 'open' then
    c = start_conversation()
    created = true
  end
  local mid = append(c, {author = 'customer', text = args.text or '', media = args.media or {},
    data = args.extra or {}, client_id = args.client_id or ''})
  if dedupe then redis.call('SET', dedupe, c.id .. '|' .. mid, 'EX', args.dedupe_ttl or 604800) end
  redis.call('ZADD', P .. 'pending-turns', 'NX', now, c.id)
  return ok({duplicate = false, conversation = c.id, message = mid, created = created, owner = c.owner,
    notify = created and c.owner == 'none'})
end

-- Change who owns an open conversation: an agent, the AI, or nobody (waiting for a human).
function ops.assign()
  local c, err = open_conversation(load(args.conversation))
  if not c then return err end
  local target, actor = args.target, args.actor
  if target == c.owner then return ok({unchanged = true, owner = c.owner, epoch = c.epoch}) end
  local held_by_other = string.sub(c.owner, 1, 6) == 'agent:' and c.owner ~= actor
  if held_by_other and not args.force then return fail('conflict', {owner = c.owner}) end
  if target == 'ai' and not ai_published() then return fail('ai_unpublished') end
  local previous = c.owner
  set_owner(c, target)
  local data = {actor = actor, previous = previous, owner = target, reason = args.reason or ''}
  note(c, 'assignment', args.note or '', data)
  if args.notice and args.notice ~= '' then
    append(c, {author = 'system', kind = 'notice', text = args.notice, visibility = 'public'})
  end
  if target == 'ai' then
    local last = redis.call('XREVRANGE', msgs_key(c.id), '+', '-', 'COUNT', 1)
    redis.call('HSET', conv_key(c.id), 'offer', 0, 'unknown_streak', 0, 'ai_cursor', last[1][1],
      'handed_back_at', now)
  end
  event('conversation.assigned', {conversation = c.id, owner = target, previous = previous, actor = actor,
    reason = args.reason or '', channel = c.channel})
  return ok({owner = target, previous = previous, epoch = c.epoch})
end

-- The AI hands over: only while it still owns the conversation at the epoch it read.
function ops.handover()
  local c, err = open_conversation(load(args.conversation))
  if not c then return err end
  if c.owner ~= 'ai' or (args.epoch and tostring(args.epoch) ~= c.epoch) then
    return fail('not_owner', {owner = c.owner})
  end
  local notice = nil
  if args.notice and args.notice ~= '' then
    notice = append(c, {author = 'ai', text = args.notice, visibility = 'public'})
  end
  set_owner(c, 'none')
  local count = redis.call('HINCRBY', conv_key(c.id), 'handovers', 1)
  redis.call('HSET', conv_key(c.id), 'handover_reason', args.reason, 'handover_summary', args.summary or '',
    'handover_at', now, 'offer', 0)
  note(c, 'handover', args.reason, {reason = args.reason, summary = args.summary or '', route = args.route or ''})
  event('conversation.handover', {conversation = c.id, channel = c.channel, reason = args.reason,
    summary = args.summary or '', customer = c.profile_name or '', handovers = count})
  return ok({notice = notice, handovers = count})
end

-- Post a reply. The AI may post only while it owns the conversation at the epoch it read; an agent
-- who replies in a conversation the AI or nobody holds takes it over.
function ops.post()
  local c, err = open_conversation(load(args.conversation))
  if not c then return err end
  if args.author == 'ai' then
    if c.owner ~= 'ai' or (args.epoch and tostring(args.epoch) ~= c.epoch) or not ai_published() then
      note(c, 'suppressed', args.text, {owner = c.owner, reason = 'the AI no longer owns the conversation'})
      return fail('suppressed', {owner = c.owner})
    end
  elseif args.author == 'agent' then
    local me = 'agent:' .. args.agent
    if c.owner ~= me then
      if string.sub(c.owner, 1, 6) == 'agent:' then return fail('conflict', {owner = c.owner}) end
      local previous = c.owner
      set_owner(c, me)
      note(c, 'assignment', '', {actor = me, previous = previous, owner = me, reason = 'replied'})
      if args.notice then append(c, {author = 'system', kind = 'notice', text = args.notice, visibility = 'public'}) end
      event('conversation.assigned', {conversation = c.id, owner = me, previous = previous, actor = me,
        reason = 'replied', channel = c.channel})
    end
  end
  local m = {author = args.author, text = args.text, visibility = args.visibility or 'public',
    kind = args.kind or 'message', data = args.data or {}}
  if args.agent then m.agent = args.agent end
  if args.agent_name then m.agent_name = args.agent_name end
  if args.rich then m.rich = args.rich end
  local mid = append(c, m)
  if args.set then
    for k, v in pairs(args.set) do redis.call('HSET', conv_key(c.id), k, tostring(v)) end
  end
  return ok({message = mid, owner = c.owner})
end

-- Close the conversation; the customer's next message starts a fresh one.
function ops.close()
  local c, err = open_conversation(load(args.conversation))
  if not c then return err end
  local actor = args.actor
  if actor == 'ai' and (c.owner ~= 'ai' or tostring(args.epoch or c.epoch) ~= c.epoch) then
    return fail('not_owner', {owner = c.owner})
  end
  if actor ~= 'ai' and string.sub(c.owner, 1, 6) == 'agent:' and c.owner ~= actor and not args.force then
    return fail('conflict', {owner = c.owner})
  end
  local goodbye = nil
  if args.goodbye and args.goodbye ~= '' then
    goodbye = append(c, {author = actor == 'ai' and 'ai' or 'system', text = args.goodbye, visibility = 'public'})
  end
  local before = view_of(c)
  disarm(c)
  c.status = 'closed'
  redis.call('HSET', conv_key(c.id), 'status', 'closed', 'closed_at', now, 'closed_by', actor, 'updated_at', now)
  redis.call('ZREM', view_key(before), c.id)
  redis.call('ZREM', P .. 'view:open', c.id)
  redis.call('ZADD', view_key('closed'), now, c.id)
  local active = P .. 'active:' .. c.channel .. ':' .. c.sender
  if redis.call('GET', active) == c.id then redis.call('DEL', active) end
  redis.call('ZREM', P .. 'pending-turns', c.id)
  append(c, {author = 'system', kind = 'closed', text = args.notice or 'This conversation was closed.',
    visibility = 'public', data = {actor = actor}})
  event('conversation.closed', {conversation = c.id, actor = actor, channel = c.channel})
  return ok({goodbye = goodbye})
end

-- Fire every due no-human timer: send the contact form once per wait, never after an assignment.
function ops.fire()
  local due = redis.call('ZRANGEBYSCORE', TIMERS, '-inf', now, 'WITHSCORES', 'LIMIT', 0, args.limit or 200)
  local fired = {}
  for i = 1, #due, 2 do
    local member, deadline = due[i], tonumber(due[i + 1])
    redis.call('ZREM', TIMERS, member)
    local cid, wait = string.match(member, '^(.*)|(%d+)$')
    local c = load(cid)
    if c and c.status == 'open' and c.owner == 'none' and c.waits == wait and (c.form_state or '') == '' then
      redis.call('HSET', conv_key(cid), 'form_state', 'sent', 'form_sent_at', now)
      local mid = append(c, {author = 'system', kind = 'contact_form', text = args.text,
        visibility = 'public', rich = args.form})
      event('contact.form_sent', {conversation = cid, channel = c.channel})
      fired[#fired + 1] = {conversation = cid, message = mid, channel = c.channel, late_ms = now - deadline}
    end
  end
  return cjson.encode({fired = fired, now = now})
end

-- Store what the customer left in the contact form, merged into their contact.
function ops.capture()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  local ck = P .. 'contact:' .. c.contact
  for _, field in ipairs({'name', 'email', 'phone', 'message'}) do
    local value = args.details[field]
    if value and value ~= '' then redis.call('HSET', ck, field, value) end
  end
  redis.call('HSET', ck, 'updated_at', now, 'captured_at', now, 'captured_in', c.id)
  redis.call('ZADD', P .. 'contacts', now, c.contact)
  redis.call('HSET', conv_key(c.id), 'form_state', 'done')
  note(c, 'contact_captured', args.summary or '', args.details, 'internal')
  local confirmation = nil
  if args.confirmation then
    confirmation = append(c, {author = 'system', kind = 'notice', text = args.confirmation, visibility = 'public'})
  end
  event('contact.captured', {conversation = c.id, contact = c.contact, channel = c.channel,
    name = args.details.name or '', email = args.details.email or '', phone = args.details.phone or ''})
  return ok({contact = c.contact, confirmation = confirmation})
end

-- Record a provider's delivery report without letting a late status overwrite a later one.
function ops.delivery()
  local dk = P .. 'delivery:' .. args.channel .. ':' .. args.provider_id
  local rank = {accepted = 1, queued = 1, sending = 2, sent = 3, failed = 4, undelivered = 4,
    delivered = 5, read = 6}
  local current = redis.call('HGET', dk, 'status')
  local new_rank = rank[args.status] or 0
  if current and (rank[current] or 0) >= new_rank then return ok({applied = false, status = current}) end
  redis.call('HSET', dk, 'status', args.status, 'error_code', args.error_code or '', 'updated_at', now)
  redis.call('EXPIRE', dk, 2592000)
  local cid, mid = redis.call('HGET', dk, 'conversation'), redis.call('HGET', dk, 'message')
  if cid and mid then
    redis.call('HSET', P .. 'conv:' .. cid .. ':delivery', mid, args.status)
    event('message.status', {conversation = cid, message = mid, status = args.status,
      error_code = args.error_code or ''})
  end
  return ok({applied = true, status = args.status})
end

local handler = ops[op]
if not handler then return fail('unknown_operation', {operation = op}) end
return handler()
