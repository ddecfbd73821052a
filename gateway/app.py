"""The Starlette application: routes, one lifespan that owns the Redis clients, errors mapped once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from gateway import __version__, api, inbox, webchat, webhooks
from gateway.deployment import Deployment
from gateway.http import EXCEPTION_HANDLERS, PathScoped, SecurityHeaders
from gateway.session import SessionAuth

log = logging.getLogger("baton.app")

STATIC = resources.files("gateway").joinpath("static")

schemas = SchemaGenerator({"openapi": "3.0.3", "info": {"title": "Baton", "version": __version__}})


async def openapi(request: Request) -> Response:
    return schemas.OpenAPIResponse(request=request)


async def health(request: Request) -> Response:
    """
    summary: Liveness and Redis reachability
    responses: {200: {description: '{"status": "ok"}'}, 503: {description: Redis unreachable}}
    """
    try:
        await request.app.state.aredis.ping()
    except (aioredis.RedisError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})


async def home(request: Request) -> Response:
    return RedirectResponse("/demo", status_code=307)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, include_in_schema=False),
        Route("/healthz", health),
        Route("/openapi.json", openapi, include_in_schema=False),
        Route("/webhooks/{channel}", webhooks.receive, methods=["POST"]),
        Route("/webchat/{channel}/config", webchat.get_config, methods=["GET"]),
        Route("/webchat/{channel}/sessions", webchat.create_session, methods=["POST"]),
        Route("/webchat/{channel}/messages", webchat.post_message, methods=["POST"]),
        Route("/webchat/{channel}/messages", webchat.get_messages, methods=["GET"]),
        Route("/webchat/{channel}/contact", webchat.post_contact, methods=["POST"]),
        Route("/webchat/{channel}/events", webchat.events, methods=["GET"]),
        Route("/api/conversations", api.list_conversations, methods=["GET"]),
        Route("/api/conversations/{id}", api.get_conversation, methods=["GET"]),
        Route("/api/conversations/{id}/assign", api.assign, methods=["POST"]),
        Route("/api/conversations/{id}/unassign", api.unassign, methods=["POST"]),
        Route("/api/conversations/{id}/close", api.close, methods=["POST"]),
        Route("/api/conversations/{id}/messages", api.post_message, methods=["POST"]),
        Route("/api/contacts", api.list_contacts, methods=["GET"]),
        Route("/api/contacts/{id}", api.get_contact, methods=["GET"]),
        Route("/api/team", api.list_team, methods=["GET"]),
        Route("/api/ai-agent", api.ai_agent, methods=["GET", "PATCH"]),
        Route("/api/events", api.events, methods=["GET"]),
        *inbox.routes(),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]


def create_app(deployment: Deployment) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.deployment = deployment
        app.state.aredis = aioredis.Redis.from_url(deployment.redis_url, decode_responses=True,
                                                   health_check_interval=30)
        try:  # so the first message's MULTI/EXEC finds the state script (pipeline.record_inbound)
            await run_in_threadpool(deployment.state.load)
        except RedisError as exc:
            log.warning("could not load the state script into Redis yet: %s", exc)
        try:
            yield
        finally:
            await app.state.aredis.aclose()

    origins = sorted({origin for channel in deployment.channels.values() if channel.connector.type == "webchat"
                      for origin in channel.connector.settings.allowed_origins})  # type: ignore[attr-defined]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(PathScoped, prefix="/webchat/", middleware=CORSMiddleware, allow_origins=origins,
                   allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "Last-Event-ID"]),
        Middleware(SessionAuth, prefix="/api/"),
    ]
    return Starlette(routes=routes(), middleware=middleware, exception_handlers=EXCEPTION_HANDLERS,
                     lifespan=lifespan)
