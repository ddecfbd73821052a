"""A model that answers 200 KB whatever it is asked (it ignores max_tokens), behind a real `baton serve`, under
WhatsApp and webchat traffic: every answer is asked for with the channel's cap, reaches Twilio as at most four
messages of at most 1,600 characters (the widget's of 4,096), in order, each once; and the customers' next turns
send the model a prompt of a few KB, not the earlier 200 KB answers. The audit finds nothing lost or doubled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from gateway import keys
from gateway.text import MAX_PARTS, max_tokens
from tests.faults.audit import audit, sends
from tests.faults.lab import WORKSPACE, Lab
from tests.faults.traffic import Ledger, Traffic

SIZE = 200_000
TWILIO_LIMIT, WIDGET_LIMIT = 1_600, 4_096


@pytest.mark.timeout(300)
def test_200_kb_answers_are_capped_split_and_kept_out_of_later_prompts(lab: Lab,
                                                                        figures: Callable[..., None]) -> None:
    model = lab.model(delay=0.05)
    lab.twilio()
    lab.valkey()
    config = lab.config(ai_agent=lab.echo_model())
    serve, base = lab.serve(config, workers=1, ready=True)
    assert httpx.put(model.removesuffix("/v1") + "/mode", json={"mode": "huge", "size": SIZE}).status_code == 200
    ledger = Ledger()
    with Traffic(base, ledger, rate=3, whatsapp=6, visitors=4):
        time.sleep(10)
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=120)
    client = lab.client()
    asked = [json.loads(line) for line in lab.model_log.read_text().splitlines()]
    huge = [a for a in asked if a["mode"] == "huge"]
    received = sends(lab.twilio_log)
    answers: list[list[str]] = []  # per answer, its parts as stored
    count = int(client.get(keys.key(keys.CONVERSATION_SEQ, workspace_id=WORKSPACE)) or 0)
    for n in range(1, count + 1):
        history = [json.loads(m) for m in client.lrange(keys.key(keys.MESSAGES, workspace_id=WORKSPACE,
                                                                  conversation_id=str(n)), 0, -1)]
        for message in history:
            if message["author"] == "ai" and message.get("text", "").startswith("Re: "):
                answers.append([message["text"]])
            elif message["author"] == "ai" and answers:
                answers[-1].append(message["text"])
    parts = [len(a) for a in answers]
    longest_stored = max(len(p) for a in answers for p in a)
    longest_sent = max(len(s["body"]) for s in received)
    prompts = [a["prompt_chars"] for a in huge]
    figures("10. the model answers 200 KB to every message (ignoring max_tokens); WhatsApp and webchat traffic "
            "(3 msg/s, 10 customers)", report, recovery="—",
            held=f"{len(huge)} model calls, each asked for max_tokens {sorted({a['max_tokens'] for a in huge})}; "
                 f"{len(answers)} answers stored as {min(parts)}-{max(parts)} messages (longest {longest_stored:,} "
                 f"characters); {len(received)} messages reached Twilio, longest {longest_sent:,} characters, "
                 f"each once; the largest prompt a later turn sent was {max(prompts):,} characters")
    report.check()
    assert huge and report.answered == report.sent > 0
    assert {a["max_tokens"] for a in huge} <= {max_tokens(TWILIO_LIMIT), max_tokens(WIDGET_LIMIT)}
    assert max(parts) <= MAX_PARTS and longest_stored <= WIDGET_LIMIT and longest_sent <= TWILIO_LIMIT
    assert max(prompts) < SIZE / 4  # earlier answers are shortened in the prompt, never resent whole
    assert serve.running()
