"""The agent's toolbox on the agent API: search over conversations, messages and contacts; labels; canned replies;
editing a contact."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import BadRequest, NotFound
from gateway.handover import contacts, labels, search
from gateway.handover.search import Filters
from gateway.handover.store import decode_conversation
from gateway.web.api import _conversation_id, _limit, contact_view, current_agent, deployment_of, summary
from gateway.web.auth import require_admin
from gateway.web.http import json_body

MAX_QUERY = 200  # characters


async def search_conversations(request: Request) -> Response:
    """
    summary: Search conversations by their messages (private notes included) and their customer's name, number and
      email
    description: A conversation matches when it holds every word of `q` (case and accents aside; a customer's name
      and details also match by their beginning, a number by its beginning or end). Newest match first; each result
      names the newest matching message, which the inbox opens at (null when only the customer matched). A page may
      hold fewer than `limit` results, with a next_cursor, when matches are sparse among many conversations.
    security: [{agentToken: []}]
    parameters:
      - {name: q, in: query, required: true, schema: {type: string, minLength: 1, maxLength: 200}, example: refund}
      - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
      - {name: owner, in: query, schema: {type: string, maxLength: 100}, example: ai,
         description: 'ai, none (waiting for a human), me, or an agent id'}
      - {name: channel, in: query, schema: {type: string, maxLength: 100}, example: webchat}
      - {name: label, in: query, schema: {type: string, maxLength: 40}, example: vip}
      - {name: from, in: query, schema: {type: integer, minimum: 0}, description: 'matches from this time (ms)'}
      - {name: to, in: query, schema: {type: integer, minimum: 0}, description: 'matches up to this time (ms)'}
      - {name: cursor, in: query, schema: {type: string, pattern: '^([0-9]{1,20}:[0-9]{1,20}:[0-9])?$'},
         description: Continue after the page that answered this next_cursor}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 20}}
    responses:
      200:
        description: A page of matching conversations, newest match first
        content:
          application/json:
            schema:
              type: object
              required: [results, next_cursor]
              properties:
                results:
                  type: array
                  items:
                    type: object
                    required: [conversation, message_id, message]
                    properties:
                      conversation: {$ref: '#/components/schemas/Conversation'}
                      message_id: {type: string, nullable: true}
                      message:
                        type: object
                        nullable: true
                        properties:
                          id: {type: string}
                          author: {type: string}
                          kind: {type: string}
                          text: {type: string}
                          created_at: {type: integer}
                next_cursor: {$ref: '#/components/schemas/NextCursor'}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    params = request.query_params
    query = params.get("q", "")
    if not query.strip():
        raise BadRequest("'q' must say what to search for")
    if len(query) > MAX_QUERY:
        raise BadRequest(f"'q' is longer than {MAX_QUERY} characters")
    if not search.query_terms(query):
        raise BadRequest("'q' holds no word to search for (words of two letters or more, or numbers)")
    status = params.get("status", "")
    if status not in ("", "open", "closed"):
        raise BadRequest("'status' must be 'open' or 'closed'")
    owner = params.get("owner", "")
    if owner == "me":
        owner = f"agent:{agent.id}"
    elif owner and owner not in ("ai", "none"):
        owner = f"agent:{owner}"
    cursor = params.get("cursor", "")
    if cursor and search.parse_cursor(cursor) is None:
        raise BadRequest(f"'cursor' must be a next_cursor of a previous search, not {cursor[:40]!r}")
    for name in ("owner", "channel", "label"):
        if len(params.get(name, "")) > 100:
            raise BadRequest(f"'{name}' is longer than 100 characters")
    filters = Filters(status=status, owner=owner, channel_name=params.get("channel", ""), label=params.get("label", ""),
                      since=_time(request, "from"), until=_time(request, "to"))
    limit = _limit(request, "limit", 20, 100)
    if not limit:
        raise BadRequest("'limit' must be a whole number from 1 to 100")
    deployment = deployment_of(request)

    def run() -> dict[str, Any]:
        hits, next_cursor = search.search(deployment.redis, agent.workspace_id, query, filters, cursor, limit)
        results = [{"conversation": summary(deployment, decode_conversation(hit.conversation)),
                    "message_id": hit.message_id or None, "message": hit.message} for hit in hits]
        return {"results": results, "next_cursor": next_cursor or None}

    return JSONResponse(await run_in_threadpool(run))


def _time(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 16):
        raise BadRequest(f"'{name}' must be a time in milliseconds since 1970")
    return int(raw)


# --- labels -----------------------------------------------------------------------------------------------------

