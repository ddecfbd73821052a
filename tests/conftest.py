"""Shared fixtures: a real Redis-protocol server (embedded Valkey, or REDIS_URL), deployments built inside
each test with their own workspace and queue, the app under TestClient, and a way to run queued jobs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from starlette.testclient import TestClient

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.config import parse_config  # noqa: E402
from gateway.deployment import Deployment  # noqa: E402
from gateway.redis_server import EmbeddedValkey  # noqa: E402
from gateway.web.app import create_app  # noqa: E402
from gateway.web.auth import create_agent  # noqa: E402
from gateway.work import worker  # noqa: E402
from tests import process_guard  # noqa: E402
from tests.store_kit import Kit  # noqa: E402

KNOWLEDGE = [
    {"q": "What are your opening hours?", "a": "We are open Monday to Friday, 9:00 to 17:00."},
    {"q": "How long does shipping take?", "a": "Delivery takes 2-4 business days."},
    {"q": "How do I return a lamp?", "a": "Start a return from the order page within 30 days."},
]


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C and SIGTERM end the run at once, and no process a test started outlives it (tests/process_guard.py)."""
    process_guard.become_subreaper()
    process_guard.install()


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Before pytest's own unconfigure (which collects the interrupted tests' unclosed objects at length)."""
    process_guard.stop_descendants()
    process_guard.reap()
    process_guard.exit_if_interrupted()


@pytest.fixture(autouse=True)
def _signals_end_the_run() -> Iterator[None]:
    """A test (or a library it runs) that took SIGINT or SIGTERM over gives them back to the session's guard."""
    process_guard.install()
    yield
    process_guard.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that talks to a Redis server is marked `redis`, so CI can rerun them on Redis 7; every browser test
    is also `slow`, left out of the default run."""
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def baton_redis_url(redis_url: str) -> str:
    """The conformance suite (gateway.testing) stores into the suite's own server."""
    return redis_url


def config_tree(workspace: str, **overrides: Any) -> dict[str, Any]:
    """A one-workspace deployment: webchat, an AI agent with the offline model, a short timeout."""
    tree: dict[str, Any] = {
        "queue": f"q-{workspace}",
        "secret": "test-secret-0123456789",
        # Tests speak for many visitors from one address ("testclient"): limits far above what they send.
        "limits": {"ip_sessions": {"count": 100_000, "seconds": 60}, "ip_messages": {"count": 100_000, "seconds": 60},
                   "visitor_messages": {"count": 1_000, "seconds": 10}},
        "workspaces": [{
            "id": workspace,
            "channels": [{"name": f"{workspace}-chat", "type": "webchat"}],
            "ai_agent": {"name": "Lumi", "model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}},
            "handover": {"no_human_timeout": 120},
        }],
    }
    for name, value in overrides.items():
        target = tree["workspaces"][0] if name in ("channels", "ai_agent", "handover", "notifiers", "presence",
                                                  "assignment", "team", "language", "texts",
                                                  "business_hours", "sla") else tree
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
    """Do all pending work in this process, as a worker would (AI turns, deliveries, notifications)."""
    worker.run_until_idle(deployment)


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


class LiveServer:
    """The app served by a real uvicorn on a free port, in a thread (for streams and concurrency)."""

    def __init__(self, deployment: Deployment) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(deployment), host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=1, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(deployment: Deployment) -> Iterator[LiveServer]:
    with LiveServer(deployment) as server:
        yield server


# --- the inbox's side: events, notifications, a hosted model ------------------------------------

def inbox_events(client: TestClient, headers: dict[str, str], kind: str = "") -> list[dict[str, Any]]:
    """Every inbox event so far, as GET /api/events streams them (SSE), optionally of one type."""
    import json

    deployment: Deployment = client.app.state.deployment  # type: ignore[attr-defined]
    workspace = workspace_of(deployment)
    newest = deployment.redis.xrevrange(f"baton:{workspace}:events", count=1)
    if not newest:
        return []
    events: list[dict[str, Any]] = []
    frame: dict[str, Any] = {}
    with client.stream("GET", "/api/events", params={"last_event_id": "0"}, headers=headers) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith(("id: ", "event: ", "data: ")):
                name, _, value = line.partition(": ")
                frame[name] = json.loads(value) if name == "data" else value
            elif line == "" and "data" in frame:
                events.append(frame["data"])
                if frame.pop("id") == newest[0][0]:
                    break
                frame = {}
    return [event for event in events if kind in ("", event["type"])]


@pytest.fixture
def notifications() -> Iterator[list[dict[str, Any]]]:
    """What the `baton_notify` hook receives, through an inline plugin registered for the test."""
    from gateway import hookimpl
    from gateway.plugin_host import plugin_manager

    received: list[dict[str, Any]] = []

    class Collector:
        @hookimpl
        def baton_notify(self, workspace: str, notification: dict[str, Any]) -> None:
            received.append({"workspace": workspace, **notification})

    collector = Collector()
    plugin_manager().register(collector)
    try:
        yield received
    finally:
        plugin_manager().unregister(collector)


@pytest.fixture
def fake_openai() -> Iterator[Any]:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


def hosted_model(fake: Any, **settings: Any) -> dict[str, Any]:
    """An `ai_agent` override: a real litellm model served by FakeOpenAI (Baton makes one attempt per answer)."""
    return {"model": "openai/gpt-4o-mini", "timeout": 10,
            "litellm_params": {"api_base": fake.base_url, "api_key": "test"}, **settings}


# --- `baton` as a user runs it: a subprocess on the embedded Valkey ----------------------------

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def baton(*args: str, cwd: Path, timeout: float = 60) -> Any:
    """Run a `baton` command (a subprocess.CompletedProcess), never against the suite's REDIS_URL."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


class Served:
    """`baton serve --config CONFIG --port PORT` in a subprocess, up once /healthz answers.

    Its output goes to a pipe read by stop(), or to `log` (a file) for a server that runs long enough to
    fill a pipe nobody reads.
    """

    def __init__(self, config: Path, port: int, log: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        import subprocess
        import sys
        import time

        import httpx

        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.log = log
        self._log_file = open(log, "w") if log else None  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port), *extra],
            cwd=config.parent, env=env, stdout=self._log_file or subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "baton serve did not come up"
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

    def output(self) -> str:
        if self.log is None:
            return self.process.stdout.read() if self.process.stdout else ""
        return self.log.read_text()

    def stop(self) -> tuple[int, str]:
        import signal

        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        if self._log_file:
            self._log_file.close()
            output = self.output()
        return self.process.returncode, output


# --- the state script alone: a fresh workspace on the real server, no deployment ------------------------------

@pytest.fixture
def kit(redis_url: str) -> Iterator[Kit]:
    """The typed Store on a workspace of its own, and reads of every key it writes."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield Kit(client)
    finally:
        client.close()
