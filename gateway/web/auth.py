"""Who is calling: human agents (API tokens and inbox sessions) and webchat visitors (visitor sessions).

Every credential is a random string of which only a digest is stored, under a key whose TTL is the credential's
life: an agent's API token (90 days unless set otherwise, `baton agent rotate` replaces it), an inbox session
(12 hours, renewed while used, at most 7 days), a visitor session (30 days, renewed while used). Revoking an agent
deletes their token and sessions at once, and announces it so that their open event streams end. The roster itself
(who the agents are) is gateway.team's.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from gateway import keys
from gateway.errors import BadRequest, Conflict, Forbidden, Unauthorized
from gateway.team import Agent, agent_by_id, agent_record

_AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
TOKEN_DAYS = 90
SESSION_IDLE_S = 12 * 3600
SESSION_MAX_S = 7 * 24 * 3600
VISITOR_S = 30 * 24 * 3600


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- agents and their API tokens ------------------------------------------------------------------------------

def create_agent(client: redis.Redis, workspace_id: str, agent_id: str, name: str, admin: bool = False,
                 days: int = TOKEN_DAYS, teams: list[str] | None = None) -> str:
    """Create an agent (in `teams`) and return their API token (`days` of life, 0 for none); only its digest is
    stored. Agents signed in are told (agent.created), so the new one shows in their inbox without a reload."""
    if not _AGENT_ID.match(agent_id):
        raise BadRequest("agent id must be 1-40 lower-case letters, digits, '.', '_' or '-'")
    for team in teams or []:
        if not _AGENT_ID.match(team):
            raise BadRequest(f"team {team!r}: 1-40 lower-case letters, digits, '.', '_' or '-'")
    record: dict[str, Any] = {"id": agent_id, "name": name or agent_id, "admin": admin, "created_at": int(time.time())}
    if teams:
        record["teams"] = sorted(set(teams))
    if not client.hsetnx(keys.key(keys.AGENTS, workspace_id=workspace_id), agent_id, json.dumps(record)):
        raise Conflict(f"agent {agent_id!r} already exists in workspace {workspace_id!r} (rotate their token with "
                       f"`baton agent rotate {agent_id}`)")
    event = {"type": "agent.created", "agent": agent_id, "name": record["name"], "at": int(time.time() * 1000)}
    client.xadd(keys.key(keys.EVENTS, workspace_id=workspace_id), {"data": json.dumps(event)}, maxlen=10_000,
                approximate=True)
    return _issue_token(client, workspace_id, record, days)


MOST_TEAMS = 20


def set_teams(client: redis.Redis, workspace_id: str, agent_id: str, teams: list[str]) -> dict[str, Any]:
    """An admin puts the agent in these teams (and out of the others): automatic assignment, alerts and who may take
    a team's chat follow at once (each reads the record). The agent's public record; agents signed in are told
    (agent.updated). NotFound for an unknown agent, BadRequest for a bad team name."""
    if len(teams) > MOST_TEAMS:
        raise BadRequest(f"an agent belongs to at most {MOST_TEAMS} teams")
    for team in teams:
        if not isinstance(team, str) or not _AGENT_ID.match(team):
            raise BadRequest(f"team {str(team)[:40]!r}: 1-40 lower-case letters, digits, '.', '_' or '-'")
    agents = keys.key(keys.AGENTS, workspace_id=workspace_id)

    def update(pipe: Any) -> dict[str, Any]:
        record = agent_record(pipe, workspace_id, agent_id)
        record.pop("teams", None)
        if teams:
            record["teams"] = sorted(set(teams))
        pipe.multi()
        pipe.hset(agents, agent_id, json.dumps(record))
        return record

    record: dict[str, Any] = client.transaction(update, agents, value_from_callable=True)  # type: ignore[arg-type, assignment]
    event = {"type": "agent.updated", "agent": agent_id, "name": record["name"], "teams": record.get("teams", []),
             "at": int(time.time() * 1000)}
    client.xadd(keys.key(keys.EVENTS, workspace_id=workspace_id), {"data": json.dumps(event)}, maxlen=10_000,
                approximate=True)
    return {"id": record["id"], "name": record["name"], "admin": bool(record.get("admin")),
            "teams": record.get("teams", [])}


def rotate_token(client: redis.Redis, workspace_id: str, agent_id: str, days: int = TOKEN_DAYS) -> str:
    """A new API token for the agent; the old one, and every inbox session, stops working at once."""
    record = agent_record(client, workspace_id, agent_id)
    _end_credentials(client, workspace_id, record, "token rotated")
    return _issue_token(client, workspace_id, record, days)


def revoke_agent(client: redis.Redis, workspace_id: str, agent_id: str) -> None:
    record = agent_record(client, workspace_id, agent_id)
    _end_credentials(client, workspace_id, record, "agent revoked")
    client.hdel(keys.key(keys.AGENTS, workspace_id=workspace_id), agent_id)


def authenticate_agent(client: redis.Redis, token: str) -> Agent:
    """The agent an API token belongs to; Unauthorized when it is unknown, expired or revoked."""
    workspace_id = token_workspace(token)
    agent_id = client.get(keys.key(keys.AGENT_TOKEN, workspace_id=workspace_id, digest=digest(token)))
    if not agent_id:
        raise Unauthorized("unknown, expired or revoked agent token")
    return agent_by_id(client, workspace_id, str(agent_id))


def token_workspace(token: str) -> str:
    match = re.match(r"^baton_([a-z0-9][a-z0-9_-]{0,39})_[A-Za-z0-9_-]{32}$", token)
    if not match:
        raise Unauthorized("malformed agent token")
    return match.group(1)


def require_admin(agent: Agent) -> None:
    if not agent.admin:
        raise Forbidden("this needs an admin agent (baton agent create ID --admin)")


def _issue_token(client: redis.Redis, workspace_id: str, record: dict[str, Any], days: int) -> str:
    token = f"baton_{workspace_id}_{secrets.token_urlsafe(24)}"
    record = {**record, "token": digest(token), "token_expires_at": int(time.time()) + days * 86400 if days else 0}
    pipe = client.pipeline()
    pipe.hset(keys.key(keys.AGENTS, workspace_id=workspace_id), record["id"], json.dumps(record))
    pipe.set(keys.key(keys.AGENT_TOKEN, workspace_id=workspace_id, digest=record["token"]), record["id"],
             ex=days * 86400 if days else None)
    pipe.execute()
    return token


def _end_credentials(client: redis.Redis, workspace_id: str, record: dict[str, Any], reason: str) -> None:
    """Delete the agent's API token and inbox sessions, and tell the gateways to end their event streams."""
    sessions = keys.key(keys.AGENT_SESSIONS, workspace_id=workspace_id, agent=record["id"])
    pipe = client.pipeline()
    if record.get("token"):
        pipe.delete(keys.key(keys.AGENT_TOKEN, workspace_id=workspace_id, digest=record["token"]))
    for session in client.smembers(sessions):
        pipe.delete(keys.key(keys.SESSION, workspace_id=workspace_id, digest=str(session)))
    pipe.delete(sessions)
    event = {"type": "agent.revoked", "agent": record["id"], "reason": reason, "at": int(time.time() * 1000)}
    pipe.xadd(keys.key(keys.EVENTS, workspace_id=workspace_id), {"data": json.dumps(event)}, maxlen=10_000,
              approximate=True)
    pipe.execute()


