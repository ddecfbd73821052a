"""WhatsApp through Meta's Cloud API, directly: signed JSON webhooks in (one Meta app may post several numbers to one
URL), the Graph API's messages endpoint out, media downloaded through the media endpoint with the token."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import requests
import urllib3
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gateway.plugin import (
    Acknowledgement,
    BadRequest,
    ConnectorSettings,
    DeliveryState,
    DeliveryStatus,
    Inbound,
    Media,
    MediaContent,
    Outbound,
    SendFailed,
    SendResult,
    SignatureInvalid,
    Template,
    WebhookConnector,
    WebhookRequest,
    WebhookSchema,
    hookimpl,
)

BATON_API_VERSION = "1.1"
log = logging.getLogger("baton.whatsapp_cloud")

#: Meta's status words, as Baton's normalised states (a status not listed, e.g. "deleted", changes nothing).
STATES: dict[str, DeliveryState] = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
#: Inbound message types that carry an attachment under the key of the same name.
MEDIA_TYPES = ("image", "audio", "voice", "video", "document", "sticker")
#: Graph API error codes that surely sent nothing and clear with time: throughput (130429, 80007, 4), the pair rate
#: to one customer (131056: the conversation's own outbox backs off, the channel's others go on), a transient
#: service error (131000 with a 5xx, 2, 1: "temporarily unavailable").
RETRYABLE_CODES = {130429, 131056, 80007, 4, 2}
#: Errors a reader of the inbox understands without Meta's documentation.
CODE_WORDS = {
    131047: "the 24-hour window is closed",
    131026: "not deliverable (not on WhatsApp, or an old app)",
    131056: "too many messages to this customer in a short time",
    130429: "the channel's sending rate was exceeded",
    131051: "message type not supported",
    131053: "the media could not be uploaded",
    132000: "the template's parameters do not match",
    132001: "the template does not exist in that language",
    131049: "not delivered, to keep the customer's experience healthy (Meta's limit per customer)",
    131031: "the business account is locked",
    190: "the access token is invalid or expired",
}
#: Failures that sending the same message again cannot mend (the window: a template can; not on WhatsApp; a type or
#: template that does not fit). The inbox offers "Send again" for the others (rates, Meta down, the token fixed).
FINAL_CODES = {131047, 131026, 131051, 132000, 132001}
_DIGITS = re.compile(r"^\d{5,20}$")
TEMPLATE_PAGE = 100  # templates per page asked of Meta
_INTERACTIVE_TITLE = 20  # characters of a reply button's title
_DEFAULT_BASE = "https://graph.facebook.com/v21.0"
_CREDENTIALS = ("access_token", "app_secret", "verify_token")

WEBHOOK_SCHEMA = WebhookSchema(
    summary="WhatsApp Cloud API: customers' messages and the delivery statuses of messages Baton sent, for every "
            "number of the Meta app (each change routed by its metadata.phone_number_id)",
    request=yaml.safe_load("""
application/json:
  schema:
    type: object
    required: [object, entry]
    properties:
      object: {type: string, example: whatsapp_business_account}
      entry:
        type: array
        items:
          type: object
          required: [changes]
          properties:
            id: {type: string, description: the WhatsApp Business Account id}
            changes:
              type: array
              items:
                type: object
                required: [field, value]
                properties:
                  field: {type: string, example: messages}
                  value:
                    type: object
                    properties:
                      metadata:
                        type: object
                        properties:
                          phone_number_id: {type: string}
                          display_phone_number: {type: string}
                      contacts: {type: array, items: {type: object}}
                      messages: {type: array, items: {type: object}}
                      statuses: {type: array, items: {type: object}}
"""),
    security_scheme="metaSignature",
    security={"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
              "description": "sha256=<hex HMAC-SHA256 of the raw body>, made with the Meta app's secret."},
    acknowledgement="text/plain",
    handshake=[
        {"name": "hub.mode", "in": "query", "required": True, "schema": {"type": "string", "enum": ["subscribe"]}},
        {"name": "hub.verify_token", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "hub.challenge", "in": "query", "required": True, "schema": {"type": "string"}},
    ],
)


class TemplateSettings(BaseModel):
    """An approved template, as a channel's `templates:` names it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    language: str = Field("en", min_length=2)
    body: str = ""  # its text with {{1}} placeholders, shown to agents when Meta cannot be asked
    params: list[str] = Field(default_factory=list)  # what each placeholder stands for


