"""A Telegram bot as a Baton channel: the Bot API's webhook in (updates, checked by their secret token), its
sendMessage/sendPhoto out. Imports nothing of Baton but its public plugin API, gateway.plugin."""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import httpx
from gateway.plugin import (
    BadRequest,
    ConnectorSettings,
    DeliveryStatus,
    Inbound,
    Media,
    MediaContent,
    Outbound,
    SendFailed,
    SendResult,
    SignatureInvalid,
    WebhookConnector,
    WebhookRequest,
    WebhookSchema,
    hookimpl,
)
from pydantic import Field, field_validator

BATON_API_VERSION = "1.0"

#: The header Telegram sends the webhook's secret_token in (setWebhook's secret_token).
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # sendMessage's limit, in characters
MAX_CAPTION = 1024  # sendPhoto's and sendMediaGroup's caption limit
MAX_PHOTOS = 10  # sendMediaGroup takes 2 to 10
#: The updates Baton asks for in setWebhook: a customer's new message. Others (edits, joins) are acknowledged.
ALLOWED_UPDATES = ("message",)
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")  # Telegram takes 1-256 of these; Baton wants at least 16
_IN_URL = re.compile(r"/bot\d{1,20}:[A-Za-z0-9_-]+")  # the token in a Bot API URL (…/bot<token>/sendMessage)
log = logging.getLogger("baton_telegram")

WEBHOOK_SCHEMA = WebhookSchema(
    summary="Telegram Bot API: an update (a customer's message) for the bot",
    request={"application/json": {"schema": {
        "type": "object",
        "required": ["update_id"],
        "properties": {
            "update_id": {"type": "integer", "description": "the update's number: a retried delivery repeats it"},
            "message": {
                "type": "object",
                "required": ["message_id", "chat"],
                "properties": {
                    "message_id": {"type": "integer"},
                    "chat": {"type": "object", "required": ["id"],
                             "properties": {"id": {"type": "integer"}, "type": {"type": "string"}}},
                    "from": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "first_name": {"type": "string"},
                        "last_name": {"type": "string"}, "username": {"type": "string"}}},
                    "text": {"type": "string"},
                    "caption": {"type": "string"},
                    "photo": {"type": "array", "items": {"type": "object", "required": ["file_id"], "properties": {
                        "file_id": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}}}},
                },
            },
        },
    }}},
    security_scheme="telegramSecretToken",
    security={"type": "apiKey", "in": "header", "name": SECRET_HEADER,
              "description": "The secret_token the webhook was set with (baton-telegram set-webhook): the channel's "
                             "secret_token setting."},
)


class TelegramSettings(ConnectorSettings):
    #: The bot's token from @BotFather ("123456789:AA…").
    bot_token: str
    #: The secret Telegram sends with every update (setWebhook's secret_token): 16 to 256 of A-Z a-z 0-9 _ -.
    secret_token: str
    api_base_url: str = "https://api.telegram.org"
    #: Seconds to connect, and to wait for Telegram's answer, per call (the gateway's retries own the rest).
    send_timeout: float = Field(10.0, gt=0, le=60)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError("must be the bot's token from @BotFather, such as '123456789:AAH…' (digits, a colon, "
                             "then at least 20 letters, digits, '_' or '-')")
        return value

    @field_validator("secret_token")
    @classmethod
    def _secret_shape(cls, value: str) -> str:
        if not _SECRET.match(value):
            raise ValueError("must be 16 to 256 characters of A-Z, a-z, 0-9, '_' and '-' (what Telegram accepts)")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str) -> str:
        if not re.match(r"^https?://[^/]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")


