"""The RQ jobs that tell agents outside the inbox: the `baton_notify` hook runs for sync and async plugins alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import hookimpl
from gateway.deployment import Deployment
from gateway.notify import Notifier
from gateway.plugin_host import plugin_manager
from gateway.queue import enqueue_notification
from gateway.web.app import create_app
from tests.conftest import Visitor, chat_channel, run_jobs, workspace_of

Received = list[tuple[str, str, dict[str, Any]]]


class SyncPlugin:
    def __init__(self, received: Received) -> None:
        self.received = received

    @hookimpl
    def baton_notify(self, workspace: str, notification: dict[str, Any]) -> None:
        self.received.append(("sync", workspace, notification))


class AsyncPlugin:
    """A plugin whose hook is a coroutine function: pluggy returns the coroutine, the host awaits it."""

    def __init__(self, received: Received) -> None:
        self.received = received

    @hookimpl
    async def baton_notify(self, workspace: str, notification: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)  # real I/O would be here
        self.received.append(("async", workspace, notification))


class AwaitableReturningPlugin:
    """A plain function that returns an awaitable (as the hookspec allows)."""

    def __init__(self, received: Received) -> None:
        self.received = received

    @hookimpl
    def baton_notify(self, workspace: str, notification: dict[str, Any]) -> Any:
        async def later() -> None:
            await asyncio.sleep(0.01)
            self.received.append(("awaitable", workspace, notification))

        return later()


@pytest.fixture
def received() -> Iterator[Received]:
    found: Received = []
    plugins = [SyncPlugin(found), AsyncPlugin(found), AwaitableReturningPlugin(found)]
    for plugin in plugins:
        plugin_manager().register(plugin)
    try:
        yield found
    finally:
        for plugin in plugins:
            plugin_manager().unregister(plugin)


def test_notify_hook_runs_sync_and_async_plugins_on_a_real_handover(
        make_deployment: Callable[..., Deployment], received: Received) -> None:
    deployment = make_deployment()
    with TestClient(create_app(deployment)) as client:
        cid = Visitor(client, chat_channel(deployment)).say("I want to talk to a person")["conversation"]
        run_jobs(deployment)
    mine = [(kind, notification) for kind, workspace, notification in received
            if workspace == workspace_of(deployment)]
    assert sorted(kind for kind, _ in mine) == ["async", "awaitable", "sync"]
    for _, notification in mine:
        assert (notification["type"], notification["conversation"], notification["route"]) == ("handover", cid,
                                                                                               "customer")


def test_a_worker_lives_through_redis_going_away_as_it_records_its_state(
        make_deployment: Callable[..., Deployment], monkeypatch: pytest.MonkeyPatch) -> None:
    """RQ's loop ends the worker on any error it does not expect; recording the worker's state (after a dequeue, or
    as a job is handed to a thread) is one such call, and a Valkey restart at that moment ended a worker (the fault
    suite saw it). The job still runs."""
    import redis
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from gateway.work.worker import JobWorker

    deployment = make_deployment()
    job = deployment.queue.enqueue("builtins.len", "abc")
    worker = JobWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                       concurrency=1)
    record_state = SimpleWorker.set_state

    def lost(self: Any, state: str, pipeline: Any = None) -> None:  # Redis goes as the state is written
        if pipeline is None:
            raise redis.ConnectionError("Connection reset by peer")
        record_state(self, state, pipeline)

    monkeypatch.setattr(SimpleWorker, "set_state", lost)
    worker.register_birth()
    dequeued, queue = worker.dequeue_job_and_maintain_ttl(timeout=1)  # records "idle" at its end
    worker.execute_job(dequeued, queue)  # records "idle" as the job goes to a thread: no exception either
    worker._pool.shutdown(wait=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == 3


def test_a_job_that_could_not_start_as_redis_went_away_goes_back_to_the_front_of_its_queue(
        make_deployment: Callable[..., Deployment]) -> None:
    """Not left in RQ's intermediate queue for its ten-minute maintenance (a notification was told minutes late)."""
    import redis
    from rq.serializers import JSONSerializer

    from gateway.work.worker import JobWorker

    deployment = make_deployment()
    job = deployment.queue.enqueue("builtins.len", "abc")
    worker = JobWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                       concurrency=1)
    worker.register_birth()
    dequeued, queue = worker.dequeue_job_and_maintain_ttl(timeout=1)
    assert queue.intermediate_queue.get_job_ids() == [job.id] and queue.job_ids == []

    def lost(job: Any) -> None:
        raise redis.ConnectionError("Connection reset by peer")

    worker.prepare_execution = lost  # type: ignore[method-assign,assignment]
    worker.execute_job(dequeued, queue)
    assert queue.intermediate_queue.get_job_ids() == [] and queue.job_ids == [job.id]


def test_notifications_read_but_not_handed_out_before_redis_went_away_are_handed_out_first(
        make_deployment: Callable[..., Deployment], received: Received) -> None:
    """A worker whose read of the notifications stream succeeded but whose hand-out did not (Redis went away in
    between) hands those out as soon as Redis is back, not after the group's 60 s reclaim."""
    from gateway import keys
    from gateway.handover import notifications

    deployment = make_deployment()
    with TestClient(create_app(deployment)) as client:
        Visitor(client, chat_channel(deployment)).say("I want to talk to a human")
    workspace = workspace_of(deployment)
    from gateway.work import turn

    notifications.ensure_groups(deployment)
    turn.take_turn(deployment, workspace, "1")
    stream = keys.key(keys.NOTIFICATIONS, workspace_id=workspace)
    read = deployment.redis.xreadgroup(notifications.GROUP, "w1", {stream: ">"}, count=100)  # then Redis went away
    assert read and read[0][1], "the handover's notification"
    jobs_before = deployment.queue.count
    assert notifications.dispatch(deployment, "w1", block_ms=None) == 0  # new ones only: nothing
    assert notifications.dispatch(deployment, "w1", own_pending=True) == len(read[0][1])
    assert deployment.queue.count > jobs_before
    assert deployment.redis.xpending(stream, notifications.GROUP)["pending"] == 0
    assert notifications.dispatch(deployment, "w1", own_pending=True) == 0


