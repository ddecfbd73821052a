"""A Baton worker: RQ jobs (AI turns, deliveries, notifications) plus the fallback timer loop."""

from __future__ import annotations

import logging

from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from gateway import runtime
from gateway.deployment import Deployment
from gateway.jobs import record_failed_job
from gateway.timers import TimerLoop

log = logging.getLogger("baton.worker")


def prepare(deployment: Deployment) -> None:
    """Everything a job needs, done once before the first job (and before any fork)."""
    from gateway.llm import import_litellm, install_provider
    from gateway.plugin_host import llm_providers

    runtime.install(deployment)
    import_litellm()
    for name, handler in llm_providers().items():
        install_provider(name, handler)
    import gateway.turn  # noqa: F401 - imported before the fork, not in every job

    if not deployment.warmed_up:
        warm_up(deployment)
        deployment.warmed_up = True


def warm_up(deployment: Deployment) -> None:
    """Pay the first-call costs before the first customer does: lazily imported SDK modules, and one
    answer from each offline model (litellm's call path, the knowledge index). Hosted models are not
    called: that would cost money at every start."""
    from gateway import ai

    for channel in deployment.channels.values():
        try:
            channel.connector.warm_up()
        except Exception:  # noqa: BLE001 - a slow first send beats a worker that will not start
            log.exception("warming up channel %s failed", channel.name)
    for workspace in deployment.config.workspaces:
        agent = workspace.ai_agent
        if agent is None or not ai.is_offline(agent):
            continue
        hello = [{"author": "customer", "visibility": "public", "text": "Hello"}]
        try:
            ai.respond(agent, deployment.knowledge(workspace.id), hello)
        except Exception:  # noqa: BLE001
            log.exception("warming up the AI agent of %s failed", workspace.id)


def make_worker(deployment: Deployment) -> Worker | SimpleWorker:
    kind = SimpleWorker if deployment.config.worker.kind == "simple" else Worker
    return kind([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer,
                exception_handlers=[record_failed_job])


def run(deployment: Deployment, burst: bool = False) -> None:
    """Work until told to stop (SIGINT/SIGTERM finish the job in hand first)."""
    prepare(deployment)
    timers = TimerLoop(deployment)
    timers.start()
    try:
        make_worker(deployment).work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        timers.stop()