class WhatsAppCloudSettings(ConnectorSettings):
    model_config = ConfigDict(extra="forbid")

    phone_number_id: str
    access_token: str = ""
    app_secret: str = ""
    verify_token: str = ""
    api_base_url: str = _DEFAULT_BASE
    waba_id: str = ""
    templates: dict[str, TemplateSettings] = Field(default_factory=dict)
    #: Seconds to connect, and to wait for the Graph API's answer, per send.
    send_timeout: float = Field(10.0, gt=0, le=60)
    #: The largest attachment of a customer's message that is downloaded and kept, in bytes.
    max_media_bytes: int = Field(16 * 1024 * 1024, gt=0, le=100 * 1024 * 1024)
    enabled: bool | None = None  # None: enabled exactly when the credentials are all set

    @field_validator("phone_number_id", "waba_id", mode="before")
    @classmethod
    def _numeric_id(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads an unquoted id as a number
        if isinstance(value, str) and value and not _DIGITS.match(value):
            raise ValueError("must be the numeric id Meta shows (WhatsApp Manager > API Setup), e.g. '1098765432'")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str) -> str:
        if not re.match(r"^https?://[^/]+", value):
            raise ValueError(f"must be an absolute http(s) URL such as {_DEFAULT_BASE}")
        return value.rstrip("/")

    @field_validator("enabled")
    @classmethod
    def _enabled_needs_credentials(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        missing = [name for name in _CREDENTIALS if not info.data.get(name)]
        if value and missing:
            raise ValueError(f"enabled is true but {', '.join(missing)} is empty")
        return value

    def missing(self) -> list[str]:
        """The credentials that are empty, by their YAML names."""
        return [name for name in _CREDENTIALS if not getattr(self, name)]


class WhatsAppCloud(WebhookConnector):
    type = "whatsapp_cloud"
    Settings = WhatsAppCloudSettings
    max_text = 4096
    reply_window = 24 * 3600  # WhatsApp's customer service window
    webhook_schema = WEBHOOK_SCHEMA
    settings: WhatsAppCloudSettings

    def __init__(self, name: str, settings: WhatsAppCloudSettings) -> None:
        super().__init__(name, settings)
        self._local = threading.local()  # a requests.Session (and its kept-alive connection) per thread

    def disabled_reason(self) -> str | None:
        if self.settings.enabled is False:
            return "disabled in settings (enabled: false)"
        missing = self.settings.missing()
        return f"missing {', '.join(missing)}" if missing else None

    def account(self) -> str:
        return self.settings.phone_number_id

    # --- in -------------------------------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> Acknowledgement:
        query = request.query
        token = self.settings.verify_token
        given = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not token or \
                not hmac.compare_digest(given.encode(), token.encode()):
            raise SignatureInvalid("the verification request's hub.mode or hub.verify_token is wrong",
                                   cause="the Verify token in Meta's webhook settings differs from verify_token")
        return Acknowledgement(query.get("hub.challenge", ""), "text/plain")

    def verify(self, request: WebhookRequest) -> None:
        secret = self.settings.app_secret
        if not secret:  # an empty HMAC key would let anyone sign
            raise SignatureInvalid("no app_secret configured to check X-Hub-Signature-256",
                                   cause="the channel's app_secret is empty: set it (the Meta app's App secret)")
        header = request.headers.get("x-hub-signature-256", "")
        if not header.startswith("sha256="):
            raise SignatureInvalid("missing X-Hub-Signature-256 header",
                                   cause="the request did not come from Meta, or a proxy dropped the header")
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), header[len("sha256="):].strip().lower().encode()):
            raise SignatureInvalid("X-Hub-Signature-256 does not match",
                                   cause="app_secret is not the secret of the Meta app that sends this webhook")

    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"WhatsApp Cloud webhook is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise BadRequest("WhatsApp Cloud webhook is not a JSON object")
        if payload.get("object") != "whatsapp_business_account":
            log.info("channel %s: a webhook for object %r, not WhatsApp: acknowledged", self.name,
                     str(payload.get("object"))[:40])
            return []
        items: list[Inbound | DeliveryStatus] = []
        for e, entry in enumerate(_list(payload, "entry")):
            for c, change in enumerate(_list(_dict(entry, f"entry[{e}]"), "changes", f"entry[{e}].")):
                where = f"entry[{e}].changes[{c}]"
                change = _dict(change, where)
                if change.get("field") != "messages":
                    continue  # template reviews, quality updates…: not a conversation's
                items += self._change(_dict(change.get("value"), f"{where}.value"), f"{where}.value")
        return items

    def _change(self, value: dict[str, Any], where: str) -> list[Inbound | DeliveryStatus]:
        account = str(_dict(value.get("metadata"), f"{where}.metadata").get("phone_number_id") or "")
        if not account:
            raise BadRequest("WhatsApp Cloud webhook without metadata.phone_number_id",
                             field=f"{where}.metadata.phone_number_id")
        for error in value.get("errors") or []:
            log.warning("channel %s: Meta reports error %s: %s", self.name, error.get("code"), error.get("title"))
        names = {str(contact.get("wa_id") or contact.get("user_id") or ""): (contact.get("profile") or {}).get("name")
                 for contact in value.get("contacts") or [] if isinstance(contact, dict)}
        items: list[Inbound | DeliveryStatus] = []
        for n, message in enumerate(_list(value, "messages", f"{where}.", required=False)):
            items.append(self._inbound(_dict(message, f"{where}.messages[{n}]"), f"{where}.messages[{n}]",
                                       account, names))
        for n, status in enumerate(_list(value, "statuses", f"{where}.", required=False)):
            item = self._status(_dict(status, f"{where}.statuses[{n}]"), f"{where}.statuses[{n}]", account)
            if item is not None:
                items.append(item)
        return items

    def _inbound(self, message: dict[str, Any], where: str, account: str,
                 names: dict[str, str | None]) -> Inbound:
        sender = _field(message, "from", where) if "from" in message or "from_user_id" not in message \
            else _field(message, "from_user_id", where)
        kind = str(message.get("type") or "unknown")
        text, media, extra = _content(message, kind)
        extra |= {"type": kind, "timestamp": _timestamp(message.get("timestamp"))}
        if context := message.get("context"):
            extra["reply_to"] = str(context.get("id", ""))
        if user_id := message.get("from_user_id"):
            extra["user_id"] = str(user_id)
        return Inbound(channel=self.name, sender=sender, provider_id=_field(message, "id", where), text=text,
                       media=media, profile_name=str(names.get(sender) or ""), extra=extra,
                       phone=f"+{sender}" if _DIGITS.match(sender) else "", account=account,
                       sent_at=_timestamp(message.get("timestamp")))

    def _status(self, status: dict[str, Any], where: str, account: str) -> DeliveryStatus | None:
        word = _field(status, "status", where)
        if word not in STATES:
            return None
        code, reason = "", ""
        errors = status.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, reason = _error_reason(errors[0])
        elif word == "failed":
            reason = "WhatsApp reported the message failed, without saying why"
        return DeliveryStatus(self.name, _field(status, "id", where), STATES[word], code, account,
                              reason if word == "failed" else "", final=word == "failed" and code.isdigit()
                              and int(code) in FINAL_CODES)

    def fetch_media(self, media: Media) -> MediaContent:
        """The attachment's bytes: its URL from the media endpoint, then the URL itself, both with the token (the URL
        lives about five minutes). Larger than max_media_bytes: refused, not retried."""
        if not media.provider_id:
            raise SendFailed("no media id to fetch", retryable=False)
        described = self._graph("GET", f"/{media.provider_id}", None)
        url, limit = str(described.get("url") or ""), self.settings.max_media_bytes
        if not url:
            raise SendFailed(f"Meta gave no URL for media {media.provider_id}", retryable=False)
        if int(described.get("file_size") or 0) > limit:
            raise SendFailed(f"media {media.provider_id} is {described['file_size']} bytes, above the "
                             f"{limit}-byte limit", retryable=False, code="too_large")
        try:
            with self._session().get(url, headers=self._auth(), stream=True,
                                     timeout=(self.settings.send_timeout, self.settings.send_timeout)) as answer:
                if answer.status_code != 200:
                    raise SendFailed(f"downloading media {media.provider_id}: HTTP {answer.status_code}",
                                     retryable=answer.status_code >= 500 or answer.status_code == 429)
                data = bytearray()
                for chunk in answer.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise SendFailed(f"media {media.provider_id} is above the {limit}-byte limit",
                                         retryable=False, code="too_large")
                content_type = answer.headers.get("content-type") or str(described.get("mime_type") or "") \
                    or media.content_type or "application/octet-stream"
        except requests.RequestException as exc:
            raise SendFailed(f"downloading media {media.provider_id}: {type(exc).__name__}", retryable=True) from exc
        return MediaContent(bytes(data), content_type.split(";")[0].strip())

    # --- out ------------------------------------------------------------------------------------------------------

    def templates(self) -> list[Template]:
        return [Template(key=key, name=t.name, language=t.language, body=t.body, params=tuple(t.params))
                for key, t in self.settings.templates.items()]

    def provider_templates(self) -> list[Template]:
        """The business account's approved templates (GET /<waba_id>/message_templates, every page), each keyed by its
        name (and language, where one name has several)."""
        if not self.settings.waba_id:
            raise SendFailed("waba_id is not set: Meta cannot be asked for the templates", retryable=False)
        found: list[dict[str, Any]] = []
        path: str | None = (f"/{self.settings.waba_id}/message_templates?fields=name,language,status,components"
                            f"&limit={TEMPLATE_PAGE}")
        for _ in range(20):  # 2,000 templates at most
            if path is None:
                break
            page = self._graph("GET", path, None)
            found += [t for t in page.get("data") or [] if isinstance(t, dict)]
            following = str((page.get("paging") or {}).get("next") or "")
            path = following.removeprefix(self.settings.api_base_url) if following else None
            if path is not None and path == following:  # a next page elsewhere than the API base: not followed
                break
        approved = [t for t in found if t.get("status") == "APPROVED" and t.get("name")]
        names = [str(t["name"]) for t in approved]
        templates = []
        for t in approved:
            body = next((str(c.get("text") or "") for c in t.get("components") or []
                         if isinstance(c, dict) and c.get("type") == "BODY"), "")
            key = str(t["name"]) if names.count(str(t["name"])) == 1 else f"{t['name']}_{t.get('language', '')}"
            templates.append(Template(key=key, name=str(t["name"]), language=str(t.get("language") or ""), body=body))
        return templates

    # No lookup_send: the Cloud API has no way to read back the messages a number sent (no list, no GET of a
    # wamid), so a send of unknown outcome cannot be resolved by asking Meta; the inbox leaves it to an agent.

    def send(self, message: Outbound) -> SendResult:
        bodies = self._bodies(message)
        first = ""
        for n, body in enumerate(bodies):
            try:
                answer = self._graph("POST", f"/{self.settings.phone_number_id}/messages", body)
            except SendFailed as exc:
                if n == 0:
                    raise
                # The first parts reached Meta: sending them again would double them.
                raise SendFailed(f"part {n + 1} of {len(bodies)}: {exc.reason}", retryable=False, maybe_sent=True,
                                 status=exc.details.get("status"), code=exc.details.get("code")) from exc
            wamid = str(((answer.get("messages") or [{}])[0]).get("id") or "")
            if not wamid:
                raise SendFailed("the Graph API accepted the message but gave no id", retryable=False,
                                 maybe_sent=True)
            first = first or wamid
        return SendResult(provider_id=first, status="sent")

    def display_address(self, sender: str) -> str:
        return f"+{sender}" if _DIGITS.match(sender) else sender

    def _bodies(self, message: Outbound) -> list[dict[str, Any]]:
        to = _recipient(message.recipient)
        if message.template is not None:
            template = message.template
            payload: dict[str, Any] = {"name": template.name, "language": {"code": template.language or "en"}}
            if message.params:
                payload["components"] = [{"type": "body", "parameters": [{"type": "text", "text": str(p)}
                                                                          for p in message.params]}]
            return [to | {"type": "template", "template": payload}]
        rich = message.rich or {}
        if rich.get("type") == "media" and rich.get("urls"):
            urls = [str(url) for url in rich["urls"]]
            kinds = [_media_kind(url, str(t)) for url, t in zip(urls, rich.get("content_types") or [""] * len(urls),
                                                                 strict=False)]
            bodies = [to | {"type": kind, kind: {"link": url}} for url, kind in zip(urls, kinds, strict=True)]
            if message.text:
                if kinds[0] in ("image", "video", "document"):
                    bodies[0][kinds[0]]["caption"] = message.text
                else:
                    bodies.insert(0, to | _text(message.text))
            return bodies
        options = [str(option) for option in rich.get("options", [])] if rich.get("type") == "buttons" else []
        if options and len(options) <= 3 and all(0 < len(o) <= _INTERACTIVE_TITLE for o in options) and message.text:
            buttons = [{"type": "reply", "reply": {"id": f"option-{n}", "title": option}}
                       for n, option in enumerate(options, 1)]
            return [to | {"type": "interactive", "interactive": {
                "type": "button", "body": {"text": message.text}, "action": {"buttons": buttons}}}]
        text = self.degrade(message)
        if not text:
            raise SendFailed("nothing to send: no text and no media", retryable=False)
        return [to | _text(text)]

    def _graph(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One Graph API call; its JSON answer, or SendFailed saying whether it may be tried again."""
        url = f"{self.settings.api_base_url}{path}"
        timeout = (self.settings.send_timeout, self.settings.send_timeout)
        try:
            answer = self._session().request(method, url, json=body, headers=self._auth(), timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if _never_sent(exc):
                raise SendFailed("the Graph API is unreachable", retryable=True) from exc
            # It may have reached Meta (a read timeout, a reset mid-answer): sending it again could double it.
            raise SendFailed("no answer from the Graph API", retryable=False, maybe_sent=True) from exc
        try:
            data = answer.json()
        except ValueError:
            data = {}
        if answer.status_code < 300 and isinstance(data, dict):
            return data
        found = data.get("error") if isinstance(data, dict) else None
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        code = error["code"] if isinstance(error.get("code"), int) else 0
        error_data = error.get("error_data")
        detail = error_data.get("details") if isinstance(error_data, dict) else ""
        words = CODE_WORDS.get(code) or str(error.get("message") or f"HTTP {answer.status_code}")[:200]
        reason = f"WhatsApp error {code}: {words}" if code else f"Graph API HTTP {answer.status_code}: {words}"
        if detail and code not in CODE_WORDS:
            reason += f" ({str(detail)[:200]})"
        retryable = answer.status_code == 429 or answer.status_code >= 500 or code in RETRYABLE_CODES
        raise SendFailed(reason, retryable=retryable, final=code in FINAL_CODES, status=answer.status_code,
                         code=code or "")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.access_token}"}

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


def _error_reason(error: dict[str, Any]) -> tuple[str, str]:
    """An error of a status or a message (code, title) as (code, words)."""
    code = error.get("code")
    title = str(error.get("title") or error.get("message") or "")[:200]
    words = CODE_WORDS.get(code) if isinstance(code, int) else None
    return (str(code) if code is not None else ""), f"WhatsApp error {code}: {words or title or 'no reason given'}"


def _recipient(address: str) -> dict[str, Any]:
    """Meta sends to a phone number with "to", to a business-scoped user id (no number given) with "recipient"."""
    number = address.removeprefix("+")
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    return base | ({"to": number} if _DIGITS.match(number) else {"recipient": address})


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def _media_kind(url: str, content_type: str) -> str:
    kind = (content_type or "").split("/")[0]
    if kind in ("image", "video", "audio"):
        return kind
    lower = url.lower().split("?")[0]
    if lower.endswith((".jpg", ".jpeg", ".png")):
        return "image"
    if lower.endswith((".mp4", ".3gp")):
        return "video"
    if lower.endswith((".mp3", ".ogg", ".aac", ".amr", ".m4a")):
        return "audio"
    return "document"


def _content(message: dict[str, Any], kind: str) -> tuple[str, tuple[Media, ...], dict[str, Any]]:
    """A message's text, attachments and the details worth keeping, by its type; unknown types are kept as such."""
    found = message.get(kind)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        return str(body.get("body", "")), (), {}
    if kind == "button":  # a template's quick reply
        return str(body.get("text", "")), (), {"button_payload": str(body.get("payload", ""))}
    if kind == "interactive":
        reply_type = str(body.get("type", ""))
        given = body.get(reply_type)
        reply: dict[str, Any] = given if isinstance(given, dict) else {}
        if reply_type == "nfm_reply":
            return "Form submitted", (), {"interactive": reply_type, "response_json": str(reply.get("response_json"))}
        title = str(reply.get("title", ""))
        text = f"{title}\n{reply['description']}" if reply.get("description") else title
        return text, (), {"interactive": reply_type, "reply_id": str(reply.get("id", ""))}
    if kind in MEDIA_TYPES:
        media = Media(content_type=str(body.get("mime_type", "")), provider_id=str(body.get("id", "")))
        extra: dict[str, Any] = {k: str(body[k]) for k in ("filename", "sha256") if body.get(k)}
        if kind == "audio" and body.get("voice"):
            extra["voice"] = True
        caption = str(body.get("caption") or "")
        return caption, ((media,) if media.provider_id else ()), extra | {"media_type": kind}
    if kind == "location":
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        where = f"📍 Location: {body.get('latitude')},{body.get('longitude')}"
        extra = {k: body[k] for k in ("latitude", "longitude", "name", "address", "url") if k in body}
        return (f"{where} ({place})" if place else where), (), extra
    if kind == "contacts":
        cards = [c for c in message.get("contacts") or [] if isinstance(c, dict)]
        lines = []
        for card in cards:
            name = str((card.get("name") or {}).get("formatted_name") or "")
            phones = ", ".join(str(p.get("phone", "")) for p in card.get("phones") or [] if isinstance(p, dict))
            emails = ", ".join(str(p.get("email", "")) for p in card.get("emails") or [] if isinstance(p, dict))
            lines.append("👤 Contact: " + " · ".join(part for part in (name, phones, emails) if part))
        return "\n".join(lines), (), {"contacts": cards}
    if kind == "reaction":
        emoji = str(body.get("emoji") or "")
        text = f"Reacted {emoji} to a message" if emoji else "Removed a reaction"
        return text, (), {"reaction": emoji, "reacted_to": str(body.get("message_id", ""))}
    if kind == "order":
        return "🛒 An order from the catalogue", (), {"order": body}
    errors = message.get("errors") or []
    title = str(errors[0].get("title") or "") if errors and isinstance(errors[0], dict) else ""
    return (f"[A message of a type Baton cannot show: {kind}" + (f" ({title})" if title else "") + "]", (),
            {"unsupported": True})


def _timestamp(value: Any) -> float:
    """Meta's Unix timestamp in seconds; 0 when missing or malformed."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _list(parent: dict[str, Any], name: str, where: str = "", required: bool = True) -> list[Any]:
    value = parent.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"WhatsApp Cloud webhook: {where}{name} is not a list", field=f"{where}{name}")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"WhatsApp Cloud webhook: {where} is not an object", field=where)
    return value


def _field(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise BadRequest(f"WhatsApp Cloud webhook without {where}.{name}", field=f"{where}.{name}")
    return str(value)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely never reached Meta: the connection itself was refused or timed out."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


@hookimpl
def register_connectors(register: Callable[[type], None]) -> None:
    register(WhatsAppCloud)
