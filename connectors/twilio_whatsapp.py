"""WhatsApp through Twilio Messaging: signed form webhooks in, the REST Messages API out."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.datastructures import ImmutableMultiDict
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from gateway.plugin import (
    Acknowledgement,
    BadRequest,
    ConnectorSettings,
    DeliveryState,
    DeliveryStatus,
    Inbound,
    Media,
    Outbound,
    SendFailed,
    SendLookup,
    SendResult,
    SignatureInvalid,
    Template,
    WebhookConnector,
    WebhookRequest,
    WebhookSchema,
    hookimpl,
)

BATON_API_VERSION = "1.1"
MAX_MEDIA = 10  # Twilio delivers at most 10 media items per message
LOOKUP_LIMIT = 100  # messages to the recipient read when asking what became of a send (one page)
LOOKUP_SLACK = 2.0  # seconds: Twilio's date_created is in whole seconds, on its own clock
_EMPTY_TWIML = str(MessagingResponse())  # '<?xml version="1.0" encoding="UTF-8"?><Response />'
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
#: setting name (as written in YAML) -> the environment variable the sample config reads it from
_REQUIRED = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "from": "TWILIO_WHATSAPP_FROM",
}
_EXTRA_FIELDS = {
    "To": "to",
    "WaId": "wa_id",
    "ButtonText": "button_text",
    "ButtonPayload": "button_payload",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Address": "address",
    "Label": "label",
    "OriginalRepliedMessageSid": "original_replied_message_sid",
    "AccountSid": "account_sid",
}
#: Twilio's MessageStatus values, as Baton's normalised states (a status not listed is not about a message we sent).
STATES: dict[str, DeliveryState] = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
    "delivered": "delivered", "partially_delivered": "delivered", "read": "read", "undelivered": "failed",
    "failed": "failed", "canceled": "failed",
}
WEBHOOK_SCHEMA = WebhookSchema(
    summary="Twilio WhatsApp: a customer's message, or the delivery status of a message Baton sent",
    request=yaml.safe_load("""
application/x-www-form-urlencoded:
  schema:
    oneOf:
      - title: A message
        type: object
        required: [MessageSid, From]
        not: {required: [MessageStatus]}
        properties:
          MessageSid: {type: string, minLength: 1}
          From: {type: string, minLength: 1, example: 'whatsapp:+34612345678'}
          To: {type: string}
          Body: {type: string}
          ProfileName: {type: string}
          NumMedia: {type: string, pattern: '^0*([0-9]|10)?$'}
          MediaUrl0: {type: string}
          MediaContentType0: {type: string}
      - title: A delivery status
        type: object
        required: [MessageSid, MessageStatus]
        properties:
          MessageSid: {type: string, minLength: 1}
          MessageStatus: {type: string, minLength: 1, example: delivered}
          ErrorCode: {type: string}
