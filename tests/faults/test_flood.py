"""One webchat visitor floods (2,000 messages as fast as it can, from its own address) while 20 others chat, each
from an address of its own, with the default limits: the others' answers keep coming within a second (p99), the
flooder gets 429 with Retry-After, and what was accepted of the flood is answered by a few turns, not one each.

The model answers in 0.1 s, as a fast hosted one does: a turn coalesces the customer messages that arrive while it
is pending or running. With the offline model (a few ms a turn) a flood's accepted messages arrive more slowly than
turns end, and are answered nearly one each (20 turns for 40 accepted, measured): cheap, but not coalesced."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.faults.audit import audit
from tests.faults.lab import Lab
from tests.faults.rawhttp import Answer, Connection
from tests.faults.traffic import Ledger, Sent

FLOOD = 2_000
CHATTERS = 20
MODEL_S = 0.1  # a fast hosted model: a turn lasts long enough for the flood's next messages to arrive meanwhile
DEFAULT_LIMITS = {"visitor_messages": {"count": 20, "seconds": 10}, "ip_messages": {"count": 300, "seconds": 60},
                  "ip_sessions": {"count": 60, "seconds": 60}, "agent_requests": {"count": 1200, "seconds": 60}}


def _client(base: str, address: str, connections: int = 10) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any 127.x.y.z reaches the gateway on 127.0.0.1)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=connections))
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=30)


async def _session(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    answer = (await http.post("/webchat/chat/sessions")).json()
    return answer["visitor"], {"Authorization": f"Bearer {answer['token']}"}


async def _post(http: httpx.AsyncClient, ledger: Ledger, visitor: str, headers: dict[str, str], text: str,
                client_id: str) -> httpx.Response:
    sent = ledger.add(Sent("chat", visitor, f"{visitor}:{client_id}", text))
    started = time.time()
    response = await http.post("/webchat/chat/messages", json={"text": text, "client_id": client_id}, headers=headers)
    sent.attempts.append((started, time.time(), response.status_code))
    if response.status_code in (200, 201):
        sent.acked_at = time.time()
    return response


@dataclass
class Sample:
    """One message of a chatter, in wall-clock seconds: written, stored (acknowledged), answered (the AI's answer
    stored), and the answer seen on the visitor's stream."""

    written: float
    stored: float
    answered: float
    seen: float

    @property
    def latency(self) -> float:
        return self.seen - self.written


def _at(message_id: str) -> float:
    return int(message_id.rpartition("/")[2].split("-")[0]) / 1000


class Chatter:
    """A visitor with the widget open: writes, waits for the AI's answer on its event stream, writes again."""

    def __init__(self, base: str, n: int) -> None:
        self.http = _client(base, f"127.0.1.{n + 1}")
        self.n, self.shown = n, []  # type: ignore[var-annotated]
        self.samples: list[Sample] = []
        self.answers: asyncio.Queue[tuple[float, str]] = asyncio.Queue()  # (seen at, event id)

    async def run(self, ledger: Ledger, until: asyncio.Event) -> None:
        visitor, headers = await _session(self.http)
        listening = asyncio.Event()
        reader = asyncio.create_task(self._listen(headers, listening))
        await listening.wait()
        count = 0
        while not until.is_set() or count < 3:
            count += 1
            written = time.time()
            response = await _post(self.http, ledger, visitor, headers, f"chat{self.n}-{count} How long does "
                                   f"shipping take?", f"m{count}")
            assert response.status_code == 201, response.text
            seen, event_id = await asyncio.wait_for(self.answers.get(), 30)
            self.samples.append(Sample(written, _at(response.json()["id"]), _at(event_id), seen))
            await asyncio.sleep(0.6)  # a person typing: within the default 20 messages per 10 s
        reader.cancel()
        await self.http.aclose()

    async def _listen(self, headers: dict[str, str], listening: asyncio.Event) -> None:
        async with self.http.stream("GET", "/webchat/chat/events", headers=headers) as response:
            listening.set()
            event_id = ""
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    self.shown.append(event_id)
                    if json.loads(line[6:]).get("author") == "ai":
                        self.answers.put_nowait((time.time(), event_id))


