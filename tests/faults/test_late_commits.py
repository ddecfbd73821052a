"""Agents' replies whose commit reaches Redis late, is run but its answer lost, or never arrives, behind a real
`baton serve` whose gateway talks to Valkey through a misbehaving proxy (tests/redis_proxy.py; the worker talks to
Valkey directly). The agents' client does what the inbox does: it sends each reply with a client_id and, on a 503
or a lost connection, sends it again with the same one. The audit: every reply stored once and sent to Twilio once,
and the customers' messages answered, nothing lost or doubled."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway import keys
from tests.faults.audit import audit, sends, wait_quiescent
from tests.faults.lab import PYTHON, WORKSPACE, Lab
from tests.faults.traffic import Ledger, send_whatsapp
from tests.redis_proxy import RedisProxy

POST = b"\r\npost\r\n"  # the state script's operation, as it travels in the EVALSHA
CUSTOMERS, REPLIES = 8, 3
FAULTS = (("delay", 3, 12.0), ("lose_answer", 3, 0.0), ("lose_command", 3, 0.0))  # the store waits 10 s at most


def _reply(http: httpx.Client, base: str, token: str, cid: str, text: str) -> list[int | str]:
    """Send one reply as the inbox does, until recorded: each attempt's status."""
    body = {"text": text, "client_id": f"r-{secrets.token_hex(6)}"}
    statuses: list[int | str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            status: int | str = http.post(f"{base}/api/conversations/{cid}/messages", json=body,
                                          headers={"Authorization": f"Bearer {token}"}).status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        statuses.append(status)
        if status in (200, 201):
            return statuses
        time.sleep(1.0)
    return statuses


@pytest.mark.timeout(300)
def test_agent_replies_committed_late_or_lost_are_recorded_and_sent_once(lab: Lab,
                                                                           figures: Callable[..., None]) -> None:
    lab.model(delay=0.05)
    lab.twilio()
    lab.valkey()
    config = lab.config(ai_agent=lab.echo_model())
    with RedisProxy(lab.redis_url) as proxy:
        serve, base = lab.serve(config, workers=0, redis_url=proxy.url, ready=False)
        worker = lab.worker(config)
        lab.workers_ready([worker])
        created = subprocess.run([PYTHON, "-m", "gateway.cli", "agent", "create", "alex", "--name", "Alex",
                                  "--config", str(config), "--redis-url", lab.redis_url], cwd=lab.dir,
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        ledger = Ledger()
        with httpx.Client(timeout=30) as http:
            for n in range(CUSTOMERS):
                assert send_whatsapp(http, base, ledger, f"whatsapp:+1666{n:07d}", f"q{n} Where is my order?").acked
            wait_quiescent(lab.redis_url, 60)
            client = lab.client()
            conversations = [str(client.get(keys.key(keys.DEDUPE, workspace_id=WORKSPACE, channel="wa",
                                                     provider_id=s.provider_id))).partition("|")[0]
                             for s in ledger.all()]
            for mode, times, delay in FAULTS:
                proxy.arm(POST, mode, times=times, delay=delay)
            replies = [(cid, f"Alex here ({cid}/{k}): your parcel leaves today.") for cid in conversations
                       for k in range(REPLIES)]
            started = time.monotonic()
            with ThreadPoolExecutor(CUSTOMERS) as pool:
                attempts = list(pool.map(lambda r: _reply(http, base, token, *r), replies))
            took = time.monotonic() - started
        report = audit(lab.redis_url, ledger, lab.twilio_log, settle=120)
    stored: Counter[str] = Counter()
    for cid in set(conversations):
        for raw in client.lrange(keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=cid), 0, -1):
            message = json.loads(raw)
            if message["author"] == "agent":
                stored[message["text"]] += 1
    at_twilio = Counter(s["body"] for s in sends(lab.twilio_log))
    texts = [text for _, text in replies]
    first_refused = sum(1 for a in attempts if a[0] not in (200, 201))
    statuses = Counter(str(s) for a in attempts for s in a)
    figures("11. agents' replies through a gateway whose Redis connection delays 3 commits 12 s (past the store's "
            "10 s), loses 3 answers and 3 commands; the agents' client retries with the same client_id",
            report, recovery=f"every reply recorded within {took:.0f} s",
            held=f"{len(texts)} agent replies: {sum(1 for t in texts if stored[t] == 1)} stored once, "
                 f"{sum(1 for t in texts if at_twilio[t] == 1)} sent to Twilio once; {first_refused} first attempts "
                 f"not confirmed (statuses {dict(statuses)}), each retried with its client_id; "
                 f"{len(proxy.applied)} faults applied")
    report.check()
    assert all(a[-1] in (200, 201) for a in attempts), attempts
    assert all(stored[t] == 1 for t in texts), {t: stored[t] for t in texts if stored[t] != 1}
    assert all(at_twilio[t] == 1 for t in texts), {t: at_twilio[t] for t in texts if at_twilio[t] != 1}
    assert len(proxy.applied) == sum(times for _, times, _ in FAULTS) and first_refused > 0
    assert serve.running() and worker.running()
