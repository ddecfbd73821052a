"""The AI's model misbehaves behind a real `baton serve` (a gateway and a worker): it hangs, answers HTTP 500,
answers garbage, or answers after the timeout. In every case each customer, over webchat and over WhatsApp, hears
something (a person is coming) within the stated budget: the model's timeout plus 10 s with the default
`retry_budget` and `summary_timeout`. Repeated failures open the circuit breaker (the inbox is told, `/readyz`
says degraded, the next customer is handed over without the model being asked); once the model answers again and
the cool-down has passed, one turn tries it and closes the circuit. The audit finds nothing lost, nothing doubled
(a late answer is never posted after the handover), and every handed-over chat gets its contact form once."""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway import keys
from gateway.web.auth import create_agent
from tests.faults.audit import audit, sends
from tests.faults.lab import WORKSPACE, Lab, wait_for
from tests.faults.traffic import Ledger, Sent, Visitor, send_whatsapp

TIMEOUT_S = 3.0  # the model's own timeout (ai_agent.timeout); retry_budget and summary_timeout keep their defaults
BUDGET_S = TIMEOUT_S + 10  # what the README promises: the model's timeout plus 10 s
FAILURES = 3  # breaker.failures (its default)
COOL_DOWN_S = 5.0  # breaker.cool_down, short to keep the test quick
NO_HUMAN_S = 12.0  # handover.no_human_timeout: the contact form still comes to a chat the breaker handed over
WAVE = 3  # customers per channel who write at once while the model misbehaves
_numbers = itertools.count(1)  # a new WhatsApp customer each time
MODES = (("hang", 0.0), ("error", 0.0), ("garbage", 0.0), ("late", TIMEOUT_S + 1.5))


