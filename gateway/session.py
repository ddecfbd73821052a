"""The team inbox's cookie session: the agent's token in a signed HttpOnly cookie, CSRF by a per-session
header value.

The cookie holds the token (so revoking the agent ends every session at once), a random nonce and an
expiry, signed with a key derived from the deployment's secret. The CSRF value is an HMAC of the nonce:
the page learns it from a same-origin JSON response and sends it back as X-CSRF-Token on every
state-changing call, which another site can neither read nor forge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "baton_session"
CSRF_HEADER = "x-csrf-token"
MAX_AGE = 7 * 24 * 3600  # seconds; the agent signs in again after a week
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    token: str
    nonce: str
    expires: int


def session_key(secret: bytes) -> bytes:
    """A key for sessions alone, so a visitor token's signature can never pass as a session's."""
    return hmac.new(secret, b"baton inbox session v1", hashlib.sha256).digest()


def issue(key: bytes, token: str, now: float | None = None, max_age: int = MAX_AGE) -> str:
    """A signed cookie value for the agent token."""
    expires = int(now if now is not None else time.time()) + max_age
    payload = json.dumps({"t": token, "n": secrets.token_urlsafe(16), "e": expires}, separators=(",", ":"))
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"v1.{body}.{_sign(key, body)}"


def read(key: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session a cookie value holds, or None when it is missing, tampered with or expired."""
    parts = (value or "").split(".")
    if len(parts) != 3 or parts[0] != "v1" or not hmac.compare_digest(parts[2], _sign(key, parts[1])):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        session = Session(str(data["t"]), str(data["n"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > (now if now is not None else time.time()) else None


def csrf_token(key: bytes, session: Session) -> str:
    return hmac.new(key, f"csrf|{session.nonce}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(key: bytes, session: Session, header: str | None) -> bool:
    return hmac.compare_digest((header or "").encode(), csrf_token(key, session).encode())


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


async def key_of(scope: Scope) -> bytes:
    """The session key of the app serving this request (the secret may need Redis the first time)."""
    state = scope["app"].state
    key: bytes | None = getattr(state, "session_key", None)
    if key is None:
        secret = await run_in_threadpool(lambda: state.deployment.secret)
        key = state.session_key = session_key(secret)
    return key


class SessionAuth:
    """Pure ASGI middleware: /api calls without a bearer header authenticate with the session cookie.

    Cookie-authenticated calls that change state need the session's X-CSRF-Token or get a 403; calls
    with an Authorization header never look at the cookie, so they need no CSRF value.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if "authorization" not in connection.headers and COOKIE in connection.cookies:
            key = await key_of(scope)
            session = read(key, connection.cookies[COOKIE])
            if session is not None:
                if scope["method"] not in SAFE_METHODS and not csrf_ok(key, session,
                                                                        connection.headers.get(CSRF_HEADER)):
                    response = JSONResponse({"error": "missing or invalid X-CSRF-Token header"}, status_code=403)
                    await response(scope, receive, send)
                    return
                scope.setdefault("state", {})["agent_token"] = session.token
        await self.app(scope, receive, send)
