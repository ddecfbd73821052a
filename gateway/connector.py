"""The connector contract: normalised messages and the base classes channel plugins subclass.

A connector knows one provider: how to verify a webhook, how to parse it into normalised
inbound messages, how to send one normalised outbound message, and how rich content
degrades to text. HTTP routing, dedupe, enqueueing and retries belong to the gateway.
Plugins import all of this from `gateway.plugin`, the public API.
"""

from __future__ import annotations

import abc
import builtins
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict

from gateway.errors import SendFailed

#: How far a message Baton sent got, in every provider's words mapped to these (a connector maps its own).
DeliveryState = Literal["queued", "sent", "delivered", "read", "failed"]
DELIVERY_STATES: tuple[DeliveryState, ...] = get_args(DeliveryState)
#: The optional methods a connector may implement; `capabilities()` says which one does.
OPTIONAL = ("handshake", "account", "templates", "fetch_media", "lookup_send")


@dataclass(frozen=True)
class Media:
    """An attachment. `url` where the provider serves it (may need the connector's credentials: see
    `Connector.fetch_media`); `provider_id` when the provider names media by id instead (Telegram, Meta)."""

    url: str = ""
    content_type: str = ""
    provider_id: str = ""


@dataclass(frozen=True)
class Inbound:
    """One customer message as every channel delivers it to the gateway."""

    channel: str
    sender: str  # the customer's identity on the channel, as the connector sends to it again
    provider_id: str  # the provider's message id, the dedupe key
    text: str = ""
    media: tuple[Media, ...] = ()
    profile_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # button payloads, location, referral…
    phone: str = ""  # the customer's phone number in E.164 ("+14155550100") when the channel knows it
    account: str = ""  # the business number or account it was sent to, when one webhook serves several channels
    sent_at: float = 0.0  # when the customer sent it, as the provider stamped it (Unix seconds); 0: when received


@dataclass(frozen=True)
class DeliveryStatus:
    """A provider's report on a message Baton sent, mapped to a normalised state."""

    channel: str
    provider_id: str
    status: DeliveryState
    error_code: str = ""
    account: str = ""  # as for Inbound
    reason: str = ""  # why it failed, in words an agent understands
    final: bool = False  # failed for good: sending the same message again cannot help (not on WhatsApp, blocked…)


@dataclass(frozen=True)
class Template:
    """A message the provider approved in advance (WhatsApp's templates), sendable outside its reply window."""

    key: str  # the name Baton's config and API use
    name: str  # the provider's name or id for it
    language: str = ""
    body: str = ""  # its text, with {{1}}-style placeholders, for an agent to read
    params: tuple[str, ...] = ()  # what each placeholder stands for


@dataclass(frozen=True)
class Outbound:
    """One message to deliver to a customer. `rich` is optional structured content."""

    channel: str
    recipient: str
    text: str
    message_id: str
    conversation_id: str
    rich: dict[str, Any] | None = None  # {"type": "contact_form", "fields": [...]} or {"type": "buttons", ...}
    template: Template | None = None  # send this template instead of free text
    params: tuple[str, ...] = ()  # the template's parameters, in order


@dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    status: DeliveryState = "sent"


@dataclass(frozen=True)
class SendLookup:
    """What the provider says became of a send whose outcome Baton does not know: `found` when it has the message
    (it was sent: `provider_id` and `status` say how far it got), not `found` when it surely has no such message."""

    found: bool
    provider_id: str = ""
    status: DeliveryState = "sent"


@dataclass(frozen=True)
class MediaContent:
    """An attachment's bytes, as `Connector.fetch_media` downloads them."""

    data: bytes
    content_type: str = "application/octet-stream"


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


