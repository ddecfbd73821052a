"""A local OpenAI-compatible server, so tests drive litellm's real HTTP path.

    with FakeOpenAI() as fake:
        fake.reply("Hi!").reply_tool_call("handover_to_human", {"reason": "asked"})
        litellm.completion(model="openai/gpt-4o-mini", api_base=fake.base_url, api_key="test", ...)
        assert fake.requests[0]["messages"] == [...]

Scripted replies are served in order; once the script is empty every request gets `default_text`.
A reply may be held back (`delay=` seconds, or until `gate=` a threading.Event is set), so a test can
act while a model call is in flight.
The OpenAI SDK retries 408/409/429/5xx itself, so script one `fail` per attempt or pass
`max_retries=0` (or `num_retries=0`) to litellm.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass(frozen=True)
class Scripted:
    """One scripted answer: a message (text or tool call), or an HTTP error."""

    text: str | None = None
    tool_call: dict[str, Any] | None = None
    status: int = 200
    error_body: Any = None
    delay: float = 0.0
    gate: threading.Event | None = None
    garbage: str | None = None  # a 200 whose body is this text, not a completion

    def hold(self) -> None:
        """Wait as scripted before answering (a gate never set gives up after 30 s)."""
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.delay:
            time.sleep(self.delay)


class FakeOpenAI:
    """`POST /v1/chat/completions` on 127.0.0.1, JSON or SSE, answering from a script."""

    def __init__(self, default_text: str = "Hello from FakeOpenAI.") -> None:
        self.default_text = default_text
        self._lock = threading.Lock()
        self._script: deque[Scripted] = deque()
        self._requests: list[dict[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reply(self, text: str, delay: float = 0.0, gate: threading.Event | None = None) -> FakeOpenAI:
        return self._push(Scripted(text=text, delay=delay, gate=gate))

    def reply_tool_call(self, name: str, arguments: dict[str, Any], call_id: str = "") -> FakeOpenAI:
        function = {"name": name, "arguments": json.dumps(arguments)}
        call = {"id": call_id or f"call_fake_{next(_ids)}", "type": "function", "function": function}
        return self._push(Scripted(tool_call=call))

    def fail(self, status: int, body: Any = None) -> FakeOpenAI:
        """Answer the next request with `status`; a dict/list body is sent as JSON, a str as is."""
        default = {"error": {"message": f"scripted failure {status}", "type": "fake_error", "code": status}}
        return self._push(Scripted(status=status, error_body=default if body is None else body))

    def garbage(self, body: str = "<html>upstream says hello</html>", delay: float = 0.0) -> FakeOpenAI:
        """Answer the next request 200 with `body` as is: not a completion (a misconfigured proxy, say)."""
        return self._push(Scripted(garbage=body, delay=delay))

    def _push(self, scripted: Scripted) -> FakeOpenAI:
        with self._lock:
            self._script.append(scripted)
        return self

    def _take(self, body: dict[str, Any]) -> Scripted:
        with self._lock:
            self._requests.append(body)
            return self._script.popleft() if self._script else Scripted(text=self.default_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # many calls connect at once (the default backlog of 5 drops their SYNs for a second)
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a held-back answer (its timeout) is what the test wanted: no traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except json.JSONDecodeError as error:
            self._send_json(400, {"error": {"message": f"invalid JSON: {error}", "type": "invalid_request"}})
            return
        scripted = self.server.fake._take(body)
        scripted.hold()
        if scripted.garbage is not None:
            self._send(200, scripted.garbage.encode(), "application/json")
        elif scripted.status != 200:
            self._send_error(scripted)
        elif body.get("stream"):
            self._send_stream(body, scripted)
        else:
            self._send_json(200, _completion(body, scripted))

    def _send_error(self, scripted: Scripted) -> None:
        if isinstance(scripted.error_body, str):
            self._send(scripted.status, scripted.error_body.encode(), "text/plain; charset=utf-8")
        else:
            self._send_json(scripted.status, scripted.error_body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, body: dict[str, Any], scripted: Scripted) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in _chunks(body, scripted):
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


def _completion(body: dict[str, Any], scripted: Scripted) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": scripted.text}
    if scripted.tool_call:
        message["tool_calls"] = [scripted.tool_call]
    return {
        **_envelope(body, "chat.completion"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(scripted), "logprobs": None}],
        "usage": _usage(body, scripted),
    }


def _chunks(body: dict[str, Any], scripted: Scripted) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if scripted.tool_call:
        deltas.append({"tool_calls": [{"index": 0, **scripted.tool_call}]})
    deltas += [{"content": piece} for piece in _pieces(scripted.text or "")]
    envelope = _envelope(body, "chat.completion.chunk")
    chunks = [
        {**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas
    ]
    chunks.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(scripted)}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**envelope, "choices": [], "usage": _usage(body, scripted)})
    return chunks


def _pieces(text: str) -> list[str]:
    """Word-sized pieces that join back to exactly `text`."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]] if text else []


def _envelope(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{next(_ids)}",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model"),
    }


def _finish(scripted: Scripted) -> str:
    return "tool_calls" if scripted.tool_call else "stop"


def _usage(body: dict[str, Any], scripted: Scripted) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages", []))) // 4 + 1
    completion = len(scripted.text or json.dumps(scripted.tool_call)) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
