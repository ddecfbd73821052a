"""The RQ queue and its jobs, enqueued by dotted name: nothing here imports the modules that run them.

RQ runs what can be retried safely on its own terms: telling agents elsewhere (the `baton_notify` hook and each
configured notifier), with backoff. AI turns and deliveries are not RQ jobs: their durable record is written by
the state script itself (see gateway.work.dispatch).
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.serializers import JSONSerializer

NOTIFY_RETRY = Retry(max=5, interval=[2, 5, 15, 60, 300])
NOTIFY_TIMEOUT = 60  # seconds; a notifier's own timeout is shorter (the webhook notifier's is at most 30)
#: Where the worker finds these jobs, by name; jobs queued under their old home (gateway.jobs) still run there.
JOBS = "gateway.work.jobs"


def rq_queue(connection: Redis, name: str) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_notification(queue: Queue, workspace_id: str, notification: dict[str, Any], notifiers: int,
                         pipeline: Pipeline | None = None, hook: bool = True) -> None:
    """One job for the `baton_notify` hook (when a plugin implements it) and one per notifier, so a failing one is
    retried alone."""
    common: dict[str, Any] = {"retry": NOTIFY_RETRY, "job_timeout": NOTIFY_TIMEOUT, "result_ttl": 0,
                              "pipeline": pipeline}
    what = f"{notification.get('type')} {workspace_id}/{notification.get('conversation')}"
    if hook:
        queue.enqueue(f"{JOBS}.notify_hook", workspace_id, notification, description=f"notify hook: {what}",
                      **common)
    for index in range(notifiers):
        queue.enqueue(f"{JOBS}.notify", workspace_id, index, notification, description=f"notifier #{index}: {what}",
                      **common)
