"""The request path's one job: record what arrived (deduplicated) and enqueue the work it causes."""

from __future__ import annotations

import json
from dataclasses import asdict

from redis.exceptions import NoScriptError

from gateway.connector import DeliveryStatus, Inbound
from gateway.deployment import Channel, Deployment
from gateway.jobs import enqueue_notifications, enqueue_sender_turn
from gateway.state import Change

DEDUPE_TTL = 7 * 24 * 3600  # providers retry for days (Meta); Twilio within seconds


def record(deployment: Deployment, channel: Channel, items: list[Inbound | DeliveryStatus]) -> list[Change]:
    return [record_inbound(deployment, channel, item) if isinstance(item, Inbound)
            else record_status(deployment, channel, item) for item in items]


def record_inbound(deployment: Deployment, channel: Channel, message: Inbound) -> Change:
    """Append a customer message to their open conversation (or a new one) and queue the AI's turn.

    Both go to Redis in one MULTI/EXEC round trip: the message is recorded if and only if its turn is
    queued, and the request pays for one round trip instead of three. The turn job finds the customer's
    open conversation itself, as its id is only known inside the transaction; a duplicate delivery
    queues a turn that finds nothing new (the message was already answered or is about to be).
    """
    workspace = channel.workspace
    agent = workspace.ai_agent
    phone = message.sender.removeprefix("whatsapp:") if message.sender.startswith("whatsapp:+") else ""
    arguments = dict(
        channel=channel.name, sender=message.sender, provider_id=message.provider_id,
        text=message.text, media=json.dumps([asdict(m) for m in message.media]),
        extra=json.dumps(message.extra), profile_name=message.profile_name, phone=phone,
        client_id=message.extra.get("client_id", ""), dedupe_ttl=DEDUPE_TTL,
        ai_published=bool(agent and agent.published),
        timeout_ms=int(workspace.handover.no_human_timeout * 1000))
    for _attempt in (1, 2):
        with deployment.rq_redis.pipeline(transaction=True) as pipe:
            pipe.multi()
            deployment.state.run_with(pipe, "inbound", workspace.id, **arguments)
            job = enqueue_sender_turn(deployment, workspace.id, channel.name, message.sender, pipeline=pipe)
            answer = pipe.execute(raise_on_error=False)[0]
        if isinstance(answer, Exception):
            # A failed command does not undo the rest of a MULTI/EXEC: take back the turn queued for a
            # message that was not recorded (a worker that took it already found nothing new).
            job.delete(remove_from_queue=True)
        if not isinstance(answer, NoScriptError):
            break
        deployment.state.load()  # the server restarted since: load the script and run it again
    if isinstance(answer, Exception):
        raise answer
    change = Change(json.loads(answer))
    if change.get("notify"):
        enqueue_notifications(deployment, workspace.id, {
            "type": "handover", "workspace": workspace.id, "conversation": change["conversation"],
            "reason": "AI agent is unpublished", "route": "unpublished", "summary": message.text[:280],
            "channel": channel.name, "customer": message.profile_name or message.sender})
    return change


def record_status(deployment: Deployment, channel: Channel, status: DeliveryStatus) -> Change:
    return deployment.state.run("delivery", channel.workspace.id, channel=channel.name,
                                provider_id=status.provider_id, status=status.status,
                                error_code=status.error_code)
