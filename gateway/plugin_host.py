"""The one place plugins are loaded: bundled and third-party alike, through the `baton` entry points.

A plugin that cannot be loaded (its module fails to import, it needs another plugin API version, one of its
`register_*` hooks raises) is left out and recorded as a `PluginFailure`; the others load. Baton then refuses a
configuration that uses a type no loaded plugin provides, naming the failures (gateway.deployment), and otherwise
says what failed once at start-up and goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.errors import ConfigError
from gateway.plugin import API_VERSION

#: The hooks that register things, and what each registers (by the attribute that names it).
REGISTERING = {"register_connectors": ("connectors", "type"), "register_notifiers": ("notifiers", "type"),
               "register_llm_providers": ("llm_providers", "provider")}

#: The register_* hooks called when a plugin loads: those that register classes.
CHEAP = ("register_connectors", "register_notifiers")

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: where it comes from, what it hooks into and provides, the plugin API version it needs."""

    name: str  # the entry point's name (or the name it was registered under)
    module: str  # the entry point's value: the module (or object) Baton loaded
    distribution: str  # the installed distribution it comes from ("" when registered in-process)
    version: str
    api_version: str  # its BATON_API_VERSION ("" when it declares none)
    hooks: tuple[str, ...]
    provides: dict[str, tuple[str, ...]] = field(default_factory=dict)  # {"connectors": ("telegram",), …}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin Baton could not load, and why."""

    name: str
    module: str
    distribution: str
    version: str
    error: str  # the exception, as "ImportError: No module named 'x'"

    def describe(self) -> str:
        return (f"plugin {self.name!r} ({self.module}, from {self.distribution or 'no distribution'} "
                f"{self.version}) failed to load: {self.error}").replace("  ", " ")


_infos: dict[str, PluginInfo] = {}
_failures: list[PluginFailure] = []


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, created and loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager("baton")
            manager.add_hookspecs(hookspecs)
            _load_entry_points(manager)
            _manager = manager
        return _manager


def call_hook(name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of hook `name` and await those that return an awaitable (datasette's
    await_me_maybe), all of them, before returning their results in the order pluggy gave them."""
    results = list(getattr(plugin_manager().hook, name)(**kwargs))
    pending = [(n, result) for n, result in enumerate(results) if inspect.isawaitable(result)]
    if pending:
        for (n, _), value in zip(pending, asyncio.run(_gather([result for _, result in pending])), strict=True):
            results[n] = value
    return results


async def _gather(awaitables: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


def failures() -> list[PluginFailure]:
    """The plugins that could not be loaded, in the order they were tried."""
    plugin_manager()
    return list(_failures)


def plugins() -> list[PluginInfo]:
    """Every loaded plugin: from the entry points, and any registered in-process since (tests, the suite)."""
    manager = plugin_manager()
    found = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        info = _infos.get(name)
        if info is None or manager.get_plugin(name) is not plugin:
            info = _describe(manager, plugin, name, getattr(plugin, "__module__", "") or repr(plugin), "", "")
        found.append(_describe(manager, plugin, info.name, info.module, info.distribution, info.version,
                               tuple(REGISTERING)))
    return sorted(found, key=lambda info: info.name)


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    for entry in entry_points(group="baton"):
        if manager.get_plugin(entry.name) is not None or manager.is_blocked(entry.name):
            continue
        dist = entry.dist
        dist_name, version = (dist.metadata["Name"], dist.version) if dist is not None else ("", "")
        try:
            plugin = entry.load()
            needed = getattr(plugin, "BATON_API_VERSION", "")
            if needed and not compatible(str(needed)):
                raise ImportError(f"it needs plugin API {needed}; this Baton provides {API_VERSION} "
                                  f"(install a version of {dist_name or entry.name} made for it)")
            manager.register(plugin, name=entry.name)
            try:
                info = _describe(manager, plugin, entry.name, entry.value, dist_name, version)
            except Exception:
                manager.unregister(plugin)
                raise
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is its own, reported below
            _failures.append(PluginFailure(entry.name, entry.value, dist_name, version,
                                           f"{type(exc).__name__}: {exc}"))
            continue
        _infos[entry.name] = info


def compatible(needed: str) -> bool:
    """Whether a plugin written for API `needed` ("major.minor") runs on this one: the same major version, and a
    minor version at most this one's."""
    try:
        major, minor = (int(part) for part in needed.split("."))
    except ValueError:
        return False
    have_major, have_minor = (int(part) for part in API_VERSION.split("."))
    return major == have_major and minor <= have_minor


def _describe(manager: pluggy.PluginManager, plugin: Any, name: str, module: str, distribution: str,
              version: str, calling: tuple[str, ...] = CHEAP) -> PluginInfo:
    """What `plugin` hooks into, and what the register_* hooks of `calling` register (at load: those that register
    classes, so that one that raises fails its own plugin at start-up rather than every lookup later; a model
    provider is an instance whose class may import litellm, seconds that a gateway never calling a model
    should not spend, so it is called only to list it)."""
    hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
    provides: dict[str, tuple[str, ...]] = {}
    for hook_name in hooks:
        if hook_name not in REGISTERING or hook_name not in calling:
            continue
        kind, attribute = REGISTERING[hook_name]
        names: list[str] = []
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=lambda item, names=names, attribute=attribute:
                              names.append(str(getattr(item, attribute, "?"))))
        provides[kind] = tuple(names)
    return PluginInfo(name, module, distribution, version, str(getattr(plugin, "BATON_API_VERSION", "")),
                      tuple(hooks), provides)


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


