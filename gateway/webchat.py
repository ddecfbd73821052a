"""The webchat visitor API: a signed session per visitor, confined to that visitor's own conversations."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import keys, sse
from gateway.auth import bearer, visitor_from_token, visitor_token
from gateway.connector import Inbound
from gateway.contact_form import FORM, capture, validate
from gateway.deployment import Channel, Deployment
from gateway.errors import BadRequest, Conflict, UnknownChannel
from gateway.http import json_body
from gateway.pipeline import record_inbound
from gateway.state import decode_message

MAX_TEXT = 4096
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
VISITOR_FIELDS = ("id", "author", "text", "created_at", "kind", "agent_name", "rich", "media")


def _channel(request: Request) -> tuple[Deployment, Channel]:
    deployment: Deployment = request.app.state.deployment
    channel = deployment.channel(request.path_params["channel"])
    if channel.connector.type != "webchat":
        raise UnknownChannel(f"channel {channel.name!r} is not a webchat channel")
    return deployment, channel


def _visitor(request: Request, deployment: Deployment, channel: Channel) -> str:
    token = request.query_params.get("token") if request.url.path.endswith("/events") else None
    return visitor_from_token(deployment.secret, channel.name, token or bearer(request.headers.get("authorization")))


def widget_config(channel: Channel) -> dict[str, Any]:
    """What the widget shows before and around a session: the channel's texts, the AI's name, input limits."""
    settings = channel.connector.settings
    agent = channel.workspace.ai_agent
    return {"channel": channel.name, "title": settings.title, "greeting": settings.greeting,  # type: ignore[attr-defined]
            "ai_name": agent.name if agent else "", "limits": {"text": MAX_TEXT},
            "contact_form": {"fields": FORM["fields"]}}


async def get_config(request: Request) -> Response:
    """
    summary: The widget's settings for a channel (title, greeting, AI name, input limits); no session needed
    parameters: [{name: channel, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"channel", "title", "greeting", "ai_name", "limits": {"text"}, "contact_form": {"fields"}}'}
      404: {description: Unknown channel}
    """
    _, channel = _channel(request)
    return JSONResponse(widget_config(channel))


async def create_session(request: Request) -> Response:
    """
    summary: Start a visitor session
    parameters: [{name: channel, in: path, required: true, schema: {type: string}}]
    responses:
      201: {description: '{"token", "visitor", and the channel settings of GET /webchat/{channel}/config} — send the
        token as a Bearer token'}
      404: {description: Unknown channel}
    """
    deployment, channel = _channel(request)
    visitor, token = visitor_token(deployment.secret, channel.name)
    return JSONResponse({"token": token, "visitor": visitor, **widget_config(channel)}, status_code=201)


async def post_message(request: Request) -> Response:
    """
    summary: Send a message as the visitor
    description: 'Body {"text": …, "client_id": …}. A retried POST with the same client_id is not a second message.'
    parameters: [{name: channel, in: path, required: true, schema: {type: string}}]
    responses:
      201: {description: Recorded}
      200: {description: Already recorded (same client_id)}
      400: {description: Missing or too long text, bad client_id}
      401: {description: Missing or invalid visitor token}
    """
    deployment, channel = _channel(request)
    visitor = _visitor(request, deployment, channel)
    body = await json_body(request)
    text, client_id = body.get("text"), body.get("client_id") or secrets.token_hex(8)
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise BadRequest("'client_id' must be 1-100 characters of letters, digits, '.', '_', ':' or '-'")
    inbound = Inbound(channel=channel.name, sender=visitor, provider_id=f"{visitor}:{client_id}", text=text,
                      extra={"client_id": client_id})
    change = await run_in_threadpool(record_inbound, deployment, channel, inbound)
    status = 200 if change["duplicate"] else 201
    return JSONResponse({"id": change["message"], "conversation": change["conversation"],
                         "duplicate": change["duplicate"]}, status_code=status)


def visitor_view(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in VISITOR_FIELDS if message.get(k) not in (None, "", {}, [])}


def _history(deployment: Deployment, channel: Channel, visitor: str) -> dict[str, Any]:
    workspace = channel.workspace.id
    cid = deployment.redis.get(keys.key(keys.LATEST, ws=workspace, channel=channel.name, sender=visitor))
    if not cid:
        return {"conversation": None, "messages": []}
    conversation = deployment.state.conversation(workspace, str(cid))
    messages = deployment.state.messages(workspace, str(cid), public_only=True)
    return {"conversation": {"id": cid, "status": conversation["status"],
                             "form_pending": conversation.get("form_state") == "sent"},
            "messages": [visitor_view(m) for m in messages]}


async def get_messages(request: Request) -> Response:
    """
    summary: The visitor's current conversation
    parameters: [{name: channel, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"conversation": {…}, "messages": [{"id", "author", "text", "created_at", …}]}'}
      401: {description: Missing or invalid visitor token}
    """
    deployment, channel = _channel(request)
    visitor = _visitor(request, deployment, channel)
    return JSONResponse(await run_in_threadpool(_history, deployment, channel, visitor))


async def post_contact(request: Request) -> Response:
    """
    summary: Submit the contact form the no-human fallback sent
    description: 'Body {"name", "phone", "email", "message"}; a valid phone or email is required.'
    parameters: [{name: channel, in: path, required: true, schema: {type: string}}]
    responses:
      201: {description: Stored in Contacts}
      400: {description: 'Invalid details: {"error", "fields": {field: problem}}'}
      409: {description: No contact form is pending}
    """
    deployment, channel = _channel(request)
    visitor = _visitor(request, deployment, channel)
    details = validate(await json_body(request))
    contact = await run_in_threadpool(_capture, deployment, channel, visitor, details)
    return JSONResponse({"contact": contact}, status_code=201)


def _capture(deployment: Deployment, channel: Channel, visitor: str, details: dict[str, str]) -> str:
    workspace = channel.workspace.id
    cid = deployment.redis.get(keys.key(keys.LATEST, ws=workspace, channel=channel.name, sender=visitor))
    conversation = deployment.state.conversation(workspace, str(cid)) if cid else {}
    if conversation.get("form_state") != "sent":
        raise Conflict("no contact form is pending in this conversation")
    return capture(deployment, workspace, conversation, details)


async def events(request: Request) -> Response:
    """
    summary: Server-sent events of the visitor's conversation
    description: 'Each event has id "<conversation>/<message>"; reconnect with Last-Event-ID to catch up.'
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}}
      - {name: token, in: query, required: true, schema: {type: string}}
    responses:
      200: {description: text/event-stream of "message" events}
      401: {description: Missing or invalid visitor token}
    """
    deployment, channel = _channel(request)
    visitor = _visitor(request, deployment, channel)
    return sse.response(_visitor_events(request, deployment, channel, visitor))


async def _visitor_events(request: Request, deployment: Deployment, channel: Channel,
                          visitor: str) -> AsyncIterator[str]:
    """Follow the visitor's latest conversation, switching to a new one when it starts."""
    client = request.app.state.aredis
    workspace = channel.workspace.id
    latest_key = keys.key(keys.LATEST, ws=workspace, channel=channel.name, sender=visitor)
    cid, _, position = sse.last_event_id(request).partition("/")
    if not cid:  # no catch-up asked for: new messages of the current conversation, all of a later one
        cid = await client.get(latest_key) or ""
        position = await _newest(client, keys.key(keys.MESSAGES, ws=workspace, cid=cid)) if cid else ""
    quiet_since = time.monotonic()
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        latest = await client.get(latest_key)
        if not latest:
            await asyncio.sleep(0.25)
        else:
            if latest != cid:
                cid, position = latest, "0"
            stream = keys.key(keys.MESSAGES, ws=workspace, cid=cid)
            entries = await sse.read_stream(client, stream, position, block_ms=1000)
            for mid, fields in entries:
                position, quiet_since = mid, time.monotonic()
                if fields.get("visibility", "public") == "public":
                    message = visitor_view(decode_message(mid, fields, {}))
                    yield sse.frame(f"{cid}/{mid}", "message", {"conversation": cid, **message})
        if time.monotonic() - quiet_since > sse.KEEPALIVE_MS / 1000:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"


async def _newest(client: Any, stream: str) -> str:
    newest = await client.xrevrange(stream, count=1)
    return str(newest[0][0]) if newest else "0"
