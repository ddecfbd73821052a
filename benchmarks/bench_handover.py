"""Baton's handover benchmark: run `python benchmarks/bench_handover.py` from the repository.

Both parts run a real `baton serve` (gateway, worker, embedded Valkey) and a signed-in agent reading
GET /api/events, as the inbox does:

1. Handover delay: a webchat customer says "talk to a human"; the time from that POST to the
   conversation.handover event reaching the agent's event stream. Median and p99, one at a time.
2. Timer lateness: many handovers pending at once, no agent picking any up; for each, how late the
   contact form went out after its deadline (contact.form_sent `at` minus handover `at` minus the
   timeout, both stamped by the server's clock), and that every handover got exactly one form.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import free_port, serve, stop, wait_for_worker  # noqa: E402


def write_config(directory: Path, timeout: float) -> Path:
    path = directory / "handover.yaml"
    path.write_text(yaml.safe_dump({
        "log_level": "warning", "data_dir": str(directory / "data"),
        "workspaces": [{"id": "bench", "channels": [{"name": "chat", "type": "webchat"}],
                        "ai_agent": {"model": "baton/knowledge",
                                     "knowledge": {"entries": [{"q": "What are your opening hours?",
                                                                "a": "Monday to Friday, 9 to 5."}]}},
                        "handover": {"no_human_timeout": timeout}}],
    }))
    return path


def agent_token(config: Path) -> str:
    created = subprocess.run([sys.executable, "-m", "gateway.cli", "agent", "create", "bench", "--name", "Bench",
                              "--config", str(config)], capture_output=True, text=True, check=True)
    return created.stdout.strip().splitlines()[-1]


class EventReader(threading.Thread):
    """Follows /api/events, noting when each conversation's events arrived and their server times."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.arrived: dict[tuple[str, str], float] = {}
        self.server_at: dict[tuple[str, str], int] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.connected = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        with contextlib.suppress(httpx.RemoteProtocolError):  # the server stopped at the end of the run
            self.follow()

    def follow(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.stream("GET", f"{self.base}/api/events", headers=headers, timeout=None) as response:
            response.raise_for_status()
            self.connected.set()
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                key = (event["type"], str(event.get("conversation", "")))
                with self.lock:
                    self.arrived.setdefault(key, time.monotonic())
                    self.server_at.setdefault(key, event["at"])
                    self.counts[key] = self.counts.get(key, 0) + 1

    def wait_for(self, kind: str, conversations: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all((kind, c) in self.arrived for c in conversations):
                    return
            time.sleep(0.05)


def ask_for_human(client: httpx.Client, base: str) -> str:
    token = client.post(f"{base}/webchat/chat/sessions").json()["token"]
    sent = client.post(f"{base}/webchat/chat/messages", json={"text": "talk to a human", "client_id": "1"},
                       headers={"Authorization": f"Bearer {token}"})
    sent.raise_for_status()
    return str(sent.json()["conversation"])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def start(directory: Path, timeout: float, workers: int) -> tuple[subprocess.Popen[bytes], str, EventReader]:
    config = write_config(directory, timeout)
    port = free_port()
    process = serve(config, port, workers=workers)
    wait_for_worker(directory / "data")
    base = f"http://127.0.0.1:{port}"
    reader = EventReader(base, agent_token(config))
    reader.start()
    if not reader.connected.wait(10):
        raise SystemExit("the event stream did not open")
    return process, base, reader


def handover_delay(directory: Path, count: int) -> None:
    process, base, reader = start(directory, timeout=600, workers=1)
    sent: dict[str, float] = {}
    try:
        with httpx.Client() as client:
            for _ in range(count):
                started = time.monotonic()
                cid = ask_for_human(client, base)
                sent[cid] = started
                reader.wait_for("conversation.handover", [cid], timeout=10)
    finally:
        stop(process)
    delays = [(reader.arrived[("conversation.handover", c)] - t) * 1000 for c, t in sent.items()
              if ("conversation.handover", c) in reader.arrived]
    print(f"handover delay: customer's 'talk to a human' -> handover event on /api/events, {len(delays)} of "
          f"{count}: median {statistics.median(delays):.1f} ms, p99 {percentile(delays, 0.99):.1f} ms, "
          f"max {max(delays):.1f} ms")


def timer_lateness(directory: Path, count: int, timeout: float, workers: int) -> None:
    process, base, reader = start(directory, timeout=timeout, workers=workers)
    valkey = json.loads((directory / "data" / "valkey.json").read_text())["url"]
    import redis

    store = redis.Redis.from_url(valkey, decode_responses=True)
    timers = "baton:bench:timers:no-human"
    try:
        began = time.monotonic()
        with httpx.Client(limits=httpx.Limits(max_connections=16)) as client, ThreadPoolExecutor(16) as pool:
            cids = list(pool.map(lambda _: ask_for_human(client, base), range(count)))
        reader.wait_for("conversation.handover", cids, timeout=timeout)
        armed = time.monotonic() - began
        pending_at_once = store.zcard(timers)
        reader.wait_for("contact.form_sent", cids, timeout=timeout + 30)
        time.sleep(1)  # a second form would show up here
        if not reader.is_alive():
            raise SystemExit("the event stream ended early")
    finally:
        store.close()
        stop(process)
    late: list[float] = []
    for cid in cids:
        sent_at = reader.server_at.get(("contact.form_sent", cid))
        handed_at = reader.server_at.get(("conversation.handover", cid))
        if sent_at is not None and handed_at is not None:
            late.append(sent_at - handed_at - timeout * 1000)
    forms = [reader.counts.get(("contact.form_sent", c), 0) for c in cids]
    print(f"timer lateness: {count} handovers armed in {armed:.1f} s, {pending_at_once} pending at once, "
          f"timeout {timeout:.0f} s: forms sent {sum(forms)} (exactly one each: {all(n == 1 for n in forms)}); "
          f"late by median {statistics.median(late):.0f} ms, p99 {percentile(late, 0.99):.0f} ms, "
          f"max {max(late):.0f} ms, earliest {min(late):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handovers", type=int, default=200, help="one-at-a-time handovers for the delay")
    parser.add_argument("--pending", type=int, default=1000, help="handovers pending at once for the timers")
    parser.add_argument("--timeout", type=float, default=60, help="no-human timeout for the timer run (s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the timer run")
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("delay", "timers"):
            (Path(tmp) / part).mkdir()
        handover_delay(Path(tmp) / "delay", args.handovers)
        timer_lateness(Path(tmp) / "timers", args.pending, args.timeout, args.workers)


if __name__ == "__main__":
    main()
