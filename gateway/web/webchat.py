"""The webchat visitor API: parse, authorise (a visitor session per visitor, confined to that visitor's own
conversations), record or read, respond. HTTP only."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import hours, keys, metrics
from gateway.breaker import State
from gateway.connector import Inbound, WidgetConnector
from gateway.deployment import Channel, Deployment
from gateway.errors import BadRequest, Conflict, UnknownChannel
from gateway.handover import fallback
from gateway.handover.store import Conversation, Message, Recorded, Refused, message_after, place
from gateway.web import ratelimit, sse
from gateway.web.auth import bearer, open_visitor, visitor_of
from gateway.web.http import json_body
from gateway.web.pipeline import MAX_TEXT, record
from gateway.web.webhooks import counted

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_MESSAGE_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
VISITOR_PAGE = 50  # messages the widget shows at first; "Earlier messages" pages back
VISITOR_FIELDS = ("id", "author", "text", "created_at", "kind", "agent_name", "rich", "media", "with")


def _channel(request: Request) -> tuple[Deployment, Channel]:
    deployment: Deployment = request.app.state.deployment
    channel = deployment.channel(request.path_params["channel"])
    if not isinstance(channel.connector, WidgetConnector):
        raise UnknownChannel(f"channel {channel.name!r} is not a webchat channel")
    return deployment, channel


async def _visitor(request: Request, channel: Channel) -> str:
    token = bearer(request.headers.get("authorization"))
    return await visitor_of(request.app.state.aredis, channel.workspace.id, channel.name, token)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def widget_config(channel: Channel, replies: str = "ai") -> dict[str, Any]:
    """What the widget shows before and around a session: the channel's texts, the AI's name, who replies to a new
    conversation, input limits."""
    assert isinstance(channel.connector, WidgetConnector)
    widget = channel.connector.widget()
    agent = channel.workspace.ai_agent
    config = {"channel": channel.name, "title": widget.title, "greeting": widget.greeting,
              "language": channel.workspace.language,
              "ai_name": agent.name if agent else "", "replies": replies, "limits": {"text": MAX_TEXT},
              "contact_form": {"fields": fallback.FORM["fields"], "require_one_of": ["phone", "email"]},
              "csat": channel.workspace.reports.csat}
    business_hours = channel.workspace.business_hours
    now = datetime.now(UTC)
    if not hours.is_open(business_hours, now):
        opening = hours.next_opening(business_hours, now)
        config["team_back"] = hours.describe(opening, now, channel.workspace.language)
        config["team_back_in"] = {language: hours.describe(opening, now, language) for language in hours.LANGUAGES}
    return config


async def who_replies(request: Request, channel: Channel) -> str:
    """"ai" when a new conversation would be answered by the AI at once; "team" when it would wait for a person (the
    AI agent is unpublished, or its model's circuit is open)."""
    agent = channel.workspace.ai_agent
    if agent is None:
        return "team"
    client, workspace = request.app.state.aredis, channel.workspace.id
    async with client.pipeline(transaction=False) as pipe:
        pipe.hget(keys.key(keys.AI_AGENT, workspace_id=workspace), "published")
        pipe.hgetall(keys.key(keys.MODEL_BREAKER, workspace_id=workspace))
        published, breaker = await pipe.execute()
    if not (agent.published if published is None else published == "1"):
        return "team"
    return "team" if State.of(breaker, agent.model).describe(int(time.time() * 1000))["state"] == "open" else "ai"


async def get_config(request: Request) -> Response:
    """
    summary: The widget's settings for a channel (title, greeting, AI name, input limits); no session needed
    parameters: [{$ref: '#/components/parameters/Channel'}]
    responses:
      200:
        description: The settings
        content: {application/json: {schema: {$ref: '#/components/schemas/WidgetConfig'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
    """
    _, channel = _channel(request)
    return JSONResponse(widget_config(channel, await who_replies(request, channel)))


async def create_session(request: Request) -> Response:
    """
    summary: Start a visitor session (it lasts 30 days from its last use)
    parameters: [{$ref: '#/components/parameters/Channel'}]
    responses:
      201:
        description: The session's token (send it as a Bearer token) and the settings of GET /webchat/{channel}/config
        content:
          application/json:
            schema:
              allOf:
                - $ref: '#/components/schemas/WidgetConfig'
                - type: object
                  required: [token, visitor]
                  properties: {token: {type: string}, visitor: {type: string}}
      404: {$ref: '#/components/responses/UnknownChannel'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    deployment, channel = _channel(request)
    await ratelimit.check(request.app.state.aredis, channel.workspace.id, "sessions", client_ip(request),
                          deployment.config.limits.ip_sessions, "new chats from this address")
    visitor, token = await open_visitor(request.app.state.aredis, channel.workspace.id, channel.name)
    config = widget_config(channel, await who_replies(request, channel))
    return JSONResponse({"token": token, "visitor": visitor, **config}, status_code=201)


async def post_message(request: Request) -> Response:
    """
    summary: Send a message as the visitor
    description: A retried POST with the same client_id is recorded once.
    security: [{visitorToken: []}]
    parameters: [{$ref: '#/components/parameters/Channel'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [text]
            properties:
              text: {type: string, minLength: 1, maxLength: 4096, pattern: '\\S'}
              client_id: {type: string, pattern: '^[A-Za-z0-9._:-]{1,100}$'}
    responses:
      201:
        description: Recorded
        content: {application/json: {schema: {$ref: '#/components/schemas/Recorded'}}}
      200:
        description: Already recorded (the same client_id)
        content: {application/json: {schema: {$ref: '#/components/schemas/Recorded'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: The visitor session belongs to another channel
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    deployment, channel = _channel(request)
    started = time.perf_counter()
    with counted(channel.name):
        visitor = await _visitor(request, channel)
        recorded = await _record(request, deployment, channel, visitor)
    metrics.WEBHOOKS.labels(channel.name, "duplicate" if recorded.duplicate else "accepted").inc()
    metrics.ACK.labels(channel.name).observe(time.perf_counter() - started)
    status = 200 if recorded.duplicate else 201
    return JSONResponse({"id": recorded.message, "conversation": recorded.conversation,
                         "duplicate": recorded.duplicate}, status_code=status)


async def _record(request: Request, deployment: Deployment, channel: Channel, visitor: str) -> Recorded:
    limits, client = deployment.config.limits, request.app.state.aredis
    await ratelimit.check(client, channel.workspace.id, "visitor", visitor, limits.visitor_messages, "messages")
    await ratelimit.check(client, channel.workspace.id, "ip", client_ip(request), limits.ip_messages,
                          "messages from this address")
    body = await json_body(request)
    text = body.get("text")
    client_id = body["client_id"] if "client_id" in body else secrets.token_hex(8)
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise BadRequest("'client_id' must be 1-100 characters of letters, digits, '.', '_', ':' or '-'")
    inbound = Inbound(channel=channel.name, sender=visitor, provider_id=f"{visitor}:{client_id}", text=text)
    [recorded] = await record(request.app.state.astore, [(channel, inbound)])
    assert isinstance(recorded, Recorded)
    return recorded


def party(conversation: Conversation) -> str:
    """Who the visitor is talking to: the AI, nobody yet (waiting for a person), a person; or the chat is closed."""
    if conversation["status"] == "closed":
        return "closed"
    owner = conversation["owner"]
    return "ai" if owner == "ai" else "waiting" if owner == "none" else "agent"


def visitor_view(message: Message | dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in VISITOR_FIELDS if message.get(k) not in (None, "", {}, [])}  # type: ignore[literal-required]


def _history(deployment: Deployment, channel: Channel, visitor: str, before: str, limit: int) -> dict[str, Any]:
    workspace_id = channel.workspace.id
    conversation_id = deployment.store.latest(workspace_id, channel.name, visitor)
    if not conversation_id:
        return {"conversation": None, "messages": [], "has_more": False, "next_before": None}
    conversation = deployment.store.conversation(workspace_id, conversation_id)
    page = deployment.store.page(workspace_id, conversation_id, before, limit, public_only=True)
    return {"conversation": {"id": conversation_id, "status": conversation["status"], "with": party(conversation),
                             "form_pending": conversation.get("form_state") == "sent",
                             "language": conversation.get("language", "")},
            "messages": [visitor_view(m) for m in page.messages], "has_more": page.has_more,
            "next_before": page.next_before or None}


async def get_messages(request: Request) -> Response:
    """
    summary: The visitor's current conversation, with the newest messages the visitor sees
    description: The newest `limit` public messages, oldest first; page back with `before` set to `next_before`
      while `has_more` is true.
    security: [{visitorToken: []}]
    parameters:
      - {$ref: '#/components/parameters/Channel'}
      - {$ref: '#/components/parameters/Before'}
      - {name: limit, in: query, schema: {type: integer, minimum: 0, maximum: 200, default: 50}}
    responses:
      200:
        description: The conversation (null before the visitor's first message) and a page of its public messages
        content:
          application/json:
            schema:
              type: object
              required: [conversation, messages, has_more, next_before]
              properties:
                has_more: {type: boolean, description: Older messages exist}
                next_before: {type: string, nullable: true, description: The `before` that pages back}
                conversation:
                  type: object
                  nullable: true
                  required: [id, status, with, form_pending]
                  properties:
                    id: {type: string}
                    status: {type: string, enum: [open, closed]}
                    with: {$ref: '#/components/schemas/Party'}
                    form_pending: {type: boolean, description: The contact form awaits the visitor's details}
                    language:
                      type: string
                      description: The customer's language as Baton read it ("" until it has); the widget speaks it
                messages: {type: array, items: {$ref: '#/components/schemas/VisitorMessage'}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: The visitor session belongs to another channel
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
    """
    deployment, channel = _channel(request)
    visitor = await _visitor(request, channel)
    given = request.query_params.get("before", "")
    if given and not _MESSAGE_ID.fullmatch(given):
        raise BadRequest(f"'before' must be a message id such as 1717171717171-42, not {given[:40]!r}")
    limit = request.query_params.get("limit", str(VISITOR_PAGE))
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 3 and int(limit) <= 200):
        raise BadRequest("'limit' must be a whole number from 0 to 200")
    return JSONResponse(await run_in_threadpool(_history, deployment, channel, visitor, given, int(limit)))


async def post_contact(request: Request) -> Response:
    """
    summary: Submit the contact form the no-human fallback sent
    description: A valid phone number or email address is required.
    security: [{visitorToken: []}]
    parameters: [{$ref: '#/components/parameters/Channel'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            properties:
              name: {type: string, maxLength: 120}
              phone: {type: string, maxLength: 40, example: '+44 20 7946 0958'}
              email: {type: string, maxLength: 254, example: name@example.com}
              message: {type: string, maxLength: 2000}
    responses:
      201:
        description: Stored in Contacts
        content:
          application/json:
            schema: {type: object, required: [contact], properties: {contact: {type: string}}}
      400:
        description: 'Invalid details: "fields" says what is wrong with each'
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: The visitor session belongs to another channel
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
      409:
        description: No contact form is pending
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
    """
    deployment, channel = _channel(request)
    visitor = await _visitor(request, channel)
    details = fallback.validate(await json_body(request))
    contact = await run_in_threadpool(_capture, deployment, channel, visitor, details)
    return JSONResponse({"contact": contact}, status_code=201)


def _capture(deployment: Deployment, channel: Channel, visitor: str, details: dict[str, str]) -> str:
    workspace_id = channel.workspace.id
    conversation_id = deployment.store.latest(workspace_id, channel.name, visitor)
    if not conversation_id:
        raise Conflict("no contact form is pending in this conversation")
    return fallback.capture(deployment, workspace_id, conversation_id, details)


async def post_rating(request: Request) -> Response:
    """
    summary: Rate the visitor's last conversation, once it is closed (a new rating replaces the previous one)
    security: [{visitorToken: []}]
    parameters: [{$ref: '#/components/parameters/Channel'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            required: [rating]
            properties:
              rating: {type: integer, minimum: 1, maximum: 5}
              comment: {type: string, maxLength: 1000}
    responses:
      200:
        description: Recorded, and attributed to the AI or to the people who resolved the conversation
        content:
          application/json:
            schema:
              type: object
              required: [conversation, rating]
              properties:
                conversation: {type: string}
                rating: {type: integer}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: The visitor session belongs to another channel
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
      409:
        description: The visitor has no closed conversation to rate
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
    """
    deployment, channel = _channel(request)
    visitor = await _visitor(request, channel)
    body = await json_body(request)
    rating, comment = body.get("rating"), body.get("comment", "")
    if type(rating) is not int or not 1 <= rating <= 5:
        raise BadRequest("'rating' must be a whole number from 1 to 5")
    if not isinstance(comment, str) or len(comment) > 1000:
        raise BadRequest("'comment' must be text of at most 1,000 characters")
    unknown = sorted(set(body) - {"rating", "comment"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    conversation_id = await run_in_threadpool(_rate, deployment, channel, visitor, rating, comment.strip())
    return JSONResponse({"conversation": conversation_id, "rating": rating})


def _rate(deployment: Deployment, channel: Channel, visitor: str, rating: int, comment: str) -> str:
    workspace_id = channel.workspace.id
    conversation_id = deployment.store.latest(workspace_id, channel.name, visitor)
    if not conversation_id:
        raise Conflict("there is no conversation to rate yet")
    try:
        deployment.store.rate(workspace_id, conversation_id, rating, comment, via="widget")
    except Refused as exc:
        if exc.code == "not_closed":
            raise Conflict("the conversation is still open: it can be rated once it is closed") from exc
        raise
    return conversation_id


async def events(request: Request) -> Response:
    """
    summary: Server-sent events of the visitor's conversation
    description: Each event has id "<conversation>/<message>"; reconnect with Last-Event-ID (or ?last_event_id=) to
      catch up. An id of a conversation that is not the visitor's catches up on nothing.
    security: [{visitorToken: []}]
    parameters:
      - {$ref: '#/components/parameters/Channel'}
      - {name: Last-Event-ID, in: header, schema: {$ref: '#/components/schemas/VisitorEventId'}}
      - {name: last_event_id, in: query, schema: {$ref: '#/components/schemas/VisitorEventId'}}
    responses:
      200:
        description: The stream of events
        content: {text/event-stream: {schema: {$ref: '#/components/schemas/VisitorEvent'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: The visitor session belongs to another channel
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404: {$ref: '#/components/responses/UnknownChannel'}
    """
    _, channel = _channel(request)
    visitor = await _visitor(request, channel)
    conversation_id, _, position = sse.last_event_id(request, _check_event_id).partition("/")
    if conversation_id and not await request.app.state.astore.belongs_to(channel.workspace.id, conversation_id,
                                                                         channel.name, visitor):
        conversation_id, position = "", ""  # another visitor's conversation: nothing of it is caught up, nor followed
    return sse.response(_visitor_events(request, channel, visitor, conversation_id, position))


def _check_event_id(value: str) -> None:
    conversation_id, _, position = value.partition("/")
    if not (conversation_id.isascii() and conversation_id.isdigit()) or (position and not sse.stream_id(position)):
        raise BadRequest("Last-Event-ID must be '<conversation>/<message id>'")


async def _visitor_events(request: Request, channel: Channel, visitor: str, conversation_id: str,
                          position: str) -> AsyncIterator[str]:
    """Follow the visitor's latest conversation, switching to a new one when it starts."""
    store, hub = request.app.state.astore, request.app.state.hub
    workspace_id = channel.workspace.id
    if not conversation_id:  # no catch-up asked for: new messages of the current conversation, and all of a later one
        conversation_id = await store.latest(workspace_id, channel.name, visitor)
        position = await store.newest_message_id(workspace_id, conversation_id) if conversation_id else ""
    following = {"conversation": conversation_id, "sent": position}
    subscriber = hub.subscribe(workspace_id, f"visitor:{channel.name}:{visitor}")

    async def catch_up() -> AsyncIterator[str]:
        """The public messages not sent yet, from the history (never trimmed): of the conversation followed, and of
        the visitor's latest one when it is another."""
        latest = await sse.patiently(store.latest, workspace_id, channel.name, visitor)
        for followed_id in dict.fromkeys([following["conversation"], latest]):
            if not followed_id:
                continue
            if followed_id != following["conversation"]:
                following.update(conversation=followed_id, sent="")
            hub.listen(subscriber, f"conversation:{followed_id}")
            for message in await sse.patiently(store.messages_after, workspace_id, followed_id, following["sent"]):
                following["sent"] = message["id"]
                if message["visibility"] == "public":
                    yield sse.frame(f"{followed_id}/{message['id']}", "message", {"conversation": followed_id,
                                                                                 **visitor_view(message)})

    def handle(event_id: str, event: dict[str, Any]) -> tuple[Any, bool]:
        if event["type"] == "conversation.created":  # the hub has made the subscriber follow it
            following.update(conversation=event["conversation"], sent="")
            return None, False
        if event["conversation"] != following["conversation"] or not message_after(event["id"], following["sent"]):
            return None, False
        if place(event["id"]) > place(following["sent"]) + 1:
            return sse.GAP, False  # messages between (internal ones, or public ones the hub skipped): from the history
        following["sent"] = event["id"]
        data = {"conversation": event["conversation"], **visitor_view(event)}
        return sse.frame(f"{event['conversation']}/{event['id']}", "message", data), False

    try:
        yield "retry: 2000\n\n"
        async for text in catch_up():
            yield text
        async for text in sse.forward(subscriber, handle, catch_up):
            yield text
    finally:
        hub.unsubscribe(subscriber)