async def list_labels(request: Request) -> Response:
    """
    summary: The workspace's labels, each with how many conversations carry it
    security: [{agentToken: []}]
    responses:
      200:
        description: The labels, by name
        content:
          application/json:
            schema:
              type: object
              required: [labels]
              properties: {labels: {type: array, items: {$ref: '#/components/schemas/Label'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    store = deployment_of(request).store
    return JSONResponse({"labels": await run_in_threadpool(labels.labels, store, agent.workspace_id)})


async def put_label(request: Request) -> Response:
    """
    summary: Add a label to the workspace, or change its colour (admins)
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/LabelName'}]
    requestBody:
      required: true
      description: '{} for a grey label'
      content:
        application/json:
          schema:
            type: object
            properties:
              color: {type: string, enum: [grey, red, orange, yellow, green, teal, blue, purple, pink], default: grey}
    responses:
      200:
        description: The label as it is now
        content:
          application/json:
            schema: {type: object, required: [label], properties: {label: {$ref: '#/components/schemas/Label'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    name = labels.label_name(request.path_params["name"], "name")
    body = await json_body(request, required=True)
    color = body.get("color", "grey")
    store = deployment_of(request).store
    label = await run_in_threadpool(labels.define_label, store, agent.workspace_id, name, color, agent.id)
    return JSONResponse({"label": label})


async def delete_label(request: Request) -> Response:
    """
    summary: Delete a label (admins); it comes off every conversation that carries it
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/LabelName'}]
    responses:
      200:
        description: Deleted
        content:
          application/json: {schema: {type: object, required: [deleted], properties: {deleted: {type: string}}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: No such label
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    name = labels.label_name(request.path_params["name"], "name")
    await run_in_threadpool(labels.delete_label, deployment_of(request).store, agent.workspace_id, name, agent.id)
    return JSONResponse({"deleted": name})


async def label_conversation(request: Request) -> Response:
    """
    summary: Put one of the workspace's labels on a conversation
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [label]
            properties: {label: {type: string, pattern: '^[a-z0-9][a-z0-9_-]{0,29}$'}}
    responses:
      200:
        description: The conversation's labels now
        content: {application/json: {schema: {$ref: '#/components/schemas/LabelsAnswer'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: No such label in the workspace, or the conversation holds 10 already
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    name = labels.label_name(body.get("label"))
    conversation_id = _conversation_id(request)
    found = await run_in_threadpool(labels.put_label, deployment_of(request).store, agent.workspace_id,
                                    conversation_id, name, True, agent.owner)
    return JSONResponse({"labels": found})


async def unlabel_conversation(request: Request) -> Response:
    """
    summary: Take a label off a conversation
    security: [{agentToken: []}]
    parameters:
      - {$ref: '#/components/parameters/ConversationId'}
      - {$ref: '#/components/parameters/LabelName'}
    responses:
      200:
        description: The conversation's labels now
        content: {application/json: {schema: {$ref: '#/components/schemas/LabelsAnswer'}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    name = labels.label_name(request.path_params["name"], "name")
    conversation_id = _conversation_id(request)
    found = await run_in_threadpool(labels.put_label, deployment_of(request).store, agent.workspace_id,
                                    conversation_id, name, False, agent.owner)
    return JSONResponse({"labels": found})


# --- canned replies -----------------------------------------------------------------------------------------------

async def list_canned(request: Request) -> Response:
    """
    summary: The workspace's canned replies, by shortcut
    security: [{agentToken: []}]
    responses:
      200:
        description: The canned replies
        content:
          application/json:
            schema:
              type: object
              required: [canned_replies]
              properties: {canned_replies: {type: array, items: {$ref: '#/components/schemas/CannedReply'}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    store = deployment_of(request).store
    return JSONResponse({"canned_replies": await run_in_threadpool(labels.canned_replies, store, agent.workspace_id)})


async def put_canned(request: Request) -> Response:
    """
    summary: Add or change a canned reply (admins)
    description: '{{customer.name}}, {{customer.first_name}} and {{agent.name}} in the text are filled in when an
      agent inserts it.'
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/Shortcut'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [text]
            properties: {text: {type: string, minLength: 1, maxLength: 4096, pattern: '\\S'}}
    responses:
      200:
        description: The canned reply as it is now
        content:
          application/json:
            schema:
              type: object
              required: [canned_reply]
              properties: {canned_reply: {$ref: '#/components/schemas/CannedReply'}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    shortcut = _shortcut(request)
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > labels.MAX_CANNED_TEXT:
        raise BadRequest(f"'text' is longer than {labels.MAX_CANNED_TEXT} characters")
    reply = await run_in_threadpool(labels.save_canned, deployment_of(request).store, agent.workspace_id, shortcut,
                                    text, agent.id)
    return JSONResponse({"canned_reply": reply})


async def delete_canned(request: Request) -> Response:
    """
    summary: Delete a canned reply (admins)
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/Shortcut'}]
    responses:
      200:
        description: Deleted
        content:
          application/json: {schema: {type: object, required: [deleted], properties: {deleted: {type: string}}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: No such canned reply
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    shortcut = _shortcut(request)
    await run_in_threadpool(labels.delete_canned, deployment_of(request).store, agent.workspace_id, shortcut)
    return JSONResponse({"deleted": shortcut})


def _shortcut(request: Request) -> str:
    shortcut = request.path_params["shortcut"]
    if not labels.SHORTCUT.fullmatch(shortcut):
        raise BadRequest("a shortcut is 1 to 30 lower-case letters, digits, '-' or '_', starting with a letter or "
                         "digit")
    return str(shortcut)


async def edit_contact(request: Request) -> Response:
    """
    summary: Edit a contact's name, email or phone (an empty string clears one)
    description: Search finds the contact's conversations by the new details at once, and no longer by the old ones.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ContactId'}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            minProperties: 1
            additionalProperties: false
            properties:
              name: {type: string, maxLength: 120}
              email: {type: string, maxLength: 254}
              phone: {type: string, maxLength: 40}
    responses:
      200:
        description: The contact as it is now
        content:
          application/json:
            schema:
              type: object
              required: [contact]
              properties: {contact: {$ref: '#/components/schemas/Contact'}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: No such contact
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      409:
        description: The contact changed while being edited (details left meanwhile); read it again
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    contact_id = request.path_params["id"]
    if not (contact_id.isascii() and contact_id.isdigit() and len(contact_id) <= 20):
        raise NotFound(f"no contact {contact_id[:40]!r}")
    deployment = deployment_of(request)
    edited = await run_in_threadpool(contacts.edit, deployment.store, agent.workspace_id, contact_id, body,
                                     agent.owner)
    return JSONResponse({"contact": contact_view(deployment, edited)})


# --- snooze -------------------------------------------------------------------------------------------------------

async def snooze(request: Request) -> Response:
    """
    summary: Snooze a conversation until a time, or until the customer's next message
    description: A snoozed conversation leaves its view (and All) for the snoozed view; it comes back when the customer
      writes, when `until` passes, or when an agent wakes it. Closing it ends the snooze. The AI's conversations
      are not snoozed.
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    requestBody:
      required: true
      description: '{} to snooze until the customer''s next message'
      content:
        application/json:
          schema:
            type: object
            properties:
              until: {type: integer, nullable: true, description: 'When to wake it (unix ms, in the future); absent or
                null: at the customer''s next message'}
    responses:
      200:
        description: Snoozed
        content:
          application/json:
            schema:
              type: object
              required: [snoozed_until]
              properties: {snoozed_until: {description: 'ms, or "next"', oneOf: [{type: integer}, {type: string}]}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: The conversation is closed, or the AI's
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    body = await json_body(request, required=True)
    until = body.get("until")
    store = deployment_of(request).store
    if until is not None:
        if not isinstance(until, int) or isinstance(until, bool) or until <= 0 or until > 10**15:
            raise BadRequest("'until' must be a time in milliseconds since 1970, or null for the next message")
        if until <= await run_in_threadpool(store.now_ms):
            raise BadRequest("'until' has passed: snooze until a time to come")
    conversation_id = _conversation_id(request)
    answer = await run_in_threadpool(lambda: store.run("snooze", agent.workspace_id, conversation_id,
                                                       actor=agent.owner, until=until))
    return JSONResponse({"snoozed_until": answer["snoozed_until"]})


async def unsnooze(request: Request) -> Response:
    """
    summary: Wake a snoozed conversation now
    security: [{agentToken: []}]
    parameters: [{$ref: '#/components/parameters/ConversationId'}]
    responses:
      200:
        description: Back in its view
        content: {application/json: {schema: {type: object, required: [owner], properties: {owner: {type: string}}}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {$ref: '#/components/responses/UnknownConversation'}
      409:
        description: It is not snoozed, or closed
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    conversation_id = _conversation_id(request)
    store = deployment_of(request).store
    answer = await run_in_threadpool(lambda: store.run("unsnooze", agent.workspace_id, conversation_id,
                                                       actor=agent.owner))
    return JSONResponse({"owner": answer["owner"]})
