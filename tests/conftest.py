"""Shared fixtures: a real Redis-protocol server (embedded Valkey, or REDIS_URL), deployments built inside
each test with their own workspace and queue, the app under TestClient, and a way to run queued jobs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from starlette.testclient import TestClient

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway import worker  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.auth import create_agent  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.deployment import Deployment  # noqa: E402
from gateway.redis_server import EmbeddedValkey  # noqa: E402

KNOWLEDGE = [
    {"q": "What are your opening hours?", "a": "We are open Monday to Friday, 9:00 to 17:00."},
    {"q": "How long does shipping take?", "a": "Delivery takes 2-4 business days."},
    {"q": "How do I return a lamp?", "a": "Start a return from the order page within 30 days."},
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set (CI runs the suite again against Redis 7), else an embedded Valkey."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    try:
        yield server.start()
    finally:
        server.stop()


def config_tree(workspace: str, **overrides: Any) -> dict[str, Any]:
    """A one-workspace deployment: webchat, an AI agent with the offline model, a short timeout."""
    tree: dict[str, Any] = {
        "queue": f"q-{workspace}",
        "secret": "test-secret-0123456789",
        "workspaces": [{
            "id": workspace,
            "channels": [{"name": f"{workspace}-chat", "type": "webchat"}],
            "ai_agent": {"name": "Lumi", "model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}},
            "handover": {"no_human_timeout": 120},
        }],
    }
    for name, value in overrides.items():
        target = tree["workspaces"][0] if name in ("channels", "ai_agent", "handover", "notifiers") else tree
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            target[name] = {**target[name], **value}
        else:
            target[name] = value
    return tree


@pytest.fixture
def make_deployment(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    built: list[Deployment] = []

    def make(**overrides: Any) -> Deployment:
        workspace = f"t{uuid.uuid4().hex[:10]}"
        text = yaml.safe_dump(config_tree(workspace, **overrides))
        deployment = Deployment.build(parse_config(text, base_dir=tmp_path), redis_url)
        built.append(deployment)
        return deployment

    yield make
    for deployment in built:
        deployment.close()


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    return make_deployment()


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(deployment)) as test_client:
        yield test_client


def run_jobs(deployment: Deployment) -> None:
    """Run every queued job in this process, as a worker would (AI turns, deliveries, notifications)."""
    worker.prepare(deployment)
    SimpleWorker([deployment.queue], connection=deployment.rq_redis, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING")


def workspace_of(deployment: Deployment) -> str:
    return deployment.config.workspaces[0].id


def chat_channel(deployment: Deployment) -> str:
    return f"{workspace_of(deployment)}-chat"


def agent_token(deployment: Deployment, agent_id: str = "alex", admin: bool = False) -> dict[str, str]:
    """Create an agent and return the Authorization header for them."""
    token = create_agent(deployment.redis, workspace_of(deployment), agent_id, agent_id.title(), admin=admin)
    return {"Authorization": f"Bearer {token}"}


class Visitor:
    """A webchat visitor driving the public API."""

    def __init__(self, client: TestClient, channel: str) -> None:
        self.client = client
        self.channel = channel
        response = client.post(f"/webchat/{channel}/sessions")
        assert response.status_code == 201, response.text
        self.token = response.json()["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.sent = 0

    def say(self, text: str, client_id: str | None = None) -> dict[str, Any]:
        self.sent += 1
        body = {"text": text, "client_id": client_id or f"m{self.sent}"}
        response = self.client.post(f"/webchat/{self.channel}/messages", json=body, headers=self.headers)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def history(self) -> dict[str, Any]:
        response = self.client.get(f"/webchat/{self.channel}/messages", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def texts(self, author: str | None = None) -> list[str]:
        return [m.get("text", "") for m in self.history()["messages"] if author in (None, m["author"])]


@pytest.fixture
def visitor(client: TestClient, deployment: Deployment) -> Visitor:
    return Visitor(client, chat_channel(deployment))
