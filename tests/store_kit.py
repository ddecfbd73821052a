"""What the store tests share: one fresh workspace on the real server, the typed Store, and plain reads of every
key the state script writes (so a test sees exactly what an operation wrote, not what the store reads back)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

from gateway import keys
from gateway.handover.store import Conversation, CustomerMessage, Message, Recorded, Store, TurnStamp

TIMEOUT_MS = 120_000


class Kit:
    """A workspace of its own and the reads of its keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.store = Store(client)
        self.ws = f"s{uuid.uuid4().hex[:10]}"
        self._sent = 0

    def key(self, template: str, **parts: str) -> str:
        return keys.key(template, workspace_id=self.ws, **parts)

    # --- acting ----------------------------------------------------------------------------------------------

    def customer(self, text: str = "Hello", *, sender: str = "+15550100", channel: str = "web",
                 provider_id: str | None = None, delivers: bool = False, published: bool = True,
                 timeout_ms: int = TIMEOUT_MS, **extra: Any) -> Recorded:
        """A customer message, each with a provider id of its own unless one is given."""
        self._sent += 1
        message = CustomerMessage(channel=channel, sender=sender, provider_id=provider_id or f"in-{self._sent}",
                                  text=text, customer=extra.pop("customer", "Maria"), delivers=delivers,
                                  published=published, timeout_ms=timeout_ms, **extra)
        return self.store.inbound(self.ws, message)

    def turn(self, conversation: str, lock: str = "") -> TurnStamp:
        """The stamp of a turn that reads the conversation now: its cursor, up to the newest customer message."""
        read = self.conversation(conversation)
        return TurnStamp(expect=read.get("ai_cursor", ""), upto=read.get("last_customer", ""), lock=lock)

    def take_turn_lock(self, conversation: str, token: str = "turn-1") -> str:
        self.redis.set(self.key(keys.TURN_LOCK, conversation_id=conversation), token, px=60_000)
        return token

    def handed_over(self, **extra: Any) -> str:
        """A conversation the AI handed over (waiting for a human, the wait armed), its wake-up taken."""
        cid = self.customer("I want a human", **extra).conversation
        self.redis.lrem(self.key(keys.TURNS), 1, cid)
        self.store.hand_over(self.ws, cid, self.turn(cid), reason="asked", route="customer", summary="",
                             notice="", agent_name="Lumi", timeout_ms=TIMEOUT_MS)
        return cid

    # --- reading ---------------------------------------------------------------------------------------------

    def conversation(self, conversation: str) -> Conversation:
        return self.store.conversation(self.ws, conversation)

    def raw(self, conversation: str) -> dict[str, str]:
        """The conversation hash as stored."""
        data: Any = self.redis.hgetall(self.key(keys.CONVERSATION, conversation_id=conversation))
        return dict(data)

    def history(self, conversation: str) -> list[Message]:
        return self.store.messages(self.ws, conversation)

    def kinds(self, conversation: str) -> list[tuple[str, str]]:
        """(author, kind) of every message, oldest first."""
        return [(m["author"], m["kind"]) for m in self.history(conversation)]

    def last(self, conversation: str) -> Message:
        return self.history(conversation)[-1]

    def stream(self, template: str, kind: str = "") -> list[dict[str, Any]]:
        entries: Any = self.redis.xrange(self.key(template))
        found = [json.loads(fields["data"]) for _, fields in entries]
        return [item for item in found if kind in ("", item["type"])]

    def events(self, kind: str = "") -> list[dict[str, Any]]:
        return self.stream(keys.EVENTS, kind)

    def notifications(self, kind: str = "") -> list[dict[str, Any]]:
        return self.stream(keys.NOTIFICATIONS, kind)

    def view(self, name: str) -> list[str]:
        members: Any = self.redis.zrange(self.key(keys.VIEW, view=name), 0, -1)
        return list(members)

    def zscore(self, template: str, member: str, **parts: str) -> int | None:
        score = self.redis.zscore(self.key(template, **parts), member)
        return None if score is None else int(score)

    def pending(self) -> list[str]:
        members: Any = self.redis.zrange(self.key(keys.PENDING_TURNS), 0, -1)
        return list(members)

    def wakeups(self, template: str = keys.TURNS) -> list[str]:
        items: Any = self.redis.lrange(self.key(template), 0, -1)
        return list(items)

    def timers(self) -> dict[str, int]:
        """The no-human timers: "cid|wait" → deadline."""
        items: Any = self.redis.zrange(self.key(keys.FALLBACK_TIMERS), 0, -1, withscores=True)
        return {member: int(score) for member, score in items}

    def outbox(self, conversation: str) -> list[str]:
        items: Any = self.redis.lrange(self.key(keys.OUTBOX, conversation_id=conversation), 0, -1)
        return list(items)

    def delivery(self, conversation: str) -> dict[str, str]:
        data: Any = self.redis.hgetall(self.key(keys.DELIVERY, conversation_id=conversation))
        return dict(data)

    def exists(self, template: str, **parts: str) -> bool:
        return bool(self.redis.exists(self.key(template, **parts)))

    def pttl(self, template: str, **parts: str) -> int:
        return int(self.redis.pttl(self.key(template, **parts)))
