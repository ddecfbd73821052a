-- Baton's conversation state machine: every change of owner, every message, every timer and the events and
-- notifications that announce them happen here, in one atomic step per operation.
--
-- ARGV[1] = operation, ARGV[2] = workspace id, ARGV[3] = JSON arguments; the answer is JSON. Key names come
-- from gateway/keys.py, rendered into the TEMPLATES table below when the store loads the script (new
-- conversation ids are minted in here, so keys cannot all be declared up front: Baton runs on a standalone
-- Redis/Valkey, or one behind Sentinel, never a cluster).
--
-- Every operation is refused with schema_mismatch (answered 503) while the SCHEMA hash names another schema than the
-- one rendered into this script, or a `baton migrate` under way (gateway/schema.py, gateway/migrations.py).
--
-- A conversation (hash CONVERSATION):
--   status       open | closed
--   owner        ai | none (waiting for a human) | agent:<id>          epoch: +1 on every change of owner
--   ai_cursor    the newest customer message the AI has dealt with     last_customer: the newest one
--   offer        1 while the AI's offer of a human awaits an answer    unknown_streak: answers it did not know
--   waits        how many no-human waits were armed                    waiting_since: while one is armed
--   form_state   '' | sent (the contact form is out) | done (details captured)
--   delivers     1 when the channel sends messages out (an outbox), '' when it serves them from the history
--   last_turn    "<lock>|<operation>" of the AI turn's commit that applied last (see TURNS)
--   day, outcome the UTC day it started and its outcome so far, for the reports (see REPORT below); csat: its rating
--   language     the customer's language as last read (en, es, fr, de, pt, it; absent: the workspace's), which picks
--                what the customer is told where one operation speaks to many conversations (see LANGUAGE)
--   after_hours  while a chat that started waiting outside business hours waits: since when (the inbox lists it first)
--   sla_due      while a response target runs: its deadline (ms), sla_kind first | next, sla_since when it started,
--                sla_target how many were armed, sla_breached when it was missed; answered_at: a human's last reply
--
-- Transitions (operation: who, from → to):
--   inbound     a customer   nothing or closed → open, owned by the AI (or by none, armed, when it is unpublished)
--               a changed profile name (WhatsApp's ProfileName) renames the open conversation's customer and the contact
--   hand_over   the AI       ai → none, a wait armed (checked against the turn it read: see TURNS below)
--   assign      a human      ai | none | agent:x → agent:y | ai | none (agent:x only by x, or forced by an admin)
--   post        a human      ai | none → agent:me (a reply takes the conversation over); the AI only while it owns it
--               an agent's reply with a client_id is recorded once per (agent, client_id) for a day (REPLY), refused
--               client_id_reused when that key named another conversation; `more`: further texts of the same
--               reply (split to the channel's length), appended after it in the same step
--   close       a human, the AI (by its turn)   open → closed; the customer's next message starts a new one
--   fire        the timers   none, wait armed, deadline passed, no human → the contact form goes out
--   capture     the customer (form or text)     form sent → done, details stored in Contacts
--   publish     an admin     unpublishing moves every AI conversation to none; publishing again gives the AI back
--                            those that wait only because it was unpublished (UNPUBLISHED_WAITS) and no human took
--
-- TURNS: a customer message that needs the AI marks its conversation pending (PENDING_TURNS) and wakes a worker
-- (TURNS) once. A turn reads the conversation with its ai_cursor and commits through hand_over, post, close, capture
-- or finish with {expect = that cursor, upto = the newest customer message it read, lock = its lock token}: the
-- commit applies only if the cursor is still `expect` (so a turn is committed once, whoever ran it), moves the
-- cursor to `upto`, releases the turn's lock and clears the pending mark, or wakes a worker again when newer
-- customer messages arrived meanwhile. A commit that applied records "<lock>|<operation>" as last_turn: the same commit
-- made again (its answer lost on the way back) answers {repeated = true} and changes nothing. A stamp may carry the
-- `language` the turn read from the customer's recent messages: it is stored on the conversation.
--
-- RESPONSE TARGETS (sla): while a customer waits for a human's answer, one target runs: `first` from a handover,
-- `next` from a customer's message to a chat a human has answered since. Its deadline is in SLA_TIMERS as
-- "<id>|<sla_target>" (a stale timer is told apart). An agent's public reply meets it (post answers `responded`);
-- the AI taking the chat back or a close ends it. fire marks a missed one (sla_breached, the overdue view, an event
-- and a notification) and, with on_breach = requeue, takes the chat from its assignee back to the queue or to the
-- next free agent: no new no-human wait, never a second contact form. The caller's `sla` argument is {first_ms,
-- next_ms, on_breach}: the targets as offsets from now that count business hours only (left out: no targets).
--
-- OUTBOX: every public message of a conversation whose channel sends (delivers = 1) is queued on its outbox and
-- delivered in order by whoever holds the outbox lock (outbox_next, outbox_done). A message found `sending` by the
-- next sender was possibly sent by a sender that died: it becomes `unknown`, never sent twice.

-- SEARCH: `terms` (a message's, the customer's new details') are what search finds them by, computed by the caller
-- (gateway/handover/search.py) and indexed in the same step as what they index; forget takes them out again.
--
-- OPERATIONS: op(arguments) -> answer | refusal codes. `conversation` is the conversation's id, `turn` an AI turn's
-- stamp {expect, upto, lock} (see TURNS); an argument in [brackets] may be left out. Every answer is a JSON object with
-- ok = true, or ok = false and error = the code. Any operation may also be refused with schema_mismatch (above), and an
-- operation not named here with unknown_operation. The codes are gateway/handover/store.py's RefusalCode; a test holds
-- this list to the code.
--   inbound(channel, sender, [provider_id], text, customer, delivers, published, timeout_ms, [profile_name], [phone],
--           [media], [data], [dedupe_ttl], [team], [sent_at_ms], [assignment], [durable_ms], [language], [terms],
--           [customer_terms], [sla], [csat_ms], [csat_thanks])
--           `language`: the message's clear language, stored on a conversation that has none yet
--           -> {duplicate, conversation, message, created, owner, [rated]}   a lone "1"-"5" within csat_ms of the
--           rating question of the customer's last conversation (closed) rates it instead of starting a new one
--   hand_over(conversation, turn, reason, route, [summary], [notice], [agent_name], timeout_ms, [assignment], [sla])
--           -> {handovers, assignee}
--           | not_found, stale_turn, not_owner
--   assign(conversation, target, actor, [reason], [notice], [force], published, [timeout_ms], [assignment],
--           [drain_limit])
--           -> {owner, previous} | {unchanged} | not_found, closed, conflict, ai_unpublished
--   post(conversation, author, text, [turn], [agent], [agent_name], [kind], [visibility], [rich], [data], [notice],
--           [published], [client_id], [more], [set], [resolve_ms], [terms]) -> {message, [responded]}
--           | {message, duplicate}
--           | {repeated}
--           | not_settable, client_id_reused, not_found, closed, stale_turn, suppressed, conflict
--   finish(conversation, turn, [set], [resolve_ms]) -> {owner} | {repeated} | not_settable, not_found, stale_turn
--           `set` (post and finish): only offer, unknown_streak, form_name, noted_at, followed_up_at (SETTABLE), what
--           the AI's turn and the no-human fallback keep between turns; owner, status, timers and views change only
--           through the operations that keep them together
--   close(conversation, actor, [turn], [goodbye], [agent_name], [force], [notice], [assignment], [drain_limit],
--           [csat_question], [window_ms])
--           -> {handovers} | {repeated}
--           | not_found, closed, stale_turn, not_owner, conflict
--   note(conversation, agent, agent_name, text, [mentions], [terms]) -> {message} | not_found
--   reopen(conversation, actor) -> {owner} | not_found, not_closed, newer_open
--   label(conversation, label, [add], actor) -> {labels} | {labels, unchanged} | not_found, no_label,
--           too_many_labels
--   label_delete(label, actor, [limit]) -> {remaining}
--   rate(conversation, rating, [comment], [via]) -> {rating, by} | not_found, not_closed
--   snooze(conversation, actor, [until]) -> {snoozed_until} | not_found, closed, not_owner (the AI's)
--   unsnooze(conversation, actor) -> {owner} | not_found, closed, not_snoozed
--   contact_update(contact, fields, terms, actor, [expect]) -> {contact} | no_contact, contact_changed
--           `fields`: name, email, phone, each a value or '' to clear it; `terms`: the contact's search terms now;
--           `expect`: its updated_at as the caller read it
--   fire(text, [form], [limit], [resolved_text], [sla], [assignment]) -> {fired = [{conversation, message, channel,
--           late_ms}], resolved = [{conversation, channel}], breached = [{conversation, kind, owner, due, channel,
--           [requeued], [now_owner]}], reminded, now}   also resolves the AI conversations idle past their IDLE_TIMERS, and
--           marks the response targets missed (see RESPONSE TARGETS) and reminds of the chats nobody took, then
--           escalates them (see REMINDERS): reminded = [{conversation, reminder | escalated}]
--           text, form and resolved_text: each a plain value or one per language (see LANGUAGE), like every
--           notice, confirmation and goodbye here, and assignment.joined ("{name} joined the conversation.")
--   capture(conversation, details, [summary], [confirmation], [turn], [terms]) -> {contact} | {repeated}
--           | not_found, closed, stale_turn, not_owner, no_form
--   publish(published, actor, reason, [timeout_ms], [announce], [limit], [notice], [assignment], [sla])
--           -> {moved, remaining}
--   presence(agent, status, [assignment], [drain_limit]) -> {status, given} | no_agent
--   stream_open(agent, token, lease_ms, [assignment], [drain_limit]) -> {status, given} | no_agent
--   stream_lease(agent, token, lease_ms) -> {}
--   presence_sweep([limit]) -> {offline}
--   set_assignment([mode], [capacity], assignment, actor, [drain_limit]) -> {mode, capacity, given}
--           `assignment` (here and above): config.yaml's {mode, capacity, file, [remind_ms], [remind_limit],
--           [after_hours]} (after_hours: outside business hours now, so a chat left waiting is marked so), whose
--           mode and capacity an admin's choice overrides while the file says what it said then (see ASSIGNMENT)
--   outbox_next(conversation, token, [lock_ms], [resolvable], [check_after_ms])
--           -> {message, recipient, channel, customer_at, maybe_sent, auto, attempted_at} | {} | not_found, busy
--   outbox_done(conversation, token, message, outcome, [provider_id], [status], [reason], [error_code], [final],
--           [retry_ms], [grace_ms], [lock_ms], [confirmed], [resolvable], [check_after_ms])
--           -> {message, recipient, channel, customer_at, maybe_sent, auto, attempted_at} | {} | {retry_in_ms, tries}
--           | not_found, not_holder
--           `final`: the failure is for good (sending again cannot help): kept as `<message>:final`;
--           `reason` with `sent`: how it went (as a template, in place of the text), an internal note
--           `resolvable`: the channels whose provider can be asked what became of a send of unknown outcome;
--           `check_after_ms`: when to ask, after each unknown outcome (see mark_unknown); `confirmed`: the provider
--           said it already had the message (it was not sent again)
--   resend(conversation, message, actor) -> {} | not_found, closed, not_resendable
--   resend_all(conversation, actor, [messages]) -> {queued, skipped} | not_found, closed
--   recheck_due([limit]) -> {queued}
--   status(channel, provider_id, status, [error_code], [reason], [final]) -> {applied, status}
--   forget(conversation) -> {forgotten} | open

local TEMPLATES = {} -- rendered from gateway/keys.py

local op, WS, args = ARGV[1], ARGV[2], cjson.decode(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function key(name, parts)
  parts = parts or {}
  return (string.gsub(TEMPLATES[name], '%%%(([%w_]+)%)s', function(part)
    if part == 'workspace_id' then return WS end
    return parts[part]
  end))
end
local function conv_key(cid) return key('CONVERSATION', {conversation_id = cid}) end
local function conv_part(name, cid) return key(name, {conversation_id = cid}) end
local function view_key(view) return key('VIEW', {view = view}) end

-- The first 60 bytes of a text, cut at a character boundary (UTF-8 continuation bytes are 0x80-0xBF).
local function preview(text)
  text = text or ''
  if #text <= 60 then return text end
  local cut = 60
  while cut > 0 and string.byte(text, cut + 1) and string.byte(text, cut + 1) >= 128
    and string.byte(text, cut + 1) < 192 do
    cut = cut - 1
  end
  return string.sub(text, 1, cut) .. '…'
end

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function load(cid)
  if not cid or cid == '' then return nil end
  local flat = redis.call('HGETALL', conv_key(cid))
  if #flat == 0 then return nil end
  return hash_to_table(flat)
end

local function set(c, ...)
  local pairs_ = {...}
  for i = 1, #pairs_, 2 do c[pairs_[i]] = tostring(pairs_[i + 1]) end
  redis.call('HSET', conv_key(c.id), ...)
end

-- A message id is "<ms>-<n>": the time it was written, and its place in the conversation's history (a list, as
-- a stream would preallocate 4 KB for every conversation). Ids of one conversation compare by their place.
local function place(id)
  return tonumber(string.match(id or '', '^%d+%-(%d+)$') or -1)
end
local function id_after(a, b)
  return place(a) > place(b)
end
local function message_at(c, id)
  local raw = redis.call('LINDEX', conv_part('MESSAGES', c.id), place(id))
  if not raw then return nil end
  local message = cjson.decode(raw)
  if message.id ~= id then return nil end
  return message
end

-- `default`: the configured publication, which an admin's runtime override (AI_AGENT) wins over.
local function ai_published(default)
  local override = redis.call('HGET', key('AI_AGENT'), 'published')
  if override then return override == '1' end
  return default == true
end

local function snoozed(c) return c.status == 'open' and (c.snoozed_until or '') ~= '' end

local function view_of(c)
  if c.status == 'closed' then return 'closed' end
  if snoozed(c) then return 'snoozed' end
  if c.owner == 'ai' then return 'ai' end
  if c.owner == 'none' then return 'waiting' end
  return c.owner
end

-- Who the customer is talking to, as the widget shows it: ai, waiting (for a person), agent, or closed.
local function party(c)
  if c.status == 'closed' then return 'closed' end
  if c.owner == 'ai' then return 'ai' end
  if c.owner == 'none' then return 'waiting' end
  return 'agent'
end

local function event(kind, data)
  data.type = kind
  data.at = now
  return redis.call('XADD', key('EVENTS'), 'MAXLEN', '~', 10000, '*', 'data', cjson.encode(data))
end

-- Told to every human agent outside the inbox (plugins, notifiers), at least once: a consumer group reads them.
local function notify(c, kind, data)
  data.type = kind
  data.conversation = c.id
  data.channel = c.channel
  data.customer = c.customer
  if (c.team or '') ~= '' then data.team = c.team end
  data.at = now
  redis.call('XADD', key('NOTIFICATIONS'), 'MAXLEN', '~', 100000, '*', 'data', cjson.encode(data))
end

-- Queue an outgoing message; the first one of an idle outbox wakes a worker to send it.
local function queue_delivery(c, mid)
  redis.call('HSET', conv_part('DELIVERY', c.id), mid, 'pending')
  redis.call('RPUSH', conv_part('OUTBOX', c.id), mid)
  if redis.call('ZADD', key('OUTBOXES'), 'NX', now, c.id) == 1 then redis.call('RPUSH', key('DELIVERIES'), c.id) end
end

-- --- reports ------------------------------------------------------------------------------------------------
--
-- REPORT (one hash per UTC day, gateway/reports.py reads them): counters "<metric>|<channel>" about the conversations
-- *started* that day (their `day`), kept in the step that changes them. Each such conversation has one `outcome` at
-- a time, so the outcomes' counters add up to `conversations`: open (nothing decided yet), handed_over (handed to
-- humans at some point: by the AI, by an agent taking it, by an unpublished AI; final), ai_resolved (closed, never
-- handed over, after an answer of the AI; by a person, the AI, or the idle timer: auto_resolved counts those) and
-- abandoned (closed, never handed over, before the AI answered anything). returned: AI-resolved conversations whose
-- customer came back (a new conversation) within durable_ms of the close. Times are histograms over BUCKETS
-- ("<metric>:<bucket>"): first_response (start → the first reply of the AI or a person), to_assignment (first
-- handover → an agent holds it), to_human_reply (first handover → an agent's first reply), resolution (start →
-- first close). REPORT_TOTALS holds the same counters for all time, only ever incremented (Prometheus).
-- Conversations started before reports were kept have no `day` and count nowhere.
-- BUCKETS: the upper bounds of the time histograms, in seconds.
local BUCKETS = {} -- rendered from gateway/reports.py
local RESOLVE_MS, DURABLE_MS = 86400000, 604800000 -- defaults of reports.resolve_after and reports.durable_days

-- A time (ms since the epoch) as its UTC day, YYYY-MM-DD (days to civil date, after H. Hinnant).
local function day_of(ms)
  local z = math.floor(ms / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d', y, m, d)
end

local function count(c, metric, by)
  if (c.day or '') == '' then return end
  local field = metric .. '|' .. (c.channel or '')
  redis.call('HINCRBY', key('REPORT', {day = c.day}), field, by or 1)
  if (by or 1) > 0 then redis.call('HINCRBY', key('REPORT_TOTALS'), field, by or 1) end
end

local function timed(c, metric, ms)
  local bucket = #BUCKETS + 1
  for i, bound in ipairs(BUCKETS) do
    if ms <= bound * 1000 then bucket = i break end
  end
  count(c, metric .. ':' .. bucket)
end

-- The conversation's outcome becomes `to` (handed_over, with the route it took, is final).
local function outcome(c, to, route)
  if (c.day or '') == '' or c.outcome == to or c.outcome == 'handed_over' then return end
  count(c, c.outcome or 'open', -1)
  if c.auto_resolved == '1' then
    count(c, 'auto_resolved', -1)
    redis.call('HDEL', conv_key(c.id), 'auto_resolved')
    c.auto_resolved = nil
  end
  count(c, to)
  c.outcome = to
  redis.call('HSET', conv_key(c.id), 'outcome', to)
  if to == 'handed_over' then
    count(c, 'handover:' .. (route or 'agent'))
    if (c.handed_at or '') == '' then
      c.handed_at = tostring(now)
      redis.call('HSET', conv_key(c.id), 'handed_at', now)
    end
  end
end

-- Once per conversation: set `flag` and record the time since `since` in the histogram `metric`.
local function first_time(c, flag, metric, since)
  if (c.day or '') == '' or (c[flag] or '') ~= '' or (since or '') == '' then return end
  c[flag] = '1'
  redis.call('HSET', conv_key(c.id), flag, 1)
  timed(c, metric, now - tonumber(since))
end

-- --- the search index (gateway/handover/search.py: SEARCH per term, SEARCH_TERMS per conversation) -------------

local function index_message(c, mid, terms)
  local own = conv_part('SEARCH_TERMS', c.id)
  for _, term in ipairs(terms or {}) do
    redis.call('ZADD', key('SEARCH', {term = term}), now, c.id)
    redis.call('HSET', own, 'm:' .. term, mid)
  end
end

-- The customer's own terms (name, number, email) on one of their conversations: ranked by the conversation's start.
local function index_customer(cid, terms)
  local own = conv_part('SEARCH_TERMS', cid)
  local score = redis.call('HGET', conv_key(cid), 'created_at') or now
  for _, term in ipairs(terms or {}) do
    redis.call('ZADD', key('SEARCH', {term = term}), 'NX', score, cid)
    redis.call('HSET', own, 'c:' .. term, 1)
  end
end

-- Customer terms no longer theirs (a contact edited): out of the index where no message holds them either.
local function unindex_customer(cid, terms)
  local own = conv_part('SEARCH_TERMS', cid)
  for _, term in ipairs(terms or {}) do
    redis.call('HDEL', own, 'c:' .. term)
    if redis.call('HEXISTS', own, 'm:' .. term) == 0 then redis.call('ZREM', key('SEARCH', {term = term}), cid) end
  end
end

local function unindex(cid)
  local own = conv_part('SEARCH_TERMS', cid)
  for _, field in ipairs(redis.call('HKEYS', own)) do
    redis.call('ZREM', key('SEARCH', {term = string.sub(field, 3)}), cid)
  end
  redis.call('DEL', own)
end

local function contact_terms(contact_id)
  local raw = redis.call('HGET', key('CONTACT', {contact = contact_id}), 'terms')
  return raw and cjson.decode(raw) or {}
end

-- A contact's terms grow (details captured, a new profile name): stored on the contact, and indexed on each of
-- their conversations. `replace`: the terms are the contact's whole set now (an edit), and the others leave.
local function set_contact_terms(contact_id, terms, replace)
  local before = contact_terms(contact_id)
  local kept, seen, gone = {}, {}, {}
  if not replace then
    for _, term in ipairs(before) do if not seen[term] then seen[term] = true kept[#kept + 1] = term end end
  end
  local added = {}
  for _, term in ipairs(terms or {}) do
    if not seen[term] then seen[term] = true kept[#kept + 1] = term added[#added + 1] = term end
  end
  if replace then
    for _, term in ipairs(before) do if not seen[term] then gone[#gone + 1] = term end end
    added = kept
  end
  if #added == 0 and #gone == 0 then return end
  redis.call('HSET', key('CONTACT', {contact = contact_id}), 'terms', cjson.encode(kept))
  for _, cid in ipairs(redis.call('ZRANGE', key('CONTACT_CONVERSATIONS', {contact = contact_id}), 0, -1)) do
    unindex_customer(cid, gone)
    index_customer(cid, added)
  end
end

-- --- labels ---------------------------------------------------------------------------------------------------
--
-- LABELS holds the workspace's labels (admins define them); a conversation's `labels` field is a JSON list of its
-- own, and LABELED one zset per label of its conversations by last activity (a label's view, and search's filter).

local MAX_LABELS = 10 -- on one conversation

local function labels_of(c)
  if (c.labels or '') == '' then return {} end
  return cjson.decode(c.labels)
end

-- Append to the history. `m` holds author, text and optional kind, visibility, data, media, rich, agent, agent_name,
-- and the terms search finds it by (gateway/handover/search.py). Only what differs from the defaults is stored (kind
-- message, visibility public); the time is the id's.
local function append(c, m)
  local history = conv_part('MESSAGES', c.id)
  local mid = now .. '-' .. redis.call('LLEN', history)
  local stored = {id = mid, author = m.author, text = m.text or ''}
  for _, name in ipairs({'kind', 'visibility', 'agent', 'agent_name'}) do
    local value = m[name]
    local default = (name == 'kind' and 'message') or (name == 'visibility' and 'public') or ''
    if value and value ~= '' and value ~= default then stored[name] = value end
  end
  for _, name in ipairs({'data', 'media', 'rich'}) do
    if m[name] and next(m[name]) ~= nil then stored[name] = m[name] end
  end
  redis.call('RPUSH', history, cjson.encode(stored))
  if m.terms then index_message(c, mid, m.terms) end
  local public = (m.visibility or 'public') == 'public'
  if public and m.author ~= 'system' then
    -- A short preview keeps the hash in Redis's compact encoding (values up to 64 bytes).
    set(c, 'last_text', preview(m.text), 'last_author', m.author, 'last_message_at', now,
      'updated_at', now)
    redis.call('ZADD', view_key(view_of(c)), now, c.id)
    if c.status == 'open' and not snoozed(c) then redis.call('ZADD', view_key('open'), now, c.id) end
    for _, label in ipairs(labels_of(c)) do redis.call('ZADD', key('LABELED', {label = label}), 'XX', now, c.id) end
  end
  if public and m.author ~= 'customer' and c.delivers == '1' then queue_delivery(c, mid) end
  if public and (m.author == 'ai' or m.author == 'agent') then
    first_time(c, 'responded', 'first_response', c.created_at)
    if m.author == 'ai' and c.ai_answered ~= '1' then
      c.ai_answered = '1'
      redis.call('HSET', conv_key(c.id), 'ai_answered', 1)
    end
    if m.author == 'agent' then first_time(c, 'human_replied', 'to_human_reply', c.handed_at) end
  end
  local shown = {type = 'message.created', conversation = c.id, id = mid, message = mid, author = m.author,
    kind = m.kind or 'message', text = m.text or '', visibility = m.visibility or 'public', channel = c.channel,
    created_at = now, agent_name = m.agent_name, rich = m.rich, media = m.media, data = m.data, with = party(c)}
  event('message.created', shown)
  return mid
end

local function note(c, kind, text, data, visibility)
  return append(c, {author = 'system', kind = kind, text = text, visibility = visibility or 'internal',
    data = data or {}})
end

-- LANGUAGE: what Baton says to the customer may come as one text, or as the same text in each language Baton speaks,
-- {en = …, es = …, …, default = <the workspace's language>}: the conversation's own `language` (stored by the AI's
-- turns, which read it from the customer's messages, or by inbound from a first clear message) picks it, else
-- `default`. `{name}` in such a text becomes `name` (an agent's name, said by this script).
local function say(c, text, name)
  if type(text) ~= 'table' or text.default == nil then return text end
  local said = text[c.language or ''] or text[text.default] or text.en
  if name and type(said) == 'string' then said = string.gsub(said, '{name}', (string.gsub(name, '%%', '%%%%'))) end
  return said
end

local function notice(c, text)
  text = say(c, text)
  if text and text ~= '' then
    return append(c, {author = 'system', kind = 'notice', text = text})
  end
end

-- The no-human wait: a deadline in FALLBACK_TIMERS (durable) and a TTL key that shows it is pending.
local function disarm(c)
  if c.waits then redis.call('ZREM', key('FALLBACK_TIMERS'), c.id .. '|' .. c.waits) end
  redis.call('DEL', conv_part('AWAITING_HUMAN', c.id))
  if (c.waiting_since or '') ~= '' then
    redis.call('HDEL', conv_key(c.id), 'waiting_since')
    c.waiting_since = nil
  end
end

local function arm(c, timeout_ms)
  if not timeout_ms then return end
  local waits = tonumber(c.waits or 0) + 1
  set(c, 'waits', waits, 'waiting_since', now, 'form_state', '')
  redis.call('ZADD', key('FALLBACK_TIMERS'), now + timeout_ms, c.id .. '|' .. waits)
  redis.call('SET', conv_part('AWAITING_HUMAN', c.id), waits, 'PX', math.floor(timeout_ms))
end

-- The overdue view's score: lists show the highest first, and the earliest deadline should come first.
local OVERDUE_ORDER = 10000000000000 -- ms: the year 2286

-- A response target starts (see RESPONSE TARGETS), unless one runs already; `sla`: the caller's targets.
local function sla_start(c, kind, sla)
  if type(sla) ~= 'table' or (c.sla_due or '') ~= '' then return end
  local offset = tonumber(sla[kind .. '_ms'])
  if not offset then return end
  local target = tonumber(c.sla_target or 0) + 1
  local due = now + math.max(1, math.floor(offset))
  set(c, 'sla_target', target, 'sla_kind', kind, 'sla_due', due, 'sla_since', now)
  redis.call('ZADD', key('SLA_TIMERS'), due, c.id .. '|' .. target)
end

-- The running target ends: met by a human's reply (the answer: {kind, ms, breached}), or dropped (nil).
local function sla_stop(c, met)
  if (c.sla_due or '') == '' then return nil end
  local answer = nil
  if met then
    answer = {kind = c.sla_kind, ms = now - tonumber(c.sla_since or now), breached = (c.sla_breached or '') ~= ''}
  end
  redis.call('ZREM', key('SLA_TIMERS'), c.id .. '|' .. (c.sla_target or ''))
  redis.call('ZREM', view_key('overdue'), c.id)
  redis.call('HDEL', conv_key(c.id), 'sla_kind', 'sla_due', 'sla_since', 'sla_breached')
  c.sla_kind, c.sla_due, c.sla_since, c.sla_breached = nil, nil, nil, nil
  return answer
end

-- Move the conversation to a new owner; the caller has checked that the move is allowed.
-- `route`: how a conversation leaving the AI was handed over (the report's reason), an agent's action when nil.
local function set_owner(c, owner, timeout_ms, route)
  local before = view_of(c)
  local score = tonumber(c.last_message_at or c.created_at or now)
  c.owner = owner
  set(c, 'owner', owner, 'epoch', tonumber(c.epoch or 0) + 1, 'updated_at', now)
  local after = view_of(c)
  if before ~= after then
    redis.call('ZREM', view_key(before), c.id)
    redis.call('ZADD', view_key(after), score, c.id)
  end
  if owner ~= 'ai' then
    outcome(c, 'handed_over', route)
    redis.call('ZREM', key('IDLE_TIMERS'), c.id)
  end
  if string.sub(owner, 1, 6) == 'agent:' then first_time(c, 'assigned', 'to_assignment', c.handed_at) end
  if owner == 'ai' then sla_stop(c) end -- the AI answers now: no human owes a reply
  if owner == 'none' then
    arm(c, timeout_ms)
  else
    redis.call('ZREM', key('UNPUBLISHED_WAITS'), c.id) -- someone has it now: publishing again leaves it alone
    redis.call('ZREM', key('ASSIGN_QUEUE'), c.id)
    redis.call('ZREM', key('REMIND_TIMERS'), c.id)
    if c.after_hours then redis.call('HDEL', conv_key(c.id), 'after_hours') c.after_hours = nil end
    disarm(c)
    if (c.form_state or '') ~= '' then set(c, 'form_state', '') end -- someone has the chat: the form is moot
  end
end

local function is_agent(owner) return string.sub(owner or '', 1, 6) == 'agent:' end

local function ok(t) t = t or {} t.ok = true return cjson.encode(t) end
local function fail(code, t) t = t or {} t.ok = false t.error = code return cjson.encode(t) end

-- The conversation fields post and finish may set (their `set`): see OPERATIONS.
local SETTABLE = {offer = true, unknown_streak = true, form_name = true, noted_at = true, followed_up_at = true}

local function refuse_unsettable(fields)
  for name in pairs(fields or {}) do
    if not SETTABLE[name] then return fail('not_settable', {field = name}) end
  end
  return nil
end

local function open_conversation(cid)
  local c = load(cid)
  if not c then return nil, fail('not_found') end
  if c.status ~= 'open' then return nil, fail('closed', {status = c.status}) end
  return c
end

-- --- presence and automatic assignment -------------------------------------------------------------------------
--
-- PRESENCE holds each agent's status (online | away | offline), what they chose (`<id>:chosen`) and since when.
-- Each open inbox stream holds a lease in AGENT_STREAMS (renewed while it is open, cut to the grace period when it
-- closes); PRESENCE_CHECKS says when an agent's last lease ends, and presence_sweep turns them offline then.
--
-- ASSIGNMENT: the mode and capacity in force are the caller's (args.assignment, from config.yaml) unless an admin
-- set others in Settings while the file said what it says now (`file`). A conversation that waits for a human is
-- handed to an online agent with room at once, or queued in ASSIGN_QUEUE (oldest first) and handed out the moment
-- an agent comes online or frees a slot: all in the step that causes it, so no agent goes over capacity and no
-- chat goes to two agents.

local function agent_record(agent_id)
  local raw = redis.call('HGET', key('AGENTS'), agent_id)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- `file`: the caller's {mode, capacity, file} from config.yaml (args.assignment).
local function assignment(file)
  if type(file) ~= 'table' then return {mode = 'manual', capacity = 0} end
  local stored = redis.call('HMGET', key('ASSIGNMENT'), 'mode', 'capacity', 'file')
  if stored[1] and stored[3] == file.file then
    return {mode = stored[1], capacity = tonumber(stored[2]), joined = file.joined}
  end
  return {mode = file.mode, capacity = tonumber(file.capacity), joined = file.joined}
end

local function load_of(agent_id) return redis.call('ZCARD', view_key('agent:' .. agent_id)) end

-- Who gets the next chat of `team` (any agent when ''): the next online member with room after the last one given a
-- chat (round_robin), or the one holding the fewest open chats, ties in that same order (balanced); nil when nobody
-- is free.
local function in_team(record, team)
  if not team or team == '' then return true end
  for _, member_of in ipairs(record.teams or {}) do
    if member_of == team then return true end
  end
  return false
end

local function pick(rule, exclude, team)
  local records = redis.call('HGETALL', key('AGENTS'))
  local ids = {}
  for i = 1, #records, 2 do
    if in_team(cjson.decode(records[i + 1]), team) then ids[#ids + 1] = records[i] end
  end
  table.sort(ids)
  local last = redis.call('HGET', key('ASSIGNMENT'), 'last') or ''
  local ordered = {}
  for _, id in ipairs(ids) do if id > last then ordered[#ordered + 1] = id end end
  for _, id in ipairs(ids) do if id <= last then ordered[#ordered + 1] = id end end
  local best, best_load = nil, nil
  for _, id in ipairs(ordered) do
    if id ~= exclude and redis.call('HGET', key('PRESENCE'), id) == 'online' then
      local held = load_of(id)
      if held < rule.capacity then
        if rule.mode == 'round_robin' then return id end
        if not best or held < best_load then best, best_load = id, held end
      end
    end
  end
  return best
end

local function give(c, agent_id, rule)
  local record = agent_record(agent_id) or {}
  local name = record.name or agent_id
  local previous = c.owner
  set_owner(c, 'agent:' .. agent_id)
  redis.call('HSET', key('ASSIGNMENT'), 'last', agent_id)
  set(c, 'assigned_at', now)
  note(c, 'assignment', '', {actor = 'auto', previous = previous, owner = c.owner, reason = rule.mode})
  notice(c, rule.joined and say(c, rule.joined, name) or (name .. ' joined the conversation.'))
  event('conversation.assigned', {conversation = c.id, owner = c.owner, previous = previous, actor = 'auto',
    reason = rule.mode, channel = c.channel, agent_name = name})
  notify(c, 'assigned', {agent = agent_id, agent_name = name, actor = 'auto', mode = rule.mode})
end

-- A conversation that now waits for a human: to a free agent at once (not `exclude`, who just let it go), or
-- queued for the next one. The agent's id, or nil.
local function hand_out(c, exclude, file)
  local rule = assignment(file)
  local agent_id = rule.mode ~= 'manual' and pick(rule, exclude, c.team)
  if agent_id then
    give(c, agent_id, rule)
    return agent_id
  end
  redis.call('ZADD', key('ASSIGN_QUEUE'), 'NX', now, c.id) -- queued in manual mode too, should it change
  -- Waiting since outside business hours: the inbox lists it first when the team is back (until someone takes it).
  if type(file) == 'table' and file.after_hours == true then set(c, 'after_hours', now) end
  -- Nobody took it: the team is reminded every remind_ms, then the admins are told (see REMINDERS).
  if type(file) == 'table' and tonumber(file.remind_ms) then
    set(c, 'reminders', 0)
    redis.call('ZADD', key('REMIND_TIMERS'), now + tonumber(file.remind_ms), c.id)
  end
  return nil
end

-- An agent came online or freed a slot: the queued conversations, oldest first, while someone is free.
local function drain(file, limit)
  local rule = assignment(file)
  if rule.mode == 'manual' then return 0 end
  local queue = key('ASSIGN_QUEUE')
  local given = 0
  -- Oldest first; a chat whose team has nobody free waits without holding up the other teams' chats.
  for _, head in ipairs(redis.call('ZRANGE', queue, 0, (limit or 100) - 1)) do
    local c = load(head)
    if not c or c.status ~= 'open' or c.owner ~= 'none' then
      redis.call('ZREM', queue, head)
    else
      local agent_id = pick(rule, nil, c.team)
      if agent_id then
        give(c, agent_id, rule)
        given = given + 1
      end
    end
  end
  return given
end

-- --- turns ----------------------------------------------------------------------------------------------------

local function wake(c)
  redis.call('ZADD', key('PENDING_TURNS'), now, c.id)
  redis.call('RPUSH', key('TURNS'), c.id)
end

local function mark_pending(c)
  if redis.call('ZADD', key('PENDING_TURNS'), 'NX', now, c.id) == 1 then
    redis.call('RPUSH', key('TURNS'), c.id)
  end
end

-- The turn a commit comes from is still the current one (no other turn committed since it read the cursor).
local function turn_is_current(c, turn)
  return turn and (c.ai_cursor or '') == (turn.expect or '')
end

-- `applied`: the commit did what it asked (not a refusal), so that the same commit made again is told apart.
local function finish_turn(c, turn, applied)
  if (turn.language or '') ~= '' and turn.language ~= c.language then set(c, 'language', turn.language) end
  if turn.upto and turn.upto ~= '' and id_after(turn.upto, c.ai_cursor or '') then set(c, 'ai_cursor', turn.upto) end
  if applied and (turn.lock or '') ~= '' then set(c, 'last_turn', turn.lock .. '|' .. op) end
  local lock = conv_part('TURN_LOCK', c.id)
  if turn.lock and redis.call('GET', lock) == turn.lock then redis.call('DEL', lock) end
  if c.status == 'open' and id_after(c.last_customer or '', c.ai_cursor or '') then
    wake(c) -- the customer wrote again while this turn ran: another turn takes it
  else
    redis.call('ZREM', key('PENDING_TURNS'), c.id)
  end
end

-- Every AI commit starts here: the conversation, or the refusal to answer. A commit made again by the turn that
-- made it (its answer was lost on the way back: the worker cannot tell) answers ok with `repeated`, changing nothing.
local function ai_commit(cid, turn)
  local c = load(cid)
  if not c then return nil, fail('not_found') end
  if not turn_is_current(c, turn) then
    if turn and (turn.lock or '') ~= '' and c.last_turn == turn.lock .. '|' .. op then
      return nil, ok({repeated = true}), true
    end
    return nil, fail('stale_turn', {cursor = c.ai_cursor or ''})
  end
  return c
end

-- --- contacts and new conversations -------------------------------------------------------------------------

-- The provider's display name (a WhatsApp ProfileName) as last seen is the contact's name, unless the name came
-- from elsewhere: given in the contact details, or already replaced. A contact of an earlier release, with no
-- profile_name recorded, took its name from the profile unless it captured details.
local function follow_profile_name(ck, profile_name)
  local found = redis.call('HMGET', ck, 'name', 'profile_name', 'captured_at')
  local name, seen, captured = found[1] or '', found[2], found[3]
  if seen == profile_name then return end
  if name == '' or name == seen or (not seen and not captured) then
    redis.call('HSET', ck, 'name', profile_name, 'updated_at', now)
  end
  redis.call('HSET', ck, 'profile_name', profile_name)
end

-- `m`: the customer message's arguments (inbound's).
local function find_contact(m)
  local identity = {channel = m.channel, sender = m.sender}
  local by_identity = key('CONTACT_BY_IDENTITY', identity)
  local contact = redis.call('GET', by_identity)
  if contact then
    if (m.profile_name or '') ~= '' then follow_profile_name(key('CONTACT', {contact = contact}), m.profile_name) end
    return contact
  end
  contact = tostring(redis.call('INCR', key('CONTACT_SEQ')))
  local ck = key('CONTACT', {contact = contact})
  redis.call('HSET', ck, 'id', contact, 'created_at', now, 'updated_at', now,
    'identities', cjson.encode({m.channel .. ':' .. m.sender}))
  if (m.profile_name or '') ~= '' then
    redis.call('HSET', ck, 'name', m.profile_name, 'profile_name', m.profile_name)
  end
  if (m.phone or '') ~= '' then redis.call('HSET', ck, 'phone', m.phone) end
  if m.customer_terms then redis.call('HSET', ck, 'terms', cjson.encode(m.customer_terms)) end
  redis.call('SET', by_identity, contact)
  redis.call('ZADD', key('CONTACTS'), now, contact)
  return contact
end

local function start_conversation(m)
  local identity = {channel = m.channel, sender = m.sender}
  local cid = tostring(redis.call('INCR', key('CONVERSATION_SEQ')))
  local contact = find_contact(m)
  local previous = redis.call('GET', key('LATEST', identity)) or ''
  local c = {id = cid, channel = m.channel, sender = m.sender, contact = contact, status = 'open', owner = 'ai',
    epoch = '0', created_at = tostring(now), profile_name = m.profile_name or '', customer = m.customer or '',
    delivers = m.delivers and '1' or '', team = m.team or ''}
  if not ai_published(m.published) then c.owner = 'none' end
  redis.call('HSET', conv_key(cid), 'id', cid, 'channel', c.channel, 'sender', c.sender, 'contact', contact,
    'status', 'open', 'owner', c.owner, 'epoch', 0, 'created_at', now, 'updated_at', now,
    'profile_name', c.profile_name, 'customer', c.customer, 'previous', previous, 'delivers', c.delivers)
  if c.team ~= '' then redis.call('HSET', conv_key(cid), 'team', c.team) end
  c.day, c.outcome = day_of(now), 'open'
  redis.call('HSET', conv_key(cid), 'day', c.day, 'outcome', 'open')
  count(c, 'conversations')
  count(c, 'open')
  -- The customer is back: the conversation the AI resolved before was not durably resolved, if within durable_ms.
  local before = load(previous)
  if before and before.outcome == 'ai_resolved' and (before.returned or '') == ''
      and now - tonumber(before.closed_at or 0) <= tonumber(m.durable_ms or DURABLE_MS) then
    count(before, 'returned')
    set(before, 'returned', 1)
  end
  redis.call('SET', key('ACTIVE', identity), cid)
  redis.call('SET', key('LATEST', identity), cid)
  redis.call('ZADD', key('CONTACT_CONVERSATIONS', {contact = contact}), now, cid)
  set_contact_terms(contact, m.customer_terms) -- a new profile name: theirs from now on, on every conversation
  index_customer(cid, contact_terms(contact))
  redis.call('ZADD', view_key(view_of(c)), now, cid)
  redis.call('ZADD', view_key('open'), now, cid)
  event('conversation.created', {conversation = cid, channel = c.channel, sender = c.sender, owner = c.owner,
    contact = contact, customer = c.customer, previous = previous})
  return c
end

-- A conversation that waits for a human because the AI is unpublished, with no wait armed: the customer
-- writing arms it, and the team is told.
local function wait_for_human(c, reason, timeout_ms, text, file)
  outcome(c, 'handed_over', 'unpublished')
  arm(c, timeout_ms)
  redis.call('ZADD', key('UNPUBLISHED_WAITS'), 'NX', now, c.id)
  set(c, 'handover_reason', reason, 'handover_at', now)
  event('conversation.handover', {conversation = c.id, channel = c.channel, reason = reason, summary = '',
    customer = c.customer, route = 'unpublished', team = c.team or ''})
  notify(c, 'handover', {reason = reason, summary = text or '', route = 'unpublished'})
  hand_out(c, nil, file)
end

-- The AI has answered (or had nothing to say) and owns the conversation: unless the customer writes again or
-- someone takes it, it is resolved (closed, the AI's) after `resolve_ms` of quiet (0: never).
local function arm_idle(c, resolve_ms)
  resolve_ms = tonumber(resolve_ms or RESOLVE_MS)
  if c.status ~= 'open' or c.owner ~= 'ai' or resolve_ms <= 0 then return end
  redis.call('ZADD', key('IDLE_TIMERS'), now + resolve_ms, c.id)
end

-- Close an open conversation (the caller checked who may): views, timers, the closing message (`visibility`
-- internal: not sent to the customer), the event, and its outcome in the reports. The view it left.
local function shut(c, actor, notice_text, visibility)
  local before = view_of(c)
  disarm(c)
  sla_stop(c)
  c.status = 'closed'
  set(c, 'status', 'closed', 'closed_at', now, 'closed_by', actor, 'updated_at', now, 'offer', 0)
  redis.call('ZREM', view_key(before), c.id)
  redis.call('ZREM', view_key('open'), c.id)
  redis.call('ZREM', key('UNPUBLISHED_WAITS'), c.id)
  redis.call('ZREM', key('IDLE_TIMERS'), c.id)
  redis.call('ZREM', key('REMIND_TIMERS'), c.id)
  redis.call('ZADD', view_key('closed'), now, c.id)
  if (c.snoozed_until or '') ~= '' then -- a snooze ends with the conversation
    redis.call('HDEL', conv_key(c.id), 'snoozed_until', 'snoozed_by')
    redis.call('ZREM', key('SNOOZE_TIMERS'), c.id)
    c.snoozed_until = nil
  end
  local active = key('ACTIVE', {channel = c.channel, sender = c.sender})
  if redis.call('GET', active) == c.id then redis.call('DEL', active) end
  append(c, {author = 'system', kind = 'closed', text = say(c, notice_text) or 'This conversation was closed.',
    data = {actor = actor}, visibility = visibility})
  event('conversation.closed', {conversation = c.id, actor = actor, channel = c.channel,
    handovers = tonumber(c.handovers or 0)})
  redis.call('ZREM', key('ASSIGN_QUEUE'), c.id)
  if c.outcome == 'open' then
    outcome(c, c.ai_answered == '1' and 'ai_resolved' or 'abandoned')
    if actor == 'auto' and c.outcome == 'ai_resolved' then
      count(c, 'auto_resolved')
      set(c, 'auto_resolved', 1)
    end
  end
  first_time(c, 'resolved', 'resolution', c.created_at)
  return before
end

-- The customer's rating (1-5) of a closed conversation, attributed to who resolved it: the AI (never handed
-- over) or the people (`csat_agent`: the agent who held it last). A new rating replaces the previous one.
local function rate(c, rating, comment, via)
  local by = c.outcome == 'handed_over' and 'human' or 'ai'
  if (c.outcome or '') == '' then by = is_agent(c.owner) and 'human' or 'ai' end
  if (c.csat or '') ~= '' then count(c, 'csat:' .. (c.csat_by or by) .. ':' .. c.csat, -1) end
  count(c, 'csat:' .. by .. ':' .. rating)
  set(c, 'csat', rating, 'csat_by', by, 'csat_agent', is_agent(c.owner) and string.sub(c.owner, 7) or '',
    'csat_comment', comment or '', 'csat_at', now, 'csat_via', via or '')
  note(c, 'csat', comment or '', {rating = rating, by = by, via = via or ''})
  event('conversation.rated', {conversation = c.id, channel = c.channel, rating = rating, by = by,
    comment = comment or ''})
  return by
end

-- Back from a snooze (`by`: customer, time, or the agent who woke it): into its view again, by its last activity.
local function unsnooze(c, by)
  local score = tonumber(c.last_message_at or c.created_at or now)
  redis.call('HDEL', conv_key(c.id), 'snoozed_until', 'snoozed_by')
  c.snoozed_until = nil
  redis.call('ZREM', view_key('snoozed'), c.id)
  redis.call('ZREM', key('SNOOZE_TIMERS'), c.id)
  redis.call('ZADD', view_key(view_of(c)), score, c.id)
  redis.call('ZADD', view_key('open'), score, c.id)
  note(c, 'unsnoozed', '', {by = by})
  event('conversation.unsnoozed', {conversation = c.id, by = by, owner = c.owner, channel = c.channel})
end

local ops = {}

-- A customer message arrived: dedupe, find or start the conversation, append, and wake the AI if it is needed.
function ops.inbound()
  local dedupe = nil
  if (args.provider_id or '') ~= '' then
    dedupe = key('DEDUPE', {channel = args.channel, provider_id = args.provider_id})
    local seen = redis.call('GET', dedupe)
    if seen then
      -- A write, so that a replica acknowledgement (WAIT) after a duplicate covers the original record too.
      redis.call('EXPIRE', dedupe, args.dedupe_ttl or 604800)
      local cid, mid = string.match(seen, '^([^|]*)|(.*)$')
      return ok({duplicate = true, conversation = cid, message = mid})
    end
  end
  local c = load(redis.call('GET', key('ACTIVE', {channel = args.channel, sender = args.sender})))
  local created = false
  local rating = string.match(args.text or '', '^%s*([1-5])%s*$')
  if (not c or c.status ~= 'open') and rating and args.csat_ms then
    -- The answer to the rating question of their last conversation: recorded there, no new conversation.
    local asked = load(redis.call('GET', key('LATEST', {channel = args.channel, sender = args.sender})))
    if asked and asked.status == 'closed' and (asked.csat_asked or '') ~= '' and (asked.csat or '') == ''
        and now - tonumber(asked.csat_asked) <= tonumber(args.csat_ms) then
      local mid = append(asked, {author = 'customer', text = args.text, kind = 'csat'})
      rate(asked, tonumber(rating), '', 'reply')
      notice(asked, args.csat_thanks)
      if dedupe then redis.call('SET', dedupe, asked.id .. '|' .. mid, 'EX', args.dedupe_ttl or 604800) end
      return ok({duplicate = false, conversation = asked.id, message = mid, created = false, owner = asked.owner,
        rated = tonumber(rating)})
    end
  end
  if not c or c.status ~= 'open' then
    c = start_conversation(args)
    created = true
  elseif (args.profile_name or '') ~= '' and args.profile_name ~= (c.profile_name or '') then
    set(c, 'profile_name', args.profile_name, 'customer', args.customer or args.profile_name)  -- renamed meanwhile
    set_contact_terms(find_contact(args), args.customer_terms)
  end
  if snoozed(c) then unsnooze(c, 'customer') end -- the customer wrote: back in its view
  if (args.language or '') ~= '' and (c.language or '') == '' then set(c, 'language', args.language) end
  local mid = append(c, {author = 'customer', text = args.text or '', media = args.media, data = args.data,
    terms = args.terms})
  set(c, 'last_customer', mid)
  -- The reply window opens at the customer's message as the provider stamped it: a late webhook does not extend it.
  local sent_at = tonumber(args.sent_at_ms) or 0
  if sent_at <= 0 or sent_at > now then sent_at = now end
  if sent_at > (tonumber(c.customer_at) or 0) then set(c, 'customer_at', sent_at) end
  if dedupe then redis.call('SET', dedupe, c.id .. '|' .. mid, 'EX', args.dedupe_ttl or 604800) end
  if c.owner == 'ai' then redis.call('ZREM', key('IDLE_TIMERS'), c.id) end -- the AI owes an answer
  if c.owner == 'ai' or (c.owner == 'none' and (c.form_state or '') ~= '') then
    mark_pending(c)
  elseif c.owner == 'none' and (c.waiting_since or '') == '' then
    wait_for_human(c, 'AI agent is unpublished', args.timeout_ms, args.text, args.assignment)
  end
  if c.owner ~= 'ai' then -- a human owes this customer an answer
    local answered = (c.answered_at or '') ~= '' and tonumber(c.answered_at) >= tonumber(c.handover_at or 0)
    sla_start(c, answered and 'next' or 'first', args.sla)
  end
  return ok({duplicate = false, conversation = c.id, message = mid, created = created, owner = c.owner})
end

-- The AI hands over: it unassigns itself, the customer is told, every agent is notified, the wait is armed.
function ops.hand_over()
  local c, err = ai_commit(args.conversation, args.turn)
  if not c then return err end
  if c.status ~= 'open' or c.owner ~= 'ai' then
    finish_turn(c, args.turn)
    return fail('not_owner', {owner = c.owner})
  end
  set_owner(c, 'none', args.timeout_ms, args.route or 'model')
  local said = say(c, args.notice)
  if (said or '') ~= '' then append(c, {author = 'ai', text = said, agent_name = args.agent_name}) end
  local count = redis.call('HINCRBY', conv_key(c.id), 'handovers', 1)
  set(c, 'handover_reason', args.reason, 'handover_summary', args.summary or '', 'handover_at', now, 'offer', 0)
  note(c, 'handover', args.reason, {reason = args.reason, summary = args.summary or '', route = args.route or ''})
  event('conversation.handover', {conversation = c.id, channel = c.channel, reason = args.reason,
    summary = args.summary or '', customer = c.customer, route = args.route or '', handovers = count,
    team = c.team or ''})
  notify(c, 'handover', {reason = args.reason, summary = args.summary or '', route = args.route or ''})
  sla_start(c, 'first', args.sla)
  local assignee = hand_out(c, nil, args.assignment)
  finish_turn(c, args.turn, true)
  return ok({handovers = count, assignee = assignee})
end

-- A human changes who owns an open conversation: an agent, the AI, or nobody (waiting for a human).
function ops.assign()
  local c, err = open_conversation(args.conversation)
  if not c then return err end
  local target, actor = args.target, args.actor
  if target == c.owner then return ok({unchanged = true, owner = c.owner}) end
  if is_agent(c.owner) and c.owner ~= actor and not args.force then return fail('conflict', {owner = c.owner}) end
  if target == 'ai' and not ai_published(args.published) then return fail('ai_unpublished') end
  local previous = c.owner
  set_owner(c, target, args.timeout_ms)
  note(c, 'assignment', '', {actor = actor, previous = previous, owner = target, reason = args.reason or ''})
  notice(c, args.notice)
  if target == 'ai' then
    -- The AI answers what comes next, not what the human dealt with.
    local last = cjson.decode(redis.call('LINDEX', conv_part('MESSAGES', c.id), -1))
    set(c, 'offer', 0, 'unknown_streak', 0, 'ai_cursor', last.id, 'handed_back_at', now)
    redis.call('ZREM', key('PENDING_TURNS'), c.id)
  end
  event('conversation.assigned', {conversation = c.id, owner = target, previous = previous, actor = actor,
    reason = args.reason or '', channel = c.channel})
  if is_agent(target) and target ~= actor then
    -- Given by someone else (a colleague, an admin taking it over): the agent is told it is theirs now.
    notify(c, 'assigned', {agent = string.sub(target, 7), actor = actor, reason = args.reason or ''})
  end
  if is_agent(previous) and previous ~= actor then
    notify(c, 'taken_over', {agent = string.sub(previous, 7), actor = actor, owner = target})
  end
  -- A slot freed (the chat left an agent): the queue first, then the chat itself if it now waits for a human.
  if is_agent(previous) then drain(args.assignment, args.drain_limit) end
  if target == 'none' then
    hand_out(c, is_agent(previous) and string.sub(previous, 7) or nil, args.assignment)
    c = load(c.id)
  end
  return ok({owner = c.owner, previous = previous})
end

-- Post a reply. The AI only while it owns the conversation (and by its current turn); an agent who replies in a
-- conversation the AI or nobody holds takes it over; the system posts notices.
function ops.post()
  local unsettable = refuse_unsettable(args.set)
  if unsettable then return unsettable end
  local c, err, repeated
  local reply = nil
  if args.author == 'agent' and (args.client_id or '') ~= '' then
    -- An agent's reply carries an idempotency key: sent again (after a 503 or a lost answer), it is recorded once.
    reply = key('REPLY', {agent = args.agent, client_id = args.client_id})
    local recorded = redis.call('GET', reply)
    if recorded then
      local cid, mid = string.match(recorded, '^([^|]*)|(.*)$')
      if cid ~= args.conversation then return fail('client_id_reused', {conversation = cid}) end
      return ok({message = mid, duplicate = true})
    end
  end
  if args.author == 'ai' or args.turn then
    c, err, repeated = ai_commit(args.conversation, args.turn)
    local stale = not c and not repeated and args.author == 'ai' and load(args.conversation)
    if stale then
      -- Another turn committed since this one read the conversation (a hand-back moves the cursor too): the
      -- reply is kept for the agents to see, never shown to the customer.
      note(stale, 'suppressed', args.text, {owner = stale.owner,
        reason = 'the conversation moved on while the AI was answering'})
    end
  else
    c, err = open_conversation(args.conversation)
  end
  if not c then return err end
  if c.status ~= 'open' then
    if args.turn then finish_turn(c, args.turn) end
    return fail('closed', {status = c.status})
  end
  if args.author == 'ai' and (c.owner ~= 'ai' or not ai_published(args.published)) then
    note(c, 'suppressed', args.text, {owner = c.owner, reason = 'the AI no longer owns the conversation'})
    finish_turn(c, args.turn)
    return fail('suppressed', {owner = c.owner})
  end
  if args.author == 'system' and args.turn and c.owner ~= 'none' then
    finish_turn(c, args.turn) -- the fallback's notice to a customer waiting for a human: one came meanwhile
    return fail('suppressed', {owner = c.owner})
  end
  local responded = nil
  if args.author == 'agent' then
    local me = 'agent:' .. args.agent
    if c.owner ~= me then
      if is_agent(c.owner) then return fail('conflict', {owner = c.owner}) end
      local previous = c.owner
      set_owner(c, me)
      note(c, 'assignment', '', {actor = me, previous = previous, owner = me, reason = 'replied'})
      notice(c, args.notice)
      event('conversation.assigned', {conversation = c.id, owner = me, previous = previous, actor = me,
        reason = 'replied', channel = c.channel})
    end
  end
  local mid = append(c, {author = args.author, text = args.text, kind = args.kind, visibility = args.visibility,
    data = args.data, rich = args.rich, agent = args.agent, agent_name = args.agent_name, terms = args.terms})
  for _, text in ipairs(args.more or {}) do -- the rest of a reply longer than the channel takes, in order
    append(c, {author = args.author, text = text, kind = args.kind, visibility = args.visibility, agent = args.agent,
      agent_name = args.agent_name})
  end
  if args.author == 'agent' and (args.visibility or 'public') == 'public' then
    responded = sla_stop(c, true) -- the customer has a human's answer
    set(c, 'answered_at', now)
  end
  if reply then redis.call('SET', reply, c.id .. '|' .. mid, 'EX', 86400) end
  if args.set then
    for name, value in pairs(args.set) do set(c, name, value) end
  end
  if args.author == 'ai' and (args.visibility or 'public') == 'public' then arm_idle(c, args.resolve_ms) end
  if args.turn then finish_turn(c, args.turn, true) end
  return ok({message = mid, owner = c.owner, responded = responded})
end

-- The AI's turn ends with nothing to say (the conversation moved on, or the message needs no answer).
function ops.finish()
  local unsettable = refuse_unsettable(args.set)
  if unsettable then return unsettable end
  local c, err = ai_commit(args.conversation, args.turn)
  if not c then return err end
  if args.set then
    for name, value in pairs(args.set) do set(c, name, value) end
  end
  arm_idle(c, args.resolve_ms)
  finish_turn(c, args.turn, true)
  return ok({owner = c.owner})
end

-- Close the conversation; the customer's next message starts a fresh one.
function ops.close()
  local c, err
  if args.turn then c, err = ai_commit(args.conversation, args.turn) else c, err = open_conversation(args.conversation) end
  if not c then return err end
  local actor = args.actor
  if c.status ~= 'open' or (actor == 'ai' and c.owner ~= 'ai') then
    if args.turn then finish_turn(c, args.turn) end
    return fail(c.status ~= 'open' and 'closed' or 'not_owner', {owner = c.owner})
  end
  if actor ~= 'ai' and is_agent(c.owner) and c.owner ~= actor and not args.force then
    return fail('conflict', {owner = c.owner})
  end
  local goodbye = say(c, args.goodbye)
  if (goodbye or '') ~= '' then
    append(c, {author = actor == 'ai' and 'ai' or 'system', text = goodbye, agent_name = args.agent_name})
  end
  local before = shut(c, actor, args.notice)
  -- On a channel that sends (WhatsApp), the rating is asked in a message while the reply window is open; the
  -- customer's "1"-"5" comes back to this conversation (inbound). The widget asks on its own.
  local question = say(c, args.csat_question)
  if (question or '') ~= '' and c.delivers == '1'
      and now - tonumber(c.customer_at or 0) < tonumber(args.window_ms or 86400000) then
    append(c, {author = 'system', kind = 'csat_question', text = question})
    set(c, 'csat_asked', now)
  end
  if is_agent(before) then drain(args.assignment, args.drain_limit) end -- a slot freed
  if args.turn then finish_turn(c, args.turn, true) else redis.call('ZREM', key('PENDING_TURNS'), c.id) end
  return ok({handovers = tonumber(c.handovers or 0)})
end

-- The customer rates a closed conversation (the widget's stars and comment).
function ops.rate()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  if c.status ~= 'closed' then return fail('not_closed', {status = c.status}) end
  return ok({rating = args.rating, by = rate(c, args.rating, args.comment, args.via)})
end

-- An agent's private note: in the history for the team only (internal: never sent, never in the widget, no preview in
-- the lists), on an open or a closed conversation alike. Each agent @mentioned (`mentions`, checked by the caller) is
-- notified, and the inbox told (note.mention).
function ops.note()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  local mentions = args.mentions or {}
  local mid = append(c, {author = 'agent', kind = 'note', visibility = 'internal', text = args.text, agent = args.agent,
    agent_name = args.agent_name, data = #mentions > 0 and {mentions = mentions} or nil, terms = args.terms})
  for _, agent_id in ipairs(mentions) do
    notify(c, 'mention', {agent = agent_id, actor = 'agent:' .. args.agent, agent_name = args.agent_name,
      message = mid, text = args.text})
  end
  if #mentions > 0 then
    event('note.mention', {conversation = c.id, agents = mentions, actor = 'agent:' .. args.agent,
      agent_name = args.agent_name, message = mid, text = preview(args.text), channel = c.channel})
  end
  return ok({message = mid})
end

-- A human reopens a closed conversation: open again and theirs, and the customer's next message comes to it. Refused
-- (newer_open) when the customer has started another conversation since that is still open: that one is the live one.
function ops.reopen()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  if c.status ~= 'closed' then return fail('not_closed', {status = c.status, owner = c.owner}) end
  local active = key('ACTIVE', {channel = c.channel, sender = c.sender})
  local newer = load(redis.call('GET', active))
  if newer and newer.status == 'open' and newer.id ~= c.id then
    return fail('newer_open', {conversation = newer.id, owner = newer.owner})
  end
  redis.call('ZREM', view_key('closed'), c.id)
  outcome(c, 'handed_over', 'reopened') -- a person took it up again: no longer the AI's resolution
  c.status, c.owner = 'open', args.actor
  set(c, 'status', 'open', 'owner', args.actor, 'epoch', tonumber(c.epoch or 0) + 1, 'updated_at', now,
    'reopened_at', now, 'reopened_by', args.actor)
  redis.call('HDEL', conv_key(c.id), 'closed_at', 'closed_by')
  c.closed_at, c.closed_by = nil, nil
  redis.call('ZADD', view_key(view_of(c)), now, c.id)
  redis.call('ZADD', view_key('open'), now, c.id)
  redis.call('SET', active, c.id)
  -- The AI owes nothing from before: were the conversation handed back to it, it answers what comes next.
  local last = redis.call('LINDEX', conv_part('MESSAGES', c.id), -1)
  if last then set(c, 'ai_cursor', cjson.decode(last).id) end
  note(c, 'reopened', '', {actor = args.actor})
  event('conversation.reopened', {conversation = c.id, actor = args.actor, owner = c.owner, channel = c.channel})
  return ok({owner = c.owner})
end

-- An agent puts a label of the workspace's on a conversation (`add`), or takes one off.
function ops.label()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  local labels, found = labels_of(c), nil
  for i, label in ipairs(labels) do if label == args.label then found = i end end
  if args.add then
    if found then return ok({labels = labels, unchanged = true}) end
    if redis.call('HEXISTS', key('LABELS'), args.label) == 0 then return fail('no_label', {label = args.label}) end
    if #labels >= MAX_LABELS then return fail('too_many_labels', {labels = labels}) end
    labels[#labels + 1] = args.label
    redis.call('ZADD', key('LABELED', {label = args.label}), tonumber(c.last_message_at or c.created_at or now), c.id)
  else
    if not found then return ok({labels = labels, unchanged = true}) end
    table.remove(labels, found)
    redis.call('ZREM', key('LABELED', {label = args.label}), c.id)
  end
  if #labels == 0 then redis.call('HDEL', conv_key(c.id), 'labels') else set(c, 'labels', cjson.encode(labels)) end
  event('conversation.labeled', {conversation = c.id, labels = labels, label = args.label, add = args.add == true,
    actor = args.actor, channel = c.channel})
  return ok({labels = labels})
end

-- An agent edits a contact's details: stored, and what search finds their conversations by replaced in the same step.
-- Refused when the contact changed since the caller read it (a capture meanwhile), so that no detail is lost unseen.
function ops.contact_update()
  local ck = key('CONTACT', {contact = args.contact})
  local updated = redis.call('HGET', ck, 'updated_at')
  if not updated then return fail('no_contact') end
  if args.expect and tostring(args.expect) ~= updated then return fail('contact_changed', {updated_at = updated}) end
  for _, field in ipairs({'name', 'email', 'phone'}) do
    local value = args.fields[field]
    if value == '' then redis.call('HDEL', ck, field) elseif value then redis.call('HSET', ck, field, value) end
  end
  redis.call('HSET', ck, 'updated_at', now, 'edited_by', args.actor)
  redis.call('ZADD', key('CONTACTS'), now, args.contact)
  set_contact_terms(args.contact, args.terms, true)
  event('contact.updated', {contact = args.contact, actor = args.actor})
  return ok({contact = args.contact})
end

-- An admin deletes a label: off the workspace's list at once, then off its conversations, `limit` at a time
-- (the caller repeats while some remain).
function ops.label_delete()
  redis.call('HDEL', key('LABELS'), args.label)
  local zset = key('LABELED', {label = args.label})
  for _, cid in ipairs(redis.call('ZRANGE', zset, 0, (args.limit or 1000) - 1)) do
    redis.call('ZREM', zset, cid)
    local c = load(cid)
    if c then
      local kept = {}
      for _, label in ipairs(labels_of(c)) do if label ~= args.label then kept[#kept + 1] = label end end
      if #kept == 0 then redis.call('HDEL', conv_key(cid), 'labels') else set(c, 'labels', cjson.encode(kept)) end
    end
  end
  local remaining = redis.call('ZCARD', zset)
  if remaining == 0 then event('label.deleted', {label = args.label, actor = args.actor}) end
  return ok({remaining = remaining})
end

-- A response target was missed (see RESPONSE TARGETS): flagged, listed as overdue, told; with on_breach = requeue
-- the assignee loses the chat to the queue (or the next free agent; never straight back to them).
local function sla_breach(c, sla, file)
  local owner, due = c.owner, tonumber(c.sla_due)
  set(c, 'sla_breached', now)
  redis.call('ZADD', view_key('overdue'), OVERDUE_ORDER - due, c.id) -- listed highest first: the most overdue
  local missed = {conversation = c.id, kind = c.sla_kind, owner = owner, due = due, channel = c.channel}
  note(c, 'sla_breached', '', {kind = c.sla_kind, owner = owner, due = due})
  event('conversation.sla_breached', {conversation = c.id, kind = c.sla_kind, owner = owner, due = due,
    channel = c.channel, team = c.team or ''})
  notify(c, 'sla_breached', {kind = c.sla_kind, owner = owner, due = due})
  if is_agent(owner) and type(sla) == 'table' and sla.on_breach == 'requeue' then
    local agent_id = string.sub(owner, 7)
    set_owner(c, 'none') -- no timeout: no new no-human wait, so never a second contact form
    set(c, 'waiting_since', now) -- waiting for a human with no wait armed (the customer writing arms none)
    note(c, 'assignment', '', {actor = 'sla', previous = owner, owner = 'none', reason = 'missed the response target'})
    event('conversation.assigned', {conversation = c.id, owner = 'none', previous = owner, actor = 'sla',
      reason = 'missed the response target', channel = c.channel})
    notify(c, 'taken_over', {agent = agent_id, actor = 'sla', owner = 'none'})
    hand_out(c, agent_id, file)
    drain(file)
    missed.requeued = true
    missed.now_owner = c.owner
  end
  return missed
end

-- REMINDERS: a chat that waits for a human with nobody taking it (hand_out queued it) reminds the team every
-- `remind_ms` (the assignment argument's, from handover.remind_every), up to `remind_limit` times (a `reminder`
-- notification each), then is escalated to the admins once (an `escalated` notification and a
-- conversation.escalated event). Anyone taking the chat, or its close, ends them.
local function remind(file, limit)
  local timers = key('REMIND_TIMERS')
  local due = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'LIMIT', 0, limit or 200)
  local told = {}
  if type(file) ~= 'table' then file = {} end
  local every, most = tonumber(file.remind_ms), tonumber(file.remind_limit) or 0
  for _, cid in ipairs(due) do
    redis.call('ZREM', timers, cid)
    local c = load(cid)
    if c and c.status == 'open' and c.owner == 'none' then
      local n = redis.call('HINCRBY', conv_key(cid), 'reminders', 1)
      local waited = now - tonumber(c.handover_at or c.waiting_since or now)
      if n <= most then
        notify(c, 'reminder', {reminder = n, waited_ms = waited})
        if every then redis.call('ZADD', timers, now + every, cid) end
        told[#told + 1] = {conversation = cid, reminder = n}
      else
        set(c, 'escalated_at', now)
        notify(c, 'escalated', {reminders = n - 1, waited_ms = waited})
        event('conversation.escalated', {conversation = cid, channel = c.channel, team = c.team or '',
          waited_ms = waited, customer = c.customer})
        told[#told + 1] = {conversation = cid, escalated = true}
      end
    end
  end
  return told
end

-- --- snooze --------------------------------------------------------------------------------------------------
--
-- A snoozed conversation (`snoozed_until`: a time in ms, or 'next' for the customer's next message) is out of its
-- view and of All, in VIEW snoozed, until the customer writes (inbound), its time comes (SNOOZE_TIMERS, woken by
-- fire) or an agent wakes it; closing it ends the snooze.

function ops.snooze()
  local c, err = open_conversation(args.conversation)
  if not c then return err end
  if c.owner == 'ai' then return fail('not_owner', {owner = c.owner}) end
  local before = view_of(c)
  local score = tonumber(c.last_message_at or c.created_at or now)
  local wake_at = args['until'] and tonumber(args['until']) or nil
  set(c, 'snoozed_until', wake_at or 'next', 'snoozed_by', args.actor)
  redis.call('ZREM', view_key(before), c.id)
  redis.call('ZREM', view_key('open'), c.id)
  redis.call('ZADD', view_key('snoozed'), score, c.id)
  if wake_at then
    redis.call('ZADD', key('SNOOZE_TIMERS'), wake_at, c.id)
  else
    redis.call('ZREM', key('SNOOZE_TIMERS'), c.id)
  end
  note(c, 'snoozed', '', {actor = args.actor, ['until'] = wake_at or 'next'})
  event('conversation.snoozed', {conversation = c.id, actor = args.actor, ['until'] = wake_at or 'next',
    channel = c.channel})
  return ok({snoozed_until = wake_at or 'next'})
end

function ops.unsnooze()
  local c, err = open_conversation(args.conversation)
  if not c then return err end
  if not snoozed(c) then return fail('not_snoozed') end
  unsnooze(c, args.actor)
  return ok({owner = c.owner})
end

-- Fire every due no-human timer: the contact form goes out once per wait, never after an assignment; then every
-- missed response target.
function ops.fire()
  local timers = key('FALLBACK_TIMERS')
  local due = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'WITHSCORES', 'LIMIT', 0, args.limit or 200)
  local fired = {}
  for i = 1, #due, 2 do
    local member, deadline = due[i], tonumber(due[i + 1])
    redis.call('ZREM', timers, member)
    local cid, wait = string.match(member, '^(.*)|(%d+)$')
    local c = load(cid)
    local due_now = c and c.status == 'open' and c.owner == 'none' and c.waits == wait and (c.form_state or '') == ''
    if due_now and not args.form then
      -- No contact form in this workspace: the wait is over, the agents are told once more.
      notify(c, 'no_human_in_time', {waited_ms = now - tonumber(c.waiting_since or now)})
    elseif due_now then
      set(c, 'form_state', 'sent', 'form_sent_at', now)
      redis.call('HDEL', conv_key(cid), 'noted_at')
      local mid = append(c, {author = 'system', kind = 'contact_form', text = say(c, args.text),
        rich = say(c, args.form)})
      event('contact.form_sent', {conversation = cid, channel = c.channel})
      count(c, 'forms_sent')
      notify(c, 'contact_form_sent', {message = mid})
      fired[#fired + 1] = {conversation = cid, message = mid, channel = c.channel, late_ms = now - deadline}
    end
  end
  -- AI conversations quiet since the AI's last word for reports.resolve_after: resolved, the AI's (nothing is sent
  -- to a customer on a channel that delivers: the reply window is likely shut by now).
  local idle = redis.call('ZRANGEBYSCORE', key('IDLE_TIMERS'), '-inf', now, 'LIMIT', 0, args.limit or 200)
  local resolved = {}
  for _, cid in ipairs(idle) do
    redis.call('ZREM', key('IDLE_TIMERS'), cid)
    local c = load(cid)
    if c and c.status == 'open' and c.owner == 'ai' and not redis.call('ZSCORE', key('PENDING_TURNS'), cid) then
      shut(c, 'auto', args.resolved_text, c.delivers == '1' and 'internal' or 'public')
      resolved[#resolved + 1] = {conversation = cid, channel = c.channel}
    end
  end
  local breached = {}
  local sla_timers = key('SLA_TIMERS')
  local late = redis.call('ZRANGEBYSCORE', sla_timers, '-inf', now, 'LIMIT', 0, args.limit or 200)
  for _, member in ipairs(late) do
    redis.call('ZREM', sla_timers, member)
    local cid, target = string.match(member, '^(.*)|(%d+)$')
    local c = load(cid)
    if c and c.status == 'open' and c.sla_target == target and (c.sla_due or '') ~= ''
        and (c.sla_breached or '') == '' then
      breached[#breached + 1] = sla_breach(c, args.sla, args.assignment)
    end
  end
  local reminded = remind(args.assignment, args.limit)
  local woke = {}
  for _, cid in ipairs(redis.call('ZRANGEBYSCORE', key('SNOOZE_TIMERS'), '-inf', now, 'LIMIT', 0, args.limit or 200)) do
    redis.call('ZREM', key('SNOOZE_TIMERS'), cid)
    local c = load(cid)
    if c and snoozed(c) and c.snoozed_until ~= 'next' and tonumber(c.snoozed_until) <= now then
      unsnooze(c, 'time')
      woke[#woke + 1] = cid
    end
  end
  return ok({fired = fired, resolved = resolved, breached = breached, reminded = reminded, woke = woke, now = now})
end

-- Store what the customer left (the widget's form, or details in a WhatsApp reply read by a turn) in Contacts.
function ops.capture()
  local c, err
  if args.turn then c, err = ai_commit(args.conversation, args.turn) else c, err = open_conversation(args.conversation) end
  if not c then return err end
  if args.turn and (c.status ~= 'open' or c.owner ~= 'none') then
    finish_turn(c, args.turn) -- closed, or a human took the chat, while the turn read the details
    return fail(c.status ~= 'open' and 'closed' or 'not_owner', {owner = c.owner})
  end
  if not args.turn and c.form_state ~= 'sent' then return fail('no_form', {form_state = c.form_state or ''}) end
  local ck = key('CONTACT', {contact = c.contact})
  for _, field in ipairs({'name', 'email', 'phone', 'message'}) do
    local value = args.details[field]
    if value and value ~= '' then redis.call('HSET', ck, field, value) end
  end
  redis.call('HSET', ck, 'updated_at', now, 'captured_at', now, 'captured_in', c.id)
  redis.call('ZADD', key('CONTACTS'), now, c.contact)
  if c.form_state == 'sent' then count(c, 'forms_captured') end
  set_contact_terms(c.contact, args.terms)
  set(c, 'form_state', 'done', 'captured_at', now)
  note(c, 'contact_captured', args.summary or '', args.details)
  notice(c, args.confirmation)
  local details = {contact = c.contact, name = args.details.name or '', email = args.details.email or '',
    phone = args.details.phone or '', message = args.details.message or ''}
  event('contact.captured', {conversation = c.id, contact = c.contact, channel = c.channel, name = details.name,
    email = details.email, phone = details.phone})
  notify(c, 'contact_captured', details)
  if args.turn then finish_turn(c, args.turn, true) end
  return ok({contact = c.contact})
end

-- Publishing again: the AI takes back, a batch at a time, the conversations that wait for a human only because it
-- was unpublished and that no human took. The wait and any contact form end; a customer with a question nobody
-- answered is told the AI is back and gets its answer (a turn is woken); the others are not disturbed.
-- `a`: publish's arguments.
local function take_back(a)
  local waiting_unpublished = key('UNPUBLISHED_WAITS')
  local ids = redis.call('ZRANGE', waiting_unpublished, 0, (a.limit or 200) - 1)
  local moved = 0
  for _, cid in ipairs(ids) do
    redis.call('ZREM', waiting_unpublished, cid)
    local c = load(cid)
    if c and c.status == 'open' and c.owner == 'none' then
      local asked = id_after(c.last_customer or '', c.ai_cursor or '')
      local form = (c.form_state or '') ~= ''
      set_owner(c, 'ai')
      set(c, 'offer', 0, 'unknown_streak', 0)
      note(c, 'assignment', '', {actor = a.actor, previous = 'none', owner = 'ai', reason = a.reason})
      if asked or form then notice(c, a.notice) end
      if asked then mark_pending(c) end
      event('conversation.assigned', {conversation = cid, owner = 'ai', previous = 'none', actor = a.actor,
        reason = a.reason, channel = c.channel})
      moved = moved + 1
    end
  end
  return ok({moved = moved, remaining = redis.call('ZCARD', waiting_unpublished)})
end

-- Publish or unpublish the AI agent. Unpublishing hands its open conversations to humans a batch at a time: each
-- waits for a human; the wait (and the contact form after it) starts now only where the customer is waiting for
-- an answer, otherwise when the customer writes again.
function ops.publish()
  redis.call('HSET', key('AI_AGENT'), 'published', args.published and 1 or 0)
  if args.announce then
    event('ai_agent.updated', {published = args.published, actor = args.actor})
  end
  if args.published then return take_back(args) end
  local ids = redis.call('ZRANGE', view_key('ai'), 0, (args.limit or 200) - 1)
  local moved = 0
  for _, cid in ipairs(ids) do
    local c = load(cid)
    if c and c.status == 'open' and c.owner == 'ai' then
      local waiting = redis.call('ZSCORE', key('PENDING_TURNS'), cid)
      set_owner(c, 'none', waiting and args.timeout_ms or nil, 'unpublished')
      redis.call('ZADD', key('UNPUBLISHED_WAITS'), 'NX', now, cid)
      redis.call('ZREM', key('PENDING_TURNS'), cid)
      set(c, 'handover_reason', args.reason, 'handover_at', now, 'offer', 0)
      note(c, 'handover', args.reason, {reason = args.reason, summary = '', route = 'unpublished'})
      event('conversation.handover', {conversation = cid, channel = c.channel, reason = args.reason, summary = '',
        customer = c.customer, route = 'unpublished', waiting = waiting ~= false, team = c.team or ''})
      notify(c, 'handover', {reason = args.reason, summary = '', route = 'unpublished', waiting = waiting ~= false})
      if waiting then sla_start(c, 'first', args.sla) end
      hand_out(c, nil, args.assignment)
      moved = moved + 1
    else
      redis.call('ZREM', view_key('ai'), cid)
    end
  end
  return ok({moved = moved, remaining = redis.call('ZCARD', view_key('ai'))})
end

-- --- presence -------------------------------------------------------------------------------------------------

local function set_presence(agent_id, status)
  local presence = key('PRESENCE')
  local before = redis.call('HGET', presence, agent_id) or 'offline'
  if before == status then return false end
  redis.call('HSET', presence, agent_id, status, agent_id .. ':since', now)
  event('agent.presence', {agent = agent_id, status = status, previous = before})
  return true
end

local function streams_of(agent_id) return key('AGENT_STREAMS', {agent = agent_id}) end

-- PRESENCE_CHECKS holds the end of the agent's latest lease: the sweep looks again then.
local function schedule_check(agent_id)
  local latest = redis.call('ZRANGE', streams_of(agent_id), -1, -1, 'WITHSCORES')
  if latest[2] then
    redis.call('ZADD', key('PRESENCE_CHECKS'), tonumber(latest[2]), agent_id)
  else
    redis.call('ZREM', key('PRESENCE_CHECKS'), agent_id)
  end
end

-- An agent sets their own status; coming online hands them the queued chats they have room for.
function ops.presence()
  if not agent_record(args.agent) then return fail('no_agent') end
  redis.call('HSET', key('PRESENCE'), args.agent .. ':chosen', args.status)
  set_presence(args.agent, args.status)
  local given = 0
  if args.status == 'online' then given = drain(args.assignment, args.drain_limit) end
  return ok({status = args.status, given = given})
end

-- An inbox stream opened (lease_ms from now): an agent shown offline because their inbox had closed is back as
-- they chose (online unless they chose otherwise); one who chose offline stays offline.
function ops.stream_open()
  if not agent_record(args.agent) then return fail('no_agent') end
  redis.call('ZADD', streams_of(args.agent), now + args.lease_ms, args.token)
  schedule_check(args.agent)
  local presence = key('PRESENCE')
  local status = redis.call('HGET', presence, args.agent) or 'offline'
  local given = 0
  if status == 'offline' then
    local chosen = redis.call('HGET', presence, args.agent .. ':chosen') or 'online'
    if chosen ~= 'offline' then
      set_presence(args.agent, chosen)
      status = chosen
      if chosen == 'online' then given = drain(args.assignment, args.drain_limit) end
    end
  end
  return ok({status = status, given = given})
end

-- A stream still open renews its lease; one that closed keeps it only for the grace period (lease_ms).
function ops.stream_lease()
  redis.call('ZADD', streams_of(args.agent), 'XX', now + args.lease_ms, args.token)
  schedule_check(args.agent)
  return ok({})
end

-- Agents whose last lease ended are offline (their chats stay theirs).
function ops.presence_sweep()
  local checks = key('PRESENCE_CHECKS')
  local due = redis.call('ZRANGEBYSCORE', checks, '-inf', now, 'LIMIT', 0, args.limit or 200)
  local gone = {}
  for _, agent_id in ipairs(due) do
    redis.call('ZREMRANGEBYSCORE', streams_of(agent_id), '-inf', now)
    schedule_check(agent_id)
    if redis.call('ZCARD', streams_of(agent_id)) == 0 and set_presence(agent_id, 'offline') then
      gone[#gone + 1] = agent_id
    end
  end
  return ok({offline = gone})
end

-- An admin's choice of assignment in Settings (`file`: the config's value it overrides); nil mode clears it.
-- Switching to an automatic mode hands out the chats already waiting.
function ops.set_assignment()
  local stored = key('ASSIGNMENT')
  if args.mode then
    redis.call('HSET', stored, 'mode', args.mode, 'capacity', args.capacity, 'file', args.assignment.file)
  else
    redis.call('HDEL', stored, 'mode', 'capacity', 'file')
  end
  local rule = assignment(args.assignment)
  event('assignment.updated', {mode = rule.mode, capacity = rule.capacity, actor = args.actor})
  local given = 0
  if rule.mode ~= 'manual' then
    -- Chats that waited while assignment was manual were never queued: queue them (oldest handover first).
    local waiting = redis.call('ZRANGE', view_key('waiting'), 0, -1)
    for _, cid in ipairs(waiting) do
      local c = load(cid)
      if c and c.status == 'open' and c.owner == 'none' then
        redis.call('ZADD', key('ASSIGN_QUEUE'), 'NX', tonumber(c.handover_at or c.created_at or now), cid)
      end
    end
    given = drain(args.assignment, args.drain_limit)
  end
  return ok({mode = rule.mode, capacity = rule.capacity, given = given})
end

-- --- delivery ------------------------------------------------------------------------------------------------

local function outbox_release(c)
  redis.call('DEL', conv_part('OUTBOX_LOCK', c.id))
  redis.call('ZREM', key('OUTBOXES'), c.id)
end

local function delivery_state(c, mid, state, error_code, reason, final)
  redis.call('HSET', conv_part('DELIVERY', c.id), mid, state)
  if reason and reason ~= '' then redis.call('HSET', conv_part('DELIVERY', c.id), mid .. ':error', reason) end
  if final and state == 'failed' then redis.call('HSET', conv_part('DELIVERY', c.id), mid .. ':final', '1') end
  event('message.status', {conversation = c.id, message = mid, status = state, error_code = error_code or '',
    reason = reason or '', final = (final and state == 'failed') and true or false})
end

-- Whether the channel's connector can ask its provider what became of a send (lookup_send): `channels` (the
-- operation's `resolvable`) names those channels.
local function resolvable(channel, channels)
  for _, name in ipairs(channels) do
    if name == channel then return true end
  end
  return false
end

-- A message whose send may have reached the provider, or not. It is never sent again blindly: its `:maybe_sent`
-- mark makes the next sender ask the provider first. Where the provider can be asked (ask.channels), it is queued
-- again ask.schedule[n] after its n-th unknown outcome (recheck_due), so that the question is asked without an
-- agent; after the last, or where it cannot be asked (Meta's Cloud API has no lookup), an agent decides.
local function mark_unknown(c, mid, reason, ask)
  local delivery = conv_part('DELIVERY', c.id)
  redis.call('HSET', delivery, mid .. ':maybe_sent', '1')
  redis.call('HDEL', delivery, mid .. ':auto')
  local checks = redis.call('HINCRBY', delivery, mid .. ':checks', 1)
  local schedule = ask.schedule
  local then_what
  if not resolvable(c.channel, ask.channels) then
    then_what = 'This channel cannot be asked whether it has a message: send it again only if the customer did ' ..
      'not get it.'
  elseif checks <= #schedule then
    redis.call('ZADD', key('UNRESOLVED'), now + schedule[checks], c.id .. '|' .. mid)
    then_what = 'Baton asks the channel whether it has it in ' .. math.ceil(schedule[checks] / 60000) ..
      ' min, and sends it again only if it does not.'
  else
    then_what = 'Baton asked ' .. #schedule .. ' times without an answer: send it again to ask once more.'
  end
  local text = reason .. '. ' .. then_what
  delivery_state(c, mid, 'unknown', '', text)
  note(c, 'delivery_unknown', 'Delivery unknown: ' .. text, {message = mid, reason = reason})
end

-- The next message to send, marked `sending`; a message already `sending` was left by a sender that died and
-- becomes `unknown` (at most once: Baton never sends a message twice on its own).
local function next_to_send(c, ask)
  local outbox = conv_part('OUTBOX', c.id)
  while true do
    local mid = redis.call('LINDEX', outbox, 0)
    if not mid then
      outbox_release(c)
      return nil
    end
    local state = redis.call('HGET', conv_part('DELIVERY', c.id), mid)
    if state == 'sending' then
      redis.call('LPOP', outbox)
      mark_unknown(c, mid, 'the sender stopped mid-send', ask)
    else
      local message = message_at(c, mid)
      if message then
        redis.call('HSET', conv_part('DELIVERY', c.id), mid, 'sending')
        -- when the first send of it began (kept only while its outcome is unknown: where to look at the provider)
        redis.call('HSETNX', conv_part('DELIVERY', c.id), mid .. ':attempt', now)
        return message
      end
      redis.call('LPOP', outbox) -- no longer in the history (retention): nothing to send
    end
  end
end

-- The answer of outbox_next and outbox_done: the message to send, to whom, and whether it may already be at the
-- provider (maybe_sent: ask first) because of a send of unknown outcome, queued again by Baton (auto) or an agent.
local function outgoing(c, message)
  if not message then return ok({}) end
  local marks = redis.call('HMGET', conv_part('DELIVERY', c.id), message.id .. ':maybe_sent', message.id .. ':auto',
    message.id .. ':attempt')
  return ok({message = message, recipient = c.sender, channel = c.channel,
    customer_at = c.customer_at or string.match(c.last_customer or '', '^(%d+)-') or '',
    maybe_sent = marks[1] == '1', auto = marks[2] == '1', attempted_at = tonumber(marks[3] or '0')})
end

-- What the outbox operations were told about asking providers (see mark_unknown).
local function asking_from(a)
  return {channels = a.resolvable or {}, schedule = a.check_after_ms or {}}
end

-- Take the conversation's outbox (or keep it, for the holder of `token`) and return the next message to send.
function ops.outbox_next()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  local lock = conv_part('OUTBOX_LOCK', c.id)
  local holder = redis.call('GET', lock)
  if holder and holder ~= args.token then return fail('busy', {holder = holder}) end
  redis.call('SET', lock, args.token, 'PX', args.lock_ms or 120000)
  return outgoing(c, next_to_send(c, asking_from(args)))
end

-- What became of the message being sent: sent (with the provider's id), failed, unknown, or retry (not sent: the
-- outbox is released and due again after args.retry_ms[tries]; failed after the last). Returns the next message.
function ops.outbox_done()
  local c = load(args.conversation)
  if not c then return fail('not_found') end
  local lock = conv_part('OUTBOX_LOCK', c.id)
  if redis.call('GET', lock) ~= args.token then return fail('not_holder') end
  local outbox, mid, delivery = conv_part('OUTBOX', c.id), args.message, conv_part('DELIVERY', c.id)
  local outcome = args.outcome
  if outcome == 'retry' then
    local tries = redis.call('HINCRBY', delivery, mid .. ':tries', 1)
    local backoff = args.retry_ms or {1000}
    if tries <= #backoff then
      redis.call('HSET', delivery, mid, 'pending')
      if redis.call('HGET', delivery, mid .. ':maybe_sent') ~= '1' then redis.call('HDEL', delivery, mid .. ':attempt') end
      redis.call('DEL', lock)
      -- The sweep wakes an outbox GRACE after its score: this one is woken backoff[tries] from now.
      redis.call('ZADD', key('OUTBOXES'), now + backoff[tries] - (args.grace_ms or 0), c.id)
      return ok({retry_in_ms = backoff[tries], tries = tries})
    end
    outcome = 'failed'
  end
  redis.call('LREM', outbox, 1, mid)
  redis.call('HDEL', delivery, mid .. ':tries')
  if outcome == 'sent' then
    if (args.provider_id or '') ~= '' then
      redis.call('SET', key('SENT', {channel = c.channel, provider_id = args.provider_id}), c.id .. '|' .. mid,
        'EX', 2592000)
    end
    redis.call('HDEL', delivery, mid .. ':maybe_sent', mid .. ':auto', mid .. ':checks', mid .. ':error',
      mid .. ':attempt')
    delivery_state(c, mid, args.status or 'sent')
    if (args.reason or '') ~= '' then note(c, 'delivery_note', args.reason, {message = mid}) end -- e.g. as a template
    if args.confirmed then
      note(c, 'delivery_confirmed', 'The channel already had this message (' .. (args.provider_id or '') ..
        '): it was not sent again.', {message = mid, provider_id = args.provider_id or ''})
    end
  elseif outcome == 'unknown' then
    mark_unknown(c, mid, args.reason or 'the channel may not have received this message', asking_from(args))
  else
    redis.call('HDEL', delivery, mid .. ':maybe_sent', mid .. ':auto', mid .. ':checks', mid .. ':attempt')
    delivery_state(c, mid, outcome, args.error_code, args.reason, args.final)
    note(c, 'delivery_' .. outcome, 'Delivery failed: ' .. (args.reason or ''),
      {message = mid, reason = args.reason or ''})
  end
  redis.call('PEXPIRE', lock, args.lock_ms or 120000)
  return outgoing(c, next_to_send(c, asking_from(args)))
end

local RESENDABLE = {unknown = true, failed = true, undelivered = true}

-- Queue once more a message whose delivery failed (not for good: `:final`) or is unknown; else its state (and
-- why it failed for good). An unknown one keeps its `:maybe_sent` mark (data
-- from before the mark gets it here): the sender asks the provider first, and sends it only if the provider does
-- not have it, or cannot say (then it may arrive twice: the agent's decision).
local function queue_again(c, mid, actor)
  local delivery = conv_part('DELIVERY', c.id)
  local state = redis.call('HGET', delivery, mid)
  if not RESENDABLE[state or ''] then return state or '' end
  if redis.call('HGET', delivery, mid .. ':final') then -- sending it again cannot help: say why
    return state, redis.call('HGET', delivery, mid .. ':error')
  end
  if state == 'unknown' then redis.call('HSET', delivery, mid .. ':maybe_sent', '1') end
  redis.call('HDEL', delivery, mid .. ':error', mid .. ':auto', mid .. ':checks')
  redis.call('ZREM', key('UNRESOLVED'), c.id .. '|' .. mid)
  queue_delivery(c, mid)
  note(c, 'resend', '', {message = mid, actor = actor})
  delivery_state(c, mid, 'pending')
  return nil
end

function ops.resend()
  local c, err = open_conversation(args.conversation)
  if not c then return err end
  local state, failure = queue_again(c, args.message, args.actor)
  if state then return fail('not_resendable', {status = state, failure = failure}) end
  return ok({})
end

-- Queue once more every message of the conversation whose delivery failed or is unknown (or those of
-- args.messages that are), oldest first.
function ops.resend_all()
  local c, err = open_conversation(args.conversation)
  if not c then return err end
  local candidates = args.messages
  if not candidates then
    candidates = {}
    local states = redis.call('HGETALL', conv_part('DELIVERY', c.id))
    for i = 1, #states, 2 do
      if RESENDABLE[states[i + 1]] and not string.find(states[i], ':', 1, true) then
        candidates[#candidates + 1] = states[i]
      end
    end
  end
  local function at(mid)
    local ms, n = string.match(mid, '^(%d+)-?(%d*)$')
    return tonumber(ms or 0), tonumber(n ~= '' and n or 0) or 0
  end
  table.sort(candidates, function(a, b)
    local am, an = at(a)
    local bm, bn = at(b)
    if am ~= bm then return am < bm end
    return an < bn
  end)
  local queued, skipped = {}, 0
  for _, mid in ipairs(candidates) do
    if queue_again(c, mid, args.actor) == nil then queued[#queued + 1] = mid else skipped = skipped + 1 end
  end
  return ok({queued = queued, skipped = skipped})
end

-- Queue again each message whose check is due (see mark_unknown): its sender asks the provider whether it has it
-- and sends it only if not. A message resent or resolved meanwhile, or of a conversation forgotten, is dropped.
function ops.recheck_due()
  local due = redis.call('ZRANGEBYSCORE', key('UNRESOLVED'), '-inf', now, 'LIMIT', 0, args.limit or 100)
  local queued = {}
  for _, member in ipairs(due) do
    redis.call('ZREM', key('UNRESOLVED'), member)
    local cid, mid = string.match(member, '^([^|]*)|(.*)$')
    local c = cid and load(cid)
    if c and redis.call('HGET', conv_part('DELIVERY', c.id), mid) == 'unknown' then
      redis.call('HSET', conv_part('DELIVERY', c.id), mid .. ':auto', '1')
      redis.call('HDEL', conv_part('DELIVERY', c.id), mid .. ':error')
      queue_delivery(c, mid)
      delivery_state(c, mid, 'pending')
      queued[#queued + 1] = member
    end
  end
  return ok({queued = queued})
end

-- A provider's report on a message Baton sent; a late status never overwrites a later one, and failed is final
-- (Meta may still report "delivered" for a message it failed). A failure keeps the provider's reason.
function ops.status()
  local sent = redis.call('GET', key('SENT', {channel = args.channel, provider_id = args.provider_id}))
  if not sent then return ok({applied = false}) end
  local cid, mid = string.match(sent, '^([^|]*)|(.*)$')
  local rank = {pending = 0, sending = 0, unknown = 0, accepted = 1, queued = 1, sent = 3, failed = 4,
    undelivered = 4, delivered = 5, read = 6}
  local current = redis.call('HGET', conv_part('DELIVERY', cid), mid)
  -- No record: the conversation was forgotten (a read receipt days later), and its SENT key outlives it.
  if not current or current == 'failed' or current == 'undelivered'
      or (rank[current] or 0) >= (rank[args.status] or 0) then
    return ok({applied = false, status = current})
  end
  redis.call('HSET', conv_part('DELIVERY', cid), mid, args.status)
  if args.status == 'failed' and (args.reason or '') ~= '' then
    redis.call('HSET', conv_part('DELIVERY', cid), mid .. ':error', args.reason)
  end
  local final = args.status == 'failed' and args.final == true
  if final then redis.call('HSET', conv_part('DELIVERY', cid), mid .. ':final', '1') end
  event('message.status', {conversation = cid, message = mid, status = args.status,
    error_code = args.error_code or '', reason = args.status == 'failed' and (args.reason or '') or '', final = final})
  return ok({applied = true, status = args.status})
end

-- --- retention ------------------------------------------------------------------------------------------------

-- Delete a closed conversation (after it was archived): its keys, its place in the views and the contact's list.
function ops.forget()
  local c = load(args.conversation)
  if not c then return ok({forgotten = false}) end
  if c.status ~= 'closed' then return fail('open') end
  unindex(c.id)
  for _, label in ipairs(labels_of(c)) do redis.call('ZREM', key('LABELED', {label = label}), c.id) end
  for _, name in ipairs({'CONVERSATION', 'MESSAGES', 'DELIVERY', 'OUTBOX', 'OUTBOX_LOCK', 'TURN_LOCK',
                         'AWAITING_HUMAN', 'SEARCH_TERMS'}) do
    redis.call('DEL', conv_part(name, c.id))
  end
  redis.call('ZREM', view_key('closed'), c.id)
  redis.call('ZREM', key('UNPUBLISHED_WAITS'), c.id)
  redis.call('ZREM', key('ASSIGN_QUEUE'), c.id)
  redis.call('ZREM', view_key('overdue'), c.id)
  redis.call('ZREM', key('REMIND_TIMERS'), c.id)
  redis.call('ZREM', key('OUTBOXES'), c.id) -- messages still queued (a channel down): else the sweep wakes it forever
  redis.call('ZREM', key('CONTACT_CONVERSATIONS', {contact = c.contact}), c.id)
  local latest = key('LATEST', {channel = c.channel, sender = c.sender})
  if redis.call('GET', latest) == c.id then redis.call('DEL', latest) end
  return ok({forgotten = true})
end

-- Data of another schema (gateway/schema.py) is never written to: this script is another release's, or a
-- `baton migrate` is under way. Refused with schema_mismatch, which the store answers as 503.
local SCHEMA_VERSION = '0' -- rendered from gateway/schema.py
local schema = redis.call('HMGET', key('SCHEMA'), 'version', 'migrating')
if schema[2] or (schema[1] and schema[1] ~= SCHEMA_VERSION) then
  return fail('schema_mismatch', {schema = schema[1] or '', migrating = schema[2] or '', expected = SCHEMA_VERSION})
end

local handler = ops[op]
if not handler then return fail('unknown_operation', {operation = op}) end
return handler()
