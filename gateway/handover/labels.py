"""Labels and canned replies: what admins define for their workspace, and labels put on conversations.

Labels are defined by admins (LABELS) and put on a conversation, or taken off, by any agent through the state script
(`label`, in one step with the label's view LABELED and the conversation's `labels`); deleting one takes it off every
conversation (`label_delete`, a batch at a time). Canned replies (CANNED) are texts an agent inserts with "/shortcut"
in the composer; `{{customer.name}}`, `{{customer.first_name}}` and `{{agent.name}}` in them are filled in there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway import keys
from gateway.errors import BadRequest, NotFound
from gateway.handover.store import Store

LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,29}")
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,29}")
COLORS = ("grey", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
MAX_DEFINED = 200  # labels, and canned replies, per workspace
MAX_CANNED_TEXT = 4096


def label_name(value: Any, name: str = "label") -> str:
    """A label's name as given (lower case: letters, digits, '-' and '_', up to 30), or BadRequest."""
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise BadRequest(f"'{name}' must be 1 to 30 lower-case letters, digits, '-' or '_', starting with a letter "
                         "or digit")
    return value


def labels(store: Store, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's labels, by name, each with how many conversations carry it."""
    found: Any = store.redis.hgetall(keys.key(keys.LABELS, workspace_id=workspace_id))
    defined = sorted((json.loads(raw) for raw in found.values()), key=lambda label: label["name"])
    pipe = store.redis.pipeline(transaction=False)
    for label in defined:
        pipe.zcard(keys.key(keys.LABELED, workspace_id=workspace_id, label=label["name"]))
    for label, count in zip(defined, pipe.execute(), strict=True):
        label["conversations"] = int(count)
    return defined


def define_label(store: Store, workspace_id: str, name: str, color: str, by: str) -> dict[str, Any]:
    """Add a label, or change its colour."""
    if color not in COLORS:
        raise BadRequest(f"'color' must be one of {', '.join(COLORS)}")
    stored = keys.key(keys.LABELS, workspace_id=workspace_id)
    if not store.redis.hexists(stored, name) and int(store.redis.hlen(stored)) >= MAX_DEFINED:  # type: ignore[arg-type]
        raise BadRequest(f"a workspace holds at most {MAX_DEFINED} labels")
    label = {"name": name, "color": color, "updated_at": store.now_ms(), "by": by}
    store.redis.hset(stored, name, json.dumps(label))
    return label


def delete_label(store: Store, workspace_id: str, name: str, by: str) -> None:
    """Delete a label and take it off every conversation."""
    if not store.redis.hexists(keys.key(keys.LABELS, workspace_id=workspace_id), name) and not store.redis.exists(
            keys.key(keys.LABELED, workspace_id=workspace_id, label=name)):
        raise NotFound(f"no label {name!r}")
    while store.run("label_delete", workspace_id, label=name, actor=by)["remaining"]:
        pass


def put_label(store: Store, workspace_id: str, conversation_id: str, name: str, add: bool, by: str) -> list[str]:
    """A label on the conversation (`add`) or off it; the conversation's labels now."""
    answer = store.run("label", workspace_id, conversation_id, label=name, add=add, actor=by)
    return list(answer["labels"] or [])


def canned_replies(store: Store, workspace_id: str) -> list[dict[str, Any]]:
    found: Any = store.redis.hgetall(keys.key(keys.CANNED, workspace_id=workspace_id))
    return sorted((json.loads(raw) for raw in found.values()), key=lambda reply: reply["shortcut"])


def save_canned(store: Store, workspace_id: str, shortcut: str, text: str, by: str) -> dict[str, Any]:
    stored = keys.key(keys.CANNED, workspace_id=workspace_id)
    if not store.redis.hexists(stored, shortcut) and int(store.redis.hlen(stored)) >= MAX_DEFINED:  # type: ignore[arg-type]
        raise BadRequest(f"a workspace holds at most {MAX_DEFINED} canned replies")
    reply = {"shortcut": shortcut, "text": text, "updated_at": store.now_ms(), "by": by}
    store.redis.hset(stored, shortcut, json.dumps(reply))
    return reply


def delete_canned(store: Store, workspace_id: str, shortcut: str) -> None:
    if not store.redis.hdel(keys.key(keys.CANNED, workspace_id=workspace_id), shortcut):
        raise NotFound(f"no canned reply /{shortcut}")
