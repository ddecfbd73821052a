"""A local HTTP server speaking enough of Telegram's Bot API for the connector: the methods it calls, Telegram's
error answers ({"ok": false, "error_code", "description", "parameters"}), file downloads, and webhook delivery
of updates the way Telegram makes them (a POST of the Update with X-Telegram-Bot-Api-Secret-Token)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx

BOT_TOKEN = "123456789:AAHfakeTokenForTestsOnly_0123456789ab"
MAX_TEXT, MAX_CAPTION = 4096, 1024


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent: sendMessage's text, or sendPhoto's/sendMediaGroup's photos and caption."""

    method: str
    chat_id: str
    text: str
    message_id: int
    photos: tuple[str, ...] = ()


@dataclass
class _Failure:
    status: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


class FakeBotAPI:
    """`with FakeBotAPI() as telegram:` serves the Bot API on `telegram.base_url` until the block ends."""

    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._sent: list[SentMessage] = []
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: list[_Failure] = []
        self._holds: list[float] = []
        self._blocked: set[str] = set()
        self._message_ids = itertools.count(500)
        self._update_ids = itertools.count(880000001)
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self.webhook: dict[str, Any] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeBotAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what a test sets up -------------------------------------------------------------------------------------

    def fail_next(self, status: int, description: str, **parameters: Any) -> None:
        """Answer the next sending call with Telegram's error JSON (parameters such as retry_after)."""
        with self._lock:
            self._failures.append(_Failure(status, description, parameters))

    def hold_next(self, seconds: float) -> None:
        """Send the next message, but answer only after `seconds` (a client's read timeout)."""
        with self._lock:
            self._holds.append(seconds)

    def block(self, chat_id: str) -> None:
        """The customer blocked the bot: sends to them are refused with 403, as Telegram does."""
        with self._lock:
            self._blocked.add(str(chat_id))

    def add_file(self, file_id: str, content: bytes) -> None:
        self.files[file_id] = (f"photos/file_{len(self.files)}.jpg", content)

    # --- what a test reads -----------------------------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sent)

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Every authenticated method call, (method, parameters), oldest first."""
        with self._lock:
            return list(self._calls)

    # --- Telegram delivering updates -------------------------------------------------------------------------------

    def update(self, chat_id: int, text: str = "", update_id: int | None = None, **message: Any) -> dict[str, Any]:
        """An Update for a private chat's new message, as Telegram posts it."""
        update_id = next(self._update_ids) if update_id is None else update_id
        body: dict[str, Any] = {
            "message_id": update_id % 100000, "date": int(time.time()),
            "from": {"id": chat_id, "is_bot": False, "first_name": "Maria", "last_name": "Lopez",
                     "username": "maria_l", "language_code": "es"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Maria", "last_name": "Lopez"},
        }
        if text:
            body["text"] = text
        body.update(message)
        return {"update_id": update_id, "message": body}

    def deliver(self, update: dict[str, Any]) -> httpx.Response:
        """Post `update` to the webhook set with setWebhook, with its secret token, as Telegram does."""
        if not self.webhook:
            raise AssertionError("no webhook was set (setWebhook)")
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        return httpx.post(self.webhook["url"], content=json.dumps(update).encode(), headers=headers, timeout=30)

    # --- the API ---------------------------------------------------------------------------------------------------

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """(HTTP status, the JSON answer, seconds to hold it back)."""
        sending = method in ("sendMessage", "sendPhoto", "sendMediaGroup")
        with self._lock:
            self._calls.append((method, params))
            if sending and self._failures:
                failure = self._failures.pop(0)
                return failure.status, _error(failure.status, failure.description, failure.parameters), 0.0
            hold = self._holds.pop(0) if sending and self._holds else 0.0
        if method == "getMe":
            return 200, _ok({"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Shop"}), 0.0
        if method == "setWebhook":
            if not str(params.get("url", "")):
                return 400, _error(400, "Bad Request: bad webhook: URL must not be empty"), 0.0
            self.webhook = {"url": params["url"], "secret_token": params.get("secret_token", ""),
                            "allowed_updates": params.get("allowed_updates", [])}
            return 200, _ok(True) | {"description": "Webhook was set"}, 0.0
        if method == "getWebhookInfo":
            info = {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
            return 200, _ok(info), 0.0
        if method == "getFile":
            found = self.files.get(str(params.get("file_id", "")))
            if found is None:
                return 400, _error(400, "Bad Request: invalid file_id"), 0.0
            return 200, _ok({"file_id": params["file_id"], "file_unique_id": "u" + params["file_id"][-6:],
                             "file_size": len(found[1]), "file_path": found[0]}), 0.0
        if not sending:
            return 404, _error(404, "Not Found"), 0.0
        chat_id = str(params.get("chat_id", ""))
        if not chat_id:
            return 400, _error(400, "Bad Request: chat_id is empty"), 0.0
        if chat_id in self._blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user"), 0.0
        if method == "sendMessage":
            text = str(params.get("text", ""))
            if not text.strip():
                return 400, _error(400, "Bad Request: message text is empty"), 0.0
            if len(text) > MAX_TEXT:
                return 400, _error(400, "Bad Request: message is too long"), 0.0
            return 200, _ok(self._record(method, chat_id, text, ())), hold
        if method == "sendPhoto":
            caption = str(params.get("caption", ""))
            if not params.get("photo"):
                return 400, _error(400, "Bad Request: there is no photo in the request"), 0.0
            if len(caption) > MAX_CAPTION:
                return 400, _error(400, "Bad Request: message caption is too long"), 0.0
            return 200, _ok(self._record(method, chat_id, caption, (str(params["photo"]),))), hold
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            return 400, _error(400, "Bad Request: wrong number of media in the album"), 0.0
        caption = str(media[0].get("caption", ""))
        message = self._record(method, chat_id, caption, tuple(str(item.get("media")) for item in media))
        return 200, _ok([message] + [{**message, "message_id": message["message_id"] + n}
                                     for n in range(1, len(media))]), hold

    def _record(self, method: str, chat_id: str, text: str, photos: tuple[str, ...]) -> dict[str, Any]:
        with self._lock:
            message_id = next(self._message_ids)
            self._sent.append(SentMessage(method, chat_id, text, message_id, photos))
            if method == "sendMediaGroup":
                for _ in photos[1:]:
                    next(self._message_ids)
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                   "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                                            "type": "private"}}
        if photos:
            message["photo"] = [{"file_id": f"sent-{message_id}", "width": 90, "height": 90}]
            if text:
                message["caption"] = text
        else:
            message["text"] = text
        return message


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        answer["parameters"] = parameters
    return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when many sending threads connect at once (the
    # conformance suite's 8), and a dropped SYN is retried only after a second: a client's connect timeout.
    request_queue_size = 128
    fake: FakeBotAPI


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        fake = self.server.fake
        prefix = f"/file/bot{fake.token}/"
        if self.path.startswith(prefix):
            wanted = self.path.removeprefix(prefix)
            for path, content in fake.files.values():
                if path == wanted:
                    self._reply(200, content, "image/jpeg")
                    return
        self._reply(404, json.dumps(_error(404, "Not Found")).encode(), "application/json")

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        token, _, method = self.path.removeprefix("/bot").partition("/")
        if not self.path.startswith("/bot") or token != fake.token:
            # Telegram answers a wrong token with 401 Unauthorized, a malformed one with 404 Not Found.
            status = 401 if ":" in token else 404
            self._json(status, _error(status, "Unauthorized" if status == 401 else "Not Found"))
            return
        content_type = self.headers.get("Content-Type", "")
        try:
            if content_type.startswith("application/json"):
                params = json.loads(body or b"{}")
            else:
                params = dict(parse_qsl(body.decode()))
        except ValueError:
            self._json(400, _error(400, "Bad Request: can't parse JSON"))
            return
        status, answer, hold = fake._answer(method, params)
        if hold:
            time.sleep(hold)
        self._json(status, answer)

    def _json(self, status: int, answer: dict[str, Any]) -> None:
        self._reply(status, json.dumps(answer).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a held-back answer
            pass
