"""A local HTTP server speaking enough of Meta's Graph API (WhatsApp Cloud) for the whatsapp_cloud connector: the
messages endpoint, the media endpoint and the media download, and the business account's templates; and webhook
payloads written from Meta's documented shapes, signed as Meta signs them (X-Hub-Signature-256)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

PHONE_NUMBER_ID = "1098765432"
OTHER_NUMBER_ID = "1098765433"
WABA_ID = "2233445566"
ACCESS_TOKEN = "fake-meta-access-token"
APP_SECRET = "fake-meta-app-secret"
VERIFY_TOKEN = "fake-verify-token"
CUSTOMER = "34612345678"
_MESSAGES = re.compile(r"^/v21\.0/(?P<number>\d+)/messages$")
_TEMPLATES = re.compile(r"^/v21\.0/(?P<waba>\d+)/message_templates$")
_MEDIA = re.compile(r"^/v21\.0/(?P<media>[A-Za-z0-9_.-]+)$")
_DOWNLOAD = re.compile(r"^/download/(?P<media>[A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    token: str  # the bearer token, "" without one
    json: Any


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str
    close: bool = False  # drop the connection without an answer


class FakeMeta:
    """`with FakeMeta() as meta:` serves the Graph API on `meta.base_url` (ending in /v21.0) until the block ends."""

    def __init__(self, numbers: tuple[str, ...] = (PHONE_NUMBER_ID, OTHER_NUMBER_ID)) -> None:
        self.numbers = numbers
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._holds: list[float] = []
        self._sent: list[tuple[str, dict[str, Any], str]] = []  # (number, body, wamid)
        self.media: dict[str, tuple[bytes, str]] = {}
        self.templates: list[dict[str, Any]] = []
        self.templates_status = 200
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v21.0"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> list[tuple[str, dict[str, Any], str]]:
        """Each message accepted: (the sending number's id, the JSON body, the wamid answered), oldest first."""
        with self._lock:
            return list(self._sent)

    def fail_next(self, status: int, code: int, message: str, times: int = 1, close: bool = False) -> None:
        with self._lock:
            self._failures += [_Failure(status, code, message, close)] * times

    def hold_next(self, seconds: float) -> None:
        """Accept the next message but answer only after `seconds`."""
        with self._lock:
            self._holds.append(seconds)

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        with self._lock:
            self.media[media_id] = (data, mime_type)

    def __enter__(self) -> FakeMeta:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _templates_page(self, raw_path: str) -> dict[str, Any]:
        """A page of message_templates as the Graph API pages it: `limit`, cursors, and `next` (an absolute URL) while
        more follow; each template with only the `fields` asked for (and its id)."""
        query = parse_qs(urlsplit(raw_path).query)
        limit = int(query.get("limit", ["25"])[0])
        start = int(query.get("after", ["0"])[0] or 0)
        fields = query.get("fields", ["name,language,status,category,components"])[0].split(",")
        page = [{"id": t.get("id", str(1000 + start + n)), **{k: t[k] for k in fields if k in t}}
                for n, t in enumerate(self.templates[start:start + limit])]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}} if page else {}
        if start + limit < len(self.templates):
            params = {k: v[0] for k, v in query.items()} | {"after": str(start + limit)}
            paging["next"] = f"{self.base_url}{urlsplit(raw_path).path.removeprefix('/v21.0')}?{urlencode(params)}"
        return {"data": page, "paging": paging}

    def handle(self, request: Recorded) -> tuple[int, Any, str]:
        """Record the request and decide the answer: (HTTP status, body, content type); status 0 drops it."""
        with self._lock:
            self._requests.append(request)
            if request.token != ACCESS_TOKEN:
                return 401, error_body(190, "Invalid OAuth access token.", "OAuthException"), "application/json"
            path = urlsplit(request.path).path
            if (match := _DOWNLOAD.match(path)) and request.method == "GET":
                if match["media"] not in self.media:
                    return 404, b"", "text/plain"
                data, mime_type = self.media[match["media"]]
                return 200, data, mime_type
            if (match := _TEMPLATES.match(path)) and request.method == "GET":
                if self.templates_status != 200 or match["waba"] != WABA_ID:
                    return self.templates_status if self.templates_status != 200 else 404, \
                        error_body(100, "Unsupported get request."), "application/json"
                return 200, self._templates_page(request.path), "application/json"
            if (match := _MESSAGES.match(path)) and request.method == "POST":
                if match["number"] not in self.numbers:
                    return 400, error_body(100, "Unsupported post request."), "application/json"
                if self._failures:
                    failure = self._failures.pop(0)
                    if failure.close:
                        return 0, b"", ""
                    return failure.status, error_body(failure.code, failure.message), "application/json"
                body = request.json
                if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp" or \
                        not (body.get("to") or body.get("recipient")) or body.get("type") not in body:
                    return 400, error_body(100, "Invalid parameter"), "application/json"
                hold = self._holds.pop(0) if self._holds else 0.0
                wamid = "wamid.HBgL" + secrets.token_hex(16).upper()
                self._sent.append((match["number"], body, wamid))
                answer = {"messaging_product": "whatsapp",
                          "contacts": [{"input": body.get("to", ""), "wa_id": body.get("to", "")}],
                          "messages": [{"id": wamid}]}
            elif (match := _MEDIA.match(path)) and request.method == "GET":
                if match["media"] not in self.media:
                    return 400, error_body(100, "Unsupported get request."), "application/json"
                data, mime_type = self.media[match["media"]]
                return 200, {"messaging_product": "whatsapp", "url": f"{self.root}/download/{match['media']}",
                             "mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(),
                             "file_size": len(data), "id": match["media"]}, "application/json"
            else:
                return 400, error_body(100, "Unknown path components"), "application/json"
        time.sleep(hold)
        return 200, answer, "application/json"


