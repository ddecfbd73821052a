"""The agent API under /api: the shared inbox, ownership changes, replies, contacts, the AI agent, events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import ai, keys, sse
from gateway.auth import Agent, agent_by_id, authenticate_agent, bearer, list_agents, require_admin
from gateway.deployment import Deployment
from gateway.errors import BadRequest, ConfigError, Conflict, NotFound, Unauthorized
from gateway.http import json_body
from gateway.jobs import enqueue_delivery, enqueue_turn
from gateway.state import VIEWS

MAX_TEXT = 4096


def deployment_of(request: Request) -> Deployment:
    return request.app.state.deployment  # type: ignore[no-any-return]


async def current_agent(request: Request) -> Agent:
    """The calling agent, from the bearer token or the inbox's session cookie."""
    session = getattr(request.state, "agent_token", None)
    token = session or bearer(request.headers.get("authorization"))
    agent = await run_in_threadpool(authenticate_agent, deployment_of(request).redis, token)
    try:
        deployment_of(request).workspace(agent.workspace)
    except ConfigError as exc:  # a token minted for a workspace that shares the Redis but not this config
        raise Unauthorized("this agent token's workspace is not served here") from exc
    return agent


def _limit(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not raw.isdigit() or not 0 <= int(raw) <= most:
        raise BadRequest(f"'{name}' must be a whole number from 0 to {most}")
    return int(raw)


async def list_conversations(request: Request) -> Response:
    """
    summary: The inbox views
    parameters:
      - {name: view, in: query, schema: {type: string, enum: [mine, waiting, ai, all, closed]}}
      - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
      - {name: offset, in: query, schema: {type: integer}}
      - {name: limit, in: query, schema: {type: integer}}
    responses:
      200: {description: '{"conversations": [{"id", "owner", "status", …}], "counts": {view: n}}'}
      401: {description: Missing or invalid agent token}
    """
    agent = await current_agent(request)
    view = request.query_params.get("view", "all")
    status = request.query_params.get("status", "closed" if view == "closed" else "open")
    if status not in ("open", "closed"):
        raise BadRequest("'status' must be 'open' or 'closed'")
    if view not in VIEWS:
        raise BadRequest(f"'view' must be one of {', '.join(VIEWS)}")
    view = "closed" if status == "closed" else view
    offset, limit = _limit(request, "offset", 0, 100_000), _limit(request, "limit", 50, 200)
    return JSONResponse(await run_in_threadpool(_list, deployment_of(request), agent, view, offset, limit))


def _list(deployment: Deployment, agent: Agent, view: str, offset: int, limit: int) -> dict[str, Any]:
    state = deployment.state
    ids = state.conversation_ids(agent.workspace, view, agent.id, offset, limit)
    return {"conversations": [summary(deployment, c) for c in state.conversations(agent.workspace, ids)],
            "counts": state.counts(agent.workspace, agent.id)}


SUMMARY_FIELDS = ("id", "channel", "sender", "contact", "status", "owner", "profile_name", "created_at",
                  "updated_at", "last_text", "last_author", "last_message_at", "waiting_since",
                  "handover_reason", "handover_summary", "handover_at", "closed_at", "previous", "form_state")


def summary(deployment: Deployment, conversation: dict[str, Any]) -> dict[str, Any]:
    """The conversation as the inbox lists it, with how to show the customer (name, address, channel type)."""
    found = {k: conversation[k] for k in SUMMARY_FIELDS if conversation.get(k) not in (None, "")}
    address = identity(deployment, conversation["channel"], conversation["sender"])
    return {**found, **address, "customer": conversation.get("profile_name") or address["address"]}


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
    summary: One conversation with its full history (customer, AI, agents, system events)
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"conversation": {…, "messages": […], "contact": {…}}}'}
      404: {description: Unknown conversation}
    """
    agent = await current_agent(request)
    cid = request.path_params["id"]
    return JSONResponse(await run_in_threadpool(_detail, deployment_of(request), agent.workspace, cid))


def _detail(deployment: Deployment, workspace: str, cid: str) -> dict[str, Any]:
    conversation = deployment.state.conversation(workspace, cid)
    detail = summary(deployment, conversation)
    detail["messages"] = deployment.state.messages(workspace, cid, limit=10_000)
    detail["contact"] = contact_view(deployment, deployment.state.contact(workspace, conversation["contact"]))
    return {"conversation": detail}


async def assign(request: Request) -> Response:
    """
    summary: Assign to an agent ("me" or an id) or back to the AI ("ai")
    description: 'Body {"assignee": "me" | "ai" | "<agent id>", "force": false}. Taking a conversation
      another agent holds needs "force": true and an admin.'
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"conversation": {…}}'}
      409: {description: 'Another agent owns it ({"owner": …}), it is closed, or the AI is unpublished'}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    assignee = body.get("assignee")
    if not isinstance(assignee, str) or not assignee:
        raise BadRequest("'assignee' must be \"me\", \"ai\" or an agent id")
    force = body.get("force") is True
    if force:
        require_admin(agent)
    cid = request.path_params["id"]
    return JSONResponse(await run_in_threadpool(_assign, deployment_of(request), agent, cid, assignee, force))


