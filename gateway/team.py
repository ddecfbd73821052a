"""The team roster: the human agents of a workspace, as the handover and the request side both see them.

Their credentials (API tokens, inbox sessions) are gateway.web.auth's; this module reads only the roster itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from gateway import keys
from gateway.errors import NotFound


@dataclass(frozen=True)
class Agent:
    workspace_id: str
    id: str
    name: str
    admin: bool = False
    teams: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        return f"agent:{self.id}"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "admin": self.admin, "teams": list(self.teams)}

    def may_take(self, team: str) -> bool:
        """A chat of `team` ("" for the whole workspace) is this agent's to take: a member's, or any admin's."""
        return not team or self.admin or team in self.teams


def list_agents(client: redis.Redis, workspace_id: str) -> list[dict[str, Any]]:
    records = [json.loads(v) for v in client.hvals(keys.key(keys.AGENTS, workspace_id=workspace_id))]
    return sorted(({k: v for k, v in r.items() if k != "token"} for r in records), key=lambda r: r["id"])


def agent_by_id(client: redis.Redis, workspace_id: str, agent_id: str) -> Agent:
    record = agent_record(client, workspace_id, agent_id)
    return Agent(workspace_id, record["id"], record["name"], bool(record.get("admin")), tuple(record.get("teams", ())))


def agent_record(client: redis.Redis, workspace_id: str, agent_id: str) -> dict[str, Any]:
    """The agent's stored record (with their token's digest); NotFound when the workspace has no such agent."""
    raw = client.hget(keys.key(keys.AGENTS, workspace_id=workspace_id), agent_id)
    if raw is None:
        raise NotFound(f"no agent {agent_id!r} in workspace {workspace_id!r}")
    record: dict[str, Any] = json.loads(raw)
    return record
