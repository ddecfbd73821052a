"""Twilio misbehaving under traffic, behind a real `baton serve`: it hangs (takes each message and answers after the
send's timeout), then drops what it is sent (takes nothing, answers late), then fails at once (503), then
recovers. Sends it may have taken end `unknown`; once Twilio answers again the checks are made to come due (the
test moves their due time forward instead of waiting the 5 minutes) and each unknown send is resolved by asking
Twilio's message list: found, recorded as sent and never sent again; absent, sent once. The audit then finds
nothing lost, nothing doubled and nothing left unknown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from gateway import keys
from tests.faults.audit import audit, sends, wait_quiescent
from tests.faults.lab import WORKSPACE, Lab, wait_for
from tests.faults.traffic import Ledger, Traffic

PHASES = (("ok", 0.0, 4.0), ("hang", 25.0, 10.0), ("blackhole", 25.0, 8.0), ("fail", 0.0, 8.0), ("ok", 0.0, 4.0))


def _notes(client: redis.Redis) -> dict[str, set[str]]:
    """The messages each kind of delivery note names (delivery_unknown, delivery_confirmed…), by their ids."""
    named: dict[str, set[str]] = {}
    count = int(client.get(keys.key(keys.CONVERSATION_SEQ, workspace_id=WORKSPACE)) or 0)
    for n in range(1, count + 1):
        for raw in client.lrange(keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=str(n)), 0, -1):
            entry = json.loads(raw)
            if entry.get("kind", "").startswith("delivery_"):
                named.setdefault(entry["kind"], set()).add(f"{n}|{(entry.get('data') or {}).get('message')}")
    return named


@pytest.mark.timeout(420)
def test_twilio_hanging_dropping_then_failing_is_resolved_without_a_double(lab: Lab,
                                                                           figures: Callable[..., None]) -> None:
    lab.model(delay=0.05)
    twilio = lab.twilio()
    lab.valkey()
    config = lab.config(ai_agent=lab.echo_model())
    serve, base = lab.serve(config, workers=1, ready=True)
    client = lab.client()
    unresolved = keys.key(keys.UNRESOLVED, workspace_id=WORKSPACE)
    ledger = Ledger()
    with Traffic(base, ledger, rate=4, whatsapp=24, visitors=0) as traffic, httpx.Client(timeout=5) as http:
        for mode, seconds, lasting in PHASES:
            assert http.post(f"{twilio}/control", json={"mode": mode, "seconds": seconds}).status_code == 200
            time.sleep(lasting)
    # Every send has an outcome: sent, or unknown (Twilio's 25 s answers outlast the 10 s send timeout).
    wait_quiescent(lab.redis_url, 180)
    unknown_before = int(client.zcard(unresolved))
    dropped = [json.loads(line) for line in lab.twilio_log.read_text().splitlines() if '"dropped"' in line]
    # The minutes pass: the checks come due, and the worker's chores queue them.
    started = time.monotonic()
    for _ in range(3):
        due = client.zrange(unresolved, 0, -1)
        if not due:
            break
        client.zadd(unresolved, dict.fromkeys(due, 0))
        wait_for(lambda: not client.zrangebyscore(unresolved, "-inf", int(time.time() * 1000)),
                 "the chores to take the due checks", 30)
        wait_quiescent(lab.redis_url, 60)
    resolved_in = time.monotonic() - started
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=120)
    after = _notes(client)
    received = sends(lab.twilio_log)
    unknown, confirmed = after.get("delivery_unknown", set()), after.get("delivery_confirmed", set())
    figures("9. Twilio hangs 10 s (takes each message, answers after 25 s), drops for 8 s (takes nothing, answers "
            "after 25 s), fails 8 s (503 at once), recovers; then the checks come due", report,
            recovery=f"{unknown_before} unknown sends resolved {resolved_in:.1f} s after their checks came due",
            held=f"{traffic.sent} customer messages; {len(unknown)} sends unknown ({len(dropped)} requests dropped "
                 f"by Twilio); resolved by asking Twilio's list: {len(confirmed)} found there and recorded with "
                 f"Twilio's id, not sent again; {len(unknown - confirmed)} absent, sent once; {len(received)} "
                 "messages reached Twilio, each once")
    report.check()
    assert unknown_before > 0 and confirmed and unknown - confirmed and dropped, (unknown_before, len(dropped))
    assert report.unknown == 0, report.unknown_reasons  # nothing left for an agent
    assert client.zcard(unresolved) == 0
    assert serve.running()
