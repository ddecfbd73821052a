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
