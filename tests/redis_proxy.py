"""A TCP proxy in front of a real Redis server that misbehaves on command, for the commits whose outcome Baton
cannot know: a command held back (it reaches Redis late), its answer lost on the way back, or refused as Redis
refuses when out of memory. Everything else passes through untouched.

    with RedisProxy(redis_url) as proxy:
        proxy.arm(b"post", "lose_answer")     # the next command whose bytes hold b"post": run, its answer dropped
        deployment = Deployment.build(config, proxy.url)
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

Mode = str  # "lose_answer" | "lose_command" | "delay" | "oom"


@dataclass
class _Fault:
    pattern: bytes
    mode: Mode
    times: int
    delay: float


class RedisProxy:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._parts = parts
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.applied: list[tuple[Mode, bytes]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        port = self._listener.getsockname()[1]
        netloc = self._parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        return urlunsplit(self._parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def arm(self, pattern: bytes, mode: Mode, times: int = 1, delay: float = 0.0) -> None:
        """The next `times` commands holding `pattern` meet the fault."""
        with self._lock:
            self._faults.append(_Fault(pattern, mode, times, delay))

    def __enter__(self) -> RedisProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _fault_for(self, data: bytes) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.pattern in data and fault.times > 0:
                    fault.times -= 1
                    self.applied.append((fault.mode, fault.pattern))
                    return fault
        return None

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """One client connection: requests go to the server, answers come back, one exchange at a time where a
        fault applies (the client library sends a command and waits for its answer)."""
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [], 1.0)
                if self._stopping:
                    return
                if server in readable:
                    answer = server.recv(65536)
                    if not answer:
                        return
                    client.sendall(answer)
                if client in readable:
                    request = client.recv(65536)
                    if not request:
                        return
                    fault = self._fault_for(request)
                    if fault is None:
                        server.sendall(request)
                    elif not self._apply(fault, request, client, server):
                        return
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _apply(self, fault: _Fault, request: bytes, client: socket.socket, server: socket.socket) -> bool:
        """Whether the connection lives on."""
        if fault.mode == "oom":
            client.sendall(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
            return True
        if fault.mode == "lose_command":
            return False
        if fault.mode == "delay":
            time.sleep(fault.delay)
            server.sendall(request)
            return True
        server.sendall(request)  # lose_answer: Redis runs it; its answer never reaches the client
        server.settimeout(10)
        server.recv(65536)
        return False
