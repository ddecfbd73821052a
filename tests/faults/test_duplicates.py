"""Twilio delivers a webhook again when it is unsure of the first delivery, and the retry may reach another gateway
while the first is still being recorded: two gateways and two workers, 500 messages delivered 2 or 3 times each
(some at the same moment, on both gateways) give exactly 500 customer messages and 500 replies."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.faults.audit import audit
from tests.faults.lab import Lab
from tests.faults.traffic import Ledger, Sent, deliver_again, new_sid

MESSAGES = 500


def test_duplicate_deliveries_across_two_gateways(lab: Lab, figures: Callable[..., None]) -> None:
    lab.twilio()
    lab.valkey()
    config = lab.config()
    serve_a, first = lab.serve(config, name="serve-a", wait=False)
    serve_b, second = lab.serve(config, name="serve-b", wait=False)
    workers = [lab.worker(config, f"worker-{n}") for n in (1, 2)]
    lab.up(serve_a, first)
    lab.up(serve_b, second)
    lab.workers_ready(workers)
    ledger = Ledger()
    rng = random.Random(10)
    messages = [ledger.add(Sent("wa", f"whatsapp:+1666{n:07d}", new_sid(), f"d{n} How do I return a lamp?"))
                for n in range(MESSAGES)]
    # Each message: 2 or 3 deliveries over both gateways; for a third of them, all at the same moment.
    groups: list[list[tuple[Sent, str]]] = []
    for sent in messages:
        bases = [first, second, rng.choice((first, second))]
        rng.shuffle(bases)
        groups.append([(sent, base) for base in bases[: rng.choice((2, 3))]])
    concurrent = [group for group in groups if rng.random() < 0.33]
    apart = [delivery for group in groups if group not in concurrent for delivery in group]
    rng.shuffle(apart)
    started = time.monotonic()
    with httpx.Client(timeout=15, limits=httpx.Limits(max_connections=128)) as http, \
            ThreadPoolExecutor(16) as pool, ThreadPoolExecutor(48) as at_once:

        def deliver(delivery: tuple[Sent, str]) -> int | str:
            return deliver_again(http, delivery[1], delivery[0])

        def together(group: list[tuple[Sent, str]]) -> list[int | str]:
            return list(at_once.map(deliver, group))

        batches = [pool.submit(together, group) for group in concurrent]
        statuses = list(pool.map(deliver, apart))
        statuses += [status for batch in batches for status in batch.result()]
    deliveries = sum(len(group) for group in groups)
    for sent in messages:
        sent.acked_at = next((end for _, end, status in sent.attempts if status == 200), 0.0)
    report = audit(lab.redis_url, ledger, lab.twilio_log)
    elapsed = time.monotonic() - started
    figures("4. duplicates across 2 gateways, 2 workers", report, recovery="n/a",
            held=f"{deliveries} deliveries of {MESSAGES} MessageSids ({len(concurrent)} sets at once, on both "
                 f"gateways): {report.replies} replies, {elapsed:.0f} s end to end")
    assert len(statuses) == deliveries and set(statuses) == {200}, Counter(statuses)
    report.check()
    assert report.stored == MESSAGES and report.conversations == MESSAGES
    assert report.replies == MESSAGES, report.replies
    assert all(worker.running() for worker in workers)
