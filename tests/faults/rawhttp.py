"""HTTP/1.1 over raw asyncio sockets, for clients that must be cheap: a flood of requests on kept-alive connections,
and thousands of open event streams (httpx costs too much CPU and memory for either)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    first, *rest = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in rest:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(first.split(" ", 2)[1]), headers


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    status, headers = await read_head(reader)
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)


class Connection:
    """One kept-alive connection: a request, then its answer, in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, local_address: str | None = None) -> Connection:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(local_address, 0) if local_address else None)
        return cls(reader, writer)

    async def call(self, method: str, path: str, headers: dict[str, str] | None = None,
                   body: bytes = b"") -> Answer:
        self.writer.write(request(method, path, headers, body))
        return await read_answer(self.reader)

    async def post_json(self, path: str, data: Any, headers: dict[str, str] | None = None) -> Answer:
        return await self.call("POST", path, {"Content-Type": "application/json", **(headers or {})},
                               json.dumps(data).encode())

    def close(self) -> None:
        self.writer.close()
