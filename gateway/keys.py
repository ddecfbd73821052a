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
SCHEMA = "baton:schema"  # hash: the data's schema version, and a migration under way (gateway/schema.py)

# --- a conversation --------------------------------------------------------------------------------
CONVERSATION = "baton:%(ws)s:conv:%(cid)s"  # hash: the conversation's state (see handover/state.lua)
MESSAGES = "baton:%(ws)s:conv:%(cid)s:messages"  # list of JSON: the history (customer, ai, agent, system)
DELIVERY = "baton:%(ws)s:conv:%(cid)s:delivery"  # hash message id → delivery state of an outgoing message
OUTBOX = "baton:%(ws)s:conv:%(cid)s:outbox"  # list: message ids still to send through the channel, in order
OUTBOX_LOCK = "baton:%(ws)s:conv:%(cid)s:outbox-lock"  # SET NX PX: one sender at a time (keeps the order)
TURN_LOCK = "baton:%(ws)s:conv:%(cid)s:turn-lock"  # SET NX PX: one AI turn at a time
AWAITING_HUMAN = "baton:%(ws)s:conv:%(cid)s:awaiting-human"  # TTL key: a no-human fallback is pending

# --- a workspace -----------------------------------------------------------------------------------
CONVERSATION_SEQ = "baton:%(ws)s:seq:conversation"
ACTIVE = "baton:%(ws)s:active:%(channel)s:%(sender)s"  # the customer's open conversation id
LATEST = "baton:%(ws)s:latest:%(channel)s:%(sender)s"  # the customer's latest conversation id
VIEW = "baton:%(ws)s:view:%(view)s"  # zset cid → last activity; view = ai | waiting | agent:<id> | closed | open
EVENTS = "baton:%(ws)s:events"  # stream: the inbox's real-time events (and the visitors', by conversation)
NOTIFICATIONS = "baton:%(ws)s:notifications"  # stream with a consumer group: what agents are told elsewhere
PENDING_TURNS = "baton:%(ws)s:pending-turns"  # zset cid → since: customer messages the AI has yet to handle
TURNS = "baton:%(ws)s:turns"  # list: conversations whose AI turn a worker should take now (wake-ups)
OUTBOXES = "baton:%(ws)s:outboxes"  # zset cid → due: conversations with messages still to send
DELIVERIES = "baton:%(ws)s:deliveries"  # list: conversations whose outbox a worker should send now (wake-ups)
FALLBACK_TIMERS = "baton:%(ws)s:timers:no-human"  # zset "cid|wait" → deadline (the durable trigger)
DEDUPE = "baton:%(ws)s:dedupe:%(channel)s:%(provider_id)s"  # a provider message id seen → "cid|mid"
SENT = "baton:%(ws)s:sent:%(channel)s:%(provider_id)s"  # a message Baton sent, by the provider's id → "cid|mid"
REPLY = "baton:%(ws)s:reply:%(agent)s:%(client_id)s"  # an agent's reply by its idempotency key → "cid|mid" (a day)
CONTACT = "baton:%(ws)s:contact:%(contact)s"  # hash
CONTACT_CONVERSATIONS = "baton:%(ws)s:contact:%(contact)s:conversations"  # zset cid → started
CONTACTS = "baton:%(ws)s:contacts"  # zset contact → updated
CONTACT_BY_IDENTITY = "baton:%(ws)s:contact-by:%(channel)s:%(sender)s"
CONTACT_SEQ = "baton:%(ws)s:seq:contact"
AI_AGENT = "baton:%(ws)s:ai-agent"  # hash: runtime overrides (published)
UNPUBLISHED_WAITS = "baton:%(ws)s:waiting-unpublished"  # zset cid → since: waiting for a human only because the
# AI agent was unpublished (publishing it again gives them back to the AI)
MODEL_BREAKER = "baton:%(ws)s:model-breaker"  # hash: the AI model's circuit breaker (gateway/breaker.py)
MODEL_PROBE = "baton:%(ws)s:model-probe"  # SET NX PX: the one turn that tries a model whose circuit is open
AGENTS = "baton:%(ws)s:agents"  # hash agent id → JSON
AGENT_TOKEN = "baton:%(ws)s:agent-token:%(digest)s"  # API token digest → agent id (with the token's TTL)
SESSION = "baton:%(ws)s:session:%(digest)s"  # inbox session id digest → agent id (with the session's TTL)
AGENT_SESSIONS = "baton:%(ws)s:agent:%(agent)s:sessions"  # set of the agent's session digests (for revoking)
VISITOR = "baton:%(ws)s:visitor:%(digest)s"  # webchat session id digest → "channel|visitor" (with its TTL)
RATE = "baton:%(ws)s:rate:%(scope)s:%(subject)s"  # a rate limit's counter for one window


def key(template: str, **parts: str) -> str:
    return template % parts


def templates() -> dict[str, str]:
    """Every template by name, for the state script."""
    return {name: value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
