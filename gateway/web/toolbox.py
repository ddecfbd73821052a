"""The agent's toolbox on the agent API: search over conversations, messages and contacts."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import BadRequest
from gateway.handover import search
from gateway.handover.search import Filters
from gateway.handover.store import decode_conversation
from gateway.web.api import _limit, current_agent, deployment_of, summary

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
    filters = Filters(status=status, owner=owner, channel=params.get("channel", ""), label=params.get("label", ""),
                      since=_time(request, "from"), until=_time(request, "to"))
    limit = _limit(request, "limit", 20, 100) or 1
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