def _assign(deployment: Deployment, agent: Agent, cid: str, assignee: str, force: bool) -> dict[str, Any]:
    workspace = deployment.workspace(agent.workspace)
    if assignee == "ai":
        ai_name = workspace.ai_agent.name if workspace.ai_agent else "the AI agent"
        change = deployment.state.require(
            "assign", agent.workspace, conversation=cid, target="ai", actor=agent.owner, force=force,
            reason="handed back to the AI", ai_published=_published(workspace),
            notice=f"You're chatting with {ai_name} again.")
        enqueue_turn(deployment, agent.workspace, cid)
    else:
        target = agent if assignee == "me" else agent_by_id(deployment.redis, agent.workspace, assignee)
        change = deployment.state.require(
            "assign", agent.workspace, conversation=cid, target=target.owner, actor=agent.owner, force=force,
            reason=f"assigned by {agent.name}", notice=f"{target.name} joined the conversation.",
            ai_published=_published(workspace))
    _deliver_latest_notice(deployment, agent.workspace, cid, change.get("unchanged"))
    return _detail(deployment, agent.workspace, cid)


def _published(workspace: Any) -> bool:
    return bool(workspace.ai_agent and workspace.ai_agent.published)


def _deliver_latest_notice(deployment: Deployment, workspace: str, cid: str, unchanged: bool | None) -> None:
    if unchanged:
        return
    latest = deployment.state.messages(workspace, cid, public_only=True)[-1:]
    if latest and latest[0]["kind"] == "notice":
        enqueue_delivery(deployment, workspace, cid, latest[0]["id"])


async def unassign(request: Request) -> Response:
    """
    summary: Unassign the current owner (stops the AI at once); the conversation waits for a human
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"conversation": {…}}'}
      409: {description: Another agent owns it, or it is closed}
    """
    agent = await current_agent(request)
    cid = request.path_params["id"]
    return JSONResponse(await run_in_threadpool(_unassign, deployment_of(request), agent, cid))


def _unassign(deployment: Deployment, agent: Agent, cid: str) -> dict[str, Any]:
    workspace = deployment.workspace(agent.workspace)
    deployment.state.require("assign", agent.workspace, conversation=cid, target="none", actor=agent.owner,
                             reason=f"unassigned by {agent.name}", ai_published=_published(workspace),
                             timeout_ms=int(workspace.handover.no_human_timeout * 1000))
    return _detail(deployment, agent.workspace, cid)


async def close(request: Request) -> Response:
    """
    summary: Close the conversation; the customer's next message starts a fresh one with the AI
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses:
      200: {description: '{"conversation": {…}}'}
      409: {description: Already closed, or another agent owns it}
    """
    agent = await current_agent(request)
    cid = request.path_params["id"]
    deployment = deployment_of(request)
    await run_in_threadpool(deployment.state.require, "close", agent.workspace, conversation=cid,
                            actor=agent.owner)
    return JSONResponse(await run_in_threadpool(_detail, deployment, agent.workspace, cid))


async def post_message(request: Request) -> Response:
    """
    summary: Reply to the customer (delivered through the conversation's channel)
    description: 'Body {"text": …}. Replying in a conversation the AI or nobody holds takes it over.'
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses:
      201: {description: '{"id": message id}'}
      400: {description: Missing or too long text}
      409: {description: Closed, or another agent owns it}
    """
    agent = await current_agent(request)
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"'text' is longer than {MAX_TEXT} characters")
    cid = request.path_params["id"]
    mid = await run_in_threadpool(_reply, deployment_of(request), agent, cid, text)
    return JSONResponse({"id": mid}, status_code=201)


def _reply(deployment: Deployment, agent: Agent, cid: str, text: str) -> str:
    change = deployment.state.require("post", agent.workspace, conversation=cid, author="agent",
                                      agent=agent.id, agent_name=agent.name, text=text,
                                      notice=f"{agent.name} joined the conversation.")
    enqueue_delivery(deployment, agent.workspace, cid, change["message"])
    return str(change["message"])


