"""Per-decision latency (p50/p99 on one core) and the memory the detection models add to a process.

Run: LITELLM_LOCAL_MODEL_COST_MAP=True taskset -c 1 python benchmarks/bench_detection.py

Every message of the corpus plus a few long ones is classified cold (no cached normalisation or features),
_REPEATS times; a message's latency is the median of its repeats, which keeps other processes' time
slices out of the percentiles. The raw p99 over every single call is printed too.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from gateway.detection.corpus import HELD_OUT_FILE, TRAIN_FILE, read

_REPEATS = 5
_LONG = [
    "hello i ordered a jacket last week and it has not arrived yet, can you check where it is please " * n
    for n in (5, 10, 20)
]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _cold(decide: Callable[[str], object], text: str) -> float:
    from gateway.detection.features import _plain
    from gateway.detection.model import load

    load().vector.cache_clear()
    _plain.cache_clear()
    start = time.perf_counter()
    decide(text)
    return time.perf_counter() - start


def _ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def main() -> None:
    texts = [example.text for path in (HELD_OUT_FILE, TRAIN_FILE) for example in read(path)] + _LONG
    before = _rss_mb()
    started = time.perf_counter()
    from gateway import detection
    from gateway.detection.model import load

    load()
    loaded = _rss_mb()
    print(f"load average {os.getloadavg()[0]:.2f}; {len(texts)} messages x {_REPEATS}")
    print(f"import + model load: {(time.perf_counter() - started) * 1000:.0f} ms, RSS +{loaded - before:.1f} MB")
    earlier = ["how do I track my order?", "where is my parcel"]
    decisions: dict[str, Callable[[str], object]] = {
        "wants_human": detection.wants_human,
        "offer_reply": detection.offer_reply,
        "is_done": detection.is_done,
        "is_frustrated": detection.is_frustrated,
        "is_rephrase": lambda text: detection.is_rephrase(text, earlier),
    }
    for name, decide in decisions.items():
        runs = [[_cold(decide, text) for _ in range(_REPEATS)] for text in texts]
        typical = [statistics.median(run) for run in runs]
        every = [value for run in runs for value in run]
        print(f"{name:14} p50 {_ms(typical, 0.5):.3f} ms  p99 {_ms(typical, 0.99):.3f} ms"
              f"  max {max(typical) * 1000:.2f} ms  (raw p99 {_ms(every, 0.99):.3f} ms)")
    print(f"RSS: {before:.1f} MB before import, {loaded:.1f} MB after loading the models,"
          f" {_rss_mb():.1f} MB after all runs (growth {_rss_mb() - before:.1f} MB)")


if __name__ == "__main__":
    main()
