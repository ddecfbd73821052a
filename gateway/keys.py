"""Every Redis key Baton uses, as templates in one place.

The state script (gateway/handover/state.lua) builds its keys from these same templates: the store renders
them into the script when it loads it, so a key's name is written here and nowhere else. Every key but the
deployment-wide ones is namespaced by workspace, `baton:<workspace>:…`.
"""

from __future__ import annotations

# --- deployment-wide (deployments sharing one Redis are told apart by their queue name) ----------------
SECRET = "baton:secret"  # HMAC key for signatures when the config has none
WORKER = "baton:%(queue)s:worker:%(name)s"  # hash with a short TTL: a live worker, refreshed every second
WORKERS = "baton:%(queue)s:workers"  # zset worker name → last heartbeat (ms): who has been alive recently
LEADER = "baton:%(queue)s:leader:%(task)s"  # SET NX PX: the one worker that runs a deployment-wide chore
TEMPLATES = "baton:%(queue)s:templates:%(channel)s"  # string, JSON with a TTL: the provider's templates, cached
SCHEMA = "baton:schema"  # hash: the data's schema version, and a migration under way (gateway/schema.py)

# --- a conversation --------------------------------------------------------------------------------
# hash: the conversation's state (see handover/state.lua)
CONVERSATION = "baton:%(workspace_id)s:conv:%(conversation_id)s"
# list of JSON: the history (customer, ai, agent, system)
MESSAGES = "baton:%(workspace_id)s:conv:%(conversation_id)s:messages"
# hash message id → delivery state of an outgoing message
DELIVERY = "baton:%(workspace_id)s:conv:%(conversation_id)s:delivery"
# list: message ids still to send through the channel, in order
OUTBOX = "baton:%(workspace_id)s:conv:%(conversation_id)s:outbox"
# SET NX PX: one sender at a time (keeps the order)
OUTBOX_LOCK = "baton:%(workspace_id)s:conv:%(conversation_id)s:outbox-lock"
TURN_LOCK = "baton:%(workspace_id)s:conv:%(conversation_id)s:turn-lock"  # SET NX PX: one AI turn at a time
# TTL key: a no-human fallback is pending
AWAITING_HUMAN = "baton:%(workspace_id)s:conv:%(conversation_id)s:awaiting-human"
# hash: what the conversation is indexed under for search, "m:<term>" → its latest message with the term, "c:<term>"
# → 1 for the customer's own terms (gateway/handover/search.py)
SEARCH_TERMS = "baton:%(workspace_id)s:conv:%(conversation_id)s:terms"

