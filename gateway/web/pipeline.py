"""The request path's one job: record what arrived, deduplicated, in one round trip to Redis.

The state script's `inbound` records a customer message, and in the same atomic step marks the AI's turn as
pending and wakes a worker when the AI is needed: there is no moment at which a message is stored without the
work it causes, and no job object is built per request.
"""

from __future__ import annotations

from dataclasses import asdict

from gateway.connector import DeliveryStatus, Inbound
from gateway.deployment import Channel, Deployment
from gateway.handover import lifecycle
from gateway.handover.store import AsyncStore, CustomerMessage, Recorded

MAX_TEXT = 4096  # characters of one customer message that are kept (WhatsApp's own limit)


def customer_message(channel: Channel, message: Inbound) -> CustomerMessage:
    """A normalised inbound message as the state script records it."""
    workspace = channel.workspace
    connector = channel.connector
    data = dict(message.extra)
    text = message.text
    if len(text) > MAX_TEXT:
        data["truncated_from"] = len(text)
        text = text[:MAX_TEXT]
    phone = message.sender.removeprefix("whatsapp:") if message.sender.startswith("whatsapp:+") else ""
    return CustomerMessage(
        channel=channel.name, sender=message.sender, provider_id=message.provider_id, text=text,
        customer=message.profile_name or connector.display_address(message.sender), delivers=connector.sends,
        published=lifecycle.configured_published(workspace), timeout_ms=lifecycle.no_human_timeout_ms(workspace),
        profile_name=message.profile_name, phone=phone, media=[asdict(m) for m in message.media], data=data)


async def record(store: AsyncStore, channel: Channel, items: list[Inbound | DeliveryStatus]) -> list[Recorded | bool]:
    """Record each customer message, or each provider's delivery report, of one webhook."""
    recorded: list[Recorded | bool] = []
    workspace = channel.workspace.id
    for item in items:
        if isinstance(item, Inbound):
            recorded.append(await store.inbound(workspace, customer_message(channel, item)))
        else:
            recorded.append(await store.status(workspace, channel.name, item.provider_id, item.status,
                                               item.error_code))
    return recorded


def record_now(deployment: Deployment, channel: Channel, message: Inbound) -> Recorded:
    """The same, from synchronous code (the CLI, tests)."""
    return deployment.store.inbound(channel.workspace.id, customer_message(channel, message))
