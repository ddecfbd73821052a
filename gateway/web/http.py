"""HTTP plumbing shared by the routes: JSON bodies, error responses, security headers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BadRequest, BatonError, PayloadTooLarge, RateLimited
from gateway.logs import Throttled
from gateway.redis_server import describe_error

log = logging.getLogger("baton.http")
MAX_JSON = 64 * 1024
_redis_down = Throttled(log, every=1.0)
_gone = Throttled(log, every=10.0)


def resource(**handlers: Callable[[Request], Awaitable[Response]]) -> type[HTTPEndpoint]:
    """One endpoint for a path whose methods each have a handler (and a contract) of their own, e.g.
    `resource(get=show, patch=change)`: its 405 names every method of the path in Allow, where two Routes on one
    path answer with the first one's methods only."""
    return type("Resource", (HTTPEndpoint,), {method: staticmethod(handler) for method, handler in handlers.items()})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes: from Content-Length
    before reading anything, else while the bytes arrive, so an oversized body is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int = MAX_JSON, required: bool = False) -> dict[str, Any]:
    """The request's JSON object, or BadRequest saying what is wrong with it. An empty body reads as {} unless the
    operation documents its body as required."""
    body = await read_body(request, limit)
    if required and not body.strip():
        raise BadRequest("a JSON object is required as the body ({} for the defaults)")
    try:
        data = json.loads(body or b"{}")
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates ("\ud800") cannot be stored
    except RecursionError as exc:
        raise BadRequest("malformed JSON: nested too deeply") from exc
    except UnicodeError as exc:
        raise BadRequest("malformed JSON: a string is not valid Unicode (a lone surrogate?)") from exc
    except ValueError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


async def baton_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BatonError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse({"error": exc.reason, **exc.details}, status_code=exc.status, headers=headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis failed the request (unreachable, out of memory, a full disk, data of another shape…): 503 so providers
    retry, saying which, and one log line a second however many requests fail."""
    problem = describe_error(exc)
    _redis_down.error("%s: answering 503 to %s %s", problem, request.method, request.url.path)
    return JSONResponse({"error": f"storage unavailable: {problem}; try again shortly"}, status_code=503,
                        headers={"Retry-After": "1"})


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client went away before sending its whole body: nobody reads the answer, and nothing was recorded."""
    _gone.warning("%s %s: the client disconnected before sending its whole body", request.method, request.url.path)
    return JSONResponse({"error": "the client disconnected before sending the whole body"}, status_code=400)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


EXCEPTION_HANDLERS: dict[Any, Any] = {BatonError: baton_error, HTTPException: http_error,
                                      RedisError: storage_unavailable, ConnectionError: storage_unavailable,
                                      ClientDisconnect: client_gone, Exception: server_error}


class SecurityHeaders:
    """Pure ASGI middleware: a strict CSP and friends on every response."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
           "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in self.headers(scope["path"]):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def headers(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if not path.startswith(("/webchat/", "/widget.js")):
            headers += [(b"content-security-policy", self.CSP.encode()), (b"x-frame-options", b"DENY")]
        return headers

