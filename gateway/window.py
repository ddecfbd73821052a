"""WhatsApp's 24-hour rule, for every channel that has one (`Connector.reply_window`): free text reaches a customer
only within the window after their last message (as the provider stamped it); outside it, only a template the
provider approved. The agent API refuses free text outside the window before anything is sent, and the sender
never sends it (an AI answer or a follow-up that comes too late is recorded as not sent, with why)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from gateway.connector import Connector, Template
from gateway.errors import BadRequest, Conflict

CLOSED = "the customer's 24-hour WhatsApp window is closed: only an approved template can reach them now"
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def customer_at(conversation: Mapping[str, Any]) -> int:
    """The customer's latest message (Unix ms), as the provider stamped it; for a conversation recorded before Baton
    kept that, the time its latest customer message was recorded (its id begins with it)."""
    stamped = str(conversation.get("customer_at") or "")
    if stamped.isdigit():
        return int(stamped)
    recorded = str(conversation.get("last_customer") or "").partition("-")[0]
    return int(recorded) if recorded.isdigit() else 0


def closes_at(connector: Connector | None, customer_at_ms: int) -> int | None:
    """When the window closes (Unix ms), or None when the channel has no window or the customer never wrote."""
    if connector is None or not connector.reply_window or not customer_at_ms:
        return None
    return customer_at_ms + connector.reply_window * 1000


def is_open(connector: Connector | None, customer_at_ms: int, now_ms: int | None = None) -> bool:
    closing = closes_at(connector, customer_at_ms)
    if connector is None or not connector.reply_window:
        return True
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return closing is not None and now < closing


def templates(connector: Connector | None) -> list[Template]:
    if connector is None:
        return []
    try:
        return list(connector.templates())
    except Exception:  # noqa: BLE001 - a connector's template list is advice; the composer shows none
        return []


def template(connector: Connector | None, key: str) -> Template | None:
    return next((t for t in templates(connector) if t.key == key), None)


def check_params(found: Template, params: Any) -> tuple[str, ...]:
    """The template's parameters as given in a request, checked against the template."""
    if not isinstance(params, list) or not all(isinstance(p, str) and p.strip() for p in params):
        raise BadRequest("'params' must be a list of non-empty strings")
    wanted = expected_params(found)
    if wanted is not None and len(params) != wanted:
        raise Conflict(f"template {found.key!r} takes {wanted} parameter(s), not {len(params)}")
    if any(len(p) > 1024 for p in params):
        raise BadRequest("a template parameter is longer than 1,024 characters")
    return tuple(params)


def expected_params(found: Template) -> int | None:
    """How many parameters the template takes, when its body or its parameter names say so."""
    if found.params:
        return len(found.params)
    numbers = [int(n) for n in _PLACEHOLDER.findall(found.body)]
    return max(numbers) if numbers else (None if not found.body else 0)


def render(found: Template, params: tuple[str, ...] | list[str]) -> str:
    """The template's text as the customer reads it, for the conversation's history."""
    if not found.body:
        return f"[Template {found.key}]" + (f" {', '.join(params)}" if params else "")

    def fill(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return params[n - 1] if 0 < n <= len(params) else match.group(0)

    return _PLACEHOLDER.sub(fill, found.body)


def describe(found: Template) -> dict[str, Any]:
    """As the API shows a template to an agent."""
    return {"key": found.key, "name": found.name, "language": found.language, "body": found.body,
            "params": list(found.params) or [f"{{{{{n}}}}}" for n in range(1, (expected_params(found) or 0) + 1)]}
