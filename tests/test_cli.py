"""The `baton` command as a user runs it: serve (embedded Valkey + gateway + worker), agent, check."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import KNOWLEDGE, Served, baton, free_port


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


def test_check_fails_on_an_unreachable_redis(config_file: Path) -> None:
    result = baton("check", "--config", str(config_file), "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                   cwd=config_file.parent)
    assert result.returncode == 2 and "cannot reach Redis" in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = baton("serve", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "cannot read configuration file" in result.stderr
