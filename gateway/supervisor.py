"""What `baton serve` runs and watches: gateway processes sharing one listening socket, worker processes, and (by
default) the embedded Valkey server.

A child that exits is started again, with backoff, and the log says why it stopped. Children die with `baton serve`
even when it is killed outright (the kernel signals them: PR_SET_PDEATHSIG), so a restart never finds a stale
worker. One `baton serve` owns a data directory at a time (a lock), and the port is bound before anything is
printed, so a port in use is one clear error, naming the process that holds it when it can be found.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gateway.errors import ConfigError

log = logging.getLogger("baton.supervisor")

_PR_SET_PDEATHSIG = 1
BACKOFF_MAX = 30.0
STEADY_AFTER = 60.0  # seconds of running that reset a child's backoff


def die_with_parent() -> None:
    """In a child, before exec: receive SIGTERM when the parent dies (Linux), whatever killed it."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the orphan check at the next start covers it
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str], pass_fds: tuple[int, ...] = (), **options: object) -> subprocess.Popen[bytes]:
    """A child in a session of its own (Ctrl-C reaches only `baton serve`, which stops children in order), that
    dies with its parent."""
    parent = os.getpid()

    def in_child() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the parent died before the signal was asked for: nobody would send it
            os._exit(1)

    return subprocess.Popen(argv, pass_fds=pass_fds, start_new_session=True, preexec_fn=in_child,  # noqa: S603
                            **options)  # type: ignore[call-overload]


@dataclass
class Child:
    """One supervised process: how to start it, and its restart history."""

    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float = 0.0
    restarts: int = 0

    def start(self) -> None:
        self.process = spawn(self.argv, self.pass_fds)
        self.started_at = time.monotonic()

    def exit_reason(self) -> str:
        assert self.process is not None
        code = self.process.returncode
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def add(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.children.append(Child(name, argv, pass_fds))

    def start(self) -> None:
        for child in self.children:
            child.start()

    def watch(self, tick: float = 0.5, also: Callable[[], None] | None = None) -> None:
        """Restart children that exit, with backoff, until stop() is called (from a signal handler); call `also`
        every tick (the embedded Valkey's own check)."""
        while not self.stopping:
            now = time.monotonic()
            if also is not None:
                also()
            for child in self.children:
                self._check(child, now)
            time.sleep(tick)

    def _check(self, child: Child, now: float) -> None:
        if child.process is None:
            if now >= child.restart_at and not self.stopping:
                child.restarts += 1
                log.warning("restarting %s (restart %d)", child.name, child.restarts)
                child.start()
            return
        if child.process.poll() is None:
            if now - child.started_at > STEADY_AFTER:
                child.backoff = 1.0
            return
        log.error("%s (pid %d) %s; restarting it in %.0f s", child.name, child.process.pid, child.exit_reason(),
                  child.backoff)
        child.process = None
        child.restart_at = now + child.backoff
        child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def stop(self, names: tuple[str, ...] = ("gateway", "worker"), grace: float = 60.0) -> None:
        """Stop the children in the order of `names` (by prefix): each group finishes what it has in hand."""
        self.stopping = True
        for prefix in names:
            group = [c.process for c in self.children if c.name.startswith(prefix) and c.process is not None]
            for process in group:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for process in group:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket the gateways share; a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(port)
            raise ConfigError(f"port {port} is already in use{f' by {holder}' if holder else ''}; stop it or choose "
                              f"another with --port") from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def port_holder(port: int) -> str:
    """'pid 1234 (python -m gateway.cli serve…)' for the process listening on the port, or '' if unknown."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # 0A: LISTEN
                inodes.add(parts[9])
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            links = {os.readlink(fd) for fd in (pid_dir / "fd").iterdir()}
        except OSError:
            continue
        if {f"socket:[{inode}]" for inode in inodes} & links:
            command = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            return f"pid {pid_dir.name} ({command[:80]})"
    return ""


class DataDirLock:
    """One `baton serve` per data directory: an exclusive lock held for the process's life."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        if not self.path.parent.exists():  # the data directory: its files hold the Valkey password
            self.path.parent.mkdir(parents=True, mode=0o700)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"another `baton serve` ({owner}) is using the data directory {self.path.parent}; "
                              f"stop it first, or give this one its own --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.file = handle

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]
