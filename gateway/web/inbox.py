"""The pages people use: the team inbox (/inbox) and its cookie session, the widget script (/widget.js)
with the modules it imports (/embed/…) and the demo page (/demo)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.connector import WidgetConnector
from gateway.errors import BadRequest, Forbidden, NotFound, Unauthorized
from gateway.team import Agent
from gateway.web import session
from gateway.web.api import MAX_TEXT, deployment_of
from gateway.web.auth import SESSION_MAX_S, authenticate_agent, close_session, open_session, session_agent
from gateway.web.http import json_body, resource

STATIC = resources.files("gateway.web").joinpath("static")
NO_CACHE = {"Cache-Control": "no-cache"}


def _page(name: str, media_type: str = "text/html; charset=utf-8"):  # type: ignore[no-untyped-def]
    async def serve(request: Request) -> Response:
        return FileResponse(str(STATIC.joinpath(name)), media_type=media_type, headers=NO_CACHE)

    return serve


class EmbeddableModules(StaticFiles):
    """The static ES modules, importable from any site: /widget.js, embedded on a shop's own pages,
    imports the widget's modules (and the inbox's dom.js they share) from here, and a module script is
    fetched in CORS mode. Public code with no credentials, so any origin may read it; JavaScript only."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not path.endswith(".js"):
            raise NotFound("only the widget's JavaScript modules are served here")
        response = await super().get_response(path, scope)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Cache-Control"] = "no-cache"  # one version of every module after an upgrade
        return response


@cache
def _demo_template() -> str:
    return STATIC.joinpath("demo.html").read_text(encoding="utf-8")


async def demo(request: Request) -> Response:
    """A demo shop page embedding the widget with one script tag, for ?channel= or the first widget channel."""
    widgets = [c.name for c in deployment_of(request).channels.values() if isinstance(c.connector, WidgetConnector)]
    channel_name = request.query_params.get("channel") or (widgets[0] if widgets else "")
    if channel_name not in widgets:
        raise NotFound(f"no webchat channel named {channel_name!r}")
    page = _demo_template().replace("{{channel}}", html.escape(channel_name, quote=True))
    return HTMLResponse(page, headers=NO_CACHE)


async def _signed_in(request: Request) -> tuple[str, Agent]:
    current = request.cookies.get(session.COOKIE)
    if not current:
        raise Unauthorized("not signed in")
    agent = await run_in_threadpool(session_agent, deployment_of(request).redis, current)
    return current, agent


def _session_body(key: bytes, current: str, agent: Agent, workspace_name: str) -> dict[str, object]:
    return {"agent": agent.public(), "workspace": agent.workspace_id, "workspace_name": workspace_name,
            "csrf": session.csrf_token(key, current), "limits": {"text": MAX_TEXT}}


async def get_session(request: Request) -> Response:
    """
    summary: The signed-in agent and the session's CSRF value (send it as X-CSRF-Token)
    security: [{inboxSession: []}]
    responses:
      200:
        description: The session
        content: {application/json: {schema: {$ref: '#/components/schemas/InboxSession'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
    """
    current, agent = await _signed_in(request)
    name = deployment_of(request).workspace(agent.workspace_id).name or agent.workspace_id
    return JSONResponse(_session_body(await session.key_of(request.scope), current, agent, name))


async def sign_in(request: Request) -> Response:
    """
    summary: Sign in to the inbox with an agent token; sets an HttpOnly session cookie
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [token]
            properties: {token: {type: string, minLength: 1, pattern: '\\S', description: The agent's API token}}
    responses:
      200:
        description: Signed in; the session cookie is set
        headers: {Set-Cookie: {schema: {type: string}}}
        content: {application/json: {schema: {$ref: '#/components/schemas/InboxSession'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      413: {$ref: '#/components/responses/TooLarge'}
      415:
        description: Not a JSON body (a cross-site form cannot sign anyone in)
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": "send the token as JSON"}, status_code=415)
    token = (await json_body(request)).get("token")
    if not isinstance(token, str) or not token.strip():
        raise BadRequest("'token' must be the agent token that `baton agent create` printed")
    deployment = deployment_of(request)
    agent = await run_in_threadpool(authenticate_agent, deployment.redis, token.strip())
    current, expires = await run_in_threadpool(open_session, deployment.redis, agent)
    name = deployment.workspace(agent.workspace_id).name or agent.workspace_id
    response = JSONResponse(_session_body(await session.key_of(request.scope), current, agent, name))
    session.set_cookie(request, response, current, max_age=SESSION_MAX_S)
    return response


async def sign_out(request: Request) -> Response:
    """
    summary: Sign out (needs the X-CSRF-Token of the session it ends; without a session there is nothing to do)
    security: [{inboxSession: []}, {}]
    parameters: [{name: X-CSRF-Token, in: header, schema: {type: string}}]
    responses:
      200:
        description: Signed out; the session cookie is cleared
        content:
          application/json:
            schema: {type: object, required: [signed_out], properties: {signed_out: {type: boolean, enum: [true]}}}
      403:
        description: Missing or wrong X-CSRF-Token
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    key = await session.key_of(request.scope)
    current = request.cookies.get(session.COOKIE)
    if current and not session.csrf_ok(key, current, request.headers.get(session.CSRF_HEADER)):
        raise Forbidden("missing or invalid X-CSRF-Token header")
    if current:
        await run_in_threadpool(close_session, deployment_of(request).redis, current)
    response = JSONResponse({"signed_out": True})
    session.delete_cookie(request, response)
    return response


def routes(middleware: Sequence[Middleware] = ()) -> list[BaseRoute]:
    return [
        Route("/demo", demo, include_in_schema=False, middleware=middleware),
        Route("/widget.js", _page("widget.js", "text/javascript; charset=utf-8"), include_in_schema=False,
              middleware=middleware),
        Mount("/embed", EmbeddableModules(directory=str(STATIC)), name="embed", middleware=middleware),
        Route("/inbox", _page("inbox.html"), include_in_schema=False, middleware=middleware),
        Route("/inbox/session", resource(get=get_session, post=sign_in), middleware=middleware),
        Route("/inbox/session/delete", sign_out, methods=["POST"], middleware=middleware),
    ]
