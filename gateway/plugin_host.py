"""The one place plugins are loaded: bundled and third-party alike, through the `baton` entry points."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

import pluggy

from gateway import hookspecs
from gateway.errors import ConfigError

T = TypeVar("T")

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, created and loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager("baton")
            manager.add_hookspecs(hookspecs)
            manager.load_setuptools_entrypoints("baton")
            _manager = manager
        return _manager


def collect(hook_name: str, attribute: str) -> dict[str, Any]:
    """Call a `register_*(register)` hook; return what was registered by name, rejecting duplicates."""
    found: dict[str, Any] = {}

    def register(item: Any) -> None:
        name = getattr(item, attribute, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{item!r} registered by a plugin has no {attribute!r} name")
        if name in found:
            raise ConfigError(f"two plugins register {attribute} {name!r}: {found[name]!r} and {item!r}")
        found[name] = item

    getattr(plugin_manager().hook, hook_name)(register=register)
    return found


def connector_types() -> dict[str, type]:
    return collect("register_connectors", "type")


def notifier_types() -> dict[str, type]:
    return collect("register_notifiers", "type")


def llm_providers() -> dict[str, Any]:
    """litellm custom providers by the prefix they serve (`provider`): `<provider>/<model>` routes to them."""
    return collect("register_llm_providers", "provider")


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Hooks are synchronous but may return an awaitable for I/O; the host awaits it."""
    if inspect.isawaitable(value):
        return await value
    return value