"""),
    security_scheme="twilioSignature",
    security={"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
              "description": "Twilio's signature of the URL and form parameters, made with the channel's auth token."},
    acknowledgement="text/xml",
)
# The SDK logs every request at INFO.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class TwilioTemplate(BaseModel):
    """An approved WhatsApp template in Twilio's Content API, as a channel's `templates:` names it."""

    model_config = ConfigDict(extra="forbid")

    content_sid: str
    body: str = ""  # its text with {{1}} placeholders, for agents to read
    params: list[str] = Field(default_factory=list)  # what each placeholder stands for

    @field_validator("content_sid")
    @classmethod
    def _content_sid_shape(cls, value: str) -> str:
        if not _CONTENT_SID.match(value):
            raise ValueError("must be 'HX' followed by 32 hex digits (Content Template Builder)")
        return value


class TwilioWhatsAppSettings(ConnectorSettings):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account_sid: str = ""
    auth_token: str = ""
    from_number: str = Field("", alias="from")
    api_base_url: str = "https://api.twilio.com"
    #: Seconds to connect, and to wait for Twilio's answer, per send (the gateway's retries own the rest).
    send_timeout: float = Field(10.0, gt=0, le=60)
    status_callback: bool = True
    #: Twilio's Content API, to list the account's templates ("": content.twilio.com, or api_base_url when that is
    #: set to something else, e.g. a local fake).
    content_base_url: str = ""
    #: Approved templates this channel may send (outside the 24-hour window), by the key Baton's API uses.
    templates: dict[str, TwilioTemplate] = Field(default_factory=dict)
    enabled: bool | None = None  # None: enabled exactly when the credentials are all set

    @field_validator("account_sid")
    @classmethod
    def _account_sid_shape(cls, value: str) -> str:
        if value and not _ACCOUNT_SID.match(value):
            raise ValueError("must be 'AC' followed by 32 hex digits (see the Twilio console)")
        return value

    @field_validator("from_number")
    @classmethod
    def _from_is_whatsapp_e164(cls, value: str) -> str:
        if not value:
            return value
        number = value.removeprefix("whatsapp:")
        if not _E164.match(number):
            raise ValueError("must be an E.164 number such as 'whatsapp:+14155550100' or '+14155550100'")
        return f"whatsapp:{number}"

    @field_validator("api_base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str) -> str:
        if not re.match(r"^https?://[^/]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://api.twilio.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _enabled_needs_credentials(self) -> TwilioWhatsAppSettings:
        if self.enabled and self.missing():
            raise ValueError(f"enabled is true but {', '.join(self.missing())} is empty")
        return self

    def missing(self) -> list[str]:
        """The required settings that are empty, by their YAML names."""
        values = {"account_sid": self.account_sid, "auth_token": self.auth_token, "from": self.from_number}
        return [name for name in _REQUIRED if not values[name]]


class TwilioWhatsApp(WebhookConnector):
    type = "twilio_whatsapp"
    Settings = TwilioWhatsAppSettings
    max_text = 1600  # Twilio refuses a longer body (error 21617)
    reply_window = 24 * 3600  # WhatsApp's customer service window (error 63016 outside it)
    webhook_schema = WEBHOOK_SCHEMA
    settings: TwilioWhatsAppSettings

    def __init__(self, name: str, settings: TwilioWhatsAppSettings) -> None:
        super().__init__(name, settings)
        self._validator = RequestValidator(settings.auth_token)
        self._local = threading.local()  # a REST client (and its kept-alive connection) per sending thread

    def statuses_need_webhook_url(self) -> bool:
        return self.settings.status_callback

    def disabled_reason(self) -> str | None:
        if self.settings.enabled is False:
            return "disabled in settings (enabled: false)"
        missing = self.settings.missing()
        if not missing:
            return None
        env = ", ".join(_REQUIRED[name] for name in missing)
        return f"missing {env} (settings: {', '.join(missing)})"

    def verify(self, request: WebhookRequest) -> None:
        if not self.settings.auth_token:  # an empty HMAC key would let anyone sign
            raise SignatureInvalid("no auth_token configured to check X-Twilio-Signature",
                                   cause="the channel's auth_token is empty: set it (TWILIO_AUTH_TOKEN)")
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise SignatureInvalid("missing X-Twilio-Signature header",
                                   cause="the request did not come from Twilio, or a proxy dropped the header")
        # A multidict so repeated keys all reach the signature (a dict would keep one value).
        params = ImmutableMultiDict(request.form)
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER.lower()))
        if not self._signed(request.url, params, signature, algorithm):
            raise SignatureInvalid("X-Twilio-Signature does not match")

    def _signed(self, url: str, params: ImmutableMultiDict[str, str], signature: str, algorithm: str) -> bool:
        """Twilio signs the URL as it called it, with or without the default port: compute the signature of the
        URL as received first, and of its port variant only when that does not match (one HMAC, not two)."""
        try:
            if compare(self._validator.compute_signature(url, params, algorithm), signature):
                return True
        except ValueError:  # an algorithm this SDK does not know
            return False
        parsed = urlparse(url)
        variant = remove_port(parsed) if parsed.port else add_port(parsed)
        return variant != url and compare(self._validator.compute_signature(variant, params, algorithm), signature)

    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        fields = dict(request.form)
        if "MessageStatus" in fields:
            return self._status(fields)
        return [self._inbound(fields, request.headers)]

    def acknowledge(self, request: WebhookRequest) -> Acknowledgement:
        return Acknowledgement(_EMPTY_TWIML, "text/xml")

    def send(self, message: Outbound) -> SendResult:
        params = self._create_params(message)
        try:
            created = self._client().messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _rest_failure(exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            if _never_sent(exc):
                raise SendFailed("Twilio unreachable (the connection was refused or timed out)",
                                 retryable=True) from exc
            # The request may have reached Twilio (a read timeout, a reset mid-answer): sending it again could
            # double it, so the gateway records the delivery as unknown.
            raise SendFailed("no answer from Twilio (it may have sent the message)", retryable=False,
                             maybe_sent=True) from exc
        return SendResult(provider_id=created.sid or "", status=STATES.get(str(created.status), "queued"))

    def lookup_send(self, message: Outbound, attempted_at: float) -> SendLookup | None:
        """Twilio's list of the messages from this channel's number to the recipient: the oldest one with the same
        body created since `attempted_at` (less LOOKUP_SLACK: Twilio stamps whole seconds, on its own clock). Twilio
        keeps no key of Baton's on a message, so the body is what tells it apart, and the oldest is taken because a
        conversation's later messages went out after this attempt; a template whose text Baton does not know cannot
        be told apart (None)."""
        body = _expected_body(self, message)
        if body is None:
            return None
        since = attempted_at - LOOKUP_SLACK
        try:
            listed = self._client().messages.list(to=_whatsapp(message.recipient), from_=self.settings.from_number,
                                                  limit=LOOKUP_LIMIT, page_size=LOOKUP_LIMIT)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _rest_failure(exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise SendFailed("Twilio unreachable (its message list did not answer)", retryable=True) from exc
        except TwilioException as exc:  # a page of a list that Twilio refused: the SDK keeps the response
            raise _page_failure(exc) from exc
        for item in reversed(listed):  # Twilio lists the newest first
            created = item.date_created.timestamp() if item.date_created else 0.0
            if created >= since and (item.body or "") == body and str(item.direction or "").startswith("outbound"):
                return SendLookup(True, item.sid or "", STATES.get(str(item.status), "queued"))
        return SendLookup(False)

    def display_address(self, sender: str) -> str:
        return sender.removeprefix("whatsapp:")

    def templates(self) -> list[Template]:
        return [Template(key=key, name=t.content_sid, body=t.body, params=tuple(t.params))
                for key, t in self.settings.templates.items()]

    def provider_templates(self) -> list[Template]:
        """The account's content templates from Twilio's Content API (GET /v1/Content, every page), keyed by their
        friendly name, with the text of their twilio/text (or first) type as the body."""
        base = self.settings.content_base_url or (
            "https://content.twilio.com" if self.settings.api_base_url == "https://api.twilio.com"
            else self.settings.api_base_url)
        url: str | None = f"{base.rstrip('/')}/v1/Content?PageSize={CONTENT_PAGE}"
        contents: list[dict[str, Any]] = []
        auth = (self.settings.account_sid, self.settings.auth_token)
        for _ in range(20):
            if url is None:
                break
            try:
                answer = requests.get(url, auth=auth, timeout=self.settings.send_timeout)
            except requests.RequestException as exc:
                raise SendFailed(f"Twilio's Content API could not be reached ({type(exc).__name__})",
                                 retryable=True) from exc
            if answer.status_code >= 300:
                raise SendFailed(f"Twilio's Content API answered HTTP {answer.status_code}", retryable=False,
                                 status=answer.status_code)
            page = answer.json()
            contents += [c for c in page.get("contents") or [] if isinstance(c, dict)]
            url = (page.get("meta") or {}).get("next_page_url") or None
        templates = []
        for content in contents:
            sid, name = str(content.get("sid") or ""), str(content.get("friendly_name") or "")
            if not _CONTENT_SID.match(sid):
                continue
            types = content.get("types") or {}
            kind: Any = (types.get("twilio/text") or next(iter(types.values()), {})) if isinstance(types, dict) else {}
            body = str(kind.get("body") or "") if isinstance(kind, dict) else ""
            templates.append(Template(key=name or sid, name=sid, language=str(content.get("language") or ""),
                                      body=body))
        return templates

    def warm_up(self) -> None:
        # The REST client loads its API domains on first use; that import is most of a first send's time.
        import twilio.rest.api.v2010.account.message  # noqa: F401

    def _status(self, fields: dict[str, str]) -> list[Inbound | DeliveryStatus]:
        sid, status = _required(fields, "MessageSid"), _required(fields, "MessageStatus")
        if status not in STATES:  # e.g. "received": a report on a message Baton did not send
            return []
        code = fields.get("ErrorCode", "")
        reason = ""
        if STATES[status] == "failed":
            reason = f"Twilio error {code}: {_words(code) or 'see the Twilio console'}" if code \
                else "Twilio reported the message failed, without saying why"
        return [DeliveryStatus(self.name, sid, STATES[status], code, reason=reason, final=_final(code))]

    def _inbound(self, fields: dict[str, str], headers: dict[str, str]) -> Inbound:
        extra = {key: fields[name] for name, key in _EXTRA_FIELDS.items() if name in fields}
        extra |= {_snake(name): value for name, value in fields.items() if name.startswith("Referral")}
        if token := headers.get("i-twilio-idempotency-token"):
            extra["idempotency_token"] = token
        sender = _required(fields, "From")
        number = sender.removeprefix("whatsapp:")
        return Inbound(
            channel=self.name,
            sender=sender,
            provider_id=_required(fields, "MessageSid"),
            text=_text(fields),
            media=_media(fields),
            profile_name=fields.get("ProfileName", ""),
            extra=extra,
            phone=number if _E164.match(number) else "",
        )

    def _create_params(self, message: Outbound) -> dict[str, Any]:
        if message.template is not None:
            params: dict[str, Any] = {"to": _whatsapp(message.recipient), "from_": self.settings.from_number,
                                      "content_sid": message.template.name}
            if message.params:
                params["content_variables"] = json.dumps({str(n): p for n, p in enumerate(message.params, 1)})
            if self.settings.status_callback and self.webhook_url:
                params["status_callback"] = self.webhook_url
            return params
        body, urls = self.degrade(message), _media_urls(message.rich)
        if not body and not urls:
            raise SendFailed("nothing to send: no text and no media", retryable=False)
        params = {"to": _whatsapp(message.recipient), "from_": self.settings.from_number}
        if body:
            params["body"] = body
        if urls:
            params["media_url"] = urls
        if self.settings.status_callback and self.webhook_url:
            params["status_callback"] = self.webhook_url
        return params

    def _client(self) -> Client:
        # One per thread, reused: its requests.Session keeps the connection to Twilio alive between sends, and a
        # Session is not made to be shared between threads sending at once.
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            s = self.settings
            client = Client(s.account_sid, s.auth_token, http_client=TwilioHttpClient(timeout=s.send_timeout))
            client.api.base_url = s.api_base_url  # the Api domain's public attribute; default api.twilio.com
            self._local.client = client
        return client


def _expected_body(connector: TwilioWhatsApp, message: Outbound) -> str | None:
    """The body Twilio keeps for `message` as this connector sends it; None when Baton cannot know it."""
    if message.template is None:
        return connector.degrade(message)
    if not message.template.body:
        return None
    return re.sub(r"\{\{\s*(\d+)\s*\}\}",
                  lambda m: message.params[int(m[1]) - 1] if 0 < int(m[1]) <= len(message.params) else m[0],
                  message.template.body)


def _page_failure(exc: TwilioException) -> SendFailed:
    """Twilio's error for a page of a list, as SendFailed (the SDK raises it with the HTTP response attached)."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = int(getattr(response, "status_code", 0) or 0)
    try:
        answer = json.loads(getattr(response, "text", "") or "{}")
    except ValueError:
        answer = {}
    code = answer.get("code", "") if isinstance(answer, dict) else ""
    detail = str(answer.get("message", "") if isinstance(answer, dict) else "")[:200]
    reason = f"Twilio error {code}: {_words(code)}" if _words(code) else \
        f"Twilio error {code or '?'} (HTTP {status}): {detail or 'its message list failed'}"
    return SendFailed(reason, retryable=status == 429 or status >= 500, status=status, code=code)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely never reached Twilio: the connection itself was refused or timed out."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _required(fields: dict[str, str], name: str) -> str:
    if not fields.get(name):
        raise BadRequest(f"Twilio webhook without {name}", field=name)
    return fields[name]


