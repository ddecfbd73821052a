"""The request path's one job: record what arrived, deduplicated, in one round trip to Redis.

`record` is the one door through which every customer message enters the store, whatever its channel. The state
script's `inbound` records a customer message, and in the same atomic step marks the AI's turn as pending and
wakes a worker when the AI is needed: there is no moment at which a message is stored without the work it causes,
and no job object is built per request.
"""

from __future__ import annotations

import logging

from gateway.connector import DeliveryStatus, Inbound, Media, WebhookConnector
from gateway.deployment import Channel, Deployment
from gateway.detection.language import detect as detect_language
from gateway.handover import lifecycle
from gateway.handover.store import AsyncStore, CustomerMessage, Recorded
from gateway.logs import Throttled
from gateway.web.media import fetchable
from gateway.web.media import url as media_url

MAX_TEXT = 4096  # characters of one customer message that are kept (WhatsApp's own limit)
# Characters of a message read for its language ("" when unclear): a conversation keeps the first clear one until a
# turn reads the customer's recent messages together (gateway.work.turn), so one whose AI is unpublished, whose turns
# do not run, still gets the contact form in the customer's language.
LANGUAGE_SAMPLE = 120  # about 20 words: enough to tell (210/216 first questions); ~70 µs at most

Item = Inbound | DeliveryStatus
_unrouted = Throttled(logging.getLogger("baton.webhooks"), every=10.0)


def customer_message(channel: Channel, message: Inbound) -> CustomerMessage:
    """A normalised inbound message as the state script records it."""
    workspace = channel.workspace
    connector = channel.connector
    data = dict(message.extra)
    text = message.text
    if len(text) > MAX_TEXT:
        data["truncated_from"] = len(text)
        text = text[:MAX_TEXT]
    return CustomerMessage(
        channel=channel.name, sender=message.sender, provider_id=message.provider_id, text=text,
        customer=message.profile_name or connector.display_address(message.sender), delivers=connector.sends,
        published=lifecycle.configured_published(workspace), timeout_ms=lifecycle.no_human_timeout_ms(workspace),
        profile_name=message.profile_name, phone=message.phone,
        media=[_media(channel, m) for m in message.media], data=data, assignment=lifecycle.assignment(workspace),
        team=lifecycle.team_of(workspace, channel.name), sent_at_ms=int(message.sent_at * 1000),
        language=detect_language([text[:LANGUAGE_SAMPLE]], default=""), sla=lifecycle.sla(workspace))


def _media(channel: Channel, media: Media) -> dict[str, str]:
    """As stored: the url and content type, and the provider's id for it when it names media by id (then the url is
    where agents get the copy Baton downloads: gateway.web.media)."""
    address = media.url or (media_url(channel.name, media.provider_id) if fetchable(channel) else "")
    stored = {"url": address, "content_type": media.content_type}
    return stored | ({"provider_id": media.provider_id} if media.provider_id else {})


def route(deployment: Deployment, channel: Channel, items: list[Item]) -> list[tuple[Channel, Item]]:
    """The channel each item of one webhook belongs to: the webhook's own, or, for an item addressed to another
    account of the provider (one webhook serving several numbers), the channel of the same type with that account.
    An item for an account no channel has is logged and left out, never recorded in the wrong channel."""
    connector = channel.connector
    assert isinstance(connector, WebhookConnector)
    own = connector.account()
    routed: list[tuple[Channel, Item]] = []
    for item in items:
        target = channel if not item.account or item.account == own else _sibling(deployment, channel, item.account)
        if target is None:
            _unrouted.warning("channel %s: a webhook item for account %s, which no %s channel has; acknowledged, "
                              "not recorded", channel.name, item.account, connector.type)
        else:
            routed.append((target, item))
    return routed


def _sibling(deployment: Deployment, channel: Channel, account: str) -> Channel | None:
    for other in deployment.channels.values():
        connector = other.connector
        if type(connector) is type(channel.connector) and not other.disabled and \
                isinstance(connector, WebhookConnector) and connector.account() == account:
            return other
    return None


async def record(store: AsyncStore, items: list[tuple[Channel, Item]]) -> list[Recorded | bool]:
    """Record each customer message, or each provider's delivery report, in its channel: the one door in."""
    recorded: list[Recorded | bool] = []
    for channel, item in items:
        workspace_id = channel.workspace.id
        if isinstance(item, Inbound):
            recorded.append(await store.inbound(workspace_id, customer_message(channel, item)))
        else:
            recorded.append(await store.status(workspace_id, channel.name, item.provider_id, item.status,
                                               item.error_code, item.reason, item.final))
    return recorded

