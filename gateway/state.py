"""Conversation state in Redis: atomic changes through state.lua, and the read model for the APIs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

from gateway import keys
from gateway.errors import Conflict, NotFound

_SCRIPT = resources.files("gateway").joinpath("state.lua").read_text(encoding="utf-8")
VIEWS = ("mine", "waiting", "ai", "all", "closed")


@dataclass(frozen=True)
class Change:
    """The JSON answer of a state operation."""

    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.data.get("ok"))

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


class State:
    """All conversation state of one deployment, reached through one synchronous Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._script = client.register_script(_SCRIPT)

    def run(self, operation: str, workspace: str, **arguments: Any) -> Change:
        """Run one operation of state.lua atomically."""
        payload = json.dumps({k: v for k, v in arguments.items() if v is not None})
        return Change(json.loads(self._script(args=[operation, workspace, payload])))

    def run_with(self, pipeline: redis.client.Pipeline, operation: str, workspace: str, **arguments: Any) -> None:
        """Queue an operation on a transaction shared with other writes; its JSON answer is in the EXEC result."""
        pipeline.evalsha(self._script.sha, 0, operation, workspace,
                         json.dumps({k: v for k, v in arguments.items() if v is not None}))

    def load(self) -> None:
        """Load the script into the server (after a restart or SCRIPT FLUSH), for `run_with`."""
        self.redis.script_load(_SCRIPT)

    def require(self, operation: str, workspace: str, **arguments: Any) -> Change:
        """Run an operation and turn its refusals into Baton errors."""
        change = self.run(operation, workspace, **arguments)
        if not change.ok:
            raise refusal(change, arguments.get("conversation", ""))
        return change

    # --- reads -------------------------------------------------------------------------------

    def conversation(self, workspace: str, cid: str) -> dict[str, Any]:
        data = self.redis.hgetall(keys.key(keys.CONVERSATION, ws=workspace, cid=cid))
        if not data:
            raise NotFound(f"no conversation {cid!r}")
        return decode_conversation(data)

    def conversation_ids(self, workspace: str, view: str, agent: str = "", offset: int = 0,
                         limit: int = 50) -> list[str]:
        zset = keys.key(keys.VIEW, ws=workspace, view=view_key(view, agent))
        return [_text(c) for c in self.redis.zrevrange(zset, offset, offset + limit - 1)]

    def conversations(self, workspace: str, ids: list[str]) -> list[dict[str, Any]]:
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(keys.key(keys.CONVERSATION, ws=workspace, cid=cid))
        return [decode_conversation(data) for data in pipe.execute() if data]

    def counts(self, workspace: str, agent: str = "") -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for view in VIEWS:
            pipe.zcard(keys.key(keys.VIEW, ws=workspace, view=view_key(view, agent)))
        return dict(zip(VIEWS, pipe.execute(), strict=True))

    def messages(self, workspace: str, cid: str, after: str = "", limit: int = 500,
                 public_only: bool = False) -> list[dict[str, Any]]:
        stream = keys.key(keys.MESSAGES, ws=workspace, cid=cid)
        start = f"({after}" if after else "-"
        entries = self.redis.xrange(stream, min=start, max="+", count=limit)
        delivery = self.redis.hgetall(keys.key(keys.CONVERSATION, ws=workspace, cid=cid) + ":delivery")
        found = [decode_message(mid, fields, delivery) for mid, fields in entries]
        return [m for m in found if not public_only or m["visibility"] == "public"]

    def message(self, workspace: str, cid: str, mid: str) -> dict[str, Any]:
        stream = keys.key(keys.MESSAGES, ws=workspace, cid=cid)
        entries = self.redis.xrange(stream, min=mid, max=mid, count=1)
        if not entries:
            raise NotFound(f"no message {mid!r} in conversation {cid!r}")
        return decode_message(*entries[0], {})

    def contact(self, workspace: str, contact_id: str) -> dict[str, Any]:
        data = self.redis.hgetall(keys.key(keys.CONTACT, ws=workspace, contact=contact_id))
        if not data:
            raise NotFound(f"no contact {contact_id!r}")
        contact: dict[str, Any] = {_text(k): _text(v) for k, v in data.items()}
        contact["identities"] = json.loads(contact.get("identities", "[]"))
        conversations = keys.key(keys.CONTACT_CONVERSATIONS, ws=workspace, contact=contact_id)
        contact["conversations"] = [_text(c) for c in self.redis.zrange(conversations, 0, -1)]
        return contact

    def contact_ids(self, workspace: str, offset: int = 0, limit: int = 100) -> list[str]:
        zset = keys.key(keys.CONTACTS, ws=workspace)
        return [_text(c) for c in self.redis.zrevrange(zset, offset, offset + limit - 1)]


def view_key(view: str, agent: str = "") -> str:
    """The zset behind an inbox view ('mine' is the agent's own)."""
    if view == "mine":
        return f"agent:{agent}"
    if view == "all":
        return "open"
    if view in ("waiting", "ai", "closed"):
        return view
    raise NotFound(f"no view {view!r}; expected one of {', '.join(VIEWS)}")


def refusal(change: Change, cid: str) -> Exception:
    """The Baton error for a refused state change."""
    code = change.get("error")
    owner = change.get("owner", "")
    if code == "not_found":
        return NotFound(f"no conversation {cid!r}")
    if code == "closed":
        return Conflict(f"conversation {cid} is closed", status="closed")
    if code == "conflict":
        return Conflict(f"conversation {cid} is assigned to {owner}", owner=owner)
    if code == "ai_unpublished":
        return Conflict("the AI agent is unpublished; publish it before handing conversations back to it")
    return Conflict(f"conversation {cid}: {code} (owner {owner or 'nobody'})", owner=owner)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_INTEGERS = ("epoch", "created_at", "updated_at", "closed_at", "last_message_at", "handover_at",
             "waiting_since", "handovers", "unknown_streak", "form_sent_at", "handed_back_at", "waits")


def decode_conversation(data: dict[Any, Any]) -> dict[str, Any]:
    conversation: dict[str, Any] = {_text(k): _text(v) for k, v in data.items()}
    for name in _INTEGERS:
        if conversation.get(name, "") != "":
            conversation[name] = int(float(conversation[name]))
    conversation["offer"] = conversation.get("offer") == "1"
    return conversation


def decode_message(mid: Any, fields: dict[Any, Any], delivery: dict[Any, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {_text(k): _text(v) for k, v in fields.items()}
    message["id"] = _text(mid)
    message["created_at"] = int(float(message.get("created_at", 0)))
    message.setdefault("visibility", "public")
    message.setdefault("kind", "message")
    for name in ("media", "data", "rich"):
        if name in message:
            message[name] = json.loads(message[name] or "null") or ({} if name != "media" else [])
    status = delivery.get(message["id"])
    if status:
        message["delivery"] = _text(status)
    return message
