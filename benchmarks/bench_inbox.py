"""The agent's lists and search as stored data grows: a first page of an inbox view, a deep page, and searches, with
many conversations.

    python benchmarks/bench_inbox.py                         # 100,000 conversations, 500 requests of each
    python benchmarks/bench_inbox.py --conversations 10000 --requests 200

An embedded Valkey of its own is filled through the state script itself (its `inbound` operation, pipelined), so the
keys are exactly what customers' messages write; then the real app under uvicorn answers GET /api/conversations
(a page of 50, as the inbox asks) over HTTP, one request at a time, and the latency of each is measured at the
client; so is GET /api/search (a page of 20) for a word of one conversation, a word of every conversation, and a word
of every conversation narrowed to a status none has (the worst case: a page that looks at SCAN_BUDGET candidates and
answers none), with the search index's share of the memory. Figures go in docs/performance.md with this command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway import keys, schema  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.deployment import Deployment  # noqa: E402
from gateway.handover.store import SCRIPT, CustomerMessage, _customer_payload, _payload  # noqa: E402
from gateway.redis_server import EmbeddedValkey  # noqa: E402
from gateway.web.auth import create_agent  # noqa: E402
from tests.conftest import LiveServer, config_tree  # noqa: E402

WORKSPACE = "bench"
CHANNEL = "bench-chat"


def fill(deployment: Deployment, conversations: int, batch: int = 2000) -> float:
    """`conversations` customers writing once each, through the state script; seconds it took."""
    client = deployment.redis
    sha = client.script_load(SCRIPT)
    started = time.monotonic()
    for first in range(0, conversations, batch):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(first + batch, conversations)):
            message = CustomerMessage(channel=CHANNEL, sender=f"visitor-{n}", provider_id="", text=f"Hello, order {n}",
                                      customer=f"Visitor {n}", delivers=False, published=True, timeout_ms=120_000)
            pipe.evalsha(sha, 0, "inbound", WORKSPACE, _payload(_customer_payload(message)))
        for answer in pipe.execute():
            assert json.loads(answer)["ok"], answer
        print(f"\r  stored {min(first + batch, conversations):,} conversations", end="", flush=True)
    print()
    return time.monotonic() - started


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(http: httpx.Client, headers: dict[str, str], params: dict[str, Any], requests: int,
            path: str = "/api/conversations", expect: int | None = None) -> dict[str, float]:
    for _ in range(20):  # warm: connections, the script cache, the first imports
        assert http.get(path, params=params, headers=headers).status_code == 200
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get(path, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        found = response.json()
        rows = found["conversations"] if "conversations" in found else found["results"]
        assert len(rows) == (int(params["limit"]) if expect is None else expect), (params, len(rows))
    return {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        valkey = EmbeddedValkey(Path(directory) / "valkey")
        url = valkey.start()
        try:
            tree = config_tree(WORKSPACE, limits={"agent_requests": {"count": 10**9, "seconds": 60}})
            tree["workspaces"][0]["channels"] = [{"name": CHANNEL, "type": "webchat"}]
            deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=Path(directory)), url,
                                          quiet=True)
            # Stamped as `baton serve` stamps an empty store at its first start: a store without the stamp is taken for
            # an earlier release's and checked key by key when the app starts (a TYPE per history: at 100,000 that
            # outlasted the minute `serving` waits, and the server was stopped under the app's first reads).
            schema.ensure(deployment.redis)
            seconds = fill(deployment, options.conversations)
            # The server's side of any failure from here on (runs at 100,000 lost their connections at the app's start).
            deployment.redis.config_set("loglevel", "verbose")
            deployment.close()  # the app gets a deployment of its own, with fresh connections, as `baton serve` would
            deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=Path(directory)), url,
                                          quiet=True)
            token = create_agent(deployment.redis, WORKSPACE, "alex", "Alex", admin=True)
            headers = {"Authorization": f"Bearer {token}"}
            memory = deployment.redis.info("memory")["used_memory"]
            with serving(deployment) as server, httpx.Client(base_url=server.url, timeout=30) as http:
                first = measure(http, headers, {"view": "all", "limit": 50}, options.requests)
                # A deep page: the cursor of the conversation 90% of the way down the view.
                cursor = deep_cursor(http, headers, options.conversations)
                deep = measure(http, headers, {"view": "all", "limit": 50, "cursor": cursor}, options.requests)
                one = options.conversations // 2
                searches = {
                    "a_word_of_one_conversation": measure(
                        http, headers, {"q": f"order {one}", "limit": 20}, options.requests, "/api/search", 1),
                    "a_word_of_every_conversation": measure(
                        http, headers, {"q": "order", "limit": 20}, options.requests, "/api/search"),
                    "every_conversation_none_closed": measure(
                        http, headers, {"q": "order", "status": "closed", "limit": 20}, options.requests,
                        "/api/search", 0),
                }
            index = index_memory(deployment)
            deployment.close()
        except BaseException:
            log = Path(directory) / "valkey" / "valkey.log"
            if log.exists():  # what the server said when it went wrong
                print("valkey.log:\n" + "\n".join(log.read_text().splitlines()[-40:]), file=sys.stderr)
            raise
        finally:
            valkey.stop()
    results = {"conversations": options.conversations, "fill_seconds": round(seconds, 1),
               "used_memory_mb": round(memory / 2**20), "search_index_mb": round(index["bytes"] / 2**20, 1),
               "search_index_keys": index["keys"], "first_page_of_50": first, "page_of_50_at_90pct": deep,
               "search_page_of_20": searches}
    print(json.dumps(results, indent=2))


@contextlib.contextmanager
def serving(deployment: Deployment) -> Iterator[LiveServer]:
    """The app under uvicorn, given a minute to start on a busy machine."""
    server = LiveServer(deployment)
    server.thread.start()
    deadline = time.monotonic() + 60
    while not server.server.started:
        assert time.monotonic() < deadline and server.thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.__exit__(None, None, None)


def index_memory(deployment: Deployment) -> dict[str, int]:
    """What the search index takes (MEMORY USAGE of every SEARCH and SEARCH_TERMS key)."""
    client = deployment.redis
    total = count = 0
    for pattern in (keys.key(keys.SEARCH, workspace_id=WORKSPACE, term="*"),
                    keys.key(keys.SEARCH_TERMS, workspace_id=WORKSPACE, conversation_id="*")):
        batch: list[str] = []
        for name in client.scan_iter(match=pattern, count=5000):
            batch.append(name)
            if len(batch) == 5000:
                total += _usage(client, batch)
                count += len(batch)
                batch = []
        total += _usage(client, batch)
        count += len(batch)
    return {"bytes": total, "keys": count}


def _usage(client: Any, names: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    return sum(int(n or 0) for n in pipe.execute())


def deep_cursor(http: httpx.Client, headers: dict[str, str], conversations: int) -> str:
    """The cursor of a page 90% of the way down, by following pages of 200 (the widest the API gives)."""
    cursor = ""
    for _ in range(int(conversations * 0.9) // 200):
        answer = http.get("/api/conversations", params={"view": "all", "limit": 200, "cursor": cursor},
                          headers=headers).json()
        cursor = answer["next_cursor"]
    return cursor


if __name__ == "__main__":
    main()
