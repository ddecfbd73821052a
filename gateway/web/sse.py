"""Server-sent events: one reader of the workspaces' event streams per gateway process, fanned out to every open
stream (agents' inboxes and visitors' widgets) without a Redis connection each.

A stream first subscribes to the hub, then catches up from Redis (what happened since the client's Last-Event-ID,
or since the moment it opened), then forwards what the hub hands it, skipping what the catch-up already sent:
whichever gateway a browser reaches, and however it reconnects, it misses nothing and sees nothing twice.

A stream that falls behind (its client reads slower than events come, a burst of thousands of events) is not ended:
its buffer is dropped and it catches up from Redis again, from the last event it sent. An agent's stream whose next
event was trimmed from the events stream (kept at about 10,000) says so (`stream.reset`: reload what you show)
instead of skipping silently; a visitor's stream catches up from the conversation's history, which is never trimmed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import StreamingResponse

from gateway import keys
from gateway.errors import BadRequest
from gateway.logs import Throttled

log = logging.getLogger("baton.sse")

KEEPALIVE_S = 15.0
READ_COUNT = 500  # events the hub reads at a time
QUEUE_SIZE = 1_000  # events buffered for one slow client before its stream is ended (it reconnects and catches up)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_STREAM_ID = re.compile(r"[0-9]{1,19}(-[0-9]{1,19})?")
ENDED = object()  # put on a subscriber's queue: the stream must end (credentials revoked, the gateway stopping)
BEHIND = object()  # put on a subscriber's queue: events were dropped, the stream must catch up from Redis
GAP = object()  # a handler's answer: this event shows that some before it were missed: catch up from Redis


def frame(event_id: str, event: str, data: Any) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def last_event_id(request: Request, check: Callable[[str], object]) -> str:
    """The last event the client saw: its Last-Event-ID header, else its ?last_event_id= (an EventSource that
    reconnects sends the header while its URL keeps the id it opened with). `check` refuses either if malformed."""
    header, query = request.headers.get("last-event-id", ""), request.query_params.get("last_event_id", "")
    for given in (header, query):
        if given:
            check(given)
    return header or query


def stream_id(value: str) -> str:
    """A Redis stream id from a client, or BadRequest: ASCII digits, as many as Redis reads (str.isdigit() takes
    "١", and 20 digits may pass 2**64; Redis refuses either once the stream has begun)."""
    if not _STREAM_ID.fullmatch(value):
        raise BadRequest(f"not an event id: {value[:50]!r}")
    return value


def after(a: str, b: str) -> bool:
    """Stream id a comes after b."""
    am, _, aseq = a.partition("-")
    bm, _, bseq = b.partition("-")
    return (int(am or 0), int(aseq or 0)) > (int(bm or 0), int(bseq or 0))


_catch_up_errors = Throttled(log, every=5.0)


async def patiently(read: Callable[..., Awaitable[Any]], *args: Any, **options: Any) -> Any:
    """A catch-up's read of Redis, tried again with backoff while Redis fails (a slow or restarting server): the
    stream waits rather than ends."""
    delay = 0.1
    while True:
        try:
            return await read(*args, **options)
        except (RedisError, OSError) as exc:
            _catch_up_errors.warning("an event stream's catch-up could not read Redis (%s); trying again", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


def routes_of(event: dict[str, Any]) -> list[str]:
    """Who an event is for: every agent of the workspace, and the visitor of the conversation it concerns."""
    routes = ["agents"]
    if event.get("type") == "message.created" and event.get("visibility") == "public":
        routes.append(f"conversation:{event.get('conversation')}")
    elif event.get("type") == "conversation.created":
        routes.append(f"visitor:{event.get('channel')}:{event.get('sender')}")
    return routes


@dataclass(eq=False)
class Subscriber:
    """One open stream: the routes of its workspace it listens to, and the queue the hub fills for it."""

    workspace_id: str
    routes: set[str]
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    ended: bool = False
    behind: bool = False

    def offer(self, event_id: str, event: dict[str, Any]) -> None:
        if self.behind or self.ended:  # it will read these from Redis
            return
        try:
            self.queue.put_nowait((event_id, event))
        except asyncio.QueueFull:
            self.fall_behind()

    def fall_behind(self) -> None:
        """Drop what is buffered: the stream catches up from Redis (what it reads there, the hub skips meanwhile)."""
        if self.ended:
            return
        self._clear()
        self.behind = True
        self.queue.put_nowait(BEHIND)

    def end(self) -> None:
        self._clear()
        self.ended = True
        self.queue.put_nowait(ENDED)

    def _clear(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def next(self) -> tuple[str, dict[str, Any]] | object | None:
        """The next event, BEHIND (catch up from Redis), or None after KEEPALIVE_S of quiet; raises StopAsyncIteration
        when the stream must end."""
        try:
            item = await asyncio.wait_for(self.queue.get(), KEEPALIVE_S)
        except TimeoutError:
            return None
        if item is ENDED:
            raise StopAsyncIteration
        if item is BEHIND:
            self.behind = False  # from here on the hub buffers again: the catch-up reads up to at least here
        result: tuple[str, dict[str, Any]] | object = item
        return result


class Hub:
    """Reads every workspace's EVENTS stream with one connection and hands each event to the subscribers of its
    routes (an event for one conversation reaches that conversation's visitor, not every visitor)."""

    def __init__(self, url: str, workspaces: list[str], connect: Callable[..., aioredis.Redis]) -> None:
        # A connection of its own: XREAD BLOCK holds it, and its socket timeout must outlast the block.
        self.client = connect(url, decode_responses=True, socket_timeout=15, health_check_interval=0)
        self.routes: dict[tuple[str, str], set[Subscriber]] = {}
        self.positions: dict[Any, Any] = {keys.key(keys.EVENTS, workspace_id=w): "$" for w in workspaces}
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.count = 0
        self._errors = Throttled(log, every=5.0)

    def start(self) -> None:
        self.task = asyncio.create_task(self._read(), name="baton-sse-hub")

    async def _start_positions(self) -> None:
        """Read from the newest event on: streams catch up from Redis themselves."""
        for stream in self.positions:
            newest = await self.client.xrevrange(stream, count=1)
            self.positions[stream] = newest[0][0] if newest else "0"

    async def stop(self) -> None:
        self.stopping = True
        # redis-py may turn a cancellation that lands mid-read into a connection error, which the loop would
        # retry: cancel until the task is done (the flag ends the loop if it ever gets that far).
        while self.task and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=0.5)
        for subscribers in self.routes.values():
            for subscriber in subscribers:
                subscriber.end()
        await self.client.aclose()

    def end_all(self) -> None:
        """End every open stream now (a gateway going down): their clients reconnect, to another gateway."""
        for subscribers in list(self.routes.values()):
            for subscriber in list(subscribers):
                subscriber.end()

    def subscribe(self, workspace_id: str, *routes: str) -> Subscriber:
        subscriber = Subscriber(workspace_id, set())
        for route in routes:
            self.listen(subscriber, route)
        self.count += 1
        return subscriber

    def listen(self, subscriber: Subscriber, route: str) -> None:
        subscriber.routes.add(route)
        self.routes.setdefault((subscriber.workspace_id, route), set()).add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        for route in subscriber.routes:
            listeners = self.routes.get((subscriber.workspace_id, route))
            if listeners is not None:
                listeners.discard(subscriber)
                if not listeners:
                    del self.routes[(subscriber.workspace_id, route)]
        self.count -= 1

    async def _read(self) -> None:
        backoff = 0.1
        started = False
        while not self.stopping:
            try:
                if not started:
                    await self._start_positions()
                    started = True
                read: Any = await self.client.xread(self.positions, count=READ_COUNT, block=5_000)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                self._errors.warning("event hub: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for stream, entries in read:
                workspace_id = stream.split(":")[1]
                if len(entries) == READ_COUNT and await self._trimmed_past(stream, self.positions[stream],
                                                                           entries[0][0]):
                    # The hub fell behind the trimming: what it skipped, each stream reads from Redis itself.
                    log.warning("event hub: events were trimmed before this gateway read them; streams catch up")
                    for (workspace, _), subscribers in list(self.routes.items()):
                        if workspace == workspace_id:
                            for subscriber in list(subscribers):
                                subscriber.fall_behind()
                for event_id, fields in entries:
                    self.positions[stream] = event_id
                    self._dispatch(workspace_id, event_id, json.loads(fields["data"]))

    async def _trimmed_past(self, stream: str, position: str, first: str) -> bool:
        """Events after `position` may have been trimmed away: what the hub read starts at the oldest event kept
        (checked on a full read only, when the hub may be far behind)."""
        try:
            oldest: Any = await self.client.xrange(stream, count=1)
        except RedisError:
            return False
        return bool(oldest) and position != "0" and oldest[0][0] == first

    def _dispatch(self, workspace_id: str, event_id: str, event: dict[str, Any]) -> None:
        if event.get("type") == "conversation.created":
            # The visitor who started it follows it from now on: before its first message is handed out.
            visitor = f"visitor:{event.get('channel')}:{event.get('sender')}"
            for subscriber in list(self.routes.get((workspace_id, visitor), ())):
                self.listen(subscriber, f"conversation:{event.get('conversation')}")
        for route in routes_of(event):
            for subscriber in list(self.routes.get((workspace_id, route), ())):
                subscriber.offer(event_id, event)


async def forward(subscriber: Subscriber, handle: Callable[[str, dict[str, Any]], tuple[Any, bool]],
                  catch_up: Callable[[], AsyncIterator[str]]) -> AsyncIterator[str]:
    """What the hub hands `subscriber`, as `handle` renders it (a frame, None, or GAP: some events before this one
    were missed; and whether the stream ends there), with a comment every KEEPALIVE_S of quiet. When the subscriber
    fell behind, or `handle` finds a gap, `catch_up` reads from Redis what the stream has not sent yet (then the
    events it sent that way are skipped when the hub hands them)."""
    while True:
        try:
            item = await subscriber.next()
        except StopAsyncIteration:
            return
        if item is None:
            yield ": keepalive\n\n"
            continue
        if item is BEHIND:
            async for text in catch_up():
                yield text
            continue
        assert isinstance(item, tuple)
        text, done = handle(*item)
        if text is GAP:
            async for caught in catch_up():
                yield caught
            text, done = handle(*item)  # now sent, or still to send
            if text is GAP:
                continue
        if text:
            yield text
        if done:
            return