class Telegram(WebhookConnector):
    type = "telegram"
    Settings = TelegramSettings
    max_text = MAX_TEXT
    webhook_schema = WEBHOOK_SCHEMA
    settings: TelegramSettings

    def __init__(self, name: str, settings: TelegramSettings) -> None:
        super().__init__(name, settings)
        self._local = threading.local()  # an HTTP client (its kept-alive connections) per thread, made after fork
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._clients)  # their connections close with the connector

    # --- in: the webhook ---------------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SECRET_HEADER.lower())
        if not given:
            raise SignatureInvalid(f"missing {SECRET_HEADER} header",
                                   cause="the webhook was set without this channel's secret_token (run baton-telegram "
                                         "set-webhook), or the request did not come from Telegram")
        if not hmac.compare_digest(given.encode(), self.settings.secret_token.encode()):
            raise SignatureInvalid(f"{SECRET_HEADER} does not match",
                                   cause="the webhook was set with another secret_token: run baton-telegram "
                                         "set-webhook again with this channel's")

    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        try:
            update = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Telegram update is not JSON: {exc}") from exc
        if not isinstance(update, dict):
            raise BadRequest("Telegram update is not a JSON object")
        update_id = update.get("update_id")
        if not _integer(update_id):
            raise BadRequest("Telegram update without an integer update_id", field="update_id")
        message = update.get("message")
        if message is None:
            kinds = ", ".join(sorted(key for key in update if key != "update_id")) or "nothing"
            log.info("channel %s: Telegram update %s carries %s, not a new message: acknowledged, not recorded",
                     self.name, update_id, kinds)
            return []
        if not isinstance(message, dict):
            raise BadRequest("Telegram update whose message is not an object", field="message")
        chat = message.get("chat")
        if not isinstance(chat, dict) or not _integer(chat.get("id")):
            raise BadRequest("Telegram message without an integer chat.id", field="message.chat.id")
        if chat.get("type", "private") != "private":
            log.info("channel %s: Telegram update %s comes from a %s chat; Baton answers private chats only: "
                     "acknowledged, not recorded", self.name, update_id, chat.get("type"))
            return []
        return [self._inbound(str(update_id), str(chat["id"]), message)]

    def _inbound(self, provider_id: str, chat_id: str, message: dict[str, Any]) -> Inbound:
        sender = message.get("from")
        user: dict[str, Any] = sender if isinstance(sender, dict) else {}
        name = " ".join(str(user[key]) for key in ("first_name", "last_name") if user.get(key))
        text = _string(message, "text") or _string(message, "caption")
        media: list[Media] = []
        extra: dict[str, Any] = {"message_id": message.get("message_id")}
        if user.get("username"):
            extra["username"] = str(user["username"])
        if user.get("language_code"):
            extra["language_code"] = str(user["language_code"])
        phone = ""
        if photo := _largest_photo(message.get("photo")):
            media.append(Media(content_type="image/jpeg", provider_id=photo))
        document = message.get("document")
        if isinstance(document, dict) and isinstance(document.get("file_id"), str):
            media.append(Media(content_type=str(document.get("mime_type") or "application/octet-stream"),
                               provider_id=document["file_id"]))
        location = message.get("location")
        if not text and isinstance(location, dict) and "latitude" in location and "longitude" in location:
            text = f"📍 Location: {location['latitude']},{location['longitude']}"
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("phone_number"):
            number = "+" + re.sub(r"\D", "", str(contact["phone_number"]))
            if contact.get("user_id") == user.get("id"):  # the customer's own number, shared by them
                phone = number
            text = text or f"📞 Contact: {contact.get('first_name', '')} {number}".replace("  ", " ")
        if not text and not media:
            kinds = [key for key in ("sticker", "voice", "audio", "video", "video_note", "animation", "poll", "dice")
                     if key in message]
            extra["unsupported"] = kinds[0] if kinds else "unknown"
        return Inbound(channel=self.name, sender=chat_id, provider_id=provider_id, text=text, media=tuple(media),
                       profile_name=name or str(user.get("username") or ""), extra=extra, phone=phone)

    # --- out: the Bot API ------------------------------------------------------------------------------------

    def send(self, message: Outbound) -> SendResult:
        text, photos = self.degrade(message), _photo_urls(message.rich)
        params: dict[str, Any]
        if not photos:
            if not text.strip():
                raise SendFailed("nothing to send: no text and no photo", retryable=False)
            method, params = "sendMessage", {"chat_id": message.recipient, "text": text}
        elif len(text) > MAX_CAPTION:
            raise SendFailed(f"a photo's caption has {len(text)} characters; Telegram takes {MAX_CAPTION}",
                             retryable=False)
        elif len(photos) == 1:
            method, params = "sendPhoto", {"chat_id": message.recipient, "photo": photos[0]}
            if text:
                params["caption"] = text
        elif len(photos) <= MAX_PHOTOS:
            items = [{"type": "photo", "media": url} for url in photos]
            if text:
                items[0]["caption"] = text
            method, params = "sendMediaGroup", {"chat_id": message.recipient, "media": items}
        else:
            raise SendFailed(f"{len(photos)} photos in one message; Telegram takes {MAX_PHOTOS}", retryable=False)
        result = self.call(method, params)
        first = result[0] if isinstance(result, list) and result else result
        if not isinstance(first, dict) or not _integer(first.get("message_id")):
            raise SendFailed(f"Telegram answered {method} without a message_id", retryable=False, maybe_sent=True)
        return SendResult(provider_id=f"{message.recipient}:{first['message_id']}", status="sent")

    def fetch_media(self, media: Media) -> MediaContent:
        found = self.call("getFile", {"file_id": media.provider_id})
        path = found.get("file_path") if isinstance(found, dict) else None
        if not isinstance(path, str):
            raise SendFailed("Telegram's getFile gave no file_path (the file may be over 20 MB)", retryable=False)
        try:
            response = self._http().get(f"{self.settings.api_base_url}/file/bot{self.settings.bot_token}/{path}")
        except httpx.TransportError as exc:
            raise SendFailed(f"Telegram's file download failed: {_redact(repr(exc))}", retryable=True) from exc
        if response.status_code != 200:
            raise SendFailed(f"Telegram's file download answered HTTP {response.status_code}",
                             retryable=response.status_code == 429 or response.status_code >= 500)
        content_type = media.content_type or response.headers.get("content-type", "application/octet-stream")
        return MediaContent(response.content, content_type)

    def display_address(self, sender: str) -> str:
        return f"Telegram {sender}"

    def set_webhook(self, url: str, drop_pending_updates: bool = False) -> None:
        """Point the bot's updates at `url` (this channel's /webhooks/{channel}), signed with its secret_token."""
        self.call("setWebhook", {"url": url, "secret_token": self.settings.secret_token,
                                 "allowed_updates": list(ALLOWED_UPDATES),
                                 "drop_pending_updates": drop_pending_updates})

    def webhook_info(self) -> dict[str, Any]:
        info = self.call("getWebhookInfo", {})
        return info if isinstance(info, dict) else {}

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One Bot API call; its `result`, or SendFailed as the API's answer means it (see README.md)."""
        url = f"{self.settings.api_base_url}/bot{self.settings.bot_token}/{method}"
        try:
            response = self._http().post(url, json=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection was made: Telegram surely has nothing.
            raise SendFailed(f"Telegram unreachable: {_redact(repr(exc))}", retryable=True) from exc
        except httpx.TransportError as exc:
            # The request may have reached Telegram (no answer in time, a connection lost mid-answer): sending it
            # again could double it, so Baton records the outcome as unknown.
            raise SendFailed(f"no answer from Telegram to {method}: {_redact(repr(exc))}", retryable=False,
                             maybe_sent=True) from exc
        return _result(method, response)

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=httpx.Timeout(self.settings.send_timeout))
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client


