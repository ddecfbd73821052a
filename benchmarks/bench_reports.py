"""The Reports' load time with a year of history: GET /api/reports for a whole year (JSON and CSV) and the Reports
page's own files, at 10,000 conversations a day.

    python benchmarks/bench_reports.py                       # 365 days, 10,000 conversations a day, 200 requests
    python benchmarks/bench_reports.py --days 30 --requests 50

The aggregates are seeded directly (what the state script would have counted: the outcomes, handovers by route,
every time histogram, CSAT, forms, for three channels) into an embedded Valkey of its own; then the real app under
uvicorn answers over HTTP, one request at a time, and the latency of each is measured at the client. The answer's
figures are checked against the seed (conversations = days x per day; shares add up to 1). Target: < 500 ms.
Figures go in docs/performance.md with this command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from benchmarks.bench_inbox import percentile, serving  # noqa: E402
from gateway import keys, reports  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.deployment import Deployment  # noqa: E402
from gateway.redis_server import EmbeddedValkey  # noqa: E402
from gateway.web.auth import create_agent  # noqa: E402
from tests.conftest import config_tree  # noqa: E402

WORKSPACE = "bench"
CHANNELS = {"web": 0.5, "whatsapp": 0.4, "shop-chat": 0.1}  # each channel's share of a day's conversations
ROUTES = {"customer": 0.4, "offer": 0.2, "model": 0.25, "agent": 0.1, "error": 0.05}


def day_fields(per_day: int) -> dict[str, int]:
    """One day's counters: every metric the state script keeps, for every channel."""
    fields: dict[str, int] = {}
    for channel, share in CHANNELS.items():
        n = int(per_day * share)
        ai, handed, abandoned = int(n * 0.6), int(n * 0.3), int(n * 0.05)
        outcome = {"ai_resolved": ai, "handed_over": handed, "abandoned": abandoned,
                   "open": n - ai - handed - abandoned}
        fields[f"conversations|{channel}"] = n
        for name, value in outcome.items():
            fields[f"{name}|{channel}"] = value
        fields[f"auto_resolved|{channel}"] = ai // 3
        fields[f"returned|{channel}"] = ai // 10
        fields[f"forms_sent|{channel}"] = handed // 5
        fields[f"forms_captured|{channel}"] = handed // 8
        for route, route_share in ROUTES.items():
            fields[f"handover:{route}|{channel}"] = int(handed * route_share)
        for metric in reports.TIMES:
            for bucket in range(1, len(reports.BUCKETS) + 2):
                fields[f"{metric}:{bucket}|{channel}"] = max(1, n // (bucket * 4))
        for who in ("ai", "human"):
            for rating in reports.RATINGS:
                fields[f"csat:{who}:{rating}|{channel}"] = n // (20 * (6 - rating))
    return fields


def seed(client: object, days: list[str], per_day: int) -> int:
    fields = day_fields(per_day)
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    for day in days:
        pipe.hset(keys.key(keys.REPORT, workspace_id=WORKSPACE, day=day), mapping=fields)
    pipe.execute()
    return sum(v for k, v in fields.items() if k.startswith("conversations|"))


def measure(http: httpx.Client, headers: dict[str, str], path: str, params: dict[str, str],
            requests: int) -> dict[str, float]:
    for _ in range(5):
        assert http.get(path, params=params, headers=headers).status_code == 200
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get(path, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return {"p50_ms": round(statistics.median(samples), 1), "p99_ms": round(percentile(samples, 99), 1),
            "max_ms": round(max(samples), 1), "bytes": len(response.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args()
    last = datetime.now(UTC).date()
    days = [(last - timedelta(days=n)).isoformat() for n in range(options.days)][::-1]
    with tempfile.TemporaryDirectory() as directory:
        valkey = EmbeddedValkey(Path(directory) / "valkey")
        url = valkey.start()
        try:
            tree = config_tree(WORKSPACE, limits={"agent_requests": {"count": 10**9, "seconds": 60}})
            tree["workspaces"][0]["channels"] = [{"name": name, "type": "webchat"} for name in CHANNELS]
            deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=Path(directory)), url,
                                          quiet=True)
            per_day = seed(deployment.redis, days, options.per_day)
            token = create_agent(deployment.redis, WORKSPACE, "lead", "Lead", admin=True)
            headers = {"Authorization": f"Bearer {token}"}
            memory = deployment.redis.info("memory")["used_memory"]
            year = {"from": days[0], "to": days[-1]}
            with serving(deployment) as server, httpx.Client(base_url=server.url, timeout=30) as http:
                answer = http.get("/api/reports", params=year, headers=headers).json()
                assert answer["conversations"] == per_day * len(days), answer["conversations"]
                assert abs(sum(answer["shares"].values()) - 1) < 1e-9 and len(answer["series"]) == len(days)
                figures = {
                    "api_json_year": measure(http, headers, "/api/reports", year, options.requests),
                    "api_csv_year": measure(http, headers, "/api/reports", {**year, "format": "csv"},
                                            options.requests),
                    "api_json_one_channel_year": measure(http, headers, "/api/reports",
                                                         {**year, "channel": "whatsapp"}, options.requests),
                    "api_json_30_days": measure(http, headers, "/api/reports", {"to": days[-1]}, options.requests),
                }
                page = [measure(http, {}, path, {}, options.requests)
                        for path in ("/inbox", "/static/inbox/reports.js", "/static/inbox.css")]
            deployment.close()
        finally:
            valkey.stop()
    # The page: its HTML and its two files of its own (cached by the browser after the first visit), then the API.
    page_ms = sum(p["p50_ms"] for p in page) + figures["api_json_year"]["p50_ms"]
    results = {"days": len(days), "conversations_per_day": per_day, "conversations": per_day * len(days),
               "fields_per_day": len(day_fields(options.per_day)), "used_memory_mb": round(memory / 2**20, 1),
               **figures, "page_year_p50_ms": round(page_ms, 1), "target_ms": 500}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