async def list_contacts(request: Request) -> Response:
    """
    summary: Contacts, most recently updated first
    responses: {200: {description: '{"contacts": […]}'}}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)

    def contacts() -> list[dict[str, Any]]:
        ids = deployment.state.contact_ids(agent.workspace, limit=_limit(request, "limit", 100, 500))
        return [contact_view(deployment, deployment.state.contact(agent.workspace, c)) for c in ids]

    return JSONResponse({"contacts": await run_in_threadpool(contacts)})


async def get_contact(request: Request) -> Response:
    """
    summary: One contact, with the ids of their conversations
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: '{"contact": {…}}'}, 404: {description: Unknown contact}}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    contact = await run_in_threadpool(deployment.state.contact, agent.workspace, request.path_params["id"])
    return JSONResponse({"contact": contact_view(deployment, contact)})


async def list_team(request: Request) -> Response:
    """
    summary: The workspace's human agents and the signed-in agent
    responses: {200: {description: '{"me": {…}, "workspace", "workspace_name", "agents": […]}'}}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    agents = await run_in_threadpool(list_agents, deployment.redis, agent.workspace)
    name = deployment.workspace(agent.workspace).name or agent.workspace
    return JSONResponse({"me": agent.public(), "workspace": agent.workspace, "workspace_name": name,
                         "agents": agents})


async def ai_agent(request: Request) -> Response:
    """
    summary: The workspace's AI agent (GET), publish or unpublish it (PATCH {"published": bool}, admins)
    responses:
      200: {description: '{"ai_agent": {"name", "model", "published"}}'}
      403: {description: PATCH by an agent who is not an admin}
    """
    agent = await current_agent(request)
    deployment = deployment_of(request)
    if request.method == "PATCH":
        require_admin(agent)
        body = await json_body(request)
        if not isinstance(body.get("published"), bool):
            raise BadRequest("'published' must be true or false")
        await run_in_threadpool(set_published, deployment, agent, body["published"])
    return JSONResponse({"ai_agent": await run_in_threadpool(ai_agent_state, deployment, agent.workspace)})


def ai_agent_state(deployment: Deployment, workspace_id: str) -> dict[str, Any]:
    config = deployment.workspace(workspace_id).ai_agent
    if config is None:
        raise NotFound("this workspace has no AI agent configured")
    override = deployment.redis.hget(keys.key(keys.AI_AGENT, ws=workspace_id), "published")
    published = config.published if override is None else override == "1"
    return {"name": config.name, "model": config.model, "published": published}


def set_published(deployment: Deployment, agent: Agent, published: bool) -> None:
    """Publish, or unpublish: the AI stops at once and every conversation it held waits for a human."""
    from gateway.turn import hand_over_conversation

    workspace = deployment.workspace(agent.workspace)
    if workspace.ai_agent is None:
        raise Conflict("this workspace has no AI agent configured")
    deployment.redis.hset(keys.key(keys.AI_AGENT, ws=agent.workspace), "published", int(published))
    _announce(deployment, agent.workspace, {"type": "ai_agent.updated", "published": published,
                                            "actor": agent.owner})
    if published:
        return
    state = deployment.state
    while ids := state.conversation_ids(agent.workspace, "ai", limit=200):
        for conversation in state.conversations(agent.workspace, ids):
            history = state.messages(agent.workspace, conversation["id"])
            hand_over_conversation(deployment, workspace, conversation, f"AI agent unpublished by {agent.name}",
                                   route="unpublished", summary=ai.extractive_summary(history), notice="")


def _announce(deployment: Deployment, workspace: str, data: dict[str, Any]) -> None:
    deployment.redis.xadd(keys.key(keys.EVENTS, ws=workspace), {"data": json.dumps(data)}, maxlen=10_000,
                          approximate=True)


async def events(request: Request) -> Response:
    """
    summary: Server-sent events for the inbox
    description: 'Types: conversation.created, message.created, conversation.handover (the notification),
      conversation.assigned, conversation.closed, contact.form_sent, contact.captured, message.status,
      ai_agent.updated. Reconnect with Last-Event-ID (or ?last_event_id=) to catch up.'
    responses: {200: {description: text/event-stream}}
    """
    agent = await current_agent(request)
    stream = keys.key(keys.EVENTS, ws=agent.workspace)

    async def render(event_id: str, fields: dict[str, str]) -> str:
        data = json.loads(fields["data"])
        return sse.frame(event_id, data["type"], data)

    events: AsyncIterator[str] = sse.follow(request, request.app.state.aredis, stream,
                                            sse.last_event_id(request), render)
    return sse.response(events)
