"""Thousands of idle event streams from one process, on raw asyncio sockets: webchat visitors (a session each,
made through the gateway) and agents' inboxes. Driven by the fault suite over stdin/stdout, one line each way:

    python tests/faults/streams_client.py --port 8000 --channel chat --visitors 10000 --agents tokens.txt
    → SESSIONS <n> <seconds>        (visitor sessions made)
    → OPEN <visitors> <agents> <failed> <seconds>   (every stream answered 200 and sent its first bytes)
    ← WATCH <event type>            (count the agent streams that receive this event from now on)
    → SEEN <agents that got it> <when the last one got it (unix time)>
    ← REPORT                        → {"aborted": …, "open": …}  (streams that ended or failed meanwhile), then exit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.faults.rawhttp import Connection, read_head, request  # noqa: E402


class Stream:
    """One open event stream: bytes read until it ends (which counts as aborted unless we closed it)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.opened = self.ended = False
        self.watch = b""
        self.seen_at = 0.0
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, path: str, headers: dict[str, str], gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
                self.writer.write(request("GET", path, headers))
                status, _ = await read_head(reader)
                if status != 200:
                    return False
                await reader.readuntil(b"\n\n")  # the first frame: the stream is live
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return False
        self.opened = True
        self.task = asyncio.get_running_loop().create_task(self._follow(reader))
        return True

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if self.watch and not self.seen_at:
                    tail = (tail + data)[-4096:]
                    if self.watch in tail:
                        self.seen_at = time.time()
        except OSError:
            pass
        self.ended = True


async def sessions(port: int, channel: str, count: int) -> list[str]:
    tokens: list[str] = []

    async def make(share: int) -> None:
        conn = await Connection.open(port)
        for _ in range(share):
            answer = await conn.call("POST", f"/webchat/{channel}/sessions")
            assert answer.status == 201, answer.body
            tokens.append(answer.json()["token"])
        conn.close()

    await asyncio.gather(*(make(count // 32 + (n < count % 32)) for n in range(32)))
    return tokens


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--channel", default="chat")
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--agents", required=True, help="a file of agent tokens, one a line")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = sys.stdout
    started = time.monotonic()
    tokens = await sessions(args.port, args.channel, args.visitors)
    print(f"SESSIONS {len(tokens)} {time.monotonic() - started:.1f}", file=out, flush=True)
    started = time.monotonic()
    gate = asyncio.Semaphore(256)
    visitors = [Stream("visitor") for _ in tokens]
    agents = [Stream("agent") for _ in Path(args.agents).read_text().split()]
    opened = await asyncio.gather(
        *(s.open(args.port, f"/webchat/{args.channel}/events", {"Authorization": f"Bearer {t}"}, gate)
          for s, t in zip(visitors, tokens, strict=True)),
        *(s.open(args.port, "/api/events", {"Authorization": f"Bearer {t}"}, gate)
          for s, t in zip(agents, Path(args.agents).read_text().split(), strict=True)))
    print(f"OPEN {sum(opened[:len(visitors)])} {sum(opened[len(visitors):])} {opened.count(False)} "
          f"{time.monotonic() - started:.1f}", file=out, flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        command, _, argument = line.partition(" ")
        if command == "WATCH":
            for stream in agents:
                stream.watch = f"event: {argument}".encode()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(s.seen_at for s in agents):
                await asyncio.sleep(0.05)
            seen = [s.seen_at for s in agents if s.seen_at]
            print(f"SEEN {len(seen)} {max(seen, default=0):.3f}", file=out, flush=True)
        elif command == "REPORT":
            everyone = visitors + agents
            report = {"aborted": sum(s.opened and s.ended for s in everyone),
                      "open": sum(s.opened and not s.ended for s in everyone)}
            print(json.dumps(report), file=out, flush=True)
            return


if __name__ == "__main__":
    asyncio.run(main())
