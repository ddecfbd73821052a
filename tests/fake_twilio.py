"""A local HTTP server speaking enough of Twilio's Messages REST API for the twilio SDK."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json(?:\?(?P<query>.*))?$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    auth: tuple[str, str] | None  # the Basic credentials, decoded
    form: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str


class FakeTwilio:
    """`with FakeTwilio() as twilio:` serves on `twilio.base_url` until the block ends."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._holds: list[float] = []
        self._created: list[tuple[dict[str, list[str]], str]] = []
        self._resources: list[dict[str, Any]] = []  # every message created, oldest first, as the list answers it
        self.contents: list[dict[str, Any]] = []  # the Content API's templates: {sid, friendly_name, language, types}
        self.content_status = 200
        self.content_requests: list[RecordedRequest] = []  # what the Content API (GET /v1/Content) was asked
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        # A short poll interval so leaving the `with` block does not wait half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def created(self) -> list[tuple[dict[str, list[str]], str]]:
        """Each message created, as (the form sent, the sid answered), oldest first."""
        with self._lock:
            return list(self._created)

    def hold_next(self, seconds: float) -> None:
        """Create the next message, but answer only after `seconds` (a client's read timeout)."""
        with self._lock:
            self._holds.append(seconds)

    def fail_next(self, status: int, code: int, message: str, times: int = 1) -> None:
        """Answer the next `times` authenticated requests with Twilio's error JSON."""
        with self._lock:
            self._failures += [_Failure(status, code, message)] * times

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """Record the request and decide the answer: (HTTP status, JSON body)."""
        with self._lock:
            if request.method == "GET" and urlsplit(request.path).path == "/v1/Content":
                # Kept apart: `requests` is what the Messages API was asked (the tests count the messages sent).
                self.content_requests.append(request)
                if request.auth != (self.account_sid, self.auth_token):
                    return 401, error_body(401, 20003, "Authenticate")
                return self._content_page(request.path)
            self._requests.append(request)
            if request.auth != (self.account_sid, self.auth_token):
                return 401, error_body(401, 20003, "Authenticate")
            match = _MESSAGES_PATH.match(request.path)
            if request.method not in ("POST", "GET") or not match or (request.method == "POST" and match["query"]):
                return 404, error_body(404, 20404, f"The requested resource {request.path} was not found")
            if match["account"] != self.account_sid:
                return 403, error_body(403, 20003, "Authenticate")
            if self._failures:
                failure = self._failures.pop(0)
                return failure.status, error_body(failure.status, failure.code, failure.message)
            if request.method == "GET":
                return 200, self._page(parse_qs(match["query"] or ""))
            hold = self._holds.pop(0) if self._holds else 0.0
            sid = "SM" + secrets.token_hex(16)
            self._created.append((request.form, sid))
            resource = self._message_resource(request.form, sid)
            self._resources.append(resource)
        time.sleep(hold)
        return 201, resource

    def _page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """The Messages list as Twilio answers it: newest first, filtered by To and From, one page of PageSize."""
        wanted = {name: query[name][0] for name in ("To", "From") if name in query}
        size = int(query.get("PageSize", ["50"])[0])
        found = [m for m in reversed(self._resources) if all(m[name.lower()] == v for name, v in wanted.items())]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return {"messages": found[:size], "uri": uri, "first_page_uri": uri, "next_page_uri": None,
                "previous_page_uri": None, "page": 0, "page_size": size, "start": 0, "end": len(found[:size])}

    def forget(self, sid: str) -> None:
        """Drop a created message from the list (as if Twilio never had it)."""
        with self._lock:
            self._resources = [m for m in self._resources if m["sid"] != sid]

    def set_status(self, sid: str, status: str) -> None:
        with self._lock:
            for resource in self._resources:
                if resource["sid"] == sid:
                    resource["status"] = status

    def _content_page(self, raw_path: str) -> tuple[int, dict[str, Any]]:
        """GET /v1/Content as Twilio's Content API answers it: `contents` and `meta` (page, page_size, the URLs of
        this, the first and the next page, key), paged by PageSize and Page/PageToken."""
        if self.content_status != 200:
            return self.content_status, error_body(self.content_status, 20500, "Internal Server Error")
        query = parse_qs(urlsplit(raw_path).query)
        size = min(int(query.get("PageSize", ["50"])[0]), 1000)
        page = int(query.get("Page", ["0"])[0])
        base = f"{self.base_url}/v1/Content?PageSize={size}"
        items = self.contents[page * size:(page + 1) * size]
        more = (page + 1) * size < len(self.contents)
        contents = [{"account_sid": self.account_sid, "date_created": "2026-12-01T10:00:00Z",
                     "date_updated": "2026-12-01T10:00:00Z", "url": f"{self.base_url}/v1/Content/{c['sid']}",
                     "links": {"approval_fetch": f"{self.base_url}/v1/Content/{c['sid']}/ApprovalRequests"},
                     "variables": {}, **c} for c in items]
        return 200, {"contents": contents,
                     "meta": {"page": page, "page_size": size, "first_page_url": f"{base}&Page=0",
                              "previous_page_url": f"{base}&Page={page - 1}&PageToken=PB{page}" if page else None,
                              "url": f"{base}&Page={page}", "key": "contents",
                              "next_page_url": f"{base}&Page={page + 1}&PageToken=PA{page + 1}" if more else None}}

    def _message_resource(self, form: dict[str, list[str]], sid: str) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", [""])[0],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From", [""])[0],
            "messaging_service_sid": None,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form.get("To", [""])[0],
            "uri": f"{uri}.json",
        }


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's legacy REST error shape."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when many senders connect at once on a loaded machine:
    # the client's SYN is retried after a second, past a short connect timeout (a refused send that Twilio never saw)
    request_queue_size = 128
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            auth=_basic_auth(self.headers.get("Authorization", "")),
            form=parse_qs(body, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
        )
        status, payload = self.server.fake.handle(recorded)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password
