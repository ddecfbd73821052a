"""The one place Baton imports litellm and installs custom model providers into it."""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import certifi
import httpx

_install_lock = threading.Lock()
_in_process: dict[str, Any] = {}  # providers called directly: they run here and take (model, messages, …)


@functools.cache
def import_litellm() -> ModuleType:
    """Import litellm once, with the bundled cost map so the import never goes to the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on every provider error
    if litellm.client_session is None:  # a plugin or deployment may have set its own
        litellm.client_session = ThreadClients()
    return litellm


class ThreadClients(httpx.Client):
    """The HTTP client litellm's OpenAI-compatible calls go through: each thread sends on a client of its own.

    By default every thread of a worker shares litellm's one httpx client, whose pool holds 100 connections and takes
    a lock around every request over all of them. With 200 turns in flight and a model that answers in 1 s, half the
    turns waited a whole model call for a connection and each call cost 9-11 ms of CPU (p50 2.06 s, p99 2.5-2.9 s);
    a client per thread, kept alive, gave p50 1.34-1.40 s, p99 1.6-1.9 s and 5-7 ms (six rounds each). The clients
    share one TLS context: making one per client cost 23 ms of CPU each.
    """

    def __init__(self) -> None:
        super().__init__(follow_redirects=True)
        self._local = threading.local()
        self._tls = _tls_context()

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(follow_redirects=True, verify=self._tls)
        return client.send(request, **options)


def _tls_context() -> ssl.SSLContext:
    """Certificates as httpx finds them: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where(),
                                      capath=os.environ.get("SSL_CERT_DIR"))


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
