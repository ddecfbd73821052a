"""The one place Baton imports litellm and installs custom model providers into it."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_install_lock = threading.Lock()
_in_process: dict[str, Any] = {}  # providers called directly: they run here and take (model, messages, …)


@functools.cache
def import_litellm() -> ModuleType:
    """Import litellm once, with the bundled cost map so the import never goes to the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on every provider error
    return litellm


def completion(**params: Any) -> Any:
    """litellm.completion from a blocking caller (a worker thread), on the thread's own event loop; a provider that
    runs in this process and says so (`in_process = True`, like Baton's offline model) is called directly, without
    litellm's routing and logging (6 ms of CPU a call, against the model's own 1 ms).

    litellm's timing logger asks for the thread's event loop on every sync call, which quietly creates one and
    never closes it. Each thread gets one loop, kept for its life (making and closing one per call cost 1-2 ms
    of CPU a call) and closed when the thread ends.
    """
    provider, _, model = str(params["model"]).partition("/")
    handler = _in_process.get(provider)
    if handler is not None:
        optional = {"tools": params["tools"]} if params.get("tools") else {}
        return handler.completion(model, params["messages"], model_response=import_litellm().ModelResponse(),
                                  optional_params=optional)
    with _thread_loop():
        return import_litellm().completion(**params)


class _Loop:
    """A thread's event loop, closed when the thread's locals go (with the thread), so none is left unclosed."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        self.loop.close()


_loops = threading.local()


@contextmanager
def _thread_loop() -> Iterator[None]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code: litellm dispatches on the running loop
        yield
        return
    holder = getattr(_loops, "holder", None)
    if holder is None:
        holder = _loops.holder = _Loop()
    asyncio.set_event_loop(holder.loop)
    yield


def install_provider(name: str, handler: Any) -> None:
    """Route `<name>/<model>` calls to `handler` (a litellm.CustomLLM), replacing any earlier handler."""
    litellm = import_litellm()
    with _install_lock:
        others = [item for item in litellm.custom_provider_map if item["provider"] != name]
        # In place: litellm reads the module attribute on every call, and so may anyone holding the list.
        litellm.custom_provider_map[:] = [*others, {"provider": name, "custom_handler": handler}]
        litellm.utils.custom_llm_setup()
        _in_process.pop(name, None)
        if getattr(handler, "in_process", False):
            _in_process[name] = handler


def uninstall_provider(name: str) -> None:
    """Forget the handler for `name`; calls to `<name>/…` fail as an unknown provider afterwards."""
    litellm = import_litellm()
    with _install_lock:
        _in_process.pop(name, None)
        litellm.custom_provider_map[:] = [
            item for item in litellm.custom_provider_map if item["provider"] != name
        ]