def test_a_job_whose_end_could_not_be_recorded_as_redis_went_away_runs_again(
        make_deployment: Callable[..., Deployment]) -> None:
    """Not left in RQ's started registry until its maintenance calls it abandoned (a notification was told minutes
    late, or, within the fault suite's minute, not at all)."""
    import redis
    from rq.serializers import JSONSerializer

    from gateway.work.worker import JobWorker

    deployment = make_deployment()
    job = deployment.queue.enqueue("builtins.len", "abc")
    worker = JobWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                       concurrency=1)
    worker.register_birth()
    dequeued, queue = worker.dequeue_job_and_maintain_ttl(timeout=1)

    def cut_off(job: Any, queue: Any, execution: Any) -> bool:  # started, then Redis went away
        worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
        raise redis.ConnectionError("Connection reset by peer")

    worker.perform_job = cut_off  # type: ignore[method-assign,assignment]
    worker.execute_job(dequeued, queue)
    worker._pool.shutdown(wait=True)
    assert queue.started_job_registry.get_job_ids() == []
    assert queue.job_ids == [job.id] and job.get_status(refresh=True) == "queued"


class PagerNotifier(Notifier):
    type = "pager"
    received: list[dict[str, Any]] = []

    def notify(self, notification: dict[str, Any]) -> None:
        PagerNotifier.received.append(notification)


class PagerPlugin:
    @hookimpl
    def register_notifiers(self, register: Any) -> None:
        register(PagerNotifier)


def test_jobs_queued_under_their_names_from_before_the_move_run_under_the_new_code(
        make_deployment: Callable[..., Deployment], received: Received) -> None:
    """RQ finds a job's function by the dotted name it was queued under: the jobs a release before the move to
    gateway.work.jobs left in the queue (`gateway.jobs.*`) run on an upgraded worker."""
    plugin = PagerPlugin()
    plugin_manager().register(plugin)
    PagerNotifier.received.clear()
    try:
        deployment = make_deployment(notifiers=[{"type": "pager"}])
        workspace = workspace_of(deployment)
        notification = {"type": "handover", "conversation": "c1", "route": "customer"}
        old = [deployment.queue.enqueue("gateway.jobs.notify_hook", workspace, notification),
               deployment.queue.enqueue("gateway.jobs.notify", workspace, 0, notification)]
        run_jobs(deployment)  # an RQ SimpleWorker on the test Redis, as `baton worker --burst`
    finally:
        plugin_manager().unregister(plugin)
    assert [job.func_name for job in old] == ["gateway.jobs.notify_hook", "gateway.jobs.notify"]
    assert [job.get_status(refresh=True) for job in old] == ["finished", "finished"]
    assert sorted(kind for kind, ws, _ in received if ws == workspace) == ["async", "awaitable", "sync"]
    assert PagerNotifier.received == [notification]


def test_new_jobs_are_queued_under_the_work_side(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment()
    enqueue_notification(deployment.queue, workspace_of(deployment), {"type": "handover"}, notifiers=1)
    assert sorted(job.func_name for job in deployment.queue.jobs) == ["gateway.work.jobs.notify",
                                                                      "gateway.work.jobs.notify_hook"]


def test_a_burst_of_jobs_gives_sigint_and_sigterm_back(make_deployment: Callable[..., Deployment]) -> None:
    """RQ's worker took both signals over and kept them after its burst: a Ctrl-C then only asked a finished worker
    to stop (a test run went on, failing just the running test)."""
    import signal

    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    run_jobs(make_deployment())
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_no_job_is_queued_for_a_hook_no_plugin_implements_nor_a_notifier_that_is_not_configured(
        make_deployment: Callable[..., Deployment]) -> None:
    """A notification job costs a worker ~4.5 ms of CPU and Redis ~1 ms (issue 26): with no `baton_notify` plugin
    and no notifier, a handover's notifications are read, acknowledged and dropped without one; with a plugin, one
    job each."""
    from gateway import keys
    from gateway.handover import notifications
    from gateway.work import turn

    deployment = make_deployment()
    with TestClient(create_app(deployment)) as client:
        Visitor(client, chat_channel(deployment)).say("I want to talk to a human")
    workspace = workspace_of(deployment)
    notifications.ensure_groups(deployment)
    turn.take_turn(deployment, workspace, "1")
    stream = keys.key(keys.NOTIFICATIONS, workspace_id=workspace)
    assert not plugin_manager().hook.baton_notify.get_hookimpls()
    assert notifications.dispatch(deployment, "w1", block_ms=None) >= 1
    assert deployment.queue.count == 0
    assert deployment.redis.xpending(stream, notifications.GROUP)["pending"] == 0

    plugin = SyncPlugin([])
    plugin_manager().register(plugin)
    try:
        with TestClient(create_app(deployment)) as client:
            Visitor(client, chat_channel(deployment)).say("Speak to someone please")
        turn.take_turn(deployment, workspace, "2")
        handed = notifications.dispatch(deployment, "w1", block_ms=None)
        assert handed >= 1 and deployment.queue.count == handed
    finally:
        plugin_manager().unregister(plugin)