# --- inbox sessions -------------------------------------------------------------------------------------------

def open_session(client: redis.Redis, agent: Agent) -> tuple[str, int]:
    """A new inbox session for the agent: its id (the cookie's value) and its absolute expiry (unix seconds)."""
    session = f"{agent.workspace_id}.{secrets.token_urlsafe(32)}"
    expires = int(time.time()) + SESSION_MAX_S
    value = json.dumps({"agent": agent.id, "expires": expires})
    pipe = client.pipeline()
    pipe.set(keys.key(keys.SESSION, workspace_id=agent.workspace_id, digest=digest(session)), value, ex=SESSION_IDLE_S)
    pipe.sadd(keys.key(keys.AGENT_SESSIONS, workspace_id=agent.workspace_id, agent=agent.id), digest(session))
    pipe.expire(keys.key(keys.AGENT_SESSIONS, workspace_id=agent.workspace_id, agent=agent.id), SESSION_MAX_S)
    pipe.execute()
    return session, expires


def session_agent(client: redis.Redis, session: str) -> Agent:
    """The agent of an inbox session, renewing its idle time; Unauthorized when it ended or expired."""
    workspace_id = session.split(".", 1)[0]
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,39}$", workspace_id):
        raise Unauthorized("not signed in")
    raw = client.getex(keys.key(keys.SESSION, workspace_id=workspace_id, digest=digest(session)), ex=SESSION_IDLE_S)
    if not raw:
        raise Unauthorized("not signed in (the session ended or expired)")
    data = json.loads(raw)
    if data["expires"] <= time.time():
        raise Unauthorized("the session expired; sign in again")
    return agent_by_id(client, workspace_id, data["agent"])


def close_session(client: redis.Redis, session: str) -> None:
    workspace_id = session.split(".", 1)[0]
    client.delete(keys.key(keys.SESSION, workspace_id=workspace_id, digest=digest(session)))


# --- webchat visitors -----------------------------------------------------------------------------------------

async def open_visitor(client: aioredis.Redis, workspace_id: str, channel_name: str) -> tuple[str, str]:
    """A new visitor and the session token that confines its bearer to that visitor's conversations."""
    visitor, token = secrets.token_hex(12), f"v2.{secrets.token_urlsafe(32)}"
    await client.set(keys.key(keys.VISITOR, workspace_id=workspace_id, digest=digest(token)),
                     f"{channel_name}|{visitor}", ex=VISITOR_S)
    return visitor, token


async def visitor_of(client: aioredis.Redis, workspace_id: str, channel_name: str, token: str) -> str:
    """The visitor a session token belongs to, renewing the session; 401 when unknown or expired."""
    if not token.startswith("v2."):
        raise Unauthorized("malformed visitor token")
    raw = await client.getex(keys.key(keys.VISITOR, workspace_id=workspace_id, digest=digest(token)), ex=VISITOR_S)
    if not raw:
        raise Unauthorized("unknown or expired visitor session; start a new one")
    token_channel, _, visitor = str(raw).partition("|")
    if token_channel != channel_name:
        raise Forbidden(f"this visitor session belongs to channel {token_channel!r}, not {channel_name!r}")
    return visitor


def bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    return header[7:].strip()