class Inbox(threading.Thread):
    """An agent's open event stream: every event with its data, as it arrives."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(15, read=120)) as http, http.stream(
                    "GET", f"{self.base}/api/events", headers=self.headers) as response:
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append({"seen_at": time.time(), **json.loads(line[6:])})
        except httpx.HTTPError:
            pass

    def model_states(self) -> list[str]:
        return [e["state"] for e in self.events if e.get("type") == "ai_agent.model"]


class Heard:
    """When each customer first heard something back: a visitor's first team message, a WhatsApp number's first
    message at the fake Twilio."""

    def __init__(self, lab: Lab, http: httpx.Client, base: str) -> None:
        self.lab, self.http, self.base = lab, http, base

    def visitor(self, visitor: Visitor, timeout: float) -> tuple[float, str]:
        def first() -> tuple[float, str] | None:
            messages = self.http.get(f"{self.base}/webchat/chat/messages", headers=visitor.headers).json()["messages"]
            heard = [m for m in messages if m["author"] != "customer"]
            return (heard[0]["created_at"] / 1000, heard[0]["text"]) if heard else None

        return wait_for(first, "the visitor's first answer", timeout, every=0.1)  # type: ignore[no-any-return]

    def whatsapp(self, number: str, timeout: float) -> tuple[float, str]:
        def first() -> tuple[float, str] | None:
            got = [s for s in sends(self.lab.twilio_log) if s["to"] == number]
            return (got[0]["at"], got[0]["body"]) if got else None

        return wait_for(first, f"Twilio's first send to {number}", timeout, every=0.1)  # type: ignore[no-any-return]


def _model_requests(lab: Lab) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lab.model_log.read_text().splitlines() if line.strip()]


def _wave(heard: Heard, http: httpx.Client, base: str, ledger: Ledger, tag: str, web: int = 1, wa: int = 1
          ) -> list[tuple[str, float, str]]:
    """`web` visitors and `wa` WhatsApp customers write at once; (channel, seconds until each heard, what)."""
    def webchat(n: int) -> tuple[str, float, str]:
        visitor = Visitor(http, base)
        sent = visitor.say(ledger, f"{tag} question {n} from the web: where is my order?")
        at, text = heard.visitor(visitor, BUDGET_S + 30)
        return "webchat", at - _started(sent), text

    def whatsapp(n: int) -> tuple[str, float, str]:
        number = f"whatsapp:+1666{next(_numbers):07d}"
        sent = send_whatsapp(http, base, ledger, number, f"{tag} question {n} on WhatsApp: where is my order?")
        at, text = heard.whatsapp(number, BUDGET_S + 30)
        return "whatsapp", at - _started(sent), text

    with ThreadPoolExecutor(web + wa) as pool:
        futures = [pool.submit(webchat, n) for n in range(web)] + [pool.submit(whatsapp, n) for n in range(wa)]
        return [future.result() for future in futures]


def _started(sent: Sent) -> float:
    assert sent.acked, sent.attempts
    return sent.attempts[0][0]


def _status(http: httpx.Client, base: str, headers: dict[str, str]) -> dict[str, Any]:
    return http.get(f"{base}/api/ai-agent", headers=headers).json()["ai_agent"]["model_status"]  # type: ignore[no-any-return]


def _degraded(http: httpx.Client, base: str) -> list[dict[str, Any]]:
    return http.get(f"{base}/readyz").json().get("degraded", [])  # type: ignore[no-any-return]


@pytest.mark.timeout(420)
def test_a_failing_model_never_silences_the_customer(lab: Lab, figures: Callable[..., None],
                                                     note: Callable[[str], None]) -> None:
    lab.model(delay=0.05, hold_seconds=60)
    lab.twilio()
    lab.valkey()
    agent = {**lab.echo_model(), "timeout": TIMEOUT_S, "breaker": {"failures": FAILURES, "cool_down": COOL_DOWN_S}}
    config = lab.config(ai_agent=agent, handover={"no_human_timeout": NO_HUMAN_S})
    serve, base = lab.serve(config, gateways=1, workers=1, ready=True)
    client = lab.client()
    headers = {"Authorization": f"Bearer {create_agent(client, WORKSPACE, 'ada', 'Ada')}"}
    inbox = Inbox(base, headers["Authorization"].removeprefix("Bearer "))
    inbox.start()
    assert inbox.opened.wait(10)
    ledger = Ledger()
    rows: list[str] = []
    notice = "I'm connecting you with a member of our team"
    with httpx.Client(timeout=15) as http:
        heard = Heard(lab, http, base)
        warm = _wave(heard, http, base, ledger, "warm-up")  # a healthy model first: the AI answers itself
        assert all(text.startswith("Re: ") for _, _, text in warm), warm
        for mode, late in MODES:
            asked_before = len(_model_requests(lab))
            http.put(f"{lab.model_url.removesuffix('/v1')}/mode", json={"mode": mode, "late": late}).raise_for_status()
            waits = _wave(heard, http, base, ledger, mode, WAVE, WAVE)
            asked = len(_model_requests(lab)) - asked_before
            assert all(notice in text for _, _, text in waits), waits
            assert max(w for _, w, _ in waits) < BUDGET_S, waits

            # Repeated failures opened the circuit: the inbox, the API and /readyz say so, and the next customer
            # is handed over without the model being asked.
            status = wait_for(lambda: (s := _status(http, base, headers))["state"] == "open" and s, "the open circuit")
            assert status["failures"] >= FAILURES and status["last_error"], status
            assert any(d["workspace"] == WORKSPACE for d in _degraded(http, base))
            wait_for(lambda: inbox.model_states()[-1:] == ["open"], "the inbox told the circuit is open", 10)
            asked_open = len(_model_requests(lab))
            while_open = _wave(heard, http, base, ledger, f"{mode}-open")
            not_asked = len(_model_requests(lab)) == asked_open
            open_wait = max(w for _, w, _ in while_open)
            assert all(notice in text for _, _, text in while_open) and open_wait < TIMEOUT_S, while_open

            # The model recovers; after the cool-down one turn tries it (the probe: a customer writing meanwhile
            # is handed over), its answer closes the circuit, and the AI answers everyone again.
            http.put(f"{lab.model_url.removesuffix('/v1')}/mode", json={"mode": "answer"}).raise_for_status()
            time.sleep(max(0.0, status["until"] / 1000 - time.time()) + 0.2)
            probe = _wave(heard, http, base, ledger, f"{mode}-probe", web=1, wa=0)
            assert all(text.startswith("Re: ") for _, _, text in probe), probe
            wait_for(lambda: _status(http, base, headers)["state"] == "closed", "the closed circuit")
            wait_for(lambda: inbox.model_states()[-1:] == ["closed"], "the inbox told the circuit is closed", 10)
            assert not _degraded(http, base)
            after = _wave(heard, http, base, ledger, f"{mode}-after")
            assert all(text.startswith("Re: ") for _, _, text in after), after
            web = [w for channel, w, _ in waits if channel == "webchat"]
            wa = [w for channel, w, _ in waits if channel == "whatsapp"]
            rows.append(f"| {mode} | {len(waits)} | {max(web):.1f} s (p50 {statistics.median(web):.1f}) | "
                        f"{max(wa):.1f} s (p50 {statistics.median(wa):.1f}) | {asked} | {status['failures']}: "
                        f"{status['last_error']} | {open_wait:.1f} s, model {'not ' if not_asked else ''}asked | "
                        f"{max(w for _, w, _ in probe):.1f} s |")
            assert not_asked, "the model was asked while its circuit was open"
        # Every chat the AI handed over waits for a human as usual: its contact form comes once, after the wait.
        time.sleep(NO_HUMAN_S + 2)
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=60)
    forms, handed_over = _forms(client)
    client.close()
    figures(f"8. the model hangs / 500s / answers garbage / answers late ({TIMEOUT_S:g} s timeout), "
            f"{WAVE} webchat + {WAVE} WhatsApp customers at once each time", report,
            recovery=f"every customer heard within {BUDGET_S:g} s; circuit open after each wave, closed by the "
                     "first answer after the cool-down",
            held=f"{handed_over} chats handed over, each with its contact form {sorted(set(forms))} time(s)")
    note("\nmodel failures (tests/faults/test_model_outages.py): customer's wait for the first answer\n"
         "| mode | customers | webchat, max | WhatsApp, max | model requests | breaker: failures, last error | "
         "next customer while open | probe after cool-down |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    report.check()
    assert set(forms) == {1}, forms
    assert serve.running()


def _forms(client: Any) -> tuple[list[int], int]:
    """How many contact forms each conversation the AI handed over received; how many it handed over."""
    counts = []
    for n in range(1, int(client.get(keys.key(keys.CONVERSATION_SEQ, workspace_id=WORKSPACE)) or 0) + 1):
        history = keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=str(n))
        messages = [json.loads(m) for m in client.lrange(history, 0, -1)]
        if any(m.get("kind") == "handover" for m in messages):
            counts.append(sum(m.get("kind") == "contact_form" for m in messages))
    return counts, len(counts)
