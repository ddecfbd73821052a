"""RQ job functions (module-level, taking ids) and the helpers that enqueue them."""

from __future__ import annotations

import logging
from typing import Any

from redis.client import Pipeline
from rq import Retry
from rq.job import Job

from gateway import runtime
from gateway.connector import Outbound
from gateway.deployment import Deployment
from gateway.errors import SendFailed

log = logging.getLogger("baton.jobs")

DELIVERY_RETRY = Retry(max=5, interval=[1, 3, 10, 30, 60])
NOTIFY_RETRY = Retry(max=5, interval=[2, 5, 15, 60, 300])


# --- enqueueing --------------------------------------------------------------------------------

def enqueue_turn(deployment: Deployment, workspace: str, conversation: str) -> None:
    deployment.queue.enqueue(run_turn, workspace, conversation, job_timeout=180,
                             description=f"AI turn {workspace}/{conversation}")


def enqueue_sender_turn(deployment: Deployment, workspace: str, channel: str, sender: str,
                        pipeline: Pipeline | None = None) -> Job:
    """Queue a turn for whatever conversation the customer has open when it runs (see pipeline.py)."""
    return deployment.queue.enqueue(run_sender_turn, workspace, channel, sender, job_timeout=180,
                                    pipeline=pipeline, description=f"AI turn {workspace}/{channel}/{sender}")


def enqueue_delivery(deployment: Deployment, workspace: str, conversation: str, message: str) -> None:
    """Queue the delivery of a posted message unless its channel serves it from the history itself."""
    conv = deployment.state.conversation(workspace, conversation)
    channel = deployment.channels.get(conv["channel"])
    if channel is None or not channel.connector.has_webhook:
        return
    deployment.queue.enqueue(deliver, workspace, conversation, message, retry=DELIVERY_RETRY,
                             description=f"deliver {workspace}/{conversation}/{message}")


def enqueue_notifications(deployment: Deployment, workspace: str, notification: dict[str, Any]) -> None:
    """One job per notifier, so a failing one is retried without repeating the others; plus the hook."""
    deployment.queue.enqueue(notify_hook, workspace, notification, description=f"notify hook {workspace}")
    for index, _ in enumerate(deployment.notifiers.get(workspace, [])):
        deployment.queue.enqueue(notify, workspace, index, notification, retry=NOTIFY_RETRY,
                                 description=f"notify {workspace} #{index}")


# --- jobs --------------------------------------------------------------------------------------

def run_turn(workspace: str, conversation: str) -> str:
    from gateway.turn import take_turn

    return take_turn(runtime.current(), workspace, conversation)


def run_sender_turn(workspace: str, channel: str, sender: str) -> str:
    from gateway import keys
    from gateway.turn import take_turn

    deployment = runtime.current()
    cid = deployment.redis.get(keys.key(keys.ACTIVE, ws=workspace, channel=channel, sender=sender))
    if not cid:  # closed before the turn ran: there is nothing the AI may still say
        return "no open conversation"
    return take_turn(deployment, workspace, str(cid))


def deliver(workspace: str, conversation: str, message: str) -> str:
    """Send one posted message through its channel; retryable failures raise so RQ retries them."""
    deployment = runtime.current()
    state = deployment.state
    conv = state.conversation(workspace, conversation)
    msg = state.message(workspace, conversation, message)
    connector = deployment.channels[conv["channel"]].connector
    outbound = Outbound(channel=conv["channel"], recipient=conv["sender"], text=msg.get("text", ""),
                        message_id=message, conversation_id=conversation, rich=msg.get("rich") or None)
    try:
        result = connector.send(outbound)
    except SendFailed as exc:
        if exc.retryable:
            raise
        _record_failure(deployment, workspace, conv, message, exc.reason)
        return f"failed: {exc.reason}"
    _record_sent(deployment, workspace, conv, message, result.provider_id, result.status)
    return result.provider_id


def _record_sent(deployment: Deployment, workspace: str, conv: dict[str, Any], message: str,
                 provider_id: str, status: str) -> None:
    from gateway import keys

    if not provider_id:
        return
    record = keys.key(keys.DELIVERY, ws=workspace, channel=conv["channel"], provider_id=provider_id)
    deployment.redis.hset(record, mapping={"conversation": conv["id"], "message": message})
    deployment.state.run("delivery", workspace, channel=conv["channel"], provider_id=provider_id, status=status)


def _record_failure(deployment: Deployment, workspace: str, conv: dict[str, Any], message: str,
                    reason: str) -> None:
    log.error("delivery of %s in conversation %s failed: %s", message, conv["id"], reason)
    deployment.redis.hset(f"baton:{workspace}:conv:{conv['id']}:delivery", message, "failed")
    deployment.state.run("post", workspace, conversation=conv["id"], author="system", kind="delivery_failed",
                         visibility="internal", text=f"Delivery failed: {reason}", data={"message": message})


def notify_hook(workspace: str, notification: dict[str, Any]) -> None:
    from gateway.plugin_host import plugin_manager

    plugin_manager().hook.baton_notify(workspace=workspace, notification=notification)


def notify(workspace: str, index: int, notification: dict[str, Any]) -> None:
    runtime.current().notifiers[workspace][index].notify(notification)


def record_failed_job(job: Any, exc_type: type, exc: BaseException, tb: Any) -> bool:
    """Worker exception handler: log with the conversation id; a final delivery failure is recorded."""
    log.error("job %s (%s) failed: %s", job.id, job.description, exc)
    if job.func_name.endswith(".deliver") and isinstance(exc, SendFailed) and job.retries_left == 0:
        workspace, conversation, message = job.args
        deployment = runtime.current()
        conv = deployment.state.conversation(workspace, conversation)
        _record_failure(deployment, workspace, conv, message, exc.reason)
    return True
