"""Every Redis key Baton uses, as templates in one place; all but a few are namespaced by workspace."""

from __future__ import annotations

# Deployment-wide.
SECRET = "baton:secret"  # HMAC key for visitor tokens and sessions when config has none

# Per workspace: "baton:%(ws)s:…"
CONVERSATION = "baton:%(ws)s:conv:%(cid)s"  # hash: the conversation's state
MESSAGES = "baton:%(ws)s:conv:%(cid)s:messages"  # stream: history (customer, ai, agent, system)
TURN_LOCK = "baton:%(ws)s:conv:%(cid)s:turn-lock"  # SET NX PX: one AI turn at a time
AWAITING_HUMAN = "baton:%(ws)s:conv:%(cid)s:awaiting-human"  # TTL key: pending no-human fallback
CONVERSATION_SEQ = "baton:%(ws)s:seq:conversation"
ACTIVE = "baton:%(ws)s:active:%(channel)s:%(sender)s"  # the customer's open conversation id
LATEST = "baton:%(ws)s:latest:%(channel)s:%(sender)s"  # the customer's latest conversation id
VIEW = "baton:%(ws)s:view:%(view)s"  # zset cid→last activity; view = ai | waiting | agent:<id> | closed
OPEN = "baton:%(ws)s:view:open"  # zset of all open conversations
EVENTS = "baton:%(ws)s:events"  # stream: the inbox's real-time events
PENDING_TURNS = "baton:%(ws)s:pending-turns"  # zset cid→since: customer messages the AI has not seen
FALLBACK_TIMERS = "baton:%(ws)s:timers:no-human"  # zset "cid|handover"→deadline (durable trigger)
DEDUPE = "baton:%(ws)s:dedupe:%(channel)s:%(provider_id)s"
DELIVERY = "baton:%(ws)s:delivery:%(channel)s:%(provider_id)s"  # hash: message id, status
CONTACT = "baton:%(ws)s:contact:%(contact)s"  # hash
CONTACT_CONVERSATIONS = "baton:%(ws)s:contact:%(contact)s:conversations"  # zset cid→started
CONTACTS = "baton:%(ws)s:contacts"  # zset contact→updated
CONTACT_BY_IDENTITY = "baton:%(ws)s:contact-by:%(channel)s:%(sender)s"
CONTACT_SEQ = "baton:%(ws)s:seq:contact"
AGENTS = "baton:%(ws)s:agents"  # hash agent id → JSON
AGENT_TOKEN = "baton:%(ws)s:agent-token:%(digest)s"  # → agent id
AI_AGENT = "baton:%(ws)s:ai-agent"  # hash: runtime overrides (published)


def key(template: str, **parts: str) -> str:
    return template % parts
