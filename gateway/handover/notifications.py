"""Telling every human agent that a chat needs them, outside the inbox too.

The state script writes each notification to the workspace's NOTIFICATIONS stream in the same atomic step as the
change it announces (a handover, a contact form sent, details captured), so none is lost between the change and
the telling. Workers read the stream as one consumer group and hand each notification to RQ, one job for the
`baton_notify` hook and one per configured notifier, in the same transaction that acknowledges it. Delivery is
at least once: a notification carries its `id` for receivers to deduplicate.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, TypedDict

import redis

from gateway import keys
from gateway.deployment import Deployment
from gateway.plugin_host import plugin_manager
from gateway.queue import enqueue_notification

log = logging.getLogger("baton.notifications")

GROUP = "notifiers"
RECLAIM_AFTER_MS = 60_000  # read by a worker that died before handing it out: another takes it after this


class Notification(TypedDict, total=False):
    id: str  # the stream entry id, unique per workspace: deduplicate on (workspace, id)
    type: Literal["handover", "contact_form_sent", "contact_captured", "no_human_in_time", "assigned", "taken_over",
                  "mention", "sla_breached", "reminder", "escalated"]
    workspace: str
    conversation: str
    channel: str
    customer: str  # the customer's name or address on the channel
    at: int  # ms
    reason: str  # handover
    summary: str  # handover
    route: str  # handover: customer, offer, model, error, unpublished
    message: str  # contact_form_sent: the form's message id; contact_captured: what they wrote; mention: the note's id
    contact: str  # contact_captured
    name: str
    email: str
    phone: str
    agent: str  # assigned: the agent whose chat it is now; taken_over: the agent who had it; mention: the one mentioned
    agent_name: str  # assigned automatically: the assignee's name
    actor: str  # assigned, taken_over, mention: who did it ("auto" for automatic assignment, else agent:<id>)
    text: str  # mention: the private note that mentions them
    mode: str  # assigned automatically: round_robin or balanced
    owner: str  # taken_over: who has it now; sla_breached: who had it when the target was missed
    kind: str  # sla_breached: the target missed, first (after a handover) or next (after a customer's message)
    due: int  # sla_breached: its deadline (ms)
    reminder: int  # reminder: the how-manyth (nobody has taken the chat since the handover)
    reminders: int  # escalated: the reminders sent before it
    waited_ms: int  # no_human_in_time, reminder, escalated: since the handover


def decode(workspace_id: str, entry_id: str, fields: dict[str, str]) -> Notification:
    notification: Notification = json.loads(fields["data"])
    notification["id"] = entry_id
    notification["workspace"] = workspace_id
    return notification


def ensure_groups(deployment: Deployment) -> None:
    for workspace in deployment.config.workspaces:
        try:
            deployment.redis.xgroup_create(keys.key(keys.NOTIFICATIONS, workspace_id=workspace.id), GROUP, id="0",
                                           mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def dispatch(deployment: Deployment, consumer: str, block_ms: int | None = 1000, own_pending: bool = False) -> int:
    """Hand out the notifications not yet read by the group (waiting up to block_ms for some); how many.
    `own_pending`: instead, those this consumer read but never handed out (Redis went away in between)."""
    since = "0" if own_pending else ">"
    streams: dict[Any, Any] = {keys.key(keys.NOTIFICATIONS, workspace_id=w.id): since
                               for w in deployment.config.workspaces}
    try:
        read: Any = deployment.redis.xreadgroup(GROUP, consumer, streams, count=100,
                                                block=None if own_pending else block_ms)
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_groups(deployment)
        return 0
    return sum(_hand_out(deployment, stream, [e for e in entries if e and e[1]]) for stream, entries in read)


def reclaim(deployment: Deployment, consumer: str) -> int:
    """Take over notifications another worker read but never handed out (it died meanwhile)."""
    count = 0
    for workspace in deployment.config.workspaces:
        stream = keys.key(keys.NOTIFICATIONS, workspace_id=workspace.id)
        try:
            _, entries, *_ = deployment.redis.xautoclaim(stream, GROUP, consumer, RECLAIM_AFTER_MS, count=100)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            continue
        count += _hand_out(deployment, stream, [e for e in entries if e and e[1]])
    return count


def _hand_out(deployment: Deployment, stream: str, entries: list[tuple[str, dict[str, str]]]) -> int:
    workspace_id = stream.split(":")[1]
    notifiers = len(deployment.notifiers.get(workspace_id, []))
    # A job costs a worker ~4.5 ms of CPU and Redis ~1 ms: none for a hook no plugin implements (issue 26).
    hook = bool(plugin_manager().hook.baton_notify.get_hookimpls())
    with deployment.rq_redis.pipeline(transaction=True) as pipe:
        for entry_id, fields in entries:
            if not (hook or notifiers):
                break
            notification = dict(decode(workspace_id, entry_id, fields))
            enqueue_notification(deployment.queue, workspace_id, notification, notifiers, pipeline=pipe, hook=hook)
        ids = [entry_id for entry_id, _ in entries]
        if ids:
            pipe.xack(stream, GROUP, *ids)
            pipe.xdel(stream, *ids)
        pipe.execute()
    return len(entries)
