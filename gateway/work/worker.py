"""A Baton worker process: AI turns, deliveries and RQ jobs, each with capacity of its own, and the chores.

- AI turns run on a pool of `worker.concurrency` threads: a turn spends its time waiting for the model, so one
  process keeps many in flight. Deliveries run on a pool of their own, so a reply never waits behind model
  calls. Both take their work from Redis as it comes (gateway.work.dispatch).
- RQ runs the jobs that tell agents elsewhere (notifier webhooks, the `baton_notify` hook), through an RQ worker
  whose jobs run on a small thread pool; it appears in RQ's registries like any RQ worker.
- The chores, in one thread: the no-human timers (every 50 ms), waking work whose wake-up was lost, RQ's
  scheduled retries, and retention.
- A heartbeat marks the process alive every second (for `/readyz`, `baton status`) and renews its leases.
Every loop rides out a lost Redis connection by retrying with backoff; the process never exits because of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from gateway import __version__, ai, detection, keys, metrics
from gateway.deployment import Deployment
from gateway.handover import fallback, notifications
from gateway.llm import import_litellm, install_provider
from gateway.logs import Throttled
from gateway.plugin_host import llm_providers
from gateway.redis_server import describe_error
from gateway.work import delivery, retention, runtime, turn
from gateway.work.dispatch import RENEW_EVERY, Leases, Runner, sweep
from gateway.work.jobs import record_failed_job

log = logging.getLogger("baton.worker")

TICK = 0.05  # seconds between checks for due no-human timers
CHORES_EVERY = 1.0  # seconds between sweeps, scheduled-job checks and reclaims
LIVENESS_TTL_MS = 5_000


def prepare(deployment: Deployment) -> None:
    """Everything a job needs, done once before the first one."""
    runtime.install(deployment)
    detection.load()  # the classifiers' weights, read once, not by the first customer
    import_litellm()
    for name, handler in llm_providers().items():
        install_provider(name, handler)
    if not deployment.warmed_up:
        ai.check_models(deployment.config)
        warm_up(deployment)
        deployment.warmed_up = True


def warm_up(deployment: Deployment) -> None:
    """Pay the first-call costs before the first customer does: lazily imported SDK modules, one answer from
    each offline model, and litellm's call path for each hosted model (a mock answer: no network, no cost)."""
    for channel in deployment.channels.values():
        try:
            channel.connector.warm_up()
        except Exception:  # noqa: BLE001 - a slow first send beats a worker that will not start
            log.exception("warming up channel %s failed", channel.name, extra={"channel": channel.name})
    try:
        deployment.sync_knowledge()  # the config's knowledge into the shared base, where it changed
    except (redis.RedisError, OSError) as exc:  # Redis away: one line, no traceback; the first turn writes it then
        log.warning("the config's knowledge was not written into the knowledge base now (%s): the first turn "
                    "writes it", describe_error(exc))
    except Exception:  # noqa: BLE001 - the first turn writes it then
        log.exception("writing the config's knowledge into the knowledge base failed")
    for workspace in deployment.config.workspaces:
        agent = workspace.ai_agent
        if agent is None:
            continue
        hello: list[Any] = [{"id": "0-1", "author": "customer", "visibility": "public", "text": "Hello"}]
        try:
            if ai.is_offline(agent):
                ai.respond(agent, deployment.knowledge(workspace.id), hello)
            else:
                ai.complete(agent, [{"role": "user", "content": "Hello"}], mock_response="Hello")
        except Exception:  # noqa: BLE001
            log.exception("warming up the AI agent of %s failed", workspace.id, extra={"workspace": workspace.id})


