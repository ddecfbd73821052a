"""Server-sent events from Redis streams, with catch-up from the client's last event id."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import StreamingResponse

KEEPALIVE_MS = 15_000
# Each XREAD blocks at most this long: well under the Redis client's socket timeout (redis-py's default is
# 5 s; a longer BLOCK fails with TimeoutError and kills an idle stream), and a gone client is noticed soon.
BLOCK_MS = 1_000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event_id: str, event: str, data: Any) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def last_event_id(request: Request) -> str:
    return request.headers.get("last-event-id") or request.query_params.get("last_event_id", "")


def response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


async def read_stream(client: aioredis.Redis, stream: str, after: str, block_ms: int = BLOCK_MS,
                      count: int = 200) -> list[tuple[str, dict[str, str]]]:
    """Entries after `after` ("0" for all, "$" for new ones only), waiting up to block_ms for some."""
    result = await client.xread({stream: after}, count=count, block=block_ms)
    return [(mid, fields) for _, entries in result for mid, fields in entries]


async def follow(request: Request, client: aioredis.Redis, stream: str, after: str,
                 render: Callable[[str, dict[str, str]], Awaitable[str | None]]) -> AsyncIterator[str]:
    """Yield rendered frames for every entry after `after`, and a comment every KEEPALIVE_MS.

    Without `after` the stream starts at the newest entry, fixed before the first line is sent, so a client
    that has read that line misses nothing that happens afterwards.
    """
    position = after or "$"
    if position == "$":
        newest = await client.xrevrange(stream, count=1)
        position = newest[0][0] if newest else "0"
    # An id-only frame dispatches no event but sets the browser's last event id: a stream that drops before
    # its first event still reconnects with Last-Event-ID from here, and misses nothing.
    yield "retry: 2000\n\n" if after else f"retry: 2000\nid: {position}\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        entries = await read_stream(client, stream, position)
        if entries:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEPALIVE_MS / 1000:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        for mid, fields in entries:
            position = mid
            rendered = await render(mid, fields)
            if rendered:
                yield rendered
