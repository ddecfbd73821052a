"""Taking work off Baton's work lists: AI turns and deliveries, each on a bounded thread pool of its own.

The state script writes the durable record of the work in the same atomic step as the change that causes it: a
conversation stays in PENDING_TURNS until a turn commits for it, and in OUTBOXES until its outbox is empty. It
also pushes a wake-up on TURNS or DELIVERIES, which a runner here pops and runs. A wake-up lost with a killed
worker costs nothing but time: the sweep finds records whose lease has lapsed and wakes them again. Leases
(per-conversation locks) are short and renewed by their holder while it works, so a dead holder's lapse in
seconds, and no runner ever waits on one: it leaves the conversation to whoever holds it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from gateway import keys
from gateway.deployment import Deployment
from gateway.logs import Throttled
from gateway.redis_server import connect, describe_error

log = logging.getLogger("baton.dispatch")

LEASE_MS = 15_000  # a turn's hold on its conversation, renewed every RENEW_EVERY while the turn runs
RENEW_EVERY = 5.0
GRACE_MS = 3_000  # a record older than this with no lease on it has lost its wake-up: wake it again
QUEUED_SCAN = 10_000  # the longest wake-up list the sweep reads to tell a lost wake-up from a waiting one
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def release_lease(client: redis.Redis, key: str, token: str) -> None:
    """Let go of a lease (or a plain lock) this holder set with `token`; one set by someone else since is kept."""
    client.eval(_RELEASE, 1, key, token)


class Leases:
    """The per-conversation locks this process holds, renewed together until released."""

    def __init__(self, client: redis.Redis, owner: str) -> None:
        self.redis = client
        self.owner = owner
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> str | None:
        """The lease's token, or None when someone else holds it."""
        token = f"{self.owner}/{uuid.uuid4().hex[:12]}"
        if not self.redis.set(key, token, nx=True, px=LEASE_MS):
            return None
        with self._lock:
            self._held[key] = token
        return token

    def hold(self, key: str, token: str) -> None:
        """Renew a lock that is set by someone else on this holder's behalf (the state script sets the outbox's)."""
        with self._lock:
            self._held[key] = token

    def release(self, key: str, token: str) -> None:
        with self._lock:
            if self._held.get(key) == token:
                del self._held[key]
        with contextlib.suppress(redis.RedisError):  # else it lapses within LEASE_MS
            release_lease(self.redis, key, token)

    def renew(self) -> None:
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, token in held:
            pipe.eval(_RENEW, 1, key, token, LEASE_MS)
        pipe.execute()

    def __len__(self) -> int:
        return len(self._held)


class Runner(threading.Thread):
    """Pops wake-ups off one kind of work list (every workspace's) and runs each on a bounded pool; it pops only
    when a thread of the pool is free, so what it has not taken stays in Redis for other workers."""

    def __init__(self, deployment: Deployment, kind: str, template: str, work: Callable[[str, str], object],
                 concurrency: int) -> None:
        super().__init__(name=f"baton-{kind}", daemon=True)
        self.deployment = deployment
        self.kind = kind
        self.lists = {keys.key(template, workspace_id=w.id): w.id for w in deployment.config.workspaces}
        self.work = work
        self.slots = threading.BoundedSemaphore(concurrency)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"baton-{kind}")
        self.stopping = threading.Event()
        self._in_flight = 0
        self._counter = threading.Lock()
        self._client = connect(deployment.redis_url, max_connections=2, decode_responses=True, socket_timeout=5,
                               socket_connect_timeout=5)
        self._errors = Throttled(log, every=5.0)

    def run(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            if not self.slots.acquire(timeout=0.5):
                continue
            try:
                popped = self._client.blpop(list(self.lists), timeout=1)
                backoff = 0.1
            except (redis.RedisError, OSError) as exc:
                self.slots.release()
                self._errors.warning("%s runner: Redis unavailable (%s); retrying", self.kind, exc)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if popped is None:
                self.slots.release()
                continue
            name, conversation = str(popped[0]), str(popped[1])
            self._count(+1)
            self.pool.submit(self._run, self.lists[name], conversation)

    def _run(self, workspace_id: str, conversation_id: str) -> None:
        try:
            outcome = self.work(workspace_id, conversation_id)
            log.debug("%s %s/%s: %s", self.kind, workspace_id, conversation_id, outcome)
        except redis.RedisError as exc:  # unreachable, out of memory, its disk…: the sweep wakes it again later
            self._errors.warning("%s of conversation %s/%s stopped: %s", self.kind, workspace_id, conversation_id,
                                 describe_error(exc))
        except Exception:  # noqa: BLE001 - the job boundary: log it with the conversation, keep the pool alive
            log.exception("%s of conversation %s/%s failed", self.kind, workspace_id, conversation_id,
                          extra={"workspace": workspace_id, "conversation": conversation_id})
        finally:
            self._count(-1)
            self.slots.release()

    def _count(self, change: int) -> None:
        with self._counter:
            self._in_flight += change

    @property
    def in_flight(self) -> int:
        """Work items running now."""
        return self._in_flight

    def stop(self, grace: float) -> None:
        """Stop taking work, and let what runs finish within `grace` seconds."""
        self.stopping.set()
        self.join(timeout=5)
        deadline = time.monotonic() + grace
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def sweep(deployment: Deployment, now_ms: int, limit: int = 200) -> int:
    """Wake again every pending turn and due outbox that nobody holds, nobody has taken for GRACE_MS and that is not
    waiting in its wake-up list (its wake-up was lost with a worker, or a retry is due); how many were woken."""
    client = deployment.redis
    woken = 0
    for workspace in deployment.config.workspaces:
        for record, lock, wakeups in ((keys.PENDING_TURNS, keys.TURN_LOCK, keys.TURNS),
                                      (keys.OUTBOXES, keys.OUTBOX_LOCK, keys.DELIVERIES)):
            zset = keys.key(record, workspace_id=workspace.id)
            stale: Any = client.zrangebyscore(zset, "-inf", now_ms - GRACE_MS, start=0, num=limit)
            if not stale:
                continue
            queue = keys.key(wakeups, workspace_id=workspace.id)
            pipe = client.pipeline(transaction=False)
            for conversation in stale:
                pipe.exists(keys.key(lock, workspace_id=workspace.id, conversation_id=conversation))
            pipe.llen(queue)
            pipe.lrange(queue, 0, QUEUED_SCAN - 1)
            *held, queued_length, queued = pipe.execute()
            # One still in the wake-up list is not lost, only waiting for a free worker: waking it again under
            # overload doubled the list and fed the overload (issue 26). A list longer than what is read means
            # the workers are far behind: nothing is added to it until it is shorter.
            waiting = set(queued) if queued_length <= QUEUED_SCAN else set(stale)
            lost = [c for c, is_held in zip(stale, held, strict=True) if not is_held and c not in waiting]
            if lost:
                pipe = client.pipeline(transaction=False)
                pipe.zadd(zset, dict.fromkeys(lost, now_ms), xx=True)
                pipe.rpush(queue, *lost)
                pipe.execute()
                log.info("woke %d %s again: %s", len(lost), record.split(":")[-1], ", ".join(lost[:10]))
                woken += len(lost)
    return woken
