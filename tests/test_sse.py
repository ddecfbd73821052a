"""The event hub's life: it stops when the app shuts down, even when redis-py turns the cancellation of its
blocking read into a connection error (a TestClient or a gateway would otherwise hang at shutdown)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis.exceptions

from gateway.redis_server import connect_async
from gateway.web.sse import Hub


def test_the_hub_stops_even_when_its_read_turns_the_cancellation_into_a_connection_error(redis_url: str) -> None:
    stopped = threading.Event()

    async def scenario() -> None:
        hub = Hub(redis_url, ["w"], connect_async)
        reads = 0

        async def xread(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            try:
                await asyncio.sleep(30)  # XREAD BLOCK
            except asyncio.CancelledError:
                raise redis.exceptions.ConnectionError("Connection closed by server.") from None
            return []

        hub.client.xread = xread  # type: ignore[method-assign]
        hub.start()
        while not reads:
            await asyncio.sleep(0.01)
        await hub.stop()
        stopped.set()

    # In a thread of its own: before the fix stop() never returned, and neither would the test.
    threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True).start()
    assert stopped.wait(timeout=10), "Hub.stop() did not return"