# --- a workspace -----------------------------------------------------------------------------------
CONVERSATION_SEQ = "baton:%(workspace_id)s:seq:conversation"
ACTIVE = "baton:%(workspace_id)s:active:%(channel)s:%(sender)s"  # the customer's open conversation id
LATEST = "baton:%(workspace_id)s:latest:%(channel)s:%(sender)s"  # the customer's latest conversation id
# zset conversation id → last activity; view = ai | waiting | agent:<id> | closed | open;
# overdue: conversation id → 10^13 - the deadline of the response target it missed (the most overdue first)
VIEW = "baton:%(workspace_id)s:view:%(view)s"
EVENTS = "baton:%(workspace_id)s:events"  # stream: the inbox's real-time events (and the visitors', by conversation)
NOTIFICATIONS = "baton:%(workspace_id)s:notifications"  # stream with a consumer group: what agents are told elsewhere
# zset conversation id → since: customer messages the AI has yet to handle
PENDING_TURNS = "baton:%(workspace_id)s:pending-turns"
TURNS = "baton:%(workspace_id)s:turns"  # list: conversations whose AI turn a worker should take now (wake-ups)
OUTBOXES = "baton:%(workspace_id)s:outboxes"  # zset conversation id → due: conversations with messages still to send
DELIVERIES = "baton:%(workspace_id)s:deliveries"  # list: conversations whose outbox a worker should send now (wake-ups)
# zset "<conversation id>|<message id>" → when to ask the provider what became of a send of unknown outcome
UNRESOLVED = "baton:%(workspace_id)s:unresolved"
# zset "<conversation id>|<wait>" → deadline (the durable trigger)
FALLBACK_TIMERS = "baton:%(workspace_id)s:timers:no-human"
# zset conversation id → when it is resolved for the AI, should nothing happen (reports.resolve_after)
IDLE_TIMERS = "baton:%(workspace_id)s:timers:idle"
# hash "<metric>|<channel>" → count, about the conversations started that UTC day (YYYY-MM-DD; gateway/reports.py)
REPORT = "baton:%(workspace_id)s:report:%(day)s"
REPORT_TOTALS = "baton:%(workspace_id)s:report-totals"  # hash: the same counters for all time, only incremented
# zset "<conversation id>|<target>" → deadline: response targets (sla:) still to be met
SLA_TIMERS = "baton:%(workspace_id)s:timers:sla"
# zset conversation id → when to remind the team again that nobody took it (handover.remind_every)
REMIND_TIMERS = "baton:%(workspace_id)s:timers:remind"
# a provider message id seen → "<conversation id>|<message id>"
DEDUPE = "baton:%(workspace_id)s:dedupe:%(channel)s:%(provider_id)s"
# a message Baton sent, by the provider's id → "<conversation id>|<message id>"
SENT = "baton:%(workspace_id)s:sent:%(channel)s:%(provider_id)s"
# an agent's reply by its idempotency key → "<conversation id>|<message id>" (a day)
REPLY = "baton:%(workspace_id)s:reply:%(agent)s:%(client_id)s"
# zset conversation id → time of its latest message with the term (or the customer's own term): the search index
SEARCH = "baton:%(workspace_id)s:search:%(term)s"
# zset conversation id → its last activity: the conversations with the label (its view; search's filter)
LABELED = "baton:%(workspace_id)s:labeled:%(label)s"
SNOOZE_TIMERS = "baton:%(workspace_id)s:timers:snooze"  # zset conversation id → when its snooze ends (ms)
LABELS = "baton:%(workspace_id)s:labels"  # hash label → JSON {name, color, created_at, by}: the workspace's labels
CANNED = "baton:%(workspace_id)s:canned"  # hash shortcut → JSON {shortcut, text, updated_at, by}: canned replies
CONTACT = "baton:%(workspace_id)s:contact:%(contact)s"  # hash
CONTACT_CONVERSATIONS = "baton:%(workspace_id)s:contact:%(contact)s:conversations"  # zset conversation id → started
CONTACTS = "baton:%(workspace_id)s:contacts"  # zset contact → updated
CONTACT_BY_IDENTITY = "baton:%(workspace_id)s:contact-by:%(channel)s:%(sender)s"
CONTACT_SEQ = "baton:%(workspace_id)s:seq:contact"
AI_AGENT = "baton:%(workspace_id)s:ai-agent"  # hash: runtime overrides (published)
# zset conversation id → since: waiting for a human only because the
UNPUBLISHED_WAITS = "baton:%(workspace_id)s:waiting-unpublished"
# AI agent was unpublished (publishing it again gives them back to the AI)
MODEL_BREAKER = "baton:%(workspace_id)s:model-breaker"  # hash: the AI model's circuit breaker (gateway/breaker.py)
MODEL_PROBE = "baton:%(workspace_id)s:model-probe"  # SET NX PX: the one turn that tries a model whose circuit is open
# hash agent id → online | away | offline; "<id>:chosen" (what they set), "<id>:since" (ms)
PRESENCE = "baton:%(workspace_id)s:presence"
AGENT_STREAMS = "baton:%(workspace_id)s:agent:%(agent)s:streams"  # zset inbox stream token → lease end (ms)
PRESENCE_CHECKS = "baton:%(workspace_id)s:presence-checks"  # zset agent id → when their last stream's lease ends
# hash: Settings' assignment (mode, capacity, and `file`, the config's value it overrode) and `last`, the
# round-robin cursor
ASSIGNMENT = "baton:%(workspace_id)s:assignment"
ASSIGN_QUEUE = "baton:%(workspace_id)s:assign-queue"  # zset conversation id → since: waiting for a free agent
AGENTS = "baton:%(workspace_id)s:agents"  # hash agent id → JSON
AGENT_TOKEN = "baton:%(workspace_id)s:agent-token:%(digest)s"  # API token digest → agent id (with the token's TTL)
SESSION = "baton:%(workspace_id)s:session:%(digest)s"  # inbox session id digest → agent id (with the session's TTL)
AGENT_SESSIONS = "baton:%(workspace_id)s:agent:%(agent)s:sessions"  # set of the agent's session digests (for revoking)
VISITOR = "baton:%(workspace_id)s:visitor:%(digest)s"  # webchat session id digest → "channel|visitor" (with its TTL)
RATE = "baton:%(workspace_id)s:rate:%(scope)s:%(subject)s"  # a rate limit's counter for one window
# --- the knowledge base (gateway/retrieval/base.py) ---
KB_VERSION = "baton:%(workspace_id)s:kb:version"  # a token that changes with every change of the knowledge base
KB_ARTICLES = "baton:%(workspace_id)s:kb:articles"  # hash article id → JSON (title, body, source, url, origin, …)
KB_PASSAGES = "baton:%(workspace_id)s:kb:passages"  # hash passage id → JSON (its article, title, text and terms)
KB_CONFIG = "baton:%(workspace_id)s:kb:config"  # digest of the config's knowledge last written into the base
# hash data (base64), content_type: a customer's attachment downloaded from a provider that names media by id
MEDIA = "baton:%(workspace_id)s:media:%(channel)s:%(media_id)s"


def key(template: str, **parts: str) -> str:
    return template % parts


def templates() -> dict[str, str]:
    """Every template by name, for the state script."""
    return {name: value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
