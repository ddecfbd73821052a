"""Who is calling: human agents (bearer tokens, stored hashed) and webchat visitors (signed tokens)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from gateway import keys
from gateway.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

_AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class Agent:
    workspace: str
    id: str
    name: str
    admin: bool = False

    @property
    def owner(self) -> str:
        return f"agent:{self.id}"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "admin": self.admin}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_agent(client: redis.Redis, workspace: str, agent_id: str, name: str, admin: bool = False) -> str:
    """Create an agent and return their bearer token; only its hash is stored."""
    if not _AGENT_ID.match(agent_id):
        raise BadRequest("agent id must be 1-40 lower-case letters, digits, '.', '_' or '-'")
    token = f"baton_{workspace}_{secrets.token_urlsafe(24)}"
    digest = _digest(token)
    record = {"id": agent_id, "name": name or agent_id, "admin": admin, "created_at": int(time.time()),
              "token": digest}
    if not client.hsetnx(keys.key(keys.AGENTS, ws=workspace), agent_id, json.dumps(record)):
        raise Conflict(f"agent {agent_id!r} already exists in workspace {workspace!r}")
    client.set(keys.key(keys.AGENT_TOKEN, ws=workspace, digest=digest), agent_id)
    return token


def list_agents(client: redis.Redis, workspace: str) -> list[dict[str, Any]]:
    records = [json.loads(v) for v in client.hvals(keys.key(keys.AGENTS, ws=workspace))]
    return sorted(({k: v for k, v in r.items() if k != "token"} for r in records), key=lambda r: r["id"])


def revoke_agent(client: redis.Redis, workspace: str, agent_id: str) -> None:
    raw = client.hget(keys.key(keys.AGENTS, ws=workspace), agent_id)
    if raw is None:
        raise NotFound(f"no agent {agent_id!r} in workspace {workspace!r}")
    record = json.loads(raw)
    client.delete(keys.key(keys.AGENT_TOKEN, ws=workspace, digest=record["token"]))
    client.hdel(keys.key(keys.AGENTS, ws=workspace), agent_id)


def token_workspace(token: str) -> str:
    match = re.match(r"^baton_([a-z0-9][a-z0-9_-]{0,39})_[A-Za-z0-9_-]{20,}$", token)
    if not match:
        raise Unauthorized("malformed agent token")
    # The workspace id may itself contain '_': the random part is the last 32 characters.
    return token[len("baton_"): -33]


def authenticate_agent(client: redis.Redis, token: str) -> Agent:
    """The agent a bearer token belongs to; Unauthorized when it is unknown or revoked."""
    workspace = token_workspace(token)
    agent_id = client.get(keys.key(keys.AGENT_TOKEN, ws=workspace, digest=_digest(token)))
    raw = agent_id and client.hget(keys.key(keys.AGENTS, ws=workspace), agent_id)
    if not raw:
        raise Unauthorized("unknown or revoked agent token")
    record = json.loads(raw)
    return Agent(workspace, record["id"], record["name"], bool(record.get("admin")))


def agent_by_id(client: redis.Redis, workspace: str, agent_id: str) -> Agent:
    raw = client.hget(keys.key(keys.AGENTS, ws=workspace), agent_id)
    if raw is None:
        raise NotFound(f"no agent {agent_id!r}")
    record = json.loads(raw)
    return Agent(workspace, record["id"], record["name"], bool(record.get("admin")))


def require_admin(agent: Agent) -> None:
    if not agent.admin:
        raise Forbidden("this needs an admin agent (baton agent create ID --admin)")


# --- webchat visitors ----------------------------------------------------------------------------

def visitor_token(secret: bytes, channel: str) -> tuple[str, str]:
    """A new visitor id and the token that confines its bearer to that visitor's conversations."""
    visitor = secrets.token_hex(12)
    return visitor, f"v1.{channel}.{visitor}.{_sign(secret, channel, visitor)}"


def visitor_from_token(secret: bytes, channel: str, token: str) -> str:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        raise Unauthorized("malformed visitor token")
    _, token_channel, visitor, signature = parts
    if not hmac.compare_digest(signature, _sign(secret, token_channel, visitor)):
        raise Unauthorized("invalid visitor token")
    if token_channel != channel:
        raise Forbidden(f"this visitor token belongs to channel {token_channel!r}, not {channel!r}")
    return visitor


def _sign(secret: bytes, channel: str, visitor: str) -> str:
    return hmac.new(secret, f"{channel}|{visitor}".encode(), hashlib.sha256).hexdigest()[:43]


def bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    return header[7:].strip()
