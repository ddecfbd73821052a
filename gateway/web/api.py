"""The agent API under /api: parse, authorise, call the handover's lifecycle, respond. HTTP only."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import keys, reports, templates, window
from gateway.breaker import Breaker
from gateway.deployment import Deployment, no_statuses
from gateway.errors import BadRequest, BatonError, CommitUnknown, ConfigError, NotFound, Unauthorized, Unavailable
from gateway.handover import lifecycle
from gateway.handover.store import VIEWS, Conversation, Page, parse_cursor
from gateway.team import Agent, list_agents
from gateway.web import media, ratelimit, sse
from gateway.web.auth import authenticate_agent, bearer, require_admin, session_agent, set_teams
from gateway.web.http import json_body

log = logging.getLogger("baton.api")

MAX_TEXT = 4096
LEASE_BEATS = 3  # keep-alive periods an open stream's lease outlasts its last renewal by (beyond the grace period)
MESSAGE_PAGE = 100  # messages in a conversation's detail; older ones are paged back (GET …/messages?before=)
_MESSAGE_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,29}")


def deployment_of(request: Request) -> Deployment:
    return request.app.state.deployment  # type: ignore[no-any-return]


async def current_agent(request: Request) -> Agent:
    """The calling agent, from the bearer token or the inbox's session cookie; rate-limited per agent."""
    deployment = deployment_of(request)
    session = request.scope.get("state", {}).get("session")
    if session:
        agent = await run_in_threadpool(session_agent, deployment.redis, session)
    else:
        agent = await run_in_threadpool(authenticate_agent, deployment.redis,
                                        bearer(request.headers.get("authorization")))
    try:
        deployment.workspace(agent.workspace_id)
    except ConfigError as exc:  # a token minted for a workspace that shares the Redis but not this config
        raise Unauthorized("this agent's workspace is not served here") from exc
    await ratelimit.check(request.app.state.aredis, agent.workspace_id, "agent", agent.id,
                          deployment.config.limits.agent_requests, "requests")
    return agent


def _limit(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name, str(default))
    digits = raw.lstrip("0") or "0"  # str.isdigit() takes "²" and "١", which int() refuses or reads as 1
    if not (raw.isascii() and raw.isdigit()) or len(digits) > len(str(most)) or int(digits) > most:
        raise BadRequest(f"'{name}' must be a whole number from 0 to {most}")
    return int(raw)


def _conversation_id(request: Request) -> str:
    conversation_id = request.path_params["id"]
    if not conversation_id.isdigit() or len(conversation_id) > 20:
        raise NotFound(f"no conversation {conversation_id[:40]!r}")
    return str(conversation_id)