class JobWorker(SimpleWorker):
    """RQ's SimpleWorker with its jobs on a thread pool (they wait on notifier webhooks, not the CPU), which
    treats a lost Redis connection as a pause, not a reason to quit."""

    death_penalty_class = TimerDeathPenalty  # RQ's signal-based timeout works only in the main thread

    def __init__(self, *args: Any, concurrency: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="baton-job")
        self._errors = Throttled(log, every=5.0)

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._slots.acquire()
        try:
            execution = self.prepare_execution(job)
        except (redis.RedisError, OSError) as exc:
            # Left in RQ's intermediate queue, the job would wait for RQ's maintenance (every 10 minutes, and a minute
            # in there first): once Redis answers again it goes back to the front of its queue instead. If it had in
            # fact started, it may run twice; a notification carries an id to deduplicate on.
            self._slots.release()
            self._errors.warning("could not start job %s (%s); handing it back", job.id, exc)
            self._riding_out(self._hand_back, job, queue)
            return
        self.set_state("idle")  # busy threads, idle loop: a stop signal is handled at once, jobs finish first

        def perform() -> None:
            try:
                self.perform_job(job, queue, execution)
            except (redis.RedisError, OSError) as exc:
                # RQ could record neither the job's end nor its failure: it would sit in the started registry until
                # RQ's maintenance (every 10 minutes) called it abandoned. It runs again as soon as Redis is back: at
                # least once (a notification carries an id to deduplicate on).
                self._errors.warning("job %s: Redis went away around it (%s); it runs again", job.id, exc)
                self._riding_out(self._run_again, job, queue)
            except Exception:  # a thread of the pool would keep it to itself
                log.exception("job %s: RQ's bookkeeping around it failed", job.id, extra={"job": job.id})
            finally:
                self._slots.release()

        self._pool.submit(perform)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """The worker's state is a label for `rq info`; RQ's loop ends the worker on any error it does not expect,
        and recording the label as Redis goes away (after a dequeue, or as a job is handed to a thread) was one."""
        try:
            super().set_state(state, pipeline)
        except (redis.RedisError, OSError) as exc:
            self._errors.warning("RQ worker: could not record its state %r (%s)", state, exc)

    def _run_again(self, job: Job, queue: Queue) -> None:
        """Each step may be repeated (a retry after a lost reply): the last one, the enqueue, at worst twice."""
        queue.started_job_registry.remove_executions(job)
        self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
        queue.enqueue_job(job, at_front=True)  # its own transaction (it cannot join another)

    def _hand_back(self, job: Job, queue: Queue) -> None:
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.lpush(queue.key, job.id)  # RQ takes jobs from the left: the front of the queue
            pipe.execute()

    def check_for_suspension(self, burst: bool) -> None:
        self._riding_out(super().check_for_suspension, burst)

    def run_maintenance_tasks(self) -> None:
        self._riding_out(super().run_maintenance_tasks)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
        else:
            self._riding_out(super().heartbeat, timeout)

    def _riding_out(self, step: Any, *args: Any) -> None:
        """Run one periodic step of RQ's loop; a lost connection waits for Redis instead of ending the worker."""
        backoff = 0.1
        while True:
            try:
                step(*args)
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if self._stop_requested:
                    raise
                self._errors.warning("RQ worker: Redis unavailable (%s); retrying", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def teardown(self) -> None:
        self._pool.shutdown(wait=True)
        try:
            super().teardown()
        except (redis.RedisError, OSError) as exc:
            log.warning("RQ worker: could not unregister (%s)", exc)


class Chores(threading.Thread):
    """The no-human timers every TICK; waking lost work, RQ's scheduled retries and reclaimed notifications every
    CHORES_EVERY."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        super().__init__(name="baton-chores", daemon=True)
        self.deployment = deployment
        self.worker_name = name
        self.stopping = threading.Event()
        self.scheduler = RQScheduler([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                                     logging_level="WARNING")
        self.next_retention = 0.0
        self.ticked_at = 0  # ms: when the no-human timers were last checked (for /readyz)
        self._errors = Throttled(log, every=5.0)

    def run(self) -> None:
        next_chores = 0.0
        while not self.stopping.is_set():
            try:
                fallback.fire_due(self.deployment)
                self.ticked_at = int(time.time() * 1000)
                if time.monotonic() >= next_chores:
                    self.every_second()
                    next_chores = time.monotonic() + CHORES_EVERY
            except (redis.RedisError, OSError) as exc:
                self._errors.warning("chores: Redis unavailable (%s); retrying", exc)
                self.stopping.wait(0.5)
            except Exception:  # noqa: BLE001 - keep the timers alive whatever one chore does
                log.exception("chores failed; retrying")
                self.stopping.wait(1.0)
            self.stopping.wait(TICK)

    def every_second(self) -> None:
        now = self.deployment.store.now_ms()
        sweep(self.deployment, now)
        for workspace in self.deployment.config.workspaces:
            for due in self.deployment.store.recheck_due(workspace.id):
                log.info("asking the channel what became of %s (a send of unknown outcome)", due,
                         extra={"workspace": workspace.id})
            for agent_id in self.deployment.store.presence_sweep(workspace.id):
                log.info("agent %s is offline: their inbox closed %g s ago", agent_id,
                         workspace.presence.offline_after, extra={"workspace": workspace.id})
        if self.scheduler.acquire_locks():
            self.scheduler.enqueue_scheduled_jobs()
        notifications.reclaim(self.deployment, self.worker_name)
        if time.monotonic() >= self.next_retention:
            retention.sweep(self.deployment, self.worker_name, now)
            self.next_retention = time.monotonic() + 60

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        with contextlib.suppress(redis.RedisError, OSError):
            self.scheduler.release_locks()


class Notifying(threading.Thread):
    """Hands each new notification to RQ as it is written (a blocking read of the workspaces' streams)."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        super().__init__(name="baton-notify", daemon=True)
        self.deployment = deployment
        self.worker_name = name
        self.stopping = threading.Event()
        self._errors = Throttled(log, every=5.0)

    def run(self) -> None:
        recovering = False  # after an error: first hand out what this worker read but may not have handed out
        while not self.stopping.is_set():
            try:
                while recovering:
                    recovering = notifications.dispatch(self.deployment, self.worker_name, own_pending=True) > 0
                notifications.dispatch(self.deployment, self.worker_name, block_ms=1000)
            except (redis.RedisError, OSError) as exc:
                self._errors.warning("notifications: Redis unavailable (%s); retrying", exc)
                recovering = True
                self.stopping.wait(0.5)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


class Heartbeat(threading.Thread):
    """Every second: this worker is alive (a hash with a short TTL), and its leases are renewed."""

    def __init__(self, deployment: Deployment, name: str, leases: Leases, runners: list[Runner],
                 chores: Chores) -> None:
        super().__init__(name="baton-heartbeat", daemon=True)
        self.deployment = deployment
        self.worker_name = name
        self.leases = leases
        self.runners = runners
        self.chores = chores
        self.stopping = threading.Event()
        self.started_at = int(time.time() * 1000)
        self._errors = Throttled(log, every=5.0)

    def run(self) -> None:
        last_renewal = 0.0
        while not self.stopping.is_set():
            try:
                self.beat()
                if time.monotonic() - last_renewal >= RENEW_EVERY:
                    self.leases.renew()
                    last_renewal = time.monotonic()
            except (redis.RedisError, OSError) as exc:
                self._errors.warning("heartbeat: Redis unavailable (%s); retrying", exc)
            self.stopping.wait(1.0)

    def beat(self) -> None:
        now = int(time.time() * 1000)
        info: Any = {"pid": os.getpid(), "host": socket.gethostname(), "version": __version__,
                "started_at": self.started_at, "beat_at": now,
                "timers_at": self.chores.ticked_at, **{f"{r.kind}_in_flight": r.in_flight for r in self.runners}}
        pipe = self.deployment.redis.pipeline(transaction=False)
        queue = self.deployment.config.queue
        worker, workers = keys.key(keys.WORKER, queue=queue, name=self.worker_name), keys.key(keys.WORKERS, queue=queue)
        pipe.hset(worker, mapping=info)
        pipe.pexpire(worker, LIVENESS_TTL_MS)
        pipe.zadd(workers, {self.worker_name: now})
        pipe.zremrangebyscore(workers, "-inf", now - 24 * 3600 * 1000)
        pipe.execute()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        with contextlib.suppress(redis.RedisError, OSError):
            self.deployment.redis.delete(keys.key(keys.WORKER, queue=self.deployment.config.queue,
                                                  name=self.worker_name))


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def turn_runner(deployment: Deployment, leases: Leases) -> Runner:
    def take(workspace_id: str, conversation_id: str) -> str:
        lock = keys.key(keys.TURN_LOCK, workspace_id=workspace_id, conversation_id=conversation_id)
        token = leases.acquire(lock)
        if token is None:
            return "busy: another turn holds the conversation"
        started, outcome = time.perf_counter(), "error"
        try:
            result = turn.run(deployment, deployment.workspace(workspace_id), conversation_id, token)
            outcome = turn_outcome(result)
            return result
        finally:
            metrics.TURNS.labels(outcome).observe(time.perf_counter() - started)
            leases.release(lock, token)

    return Runner(deployment, "turns", keys.TURNS, take, deployment.config.worker.concurrency)


def turn_outcome(result: str) -> str:
    """The metric's label for what a turn did (turn.run says it in words): a few values, never the words."""
    for prefix, outcome in (("answered", "answered"), ("handed over", "handed_over"), ("closed", "closed"),
                            ("nothing", "nothing"), ("dropped", "dropped"), ("suppressed", "dropped"),
                            ("no handover", "dropped")):
        if result.startswith(prefix):
            return outcome
    return "contact_form"  # the customer's reply to the contact form, read as text


def delivery_runner(deployment: Deployment, name: str, leases: Leases) -> Runner:
    def send(workspace_id: str, conversation_id: str) -> int:
        return delivery.drain(deployment, workspace_id, conversation_id, name, leases)

    return Runner(deployment, "deliveries", keys.DELIVERIES, send, deployment.config.worker.deliveries)


def run(deployment: Deployment) -> None:
    """Work until SIGINT/SIGTERM; then finish what is in hand (up to the model timeout) and stop."""
    prepare(deployment)
    name = worker_name()
    _wait_for_redis(deployment)
    notifications.ensure_groups(deployment)
    leases = Leases(deployment.redis, name)
    runners = [turn_runner(deployment, leases), delivery_runner(deployment, name, leases)]
    chores = Chores(deployment, name)
    threads: list[Any] = [*runners, chores, Notifying(deployment, name), Heartbeat(deployment, name, leases, runners,
                                                                                    chores)]
    for thread in threads:
        thread.start()
    log.info("worker %s: %d turns and %d deliveries at once", name, deployment.config.worker.concurrency,
             deployment.config.worker.deliveries, extra={"worker": name})
    try:
        jobs = JobWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                         exception_handlers=[record_failed_job], name=name, concurrency=deployment.config.worker.jobs)
        jobs.work(logging_level="WARNING", with_scheduler=False)
    finally:
        grace = max((w.ai_agent.timeout for w in deployment.config.workspaces if w.ai_agent), default=30.0)
        for runner in runners:
            runner.stop(grace)
        for thread in threads[len(runners):]:
            thread.stop()


def _wait_for_redis(deployment: Deployment) -> None:
    """A worker that starts while Redis is away waits for it (and says so once in a while) instead of exiting."""
    errors = Throttled(log, every=10.0)
    backoff = 0.1
    while True:
        try:
            deployment.redis.ping()
            return
        except (redis.RedisError, OSError) as exc:
            errors.warning("worker: waiting for Redis (%s)", exc)
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


def run_until_idle(deployment: Deployment, rounds: int = 50) -> None:
    """Do every piece of work there is, in this thread, until none is left: turns, deliveries, notifications
    and their RQ jobs (`baton worker --burst`, and the tests)."""
    prepare(deployment)
    notifications.ensure_groups(deployment)
    name = "burst"
    for _ in range(rounds):
        done = _take_all(deployment, keys.TURNS, lambda workspace_id, conversation_id:
                         turn.take_turn(deployment, workspace_id, conversation_id, name))
        done += _take_all(deployment, keys.DELIVERIES, lambda workspace_id, conversation_id:
                          delivery.drain(deployment, workspace_id, conversation_id, name))
        done += notifications.dispatch(deployment, name, block_ms=None)
        worked = BurstWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                             exception_handlers=[record_failed_job]).work(burst=True, logging_level="WARNING")
        if not done and not worked:
            return


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker for one burst, without its command channel: nobody sends commands to a worker that lives
    a few milliseconds, and unsubscribing before the subscription's confirmation was read makes redis-py's pubsub
    thread wait out RQ's 60 s sleep before the burst can end (seen: a test's turn taking 61 s). The process's own
    SIGINT and SIGTERM handlers come back when the burst ends: RQ's outlived it, so a later Ctrl-C only asked a
    finished worker to stop (a test run went on after Ctrl-C, failing just the running test)."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    def subscribe(self) -> None:
        return

    def unsubscribe(self) -> None:
        return


def _take_all(deployment: Deployment, template: str, work: Any) -> int:
    count = 0
    for workspace in deployment.config.workspaces:
        wakeups = keys.key(template, workspace_id=workspace.id)
        while (conversation := deployment.redis.lpop(wakeups)) is not None:
            work(workspace.id, conversation)
            count += 1
    return count
