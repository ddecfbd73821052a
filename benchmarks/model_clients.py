"""Many model calls at once from one process's threads, as a worker makes them: litellm's one shared HTTP client
against Baton's client per thread (gateway/llm.py, ThreadClients).

    python benchmarks/model_clients.py                 # 200 calls at once, 6 rounds each way, a 1.0 s model

Each round: every thread calls the model once, all at the same moment; the time until each answer, and the
process's CPU per call. Before the rounds, each thread opens its connection, a few at a time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from benchmarks.bench import _answers_any, free_port, wait_for  # noqa: E402
from gateway.ai import HANDOVER_TOOL_SPEC  # noqa: E402
from gateway.llm import ThreadClients, completion, import_litellm  # noqa: E402


def rounds(base: str, calls: int, count: int) -> list[str]:
    pool = ThreadPoolExecutor(calls)

    errors: list[str] = []

    def call(start: float) -> float:
        try:
            completion(model="openai/gpt-4o-mini", api_base=base, api_key="bench", timeout=60, max_retries=0,
                       tools=[HANDOVER_TOOL_SPEC], messages=[{"role": "system", "content": "You answer. " * 100},
                                                              {"role": "user", "content": "Where is my order?"}])
        except Exception as exc:  # noqa: BLE001 - counted: the shared client fails some calls under this load
            errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")
        return time.perf_counter() - start

    def warm(index: int) -> float:  # each thread opens its connection, a few at a time (the listen backlog)
        time.sleep(index % 20 * 0.05)
        return call(time.perf_counter())

    list(pool.map(warm, range(calls)))
    lines = [f"opening: {len(errors)} of {calls} calls failed" + (f" ({errors[0]})" if errors else "")]
    for n in range(count):
        start, cpu = time.perf_counter(), time.process_time()
        errors.clear()
        done = sorted(pool.map(call, [start] * calls))
        lines.append(f"round {n + 1}: p50 {done[len(done) // 2]:.2f} s, p99 {done[int(len(done) * 0.99) - 1]:.2f} s, "
                     f"CPU {(time.process_time() - cpu) / calls * 1000:.1f} ms a call, {len(errors)} failed"
                     + (f" ({errors[0]})" if errors else ""))
    pool.shutdown()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    port = free_port()
    model = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "slow_model.py"), "--port", str(port),
                              "--delay", str(args.delay)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers_any(f"http://127.0.0.1:{port}/"), "the slow model")
        litellm = import_litellm()
        for name, session in (("litellm's shared client", None), ("a client per thread", ThreadClients())):
            litellm.client_session = session
            litellm.in_memory_llm_clients_cache.flush_cache()  # litellm caches the SDK client, and its HTTP client
            print(f"--- {name}", flush=True)
            for line in rounds(f"http://127.0.0.1:{port}/v1", args.calls, args.rounds):
                print(line, flush=True)
    finally:
        model.kill()


if __name__ == "__main__":
    main()