def _close_all(clients: list[httpx.Client]) -> None:
    for client in clients:
        client.close()


def _result(method: str, response: httpx.Response) -> Any:
    """The answer's `result` when ok; otherwise the failure the Bot API's status means."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    status = response.status_code
    if status == 200 and answer.get("ok") is True and "result" in answer:
        return answer["result"]
    description = str(answer.get("description") or response.text[:200] or response.reason_phrase)
    code = answer.get("error_code", status)
    details: dict[str, Any] = {"status": status, "code": code}
    if status == 200:  # a 200 that is no Bot API answer (a proxy's page?): it may have been done
        raise SendFailed(f"Telegram answered {method} with HTTP 200 but no result: {description}", retryable=False,
                         maybe_sent=True, **details)
    if status == 429:
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        if _integer(retry_after):
            details["retry_after"] = retry_after
        raise SendFailed(f"Telegram throttled {method} (HTTP 429): {description}", retryable=True, **details)
    if status >= 500:
        raise SendFailed(f"Telegram failed {method} (HTTP {status}): {description}", retryable=True, **details)
    why = {401: " (the bot token is wrong or revoked)", 404: " (the bot token is wrong)",
           403: " (the customer blocked the bot, or never started it)"}.get(status, "")
    raise SendFailed(f"Telegram refused {method} (HTTP {status}): {description}{why}", retryable=False, **details)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def _largest_photo(sizes: object) -> str:
    """The file_id of the largest of a photo's sizes (Telegram lists several, smallest first)."""
    if not isinstance(sizes, list):
        return ""
    found = [size for size in sizes if isinstance(size, dict) and isinstance(size.get("file_id"), str)]
    if not found:
        return ""
    largest = max(found, key=lambda size: (int(size.get("width") or 0) * int(size.get("height") or 0)))
    return str(largest["file_id"])


def _photo_urls(rich: dict[str, Any] | None) -> list[str]:
    if rich and rich.get("type") == "media":
        return [str(url) for url in rich.get("urls", [])]
    return []


def _redact(text: str) -> str:
    """`text` without a bot token it may carry in a Bot API URL."""
    return _IN_URL.sub("/bot<token>", text)


class _RedactTokens(logging.Filter):
    """httpx logs each request's URL at INFO; a Bot API URL carries the bot's token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/bot" in str(arg) for arg in record.args):
            record.args = tuple(_redact(str(arg)) if "/bot" in str(arg) else arg for arg in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactTokens())


@hookimpl
def register_connectors(register: Callable[[type], None]) -> None:
    register(Telegram)