async def _flood(base: str, ledger: Ledger) -> tuple[list[Answer], str, tuple[float, float]]:
    """FLOOD messages from one visitor on kept-alive connections from one address, as fast as they are answered."""
    async with _client(base, "127.0.0.2") as http:
        visitor, headers = await _session(http)
    port = int(base.rsplit(":", 1)[1])
    numbers = iter(range(FLOOD))
    answers: list[Answer] = []

    async def connection() -> None:
        conn = await Connection.open(port, "127.0.0.2")
        for n in numbers:
            text, client_id = f"flood {n} " + "x" * 100, f"f{n}"
            sent = ledger.add(Sent("chat", visitor, f"{visitor}:{client_id}", text))
            started = time.time()
            answer = await conn.post_json("/webchat/chat/messages", {"text": text, "client_id": client_id}, headers)
            sent.attempts.append((started, time.time(), answer.status))
            sent.acked_at = time.time() if answer.status in (200, 201) else 0.0
            answers.append(answer)
        conn.close()

    started = time.time()
    await asyncio.gather(*(connection() for _ in range(16)))
    return answers, visitor, (started, time.time())


async def _scenario(base: str, ledger: Ledger) -> tuple[list[Chatter], list[Answer], str, tuple[float, float]]:
    chatters = [Chatter(base, n) for n in range(CHATTERS)]
    flooding = asyncio.Event()
    chatting = [asyncio.create_task(chatter.run(ledger, flooding)) for chatter in chatters]
    await asyncio.sleep(2)
    responses, flooder, window = await _flood(base, ledger)
    flooding.set()
    await asyncio.gather(*chatting)
    return chatters, responses, flooder, window


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@pytest.mark.timeout(240)
def test_one_visitor_floods_while_twenty_chat(lab: Lab, figures: Callable[..., None]) -> None:
    lab.model(delay=MODEL_S)
    lab.valkey()
    config = lab.config(whatsapp=False, limits=DEFAULT_LIMITS, ai_agent=lab.echo_model())
    serve, base = lab.serve(config, wait=False)
    worker = lab.worker(config)
    lab.up(serve, base)
    lab.workers_ready([worker])
    ledger = Ledger()
    chatters, responses, flooder, (flood_start, flood_end) = asyncio.run(_scenario(base, ledger))
    samples = [sample for chatter in chatters for sample in chatter.samples]
    latencies = [sample.latency for sample in samples]
    flooded = [sample for sample in samples if flood_start <= sample.seen and sample.written <= flood_end]
    during = [sample.latency for sample in flooded]
    slowest = max(flooded, key=lambda sample: sample.latency)
    statuses = [r.status for r in responses]
    limited = [r for r in responses if r.status == 429]
    report = audit(lab.redis_url, ledger, streams={f"chatter {c.n}": c.shown for c in chatters})
    client = lab.client()
    accepted = statuses.count(201)
    turns = _ai_answers(client, flooder)
    p99, p99_during = _p99(latencies), _p99(during)
    figures("7. one visitor floods 2,000 messages, 20 chat", report, recovery="n/a",
            held=f"flood: {accepted} accepted, {len(limited)} refused 429 with Retry-After in "
                 f"{flood_end - flood_start:.1f} s, answered by {turns} turn(s); the 20 others' answers p99 "
                 f"{p99_during * 1000:.0f} ms during the flood ({len(during)} answers), {p99 * 1000:.0f} ms "
                 f"overall (max {max(latencies) * 1000:.0f} ms, {len(latencies)} answers); the slowest during the "
                 f"flood: stored after {(slowest.stored - slowest.written) * 1000:.0f} ms, answered after "
                 f"{(slowest.answered - slowest.stored) * 1000:.0f} ms (model {MODEL_S * 1000:.0f} ms), on the "
                 f"stream after {(slowest.seen - slowest.answered) * 1000:.0f} ms")
    client.close()
    assert set(statuses) <= {201, 429} and accepted and len(limited) == FLOOD - accepted
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert "too many messages" in limited[0].json()["error"]
    report.check()
    assert len(during) >= CHATTERS and p99_during < 1.0, sorted(during)[-5:]
    assert 1 <= turns <= max(2, accepted // 4), (turns, accepted)


def _ai_answers(client: Any, visitor: str) -> int:
    cid = client.get(f"baton:faults:latest:chat:{visitor}")
    raw = client.lrange(f"baton:faults:conv:{cid}:messages", 0, -1)
    return sum(json.loads(m)["author"] == "ai" for m in raw)