async def list_conversations(request: Request) -> Response:
    """
    summary: The inbox views
    security: [{agentToken: []}]
    parameters:
      - {name: view, in: query, schema: {type: string, enum: [mine, waiting, ai, all, closed, overdue, snoozed]},
         description: 'overdue: the open chats past a response target (sla:), the most overdue first; snoozed: those
           snoozed (out of every other view until they wake)'}
      - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
      - {name: label, in: query, schema: {type: string, pattern: '^([a-z0-9][a-z0-9_-]{0,29})?$'}, example: vip,
         description: 'The label''s view instead: its conversations, open and closed, latest activity first (counts
           then hold `label` too)'}
      - {$ref: '#/components/parameters/Cursor'}
      - {name: limit, in: query, schema: {type: integer, minimum: 0, maximum: 200, default: 50}}
    responses:
      200:
        description: A page of the view's conversations, latest activity first (overdue, the most overdue first), and
          the size of every view; the pages of a view hold every conversation it counts, each once
        content:
          application/json:
            schema:
              type: object
              required: [conversations, next_cursor, counts]
              properties:
                conversations: {type: array, items: {$ref: '#/components/schemas/Conversation'}}
                next_cursor: {$ref: '#/components/schemas/NextCursor'}
                counts:
                  type: object
                  required: [mine, waiting, ai, all, closed, overdue]
                  additionalProperties: {type: integer}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    view = request.query_params.get("view", "all")
    status = request.query_params.get("status", "closed" if view == "closed" else "open")
    if status not in ("open", "closed"):
        raise BadRequest("'status' must be 'open' or 'closed'")
    if view not in VIEWS:
        raise BadRequest(f"'view' must be one of {', '.join(VIEWS)}")
    view = "closed" if status == "closed" else view
    cursor, limit = list_cursor(request), _limit(request, "limit", 50, 200)
    label = request.query_params.get("label", "")
    if label and not _LABEL.fullmatch(label):
        raise BadRequest("'label' must be a label's name: lower-case letters, digits, '-' or '_'")
    return JSONResponse(await run_in_threadpool(_list, deployment_of(request), agent, view, cursor, limit, label))


def list_cursor(request: Request) -> str:
    """The `cursor` a list continues after (a previous page's next_cursor), "" for the first page, or BadRequest."""
    cursor = request.query_params.get("cursor", "")
    if cursor and parse_cursor(cursor) is None:
        raise BadRequest(f"'cursor' must be a next_cursor of a previous page, not {cursor[:40]!r}")
    return cursor


def _list(deployment: Deployment, agent: Agent, view: str, cursor: str, limit: int, label: str = "") -> dict[str, Any]:
    found, next_cursor, counts = deployment.store.view_page(agent.workspace_id, view, agent.id, cursor, limit, label)
    return {"conversations": [summary(deployment, c) for c in found], "next_cursor": next_cursor or None,
            "counts": counts}


SUMMARY_FIELDS = ("id", "channel", "sender", "contact", "status", "owner", "team", "profile_name", "created_at",
                  "updated_at", "last_text", "last_author", "last_message_at", "waiting_since",
                  "handover_reason", "handover_summary", "handover_at", "closed_at", "previous", "form_state",
                  "snoozed_until", "sla_kind", "sla_due", "sla_breached", "after_hours", "outcome", "csat", "csat_by",
                  "csat_comment")


def summary(deployment: Deployment, conversation: Conversation) -> dict[str, Any]:
    """The conversation as the inbox lists it, with how to show the customer (name, address, channel type)."""
    found = {k: conversation[k] for k in SUMMARY_FIELDS if conversation.get(k) not in (None, "")}  # type: ignore[literal-required]
    address = identity(deployment, conversation["channel"], conversation["sender"])
    channel = deployment.channels.get(conversation["channel"])
    closing = window.closes_at(channel.connector if channel else None, window.customer_at(conversation))
    extra: dict[str, Any] = {"window_closes_at": closing} if closing is not None else {}
    if conversation.get("labels"):
        extra["labels"] = json.loads(conversation["labels"])
    if channel is not None and no_statuses(channel):
        extra["delivery_reports"] = False  # public_url is not set: the provider cannot say what became of a reply
    return {**found, **address, **extra, "customer": conversation.get("profile_name") or address["address"]}


def identity(deployment: Deployment, channel_name: str, sender: str) -> dict[str, str]:
    """A customer's address on a channel as a person reads it ("+34612…", "Visitor 3f2a1b")."""
    channel = deployment.channels.get(channel_name)
    if channel is None:  # a channel removed from the config since
        return {"channel": channel_name, "channel_type": "", "address": sender}
    return {"channel": channel_name, "channel_type": channel.connector.type,
            "address": channel.connector.display_address(sender)}


def contact_view(deployment: Deployment, contact: dict[str, Any]) -> dict[str, Any]:
    identities = [identity(deployment, *stored.split(":", 1)) for stored in contact.get("identities", [])]
    return {**contact, "identities": identities}


async def get_conversation(request: Request) -> Response:
    """
    summary: One conversation with its newest messages (customer, AI, agents, system events) and its contact
    description: The newest 100 messages; when `has_more`, page back with GET /api/conversations/{id}/messages
      ?before=<next_before>.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    responses:
      200:
        description: The conversation
        content: {application/json: {schema: {$ref: '#/components/schemas/ConversationAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    conversation_id = _conversation_id(request)
    return JSONResponse(await run_in_threadpool(_detail, deployment_of(request), agent.workspace_id, conversation_id))


def _detail(deployment: Deployment, workspace_id: str, conversation_id: str) -> dict[str, Any]:
    conversation = deployment.store.conversation(workspace_id, conversation_id)
    detail = summary(deployment, conversation)
    detail.update(_page(deployment.store.page(workspace_id, conversation_id, limit=MESSAGE_PAGE)))
    detail["contact"] = contact_view(deployment, deployment.store.contact(workspace_id, conversation["contact"]))
    detail["templates"] = [window.describe(t) for t in templates.listed(deployment, conversation["channel"])]
    detail["limits"] = {"text": MAX_TEXT, "channel": lifecycle.channel_limit(deployment, conversation)}
    return {"conversation": detail}


def _page(page: Page) -> dict[str, Any]:
    return {"messages": page.messages, "has_more": page.has_more, "next_before": page.next_before or None}


def message_id(value: str, name: str = "before") -> str:
    """A message id from a client ("<ms>-<place>"), or BadRequest."""
    if not _MESSAGE_ID.fullmatch(value):
        raise BadRequest(f"'{name}' must be a message id such as 1717171717171-42, not {value[:40]!r}")
    return value


async def list_messages(request: Request) -> Response:
    """
    summary: A page of a conversation's history, newest first in pages, oldest first within one
    description: Without `before`, the newest `limit` messages; with it, the `limit` messages before that one.
      Page back with `before` set to the answer's `next_before` while `has_more` is true.
    security: [{agentToken: []}]
    parameters:
      - {$ref: '#/components/parameters/ConversationId'}
      - {$ref: '#/components/parameters/Before'}
      - {name: limit, in: query, schema: {type: integer, minimum: 0, maximum: 500, default: 100}}
    responses:
      200:
        description: The page
        content: {application/json: {schema: {$ref: '#/components/schemas/MessagePage'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    conversation_id = _conversation_id(request)
    before = message_id(request.query_params["before"]) if request.query_params.get("before") else ""
    limit = _limit(request, "limit", MESSAGE_PAGE, 500)
    deployment = deployment_of(request)

    def read() -> dict[str, Any]:
        deployment.store.conversation(agent.workspace_id, conversation_id)  # 404 for a conversation that is not there
        return _page(deployment.store.page(agent.workspace_id, conversation_id, before, limit))

    return JSONResponse(await run_in_threadpool(read))


async def _change(request: Request, agent: Agent, change: Any, *args: Any) -> Response:
    """Apply a lifecycle change for the calling agent and answer with the conversation as it is now."""
    conversation_id = _conversation_id(request)
    deployment = deployment_of(request)
    await run_in_threadpool(change, deployment, agent, conversation_id, *args)
    return JSONResponse(await run_in_threadpool(_detail, deployment, agent.workspace_id, conversation_id))


async def assign(request: Request) -> Response:
    """
    summary: Assign to an agent ("me" or an id) or back to the AI ("ai")
    description: Taking a conversation another agent holds needs "force" and an admin.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [assignee]
            properties:
              assignee: {type: string, minLength: 1, example: me, description: '"me", "ai" or an agent id'}
              force: {type: boolean}
    responses:
      200:
        description: The conversation as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/ConversationAnswer'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: Forcing by an agent who is not an admin, or a cookie session without its X-CSRF-Token
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404:
        description: No such conversation, or no such agent to assign it to
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      409:
        description: Another agent holds it ("owner" says who), it is closed, or the AI agent is unpublished
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    assignee = body.get("assignee")
    if not isinstance(assignee, str) or not assignee:
        raise BadRequest("'assignee' must be \"me\", \"ai\" or an agent id")
    force = body.get("force", False)
    if not isinstance(force, bool):  # "force": "true" was read as false, and the caller never knew
        raise BadRequest("'force' must be true or false")
    if force:
        require_admin(agent)
    return await _change(request, agent, lifecycle.assign, assignee, force)


async def unassign(request: Request) -> Response:
    """
    summary: Unassign the current owner (stops the AI at once); the conversation waits for a human
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    responses:
      200:
        description: The conversation as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/ConversationAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: Another agent holds it, or it is closed
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    return await _change(request, await current_agent(request), lifecycle.unassign)


async def close(request: Request) -> Response:
    """
    summary: Close the conversation; the customer's next message starts a fresh one with the AI
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    responses:
      200:
        description: The conversation as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/ConversationAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: Already closed, or another agent holds it
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    return await _change(request, await current_agent(request), lifecycle.close)


async def post_message(request: Request) -> Response:
    """
    summary: Reply to the customer (delivered through the conversation's channel)
    description: Replying in a conversation the AI or nobody holds takes it over.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            description: Free text, or one of the channel's templates (`templates` of the conversation) with its
              parameters; outside a WhatsApp conversation's 24-hour window only a template is taken
            anyOf: [{required: [text]}, {required: [template]}]
            properties:
              text: {type: string, minLength: 1, maxLength: 4096, pattern: '\\S'}
              template: {type: string, minLength: 1, maxLength: 100, description: A template's key}
              params:
                type: array
                items: {type: string, minLength: 1, maxLength: 1024, pattern: '\\S'}
                description: The template's parameters, in order (ignored without a template)
              client_id:
                type: string
                pattern: '^[A-Za-z0-9._:-]{1,100}$'
                description: An idempotency key, new for each reply; sending the reply again with it (after a 503 or
                  a lost answer) records and sends it once
    responses:
      201:
        description: Recorded, and queued for delivery on channels that send
        content: {application/json: {schema: {$ref: '#/components/schemas/MessageId'}}}
      200:
        description: Already recorded with this client_id (not sent again)
        content: {application/json: {schema: {$ref: '#/components/schemas/MessageId'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: Closed, another agent holds it, free text outside the customer's 24-hour WhatsApp window
          (nothing is sent; send a template), or the channel has no such template or it takes other parameters
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
      503:
        description: Redis did not confirm the reply; send it again with the same client_id (it is recorded once)
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    template = body.get("template")
    text = body.get("text", "" if "template" in body else None)
    if "template" in body and (not isinstance(template, str) or not template or len(template) > 100):
        raise BadRequest("'template' must be the key of one of the channel's templates")
    params = body.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) and p.strip() and len(p) <= 1024 for p in params):
        raise BadRequest("'params' must be a list of non-empty strings of at most 1,024 characters")
    if not isinstance(text, str) or (template is None and not text.strip()):
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    client_id = body.get("client_id")
    if "client_id" in body and not (isinstance(client_id, str) and _CLIENT_ID.fullmatch(client_id)):
        raise BadRequest("'client_id' must be 1-100 characters of letters, digits, '.', '_', ':' or '-'")
    conversation_id = _conversation_id(request)
    deployment = deployment_of(request)
    known = await run_in_threadpool(deployment.store.reply_of, agent.workspace_id, agent.id, client_id) \
        if client_id else None
    try:
        mid = await run_in_threadpool(lifecycle.reply, deployment, agent, conversation_id, text, client_id,
                                      template or "", params)
    except CommitUnknown:
        if not client_id:
            raise
        mid = await _settle(deployment, agent, conversation_id, client_id)
    return JSONResponse({"id": mid}, status_code=200 if known else 201)


async def post_note(request: Request) -> Response:
    """
    summary: A private note on the conversation, for the team only (never sent, never shown to the customer)
    description: Open or closed conversations alike. Each agent of the workspace the text @mentions by id
      ("@sam") is notified (a `mention` notification, and `note.mention` on the inbox's events).
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [text]
            properties: {text: {type: string, minLength: 1, maxLength: 4096, pattern: '\\S'}}
    responses:
      201:
        description: Recorded
        content:
          application/json:
            schema:
              type: object
              required: [id, mentions]
              properties:
                id: {type: string, pattern: '^[0-9]+-[0-9]+$'}
                mentions: {type: array, items: {type: string}, description: The agents notified}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    conversation_id = _conversation_id(request)
    mid, mentions = await run_in_threadpool(lifecycle.note, deployment_of(request), agent, conversation_id, text)
    return JSONResponse({"id": mid, "mentions": mentions}, status_code=201)


async def reopen(request: Request) -> Response:
    """
    summary: Reopen a closed conversation; it is the caller's, and the customer's next message comes to it
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    responses:
      200:
        description: The conversation as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/ConversationAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: It is not closed, or the customer has started another conversation since that is open
          ("conversation" says which)
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    return await _change(request, await current_agent(request), lifecycle.reopen)


async def _settle(deployment: Deployment, agent: Agent, conversation_id: str, client_id: str) -> str:
    """Redis lost the answer to a reply's commit: the idempotency key says whether it was made. Looked up a few
    times (a commit that reached Redis late lands meanwhile); if it never shows, the reply is not recorded, and
    sending it again with the same key is safe."""
    for wait in (0.0, 0.5, 1.0, 2.0):
        await asyncio.sleep(wait)
        try:
            found = await run_in_threadpool(deployment.store.reply_of, agent.workspace_id, agent.id, client_id)
        except RedisError:
            continue
        if found and found[0] == conversation_id:
            return found[1]
    raise Unavailable("Redis did not confirm the reply: send it again with the same client_id (it will be recorded "
                      "and sent once)")


async def resend(request: Request) -> Response:
    """
    summary: Send again a message whose delivery failed or is unknown (it may reach the customer twice)
    security: [{agentToken: []}]
    parameters:
      - {$ref: '#/components/parameters/ConversationId'}
      - {name: message, in: path, required: true, schema: {type: string, pattern: '^[0-9]{1,19}(-[0-9]{1,19})?$'},
         example: '1-0'}
    responses:
      202:
        description: Queued for delivery
        content: {application/json: {schema: {$ref: '#/components/schemas/MessageId'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: No such conversation or message
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      409:
        description: The message was delivered (or is being sent), failed for good (`delivery_final`), or the
          conversation is closed
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    conversation_id = _conversation_id(request)
    message = sse.stream_id(request.path_params["message"])
    await run_in_threadpool(lifecycle.resend, deployment_of(request), agent, conversation_id, message)
    return JSONResponse({"id": message}, status_code=202)


async def resend_all(request: Request) -> Response:
    """
    summary: Send again every message of the conversation whose delivery failed or is unknown
    description: Oldest first, or only those of `messages`. A message of unknown delivery is sent only after the
      channel's provider was asked and does not have it (Twilio); where the provider cannot be asked (Meta's Cloud
      API) it is sent, and may reach the customer twice.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            description: '{} for every message that failed or is unknown'
            properties:
              messages:
                type: array
                maxItems: 1000
                items: {type: string, pattern: '^[0-9]{1,19}(-[0-9]{1,19})?$'}
                description: The messages to send again (default, every one that failed or is unknown)
    responses:
      202:
        description: Queued for delivery
        content:
          application/json:
            schema:
              type: object
              required: [queued, skipped]
              properties:
                queued: {type: array, items: {type: string}, description: 'The messages queued, oldest first'}
                skipped: {type: integer, description: Messages of `messages` that were not resendable}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: Nothing to send again (no message failed or is unknown), or the conversation is closed
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    conversation_id = _conversation_id(request)
    body = await json_body(request)
    messages = body.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or len(messages) > 1000 or not all(isinstance(m, str) for m in messages):
            raise BadRequest("'messages' must be a list of at most 1,000 message ids")
        messages = [sse.stream_id(m) for m in messages]
    queued, skipped = await run_in_threadpool(lifecycle.resend_all, deployment_of(request), agent, conversation_id,
                                              messages)
    return JSONResponse({"queued": queued, "skipped": skipped}, status_code=202)


async def list_contacts(request: Request) -> Response:
    """
    summary: Contacts, most recently updated first, a page at a time
    security: [{agentToken: []}]
    parameters:
      - {$ref: '#/components/parameters/Cursor'}
      - {name: limit, in: query, schema: {type: integer, minimum: 0, maximum: 500, default: 100}}
    responses:
      200:
        description: A page of contacts, and how many there are
        content:
          application/json:
            schema:
              type: object
              required: [contacts, next_cursor, count]
              properties:
                contacts: {type: array, items: {$ref: '#/components/schemas/Contact'}}
                next_cursor: {$ref: '#/components/schemas/NextCursor'}
                count: {type: integer}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    cursor, limit = list_cursor(request), _limit(request, "limit", 100, 500)
    found, next_cursor, count = await run_in_threadpool(deployment.store.contact_page, agent.workspace_id, cursor,
                                                        limit)
    return JSONResponse({"contacts": [contact_view(deployment, contact) for contact in found],
                         "next_cursor": next_cursor or None, "count": count})


async def get_contact(request: Request) -> Response:
    """
    summary: One contact, with the ids of their conversations
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ContactId'}]
    responses:
      200:
        description: The contact
        content:
          application/json:
            schema:
              type: object
              required: [contact]
              properties: {contact: {$ref: '#/components/schemas/Contact'}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404:
        description: No such contact
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    contact = await run_in_threadpool(deployment.store.contact, agent.workspace_id, request.path_params["id"])
    return JSONResponse({"contact": contact_view(deployment, contact)})


async def get_media(request: Request) -> Response:
    """
    summary: An attachment of a customer's message, as Baton downloaded it from the provider (images, audio and video
      inline; anything else as a file)
    security: [{agentToken: []}]
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}, example: wa-meta}
      - {name: media, in: path, required: true, schema: {type: string, pattern: '^[A-Za-z0-9_.-]{1,128}$'},
         example: '1234567890'}
    responses:
      200:
        description: The attachment's bytes
        content: {'*/*': {schema: {type: string, format: binary}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404:
        description: No such attachment in the agent's workspace, or the provider no longer has it
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
      503:
        description: The provider cannot be reached now
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    agent = await current_agent(request)
    return await media.serve(request, deployment_of(request), agent.workspace_id)


async def list_team(request: Request) -> Response:
    """
    summary: The workspace's human agents and the signed-in agent
    security: [{agentToken: []}]
    responses:
      200:
        description: The team
        content:
          application/json:
            schema:
              type: object
              required: [me, workspace, workspace_name, agents]
              properties:
                me: {$ref: '#/components/schemas/Agent'}
                workspace: {type: string}
                workspace_name: {type: string}
                agents: {type: array, items: {$ref: '#/components/schemas/AgentRecord'}}
                channels:
                  type: array
                  description: The workspace's channels; `templates` where the provider's templates can be read
                  items:
                    type: object
                    properties: {name: {type: string}, type: {type: string}, templates: {type: boolean}}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    agents = await run_in_threadpool(team_with_presence, deployment, agent.workspace_id)
    name = deployment.workspace(agent.workspace_id).name or agent.workspace_id
    me = next((a for a in agents if a["id"] == agent.id), {})
    channels = [{"name": c.name, "type": c.connector.type, "templates": templates.asks(c)}
                for c in deployment.channels.values() if c.workspace.id == agent.workspace_id]
    return JSONResponse({"me": {**agent.public(), "presence": me.get("presence", "offline")},
                         "workspace": agent.workspace_id, "workspace_name": name, "agents": agents,
                         "channels": channels})


async def get_reports(request: Request) -> Response:
    """
    summary: The team's reports over a range of days (UTC), from counters kept as things happen
    description: 'Every figure is about the conversations started in the range. Each has one outcome, so
      `shares` (ai_resolved, handed_over, abandoned, open) add up to 1 (all 0 without conversations). Times are
      from fixed buckets (`buckets`, seconds): a p50 or p90 is the upper bound of its bucket, null without data
      or past the last bound. Any agent of the workspace may read them (team figures, no one''s own).
      `format=csv` answers one row per day and a `total` row.'
    security: [{agentToken: []}]
    parameters:
      - {name: from, in: query, schema: {type: string, format: date}, description: 'first day (YYYY-MM-DD); by
          default 29 days before `to`'}
      - {name: to, in: query, schema: {type: string, format: date}, description: 'last day, included; today by
          default'}
      - {name: channel, in: query, schema: {type: string}, description: 'one channel''s figures (its name: a
          configured channel, or one in the range''s figures)'}
      - {name: format, in: query, schema: {type: string, enum: [json, csv], default: json}}
    responses:
      200:
        description: The figures of the range and the same figures day by day (`series`)
        content:
          application/json: {schema: {$ref: '#/components/schemas/Report'}}
          text/csv: {schema: {type: string}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    query = request.query_params
    answer_format = query.get("format", "json")
    if answer_format not in ("json", "csv"):
        raise BadRequest("'format' must be json or csv")
    today = datetime.datetime.fromtimestamp(time.time(), datetime.UTC).date()
    try:
        span = reports.parse_range(query.get("from"), query.get("to"), today)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    channel_name = query.get("channel")
    answer = await run_in_threadpool(reports.report, deployment.redis, agent.workspace_id, span, channel_name,
                                     answer_format == "csv")
    names = sorted({channel.name for channel in deployment.workspace(agent.workspace_id).channels}
                   | set(answer["channels_seen"]))
    if channel_name is not None and channel_name not in names:
        raise BadRequest(f"no channel {channel_name[:40]!r} in this workspace or its figures of the range; expected "
                         f"one of {', '.join(names)}")
    answer["channels_seen"] = names
    if answer_format == "csv":
        name = f"baton-report-{span.first}-{span.last}{'-' + channel_name if channel_name else ''}.csv"
        return Response(reports.as_csv(answer), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse(answer)


def team_with_presence(deployment: Deployment, workspace_id: str) -> list[dict[str, Any]]:
    """The roster, each agent with their presence (offline when never set) and the open chats they hold."""
    agents = list_agents(deployment.redis, workspace_id)
    presence = deployment.store.presence(workspace_id)
    held = deployment.store.held(workspace_id, [a["id"] for a in agents])
    for record in agents:
        state = presence.get(record["id"], {})
        record["presence"] = state.get("status", "offline")
        record["presence_since"] = state.get("since", 0)
        record["open"] = held.get(record["id"], 0)
    return agents


PRESENCE = ("online", "away", "offline")


async def set_presence(request: Request) -> Response:
    """
    summary: Set the signed-in agent's presence (online, away or offline)
    description: Only online agents get chats from automatic assignment; coming online hands out the chats that
      wait for a free agent, oldest first. Closing the last inbox tab turns an agent offline after
      `presence.offline_after` seconds; opening the inbox again brings them back as they chose.
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [status]
            properties: {status: {type: string, enum: [online, away, offline]}}
    responses:
      200:
        description: The presence as it is now, and how many waiting chats it handed to the agent
        content:
          application/json:
            schema:
              type: object
              required: [status, given]
              properties: {status: {type: string, enum: [online, away, offline]}, given: {type: integer}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    status = body.get("status")
    if status not in PRESENCE:
        raise BadRequest("'status' must be one of online, away, offline")
    deployment = deployment_of(request)
    workspace = deployment.workspace(agent.workspace_id)
    answer = await run_in_threadpool(deployment.store.set_presence, agent.workspace_id, agent.id, status,
                                     lifecycle.assignment(workspace))
    return JSONResponse({"status": answer["status"], "given": answer["given"]})


ASSIGNMENT_MODES = ("manual", "round_robin", "balanced")


async def list_templates(request: Request) -> Response:
    """
    summary: A channel's WhatsApp templates, as the provider lists them (cached) merged with config.yaml's
    security: [{agentToken: []}]
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}, example: whatsapp}
    responses:
      200:
        description: The templates
        content: {application/json: {schema: {$ref: '#/components/schemas/Templates'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404:
        description: No such channel in the agent's workspace
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    name = _own_channel(deployment, agent, request.path_params["channel"])
    found = await run_in_threadpool(templates.listed, deployment, name)
    return JSONResponse({"channel": name, "templates": [window.describe(t) for t in found]})


async def refresh_templates(request: Request) -> Response:
    """
    summary: Ask the provider for the channel's templates now (admins); the configured ones serve when it cannot answer
    security: [{agentToken: []}]
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}, example: whatsapp}
    responses:
      200:
        description: The templates; `error` says why the provider could not be asked (then config.yaml's are listed)
        content: {application/json: {schema: {$ref: '#/components/schemas/Templates'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403:
        description: Not an admin, or no CSRF token with a session cookie
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404:
        description: No such channel in the agent's workspace
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    deployment = deployment_of(request)
    name = _own_channel(deployment, agent, request.path_params["channel"])
    found, error = await run_in_threadpool(templates.refresh, deployment, name)
    answer: dict[str, Any] = {"channel": name, "templates": [window.describe(t) for t in found]}
    if error:
        answer["error"] = f"the provider could not be asked ({error}): the templates of config.yaml are listed"
    return JSONResponse(answer)


def _own_channel(deployment: Deployment, agent: Agent, name: str) -> str:
    channel = deployment.channels.get(name)
    if channel is None or channel.workspace.id != agent.workspace_id:
        raise NotFound(f"no channel {name!r} in this workspace")
    return name


async def get_assignment(request: Request) -> Response:
    """
    summary: The workspace's automatic assignment in force, and whether Settings or config.yaml set it
    security: [{agentToken: []}]
    responses:
      200:
        description: The assignment
        content: {application/json: {schema: {$ref: '#/components/schemas/AssignmentAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    return JSONResponse({"assignment": await run_in_threadpool(_assignment_state, deployment, agent.workspace_id)})


def _assignment_state(deployment: Deployment, workspace_id: str) -> dict[str, Any]:
    workspace = deployment.workspace(workspace_id)
    return {**lifecycle.assignment_in_force(deployment, workspace),
            "file": {"mode": workspace.assignment.mode, "capacity": workspace.assignment.capacity},
            "queued": len(deployment.store.queued(workspace_id))}


async def set_assignment(request: Request) -> Response:
    """
    summary: Set the workspace's automatic assignment (admins); it wins until config.yaml's value changes
    description: '{"mode": null} goes back to config.yaml''s. Switching to round_robin or balanced hands out the chats
      already waiting, oldest first, to online agents with room.'
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [mode]
            properties:
              mode: {type: string, nullable: true, enum: [manual, round_robin, balanced, null]}
              capacity: {type: integer, minimum: 1, maximum: 1000}
    responses:
      200:
        description: The assignment as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/AssignmentAnswer'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request)
    if "mode" not in body or (body["mode"] is not None and body["mode"] not in ASSIGNMENT_MODES):
        raise BadRequest("'mode' must be one of manual, round_robin, balanced, or null for config.yaml's")
    deployment = deployment_of(request)
    workspace = deployment.workspace(agent.workspace_id)
    mode = body["mode"]
    capacity = body.get("capacity", workspace.assignment.capacity)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 1000:
        raise BadRequest("'capacity' must be a whole number from 1 to 1000")
    await run_in_threadpool(lifecycle.set_assignment, deployment, agent, mode, capacity if mode else None)
    return JSONResponse({"assignment": await run_in_threadpool(_assignment_state, deployment, agent.workspace_id)})


async def set_agent_teams(request: Request) -> Response:
    """
    summary: Put an agent in teams (admins); automatic assignment, alerts and who may take a team's chat follow at once
    security: [{agentToken: []}]
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [teams]
            properties:
              teams: {type: array, maxItems: 20, items: {type: string, pattern: '^[a-z0-9][a-z0-9._-]{0,39}$'}}
    responses:
      200:
        description: The agent as it is now
        content:
          application/json:
            schema: {type: object, required: [agent], properties: {agent: {$ref: '#/components/schemas/Agent'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownAgent'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request)
    teams = body.get("teams")
    if not isinstance(teams, list):
        raise BadRequest("'teams' must be a list of team names (an empty list for none)")
    target = request.path_params["id"]
    if len(target) > 40:
        raise NotFound(f"no agent {target[:40]!r}")
    updated = await run_in_threadpool(set_teams, deployment_of(request).redis, agent.workspace_id, target, teams)
    return JSONResponse({"agent": updated})


async def get_ai_agent(request: Request) -> Response:
    """
    summary: The workspace's AI agent
    security: [{agentToken: []}]
    responses:
      200:
        description: The AI agent and whether it is published
        content: {application/json: {schema: {$ref: '#/components/schemas/AIAgentAnswer'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404:
        description: The workspace has no AI agent
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    state = await run_in_threadpool(ai_agent_state, deployment_of(request), agent.workspace_id)
    return JSONResponse({"ai_agent": state})


async def set_ai_agent(request: Request) -> Response:
    """
    summary: Publish or unpublish the AI agent (admins); unpublishing hands its open conversations to humans
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, required: [published], properties: {published: {type: boolean}}}
    responses:
      200:
        description: The AI agent as it is now
        content: {application/json: {schema: {$ref: '#/components/schemas/AIAgentAnswer'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: The workspace has no AI agent
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request)
    if not isinstance(body.get("published"), bool):
        raise BadRequest("'published' must be true or false")
    deployment = deployment_of(request)
    await run_in_threadpool(lifecycle.set_published, deployment, agent, body["published"])
    return JSONResponse({"ai_agent": await run_in_threadpool(ai_agent_state, deployment, agent.workspace_id)})


def ai_agent_state(deployment: Deployment, workspace_id: str) -> dict[str, Any]:
    config = deployment.workspace(workspace_id).ai_agent
    if config is None:
        raise NotFound("this workspace has no AI agent configured")
    published = deployment.store.published(workspace_id, config.published)
    return {"name": config.name, "model": config.model, "published": published,
            "model_status": Breaker(deployment.redis, workspace_id, config).describe()}


async def events(request: Request) -> Response:
    """
    summary: Server-sent events for the inbox
    description: 'Types: conversation.created, message.created, conversation.handover (the notification),
      conversation.assigned, conversation.closed, contact.form_sent, contact.captured, message.status,
      ai_agent.updated, ai_agent.model (the circuit breaker of the AI model opened or closed), agent.created (a new
      agent joined the team), agent.presence (an
      agent went online, away or offline), assignment.updated (Settings changed automatic assignment),
      conversation.reopened, note.mention (a private note mentions the agents in "agents"); session.ended
      (then the stream closes) when the agent is revoked; stream.reset when events the stream had yet to send were
      trimmed away (it fell behind by more than the ~10,000 kept): reload what you show. Reconnect with
      Last-Event-ID (or ?last_event_id=) to catch up.'
    security: [{agentToken: []}]
    parameters:
      - {name: Last-Event-ID, in: header, schema: {$ref: '#/components/schemas/StreamId'}}
      - {name: last_event_id, in: query, schema: {$ref: '#/components/schemas/StreamId'}}
    responses:
      200:
        description: The stream of events
        content: {text/event-stream: {schema: {$ref: '#/components/schemas/AgentEvent'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    after = sse.last_event_id(request, sse.stream_id)
    return sse.response(_agent_events(request, agent, after))


CATCH_UP_PAGE = 500  # events a stream reads from Redis at a time while it catches up
TRIMMED = ("this stream fell further behind than the events kept (about 10,000): what it missed is no longer in the "
           "events stream; reload what you show")


async def _agent_events(request: Request, agent: Agent, after: str) -> AsyncIterator[str]:
    client, hub = request.app.state.aredis, request.app.state.hub
    stream = keys.key(keys.EVENTS, workspace_id=agent.workspace_id)
    presence = PresenceLease(request, agent)
    await presence.open()  # before the first byte: a client that sees the stream open is present
    if not after:  # from now on: fixed before the first byte, so a new stream misses nothing that follows
        newest = await client.xrevrange(stream, count=1)
        after = newest[0][0] if newest else "0"
        # An id-only frame sets the browser's last event id: a stream that drops before its first event
        # reconnects from here.
        yield f"retry: 2000\nid: {after}\n\n"
    else:
        yield "retry: 2000\n\n"
    subscriber = hub.subscribe(agent.workspace_id, "agents")
    position = {"sent": after, "done": ""}

    async def catch_up() -> AsyncIterator[str]:
        """What the stream has not sent yet, from Redis, a page at a time; `stream.reset` when some of it was trimmed
        away (the inbox then reloads what it shows) rather than a silent gap."""
        while True:
            page = await sse.patiently(client.xrange, stream, min=f"({position['sent']}", max="+",
                                       count=CATCH_UP_PAGE)
            # Read after the page: while an event up to the one sent last is still kept, the page follows on from it
            # (trimming removes the oldest first); else some may have been trimmed before the page was read.
            oldest = await sse.patiently(client.xrange, stream, count=1)
            if oldest and position["sent"] != "0" and sse.after(oldest[0][0], position["sent"]):
                newest = await sse.patiently(client.xrevrange, stream, count=1)
                position["sent"] = newest[0][0]
                yield sse.frame(position["sent"], "stream.reset", {"type": "stream.reset", "reason": TRIMMED})
                continue
            for event_id, fields in page:
                position["sent"] = event_id
                text, done = _agent_frame(agent, event_id, json.loads(fields["data"]))
                if text:
                    yield text
                if done:
                    position["done"] = "yes"
                    return
            if len(page) < CATCH_UP_PAGE:
                return

    def handle(event_id: str, data: dict[str, Any]) -> tuple[str | None, bool]:
        if not sse.after(event_id, position["sent"]):
            return None, False  # the catch-up sent it
        position["sent"] = event_id
        return _agent_frame(agent, event_id, data)

    try:
        async for text in catch_up():
            yield text
        if position["done"]:
            return
        async for text in sse.forward(subscriber, handle, catch_up):
            await presence.renew()
            yield text
            if position["done"]:
                return
    finally:
        hub.unsubscribe(subscriber)
        await presence.close()


class PresenceLease:
    """An open inbox stream keeps its agent present: a lease renewed while it streams (a gateway that dies lets it
    run out), cut to the workspace's grace period (presence.offline_after) when the stream closes."""

    def __init__(self, request: Request, agent: Agent) -> None:
        self.deployment = deployment_of(request)
        self.agent = agent
        self.workspace = self.deployment.workspace(agent.workspace_id)
        self.token = secrets.token_hex(8)
        self.grace_ms = int(self.workspace.presence.offline_after * 1000)
        self.renewed = 0.0

    def lease_ms(self) -> int:
        return int(LEASE_BEATS * sse.KEEPALIVE_S * 1000) + self.grace_ms

    async def open(self) -> None:
        try:
            await run_in_threadpool(self.deployment.store.stream_open, self.agent.workspace_id, self.agent.id,
                                    self.token, self.lease_ms(), lifecycle.assignment(self.workspace))
        except (RedisError, OSError, BatonError) as exc:  # the stream works without it; the next renewal retries
            log.warning("presence of %s not recorded: %s", self.agent.id, exc)
        self.renewed = time.monotonic()

    async def renew(self) -> None:
        if time.monotonic() - self.renewed < sse.KEEPALIVE_S:
            return
        self.renewed = time.monotonic()
        with contextlib.suppress(RedisError, OSError, BatonError):
            await run_in_threadpool(self.deployment.store.stream_lease, self.agent.workspace_id, self.agent.id,
                                    self.token, self.lease_ms())

    async def close(self) -> None:
        # The stream is being cancelled (the client went away): shielded, so that the lease is still cut.
        with anyio.CancelScope(shield=True), contextlib.suppress(RedisError, OSError, BatonError):
            await run_in_threadpool(self.deployment.store.stream_lease, self.agent.workspace_id, self.agent.id,
                                    self.token, self.grace_ms)


def _agent_frame(agent: Agent, event_id: str, data: dict[str, Any]) -> tuple[str | None, bool]:
    if data.get("type") == "agent.revoked":
        if data.get("agent") != agent.id:
            return None, False
        return sse.frame(event_id, "session.ended", {"reason": data.get("reason", "revoked")}), True
    return sse.frame(event_id, data["type"], data), False