@dataclass(frozen=True)
class WebhookSchema:
    """How the provider calls a channel's webhook, as the OpenAPI document (/openapi.json) shows it."""

    summary: str  # e.g. "Twilio WhatsApp: messages and delivery statuses"
    request: dict[str, Any]  # OpenAPI requestBody content by media type: {"application/json": {"schema": {…}}}
    security_scheme: str  # the scheme's name in the document, e.g. "twilioSignature"
    security: dict[str, Any]  # the OpenAPI Security Scheme Object: how the provider proves it is the provider
    acknowledgement: str = "text/plain"  # the media type of the 200 answer's body
    handshake: list[dict[str, Any]] = field(default_factory=list)  # the GET handshake's OpenAPI parameters


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
    #: The longest text the provider takes in one message, in characters: Baton caps the AI's answers to about
    #: that, and splits a longer reply (the AI's or an agent's) into several messages (gateway/text.py).
    max_text: ClassVar[int] = 4096
    #: Seconds after the customer's last message during which Baton may send them free text (WhatsApp: 24 hours);
    #: outside it only a template (`templates()`) goes out. 0: no such rule.
    reply_window: ClassVar[int] = 0

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

    def templates(self) -> list[Template]:
        """Optional: the templates this channel may send (for an agent to pick outside the reply window), as its
        configuration names them."""
        return []

    def provider_templates(self) -> list[Template]:
        """Optional: the approved templates as the provider lists them now (one HTTP call or a few pages; raise
        SendFailed when it cannot be asked). Baton caches them in Redis, merges them with `templates()` (whose keys
        and parameter names win) and falls back to `templates()` alone when the provider cannot be asked."""
        raise NotImplementedError(f"the {self.type} connector does not list its provider's templates")

    def fetch_media(self, media: Media) -> MediaContent:
        """Optional: download an attachment of a customer's message with the channel's credentials (in a worker or
        request thread). Raise SendFailed(retryable=…) when the provider refuses or cannot be reached."""
        raise NotImplementedError(f"the {self.type} connector does not fetch media")

    def lookup_send(self, message: Outbound, attempted_at: float) -> SendLookup | None:
        """Optional: ask the provider what became of `message`, whose send at `attempted_at` (Unix seconds) ended
        with no answer (maybe_sent). None when the provider cannot tell."""
        return None

    @classmethod
    def capabilities(cls) -> frozenset[str]:
        """The optional methods this connector implements (of OPTIONAL)."""
        return frozenset(name for name in OPTIONAL
                         if hasattr(cls, name) and _defined_below(cls, name))


def _defined_below(cls: type, name: str) -> bool:
    """Whether `name` is overridden by a class below the base classes of this module."""
    owner = next(klass for klass in cls.__mro__ if name in vars(klass))
    return owner not in (Connector, WebhookConnector, WidgetConnector)


class WebhookConnector(Connector):
    """A channel whose provider calls POST /webhooks/{channel}: verify, parse, acknowledge."""

    #: The request the provider makes and how it is signed, for the OpenAPI document.
    webhook_schema: ClassVar[WebhookSchema | None] = None
    #: Set by the gateway when `public_url` is configured: the public URL of this channel's webhook (where a
    #: provider can post delivery statuses).
    webhook_url: str | None = None

    def statuses_need_webhook_url(self) -> bool:
        """Whether the provider posts delivery statuses only to a URL given with each message (`webhook_url`, as
        Twilio's StatusCallback): without `public_url` none come back, and Baton says so (`baton check`, start-up,
        the inbox). False (the default) for a provider whose statuses go to a URL configured on its side (Meta)."""
        return False

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise gateway.errors.SignatureInvalid unless the request is authentic."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        """Turn a verified request into normalised messages; raise BadRequest if malformed."""

    def acknowledge(self, request: WebhookRequest) -> Acknowledgement:
        """The body the provider expects once the request is recorded."""
        return Acknowledgement()

    def handshake(self, request: WebhookRequest) -> Acknowledgement:
        """Optional: answer the provider's GET on the webhook (Meta's verification challenge); raise SignatureInvalid to
        refuse it. Without it, GET /webhooks/{channel} answers 405."""
        raise NotImplementedError(f"the {self.type} connector has no handshake")

    def account(self) -> str:
        """Optional: this channel's own number or account at the provider (the id of Meta's number). When one
        webhook serves several channels, the gateway records each parsed item whose `account` is set in the
        channel of the same type whose account() it is; "" (the default): the webhook's URL names the channel."""
        return ""


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
    """A message's rich content as plain text: numbered options, the contact form as a request for the details."""
    rich = message.rich or {}
    lines = [message.text] if message.text else []
    if rich.get("type") == "buttons":
        lines += [f"{n}. {option}" for n, option in enumerate(rich.get("options", []), 1)]
    elif rich.get("type") == "contact_form":
        labels = ", ".join(f["label"].lower() for f in rich.get("fields", []))
        lines.append(f"Reply with your {labels}.")
    return "\n".join(lines)