def _text(fields: dict[str, str]) -> str:
    if body := fields.get("Body"):
        return body
    if button := fields.get("ButtonText"):
        return button
    if "Latitude" in fields and "Longitude" in fields:
        place = ", ".join(fields[k] for k in ("Label", "Address") if fields.get(k))
        where = f"📍 Location: {fields['Latitude']},{fields['Longitude']}"
        return f"{where} ({place})" if place else where
    return ""


def _media(fields: dict[str, str]) -> tuple[Media, ...]:
    count = fields.get("NumMedia") or "0"
    if not (count.isascii() and count.isdigit()) or int(count) > MAX_MEDIA:  # isdigit() alone takes "²"
        raise BadRequest(f"Twilio webhook with NumMedia {count[:20]!r}: expected 0 to {MAX_MEDIA}", field="NumMedia")
    return tuple(
        Media(fields[f"MediaUrl{n}"], fields.get(f"MediaContentType{n}", ""))
        for n in range(int(count))
        if fields.get(f"MediaUrl{n}")
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _whatsapp(address: str) -> str:
    return address if address.startswith("whatsapp:") else f"whatsapp:{address}"


def _media_urls(rich: dict[str, Any] | None) -> list[str]:
    if rich and rich.get("type") == "media":
        return [str(url) for url in rich.get("urls", [])]
    return []


CONTENT_PAGE = 100  # templates per page asked of the Content API
#: Twilio's common error codes in words an agent understands (twilio.com/docs/api/errors).
CODE_WORDS = {
    63016: "the customer's 24-hour window is closed: only an approved template can reach them",
    63003: "the number cannot receive WhatsApp messages", 63024: "not a valid WhatsApp recipient",
    63032: "the customer cannot receive this message (blocked, or not on WhatsApp)",
    63049: "WhatsApp chose not to deliver it (Meta's limit per customer)",
    63018: "the sender's rate limit was exceeded", 63038: "the sender's daily message limit was reached",
    21211: "not a valid phone number", 21610: "the customer has opted out (replied STOP)",
    20429: "too many requests to Twilio", 20003: "Twilio refused the credentials (account_sid, auth_token)",
    30003: "the customer's phone is unreachable", 30005: "unknown number", 30008: "the carrier could not deliver it",
}
#: Failures that sending the same message again cannot mend: the window (a template can), not on WhatsApp, blocked,
#: opted out, not a number. The inbox offers "Send again" for the others (rate limits, unreachable, Twilio down).
FINAL_CODES = {63016, 63003, 63024, 63032, 21211, 21610, 30005}


def _final(code: int | str | None) -> bool:
    return str(code or "").isdigit() and int(str(code)) in FINAL_CODES


def _words(code: int | str | None) -> str:
    try:
        return CODE_WORDS.get(int(code or 0), "")
    except ValueError:
        return ""


def _rest_failure(exc: TwilioRestException | TwilioServiceException) -> SendFailed:
    detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    retryable = exc.status == 429 or exc.status >= 500
    words = _words(exc.code)
    reason = f"Twilio error {exc.code}: {words}" if words else \
        f"Twilio error {exc.code} (HTTP {exc.status}): {str(detail)[:200]}"
    return SendFailed(reason, retryable=retryable, final=_final(exc.code), status=exc.status, code=exc.code)


@hookimpl
def register_connectors(register: Callable[[type], None]) -> None:
    register(TwilioWhatsApp)
