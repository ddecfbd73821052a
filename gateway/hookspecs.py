"""The plugin surface: every hook Baton calls. Call them with keyword arguments only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("baton")


@hookspec
def register_connectors(register: Callable[[type], None]) -> None:
    """Register channel connector classes (see gateway.connector.Connector)."""


@hookspec
def register_notifiers(register: Callable[[type], None]) -> None:
    """Register notifier classes that tell human agents elsewhere (see gateway.notify.Notifier)."""


@hookspec
def register_llm_providers(register: Callable[[Any], None]) -> None:
    """Register litellm custom providers (litellm.CustomLLM instances whose `provider` names their prefix)."""


@hookspec
def baton_notify(workspace: str, notification: dict[str, Any]) -> Any:
    """React to a notification for a workspace's human agents; may return an awaitable."""


@hookspec
def baton_archive(workspace: str, conversation: dict[str, Any]) -> Any:
    """Archive a closed conversation (with its messages) before retention deletes it; may return an awaitable.
    Raising keeps the conversation for the next attempt."""
