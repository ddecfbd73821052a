"""The Starlette application: routes, one lifespan that owns the Redis clients and the event hub, errors mapped
once. Middleware sits on the routes that need it: none on provider webhooks (the hot path, which skips the router
too: WebhooksFirst), the session cookie on /api, each channel's own CORS on /webchat, strict security headers on
pages and the API."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import schema
from gateway.connector import WidgetConnector
from gateway.deployment import Deployment
from gateway.handover.store import AsyncStore
from gateway.redis_server import connect_async
from gateway.web import api, health, inbox, knowledge, openapi, toolbox, webchat, webhooks
from gateway.web.http import EXCEPTION_HANDLERS, SecurityHeaders, resource
from gateway.web.session import SessionAuth
from gateway.web.sse import Hub

log = logging.getLogger("baton.app")

STATIC = resources.files("gateway.web").joinpath("static")
PAGES = [Middleware(SecurityHeaders)]

async def home(request: Request) -> Response:
    return RedirectResponse("/demo", status_code=307)


class ChannelCORS:
    """CORS for the webchat API, per channel: each channel answers only the origins allowed to embed its widget."""

    def __init__(self, app: ASGIApp, deployment: Deployment) -> None:
        self.app = app
        self.by_channel: dict[str, ASGIApp] = {}
        for channel in deployment.channels.values():
            if isinstance(channel.connector, WidgetConnector):
                self.by_channel[channel.name] = CORSMiddleware(
                    app, allow_origins=list(channel.connector.widget().allowed_origins), allow_methods=["GET", "POST"],
                    allow_headers=["Authorization", "Content-Type", "Last-Event-ID"], expose_headers=["Retry-After"],
                    max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        channel_name = scope["path"].removeprefix(scope.get("root_path", "")).lstrip("/").split("/", 1)[0]
        await self.by_channel.get(channel_name, self.app)(scope, receive, send)


def routes(deployment: Deployment) -> list[BaseRoute]:
    return [
        # Every method, so that the answer's Allow names the channel's own methods; documented per channel (openapi).
        Route("/webhooks/{channel}", webhooks.endpoint, methods=webhooks.METHODS, include_in_schema=False),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Route("/openapi.json", openapi.document, include_in_schema=False),
        Mount("/webchat", routes=[
            Route("/{channel}/config", webchat.get_config, methods=["GET"]),
            Route("/{channel}/sessions", webchat.create_session, methods=["POST"]),
            Route("/{channel}/messages", resource(get=webchat.get_messages, post=webchat.post_message)),
            Route("/{channel}/contact", webchat.post_contact, methods=["POST"]),
            Route("/{channel}/rating", webchat.post_rating, methods=["POST"]),
            Route("/{channel}/events", webchat.events, methods=["GET"]),
        ], middleware=[Middleware(ChannelCORS, deployment=deployment)]),
        Mount("/api", routes=[
            Route("/conversations", api.list_conversations, methods=["GET"]),
            Route("/conversations/{id}", api.get_conversation, methods=["GET"]),
            Route("/conversations/{id}/assign", api.assign, methods=["POST"]),
            Route("/conversations/{id}/unassign", api.unassign, methods=["POST"]),
            Route("/conversations/{id}/close", api.close, methods=["POST"]),
            Route("/conversations/{id}/reopen", api.reopen, methods=["POST"]),
            Route("/conversations/{id}/notes", api.post_note, methods=["POST"]),
            Route("/conversations/{id}/messages", resource(get=api.list_messages, post=api.post_message)),
            Route("/conversations/{id}/messages/{message}/resend", api.resend, methods=["POST"]),
            Route("/conversations/{id}/resend", api.resend_all, methods=["POST"]),
            Route("/search", toolbox.search_conversations, methods=["GET"]),
            Route("/labels", toolbox.list_labels, methods=["GET"]),
            Route("/labels/{name}", resource(put=toolbox.put_label, delete=toolbox.delete_label)),
            Route("/conversations/{id}/labels", toolbox.label_conversation, methods=["POST"]),
            Route("/conversations/{id}/snooze", toolbox.snooze, methods=["POST"]),
            Route("/conversations/{id}/unsnooze", toolbox.unsnooze, methods=["POST"]),
            Route("/conversations/{id}/labels/{name}", toolbox.unlabel_conversation, methods=["DELETE"]),
            Route("/canned", toolbox.list_canned, methods=["GET"]),
            Route("/canned/{shortcut}", resource(put=toolbox.put_canned, delete=toolbox.delete_canned)),
            Route("/contacts", api.list_contacts, methods=["GET"]),
            Route("/contacts/{id}", resource(get=api.get_contact, patch=toolbox.edit_contact)),
            Route("/team", api.list_team, methods=["GET"]),
            Route("/agents/{id}/teams", api.set_agent_teams, methods=["PUT"]),
            Route("/reports", api.get_reports, methods=["GET"]),
            Route("/media/{channel}/{media}", api.get_media, methods=["GET"]),
            Route("/me/presence", api.set_presence, methods=["PUT"]),
            Route("/assignment", resource(get=api.get_assignment, put=api.set_assignment)),
            Route("/channels/{channel}/templates", resource(get=api.list_templates, post=api.refresh_templates)),
            Route("/ai-agent", resource(get=api.get_ai_agent, patch=api.set_ai_agent)),
            Route("/knowledge", resource(get=knowledge.list_articles, post=knowledge.create_article)),
            # Resources, as /knowledge/{id} after them is: a method they lack is answered here with their Allow,
            # not by {id}'s endpoint (which matches any method).
            Route("/knowledge/import", resource(post=knowledge.import_file)),
            Route("/knowledge/try", resource(post=knowledge.try_ai)),
            Route("/knowledge/{id}", resource(get=knowledge.get_article, put=knowledge.update_article,
                                              delete=knowledge.delete_article)),
            Route("/events", api.events, methods=["GET"]),
        ], middleware=[Middleware(SecurityHeaders), Middleware(SessionAuth)]),
        # Pages carry their middleware themselves: a Mount("/") around them would match every path, so that a
        # wrong method on a route above answered 404 instead of 405.
        Route("/", home, include_in_schema=False, middleware=PAGES),
        *inbox.routes(middleware=PAGES),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static", middleware=PAGES),
    ]


class WebhooksFirst:
    """A provider's webhook POST goes straight to its handler, ahead of Starlette's router and its two always-present
    middlewares, and is answered as the app would answer it, errors included: every inbound message takes this path,
    and it cost the gateway a fifth of its CPU per webhook (0.41-0.45 ms against 0.49-0.55 ms). Everything else, and
    the lifespan, goes to the app."""

    PREFIX = "/webhooks/"

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state
        self.routes = app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        channel_name = path[len(self.PREFIX):]
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(self.PREFIX) \
                or not channel_name or "/" in channel_name:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        scope["path_params"] = {"channel": channel_name}
        request = Request(scope, receive)
        try:
            response = await webhooks.receive(request)
        except Exception as exc:  # noqa: BLE001 - answered by the app's own handler for it
            handler = next(handler for kind, handler in EXCEPTION_HANDLERS.items() if isinstance(exc, kind))
            response = await handler(request, exc)
        await response(scope, receive, send)


async def _check_schema(deployment: Deployment) -> None:
    """Stamp a new store with this release's schema, or say at once that the data is another's (`/readyz` then
    answers 503 with the same reason, and the state script refuses every write)."""
    try:
        await run_in_threadpool(schema.ensure, deployment.redis)
    except schema.SchemaMismatch as exc:
        log.error("%s", exc.reason)
    except RedisError as exc:  # Redis not up yet: /readyz says so, and checks the schema once it is
        log.warning("could not read the data's schema version: %s", exc)


def create_app(deployment: Deployment) -> WebhooksFirst:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.aredis = connect_async(deployment.redis_url, decode_responses=True, health_check_interval=30)
        durability = deployment.config.durability
        app.state.astore = AsyncStore(app.state.aredis, durability.replica_acks, durability.timeout_ms,
                                     durability.aof_acks)
        app.state.astore.settings = deployment.store.settings
        app.state.hub = Hub(deployment.redis_url, [w.id for w in deployment.config.workspaces], connect_async)
        app.state.hub.start()
        await _check_schema(deployment)
        try:
            yield
        finally:
            await app.state.hub.stop()
            await app.state.aredis.aclose()

    app = Starlette(routes=routes(deployment), exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.deployment = deployment  # outside the lifespan: /openapi.json is served from the config alone
    return WebhooksFirst(app)
