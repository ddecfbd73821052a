"""A WhatsApp conversation of 50,000 messages behind a real `baton serve`: the customer writes once more and is
answered once; the agents' detail view shows that newest message and its answer on its first page, small and quick,
and pages back with `before=`. The audit finds nothing lost or doubled."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from gateway import keys
from tests.faults.audit import audit, wait_quiescent
from tests.faults.lab import PYTHON, WORKSPACE, Lab
from tests.faults.traffic import Ledger, send_whatsapp

LENGTH = 50_000
CUSTOMER = "whatsapp:+16660000050"


@pytest.mark.timeout(300)
def test_a_50000_message_conversation_is_answered_and_shown_newest_first(lab: Lab,
                                                                         figures: Callable[..., None]) -> None:
    lab.model(delay=0.01)
    lab.twilio()
    lab.valkey()
    config = lab.config(ai_agent=lab.echo_model())
    serve, base = lab.serve(config, workers=1, ready=True)
    created = subprocess.run([PYTHON, "-m", "gateway.cli", "agent", "create", "alex", "--name", "Alex", "--config",
                              str(config), "--redis-url", lab.redis_url], cwd=lab.dir, capture_output=True, text=True,
                             timeout=60)
    assert created.returncode == 0, created.stderr
    agent = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    ledger = Ledger()
    with httpx.Client(timeout=30) as http:
        first = send_whatsapp(http, base, ledger, CUSTOMER, "q-first Where is my order?")
        wait_quiescent(lab.redis_url, 60)
        client = lab.client()
        cid = str(client.get(keys.key(keys.DEDUPE, workspace_id=WORKSPACE, channel="wa",
                                      provider_id=first.provider_id))).partition("|")[0]
        # The history grows to 50,000 as a long-running conversation's would be: entries written straight into its
        # list, in the state script's shape (the id's index is the entry's place), quicker than 50,000 webhooks.
        history = keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=cid)
        filled = time.monotonic()
        start, now_ms = int(client.llen(history)), int(time.time() * 1000)
        pipe = client.pipeline(transaction=False)
        for n in range(start, LENGTH - 2):
            pipe.rpush(history, json.dumps({"id": f"{now_ms}-{n}", "author": "customer", "text": f"earlier {n}"}))
            if n % 5000 == 0:
                pipe.execute()
        pipe.execute()
        filled = time.monotonic() - filled
        wait_quiescent(lab.redis_url, 300)
        last = send_whatsapp(http, base, ledger, CUSTOMER, "q-last Is it there yet?")
        wait_quiescent(lab.redis_url, 60)
        started = time.monotonic()
        detail = http.get(f"{base}/api/conversations/{cid}", headers=agent)
        took = time.monotonic() - started
        assert detail.status_code == 200, detail.text
        page = detail.json()["conversation"]
        before = http.get(f"{base}/api/conversations/{cid}/messages", params={"before": page["next_before"]},
                          headers=agent)
        assert before.status_code == 200, before.text
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=120)
    length = int(client.llen(keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=cid)))
    texts = [m["text"] for m in page["messages"]]
    figures(f"12. one WhatsApp conversation of {length:,} messages (its history written in {filled:.1f} s), then the "
            "customer writes once more", report, recovery="—",
            held=f"the newest message answered once; the agents' detail view {len(detail.content) / 1024:.0f} KB in "
                 f"{took * 1000:.0f} ms, its first page of {len(texts)} ending with the newest message and its "
                 f"answer; the page before it {len(before.json()['messages'])} messages")
    report.check()
    assert length >= LENGTH
    assert last.text in texts and texts.index(last.text) >= len(texts) - 3  # the newest, at the end of the page
    assert f"Re: {last.text}" in texts
    assert len(detail.content) < 1_000_000 and before.json()["messages"]
    assert serve.running()
