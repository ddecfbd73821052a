"""The connector contract: normalised messages and the base class channel plugins subclass.

A connector knows one provider: how to verify a webhook, how to parse it into normalised
inbound messages, how to send one normalised outbound message, and how rich content
degrades to text. HTTP routing, dedupe, enqueueing and retries belong to the gateway.
"""

from __future__ import annotations

import abc
import builtins
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from gateway.errors import SendFailed

Author = Literal["customer", "ai", "agent", "system"]


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str = ""


@dataclass(frozen=True)
class Inbound:
    """One customer message as every channel delivers it to the gateway."""

    channel: str
    sender: str  # the customer's identity on the channel, e.g. "whatsapp:+14155550100"
    provider_id: str  # the provider's message id, the dedupe key
    text: str = ""
    media: tuple[Media, ...] = ()
    profile_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # button payloads, location, referral…


@dataclass(frozen=True)
class DeliveryStatus:
    """A provider's report on a message Baton sent (queued, sent, delivered, read, failed…)."""

    channel: str
    provider_id: str
    status: str
    error_code: str = ""


@dataclass(frozen=True)
class Outbound:
    """One message to deliver to a customer. `rich` is optional structured content."""

    channel: str
    recipient: str
    text: str
    message_id: str
    conversation_id: str
    rich: dict[str, Any] | None = None  # {"type": "contact_form", "fields": [...]} or {"type": "buttons", ...}


@dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    status: str = "sent"


@dataclass(frozen=True)
class WebhookRequest:
    """What the gateway read off an HTTP request, handed to a (synchronous) connector."""

    method: str
    url: str  # the public URL the provider called, rebuilt behind proxies
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: list[tuple[str, str]]  # parsed x-www-form-urlencoded pairs, in order; [] otherwise
    query: dict[str, str]


@dataclass(frozen=True)
class Acknowledgement:
    body: str = ""
    media_type: str = "text/plain"
    status: int = 200


class ConnectorSettings(BaseModel):
    """Base for a connector's settings model; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Connector(abc.ABC):
    """A channel connector. Subclass `WebhookConnector` (the provider calls POST /webhooks/{channel}) or
    `WidgetConnector` (the gateway's own webchat API and widget), set `type` and `Settings`."""

    type: ClassVar[str]
    Settings: ClassVar[builtins.type[ConnectorSettings]] = ConnectorSettings
    #: Baton's messages go out through `send` (queued per conversation, in order); False for channels that serve
    #: them from the conversation's history instead (the widget reads its events).
    sends: ClassVar[bool] = True

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        self.name = name
        self.settings = settings

    def disabled_reason(self) -> str | None:
        """Why this channel cannot run (e.g. missing credentials), or None when it can."""
        return None

    def send(self, message: Outbound) -> SendResult:
        """Deliver one message (in a worker thread; several may run at once); raise SendFailed on failure, with
        maybe_sent=True when the provider may have taken it (Baton then never sends it again by itself)."""
        raise SendFailed(f"the {self.type} connector does not send messages", retryable=False)

    def warm_up(self) -> None:  # noqa: B027 - optional: most connectors have nothing to warm up
        """Called once in each worker before its first job: import what `send` would load lazily, so the first
        customer's reply is not the slow one. No network."""

    def display_address(self, sender: str) -> str:
        """How a person reads the customer's address on this channel (a phone number, "Visitor 3f2a…")."""
        return sender

    def degrade(self, message: Outbound) -> str:
        """Rich content as plain text for channels that cannot show it."""
        return degrade_to_text(message)


class WebhookConnector(Connector):
    """A channel whose provider calls POST /webhooks/{channel}: verify, parse, acknowledge."""

    #: Set by the gateway when `public_url` is configured: the public URL of this channel's webhook (where a
    #: provider can post delivery statuses).
    webhook_url: str | None = None

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise gateway.errors.SignatureInvalid unless the request is authentic."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        """Turn a verified request into normalised messages; raise BadRequest if malformed."""

    def acknowledge(self, request: WebhookRequest) -> Acknowledgement:
        """The body the provider expects once the request is recorded."""
        return Acknowledgement()


@dataclass(frozen=True)
class Widget:
    """What the gateway's webchat widget shows for a channel, and which sites may embed it."""

    title: str
    greeting: str
    allowed_origins: tuple[str, ...]


class WidgetConnector(Connector):
    """A channel served by the gateway's own visitor API, widget and demo page (/webchat/{channel}/…)."""

    sends = False

    @abc.abstractmethod
    def widget(self) -> Widget:
        """The widget's texts and the origins allowed to embed it (CORS)."""


def degrade_to_text(message: Outbound) -> str:
    rich = message.rich or {}
    lines = [message.text] if message.text else []
    if rich.get("type") == "buttons":
        lines += [f"{n}. {option}" for n, option in enumerate(rich.get("options", []), 1)]
    elif rich.get("type") == "contact_form":
        labels = ", ".join(f["label"].lower() for f in rich.get("fields", []))
        lines.append(f"Reply with your {labels}.")
    return "\n".join(lines)
