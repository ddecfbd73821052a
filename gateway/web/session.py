"""The team inbox's cookie session: an opaque, expiring, revocable session id in an HttpOnly cookie, and CSRF by a
per-session header value.

The cookie holds only the session id (gateway.web.auth keeps its digest in Redis, with the agent and the expiry), never
the agent's API token. The CSRF value is an HMAC of the session id: the page learns it from a same-origin JSON
response and sends it back as X-CSRF-Token on every state-changing call, which another site can neither read nor
forge.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "baton_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_key(secret: bytes) -> bytes:
    """A key for CSRF values alone, so no other signature of Baton's can pass as one."""
    return hmac.new(secret, b"baton inbox session v2", hashlib.sha256).digest()


def csrf_token(key: bytes, session: str) -> str:
    return hmac.new(key, f"csrf|{session}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(key: bytes, session: str, header: str | None) -> bool:
    return hmac.compare_digest((header or "").encode(), csrf_token(key, session).encode())


async def key_of(scope: Scope) -> bytes:
    """The CSRF key of the app serving this request (the secret may need Redis the first time)."""
    state = scope["app"].state
    key: bytes | None = getattr(state, "session_key", None)
    if key is None:
        secret = await run_in_threadpool(lambda: state.deployment.secret)
        key = state.session_key = session_key(secret)
    return key


def secure(request: Request) -> bool:
    """Cookies get `Secure` when the request came over https, or the deployment is public over https (behind a
    TLS proxy the gateway itself may see plain http)."""
    public = request.app.state.deployment.config.public_url
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(request: Request, response: Response, session: str, max_age: int) -> None:
    response.set_cookie(COOKIE, session, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=secure(request))


def delete_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure(request))


class SessionAuth:
    """Pure ASGI middleware (on /api only): calls without a bearer header authenticate with the session cookie.

    Cookie-authenticated calls that change state need the session's X-CSRF-Token or get a 403; calls with an
    Authorization header never look at the cookie, so they need no CSRF value.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        session = connection.cookies.get(COOKIE)
        if "authorization" not in connection.headers and session:
            if scope["method"] not in SAFE_METHODS:
                key = await key_of(scope)
                if not csrf_ok(key, session, connection.headers.get(CSRF_HEADER)):
                    response = JSONResponse({"error": "missing or invalid X-CSRF-Token header"}, status_code=403)
                    await response(scope, receive, send)
                    return
            scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, send)