def error_body(code: int, message: str, kind: str = "OAuthException") -> dict[str, Any]:
    """The Graph API's error shape."""
    return {"error": {"message": message, "type": kind, "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": message},
                      "fbtrace_id": "A" + secrets.token_hex(8)}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeMeta


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        status, payload, content_type = self.server.fake.handle(Recorded(self.command, self.path, token, body))
        if status == 0:
            self.close_connection = True
            self.connection.close()
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped waiting (a send timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


# --- webhooks as Meta sends them -------------------------------------------------------------------------------

def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret),
            "User-Agent": "facebookexternalua"}


def webhook(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """A notification: the changes spread over `entries` entries (Meta batches both ways)."""
    spread: list[list[dict[str, Any]]] = [[] for _ in range(entries)]
    for n, change in enumerate(changes):
        spread[n % entries].append(change)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": group} for group in spread]}


def change(messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None,
           number: str = PHONE_NUMBER_ID, name: str = "Maria", wa_id: str = CUSTOMER) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550001111", "phone_number_id": number}}
    if messages is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def message(kind: str, content: dict[str, Any] | list[Any], wamid: str | None = None, sender: str = CUSTOMER,
            timestamp: float | None = None) -> dict[str, Any]:
    return {"from": sender, "id": wamid or f"wamid.{secrets.token_hex(12)}",
            "timestamp": str(int(timestamp if timestamp is not None else time.time())), "type": kind, kind: content}


def text(body: str, wamid: str | None = None, **kw: Any) -> dict[str, Any]:
    return message("text", {"body": body}, wamid, **kw)


def status(wamid: str, word: str, errors: list[dict[str, Any]] | None = None,
           timestamp: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": word, "timestamp": str(int(timestamp or time.time())),
                            "recipient_id": CUSTOMER}
    if word != "failed":
        item["conversation"] = {"id": "c" + secrets.token_hex(8), "origin": {"type": "service"}}
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if errors:
        item["errors"] = errors
    return item
