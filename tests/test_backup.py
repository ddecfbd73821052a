"""Backups and restores on the embedded Valkey, as docs/deploy.md tells them: `baton backup` while Baton runs,
`baton restore` into another data directory, and `baton serve` on it beside the original, whose Valkey a copy of its
data directory must never stop. The embedded server keeps a password in its data directory."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.conftest import KNOWLEDGE, Served, baton, free_port

pytestmark = pytest.mark.slow  # two whole `baton serve` trees: `pytest -m slow`


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": "webchat"}],
        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}}]}))
    return path


@pytest.fixture
def original(config_file: Path) -> Iterator[Served]:
    served = Served(config_file, free_port(), log=config_file.parent / "original.log")
    yield served
    if served.process.poll() is None:
        served.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/cmdline").exists() and b"valkey" in Path(f"/proc/{pid}/cmdline").read_bytes()


def chat(url: str) -> str:
    """A visitor's question, recorded; the conversation's id."""
    token = httpx.post(f"{url}/webchat/chat/sessions").json()["token"]
    sent = httpx.post(f"{url}/webchat/chat/messages", json={"text": "How long does shipping take?", "client_id": "1"},
                      headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 201, sent.text
    return str(sent.json()["conversation"])


def test_backup_while_running_restore_beside_the_original_and_serve_both(original: Served, config_file: Path,
                                                                          tmp_path: Path) -> None:
    data_dir = config_file.parent / ".baton"
    info = json.loads((data_dir / "valkey.json").read_text())
    created = baton("agent", "create", "alex", "--config", str(config_file), cwd=config_file.parent)
    assert created.returncode == 0, created.stderr
    agent = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    cid = chat(original.url)

    saved = baton("backup", str(tmp_path / "backup.tar.gz"), "--config", str(config_file), cwd=config_file.parent)
    assert saved.returncode == 0, saved.stderr
    assert "schema 1" in saved.stdout
    assert stat.S_IMODE((tmp_path / "backup.tar.gz").stat().st_mode) == 0o600

    # A copy of the running original's data directory, valkey.json and all, started on the same machine.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("metrics"))
    restored_dir = tmp_path / "restored"
    restored = baton("restore", str(tmp_path / "backup.tar.gz"), "--data-dir", str(restored_dir), "--config",
                     str(config_file), cwd=config_file.parent)
    assert restored.returncode == 0, restored.stderr
    again = baton("restore", str(tmp_path / "backup.tar.gz"), "--data-dir", str(restored_dir), "--config",
                  str(config_file), cwd=config_file.parent)
    assert again.returncode == 2 and "already holds data" in again.stderr

    for directory in (copy, restored_dir):
        beside = Served(config_file, free_port(), log=tmp_path / f"{directory.name}.log",
                        extra=("--data-dir", str(directory)))
        try:
            assert alive(info["pid"]), f"starting on {directory.name} stopped the original's Valkey"
            detail = httpx.get(f"{beside.url}/api/conversations/{cid}", headers=agent)
            assert detail.status_code == 200, detail.text
            assert detail.json()["conversation"]["messages"][0]["text"] == "How long does shipping take?"
            assert beside.url != original.url and httpx.get(f"{original.url}/healthz").status_code == 200
        finally:
            code, output = beside.stop()
        assert code == 0, output
        assert "of another data directory" in output or directory == restored_dir
    assert alive(info["pid"])
    assert httpx.get(f"{original.url}/api/conversations/{cid}", headers=agent).status_code == 200


def test_the_embedded_valkey_needs_the_password_its_data_directory_keeps(original: Served,
                                                                         config_file: Path) -> None:
    data_dir = config_file.parent / ".baton"
    url = json.loads((data_dir / "valkey.json").read_text())["url"]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).set("baton:intruder", 1)  # another local process, without the password
    password = (data_dir / "valkey.password").read_text().strip()
    assert redis.Redis(port=port, password=password).ping()
    for name in ("valkey.password", "valkey.json", "valkey.conf"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert password not in (original.log.read_text() if original.log else "")  # printed redacted
