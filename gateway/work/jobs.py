"""RQ job entry points (module-level, taking ids and JSON): telling agents outside the inbox."""

from __future__ import annotations

import logging
from typing import Any

from gateway.plugin_host import call_hook
from gateway.work import runtime

log = logging.getLogger("baton.jobs")


def notify_hook(workspace_id: str, notification: dict[str, Any]) -> None:
    """Call every `baton_notify` implementation, awaiting those that return an awaitable, before the job ends."""
    call_hook("baton_notify", workspace=workspace_id, notification=notification)


def notify(workspace_id: str, index: int, notification: dict[str, Any]) -> None:
    runtime.current().notifiers[workspace_id][index].notify(notification)


def record_failed_job(job: Any, exc_type: type, exc: BaseException, tb: Any) -> bool:
    """Worker exception handler: one log line naming the job (RQ keeps the traceback in its failed registry)."""
    log.error("job %s (%s) failed: %s", job.id, job.description, exc, extra={"job": job.id})
    return True
