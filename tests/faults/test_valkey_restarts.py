"""Valkey stopped (SIGTERM) and then killed (SIGKILL) under traffic, each time restarted on its append-only file:
the workers live through it (never exit), webhooks answer 503 while it is down (never 200) and 200 again after,
no-human timers armed before each outage fire once, and the audit finds nothing lost and nothing doubled."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway import keys
from gateway.web.auth import create_agent
from tests.faults.audit import audit, notified
from tests.faults.lab import WORKSPACE, Lab, wait_for
from tests.faults.traffic import Ledger, Traffic, new_sid, send_whatsapp, signed, whatsapp_form

TIMEOUT_S = 4  # the no-human timeout: timers armed just before an outage fall due while Valkey is down
DOWN_S = 3.0


def _arm_timers(lab: Lab, http: httpx.Client, base: str, ledger: Ledger, tag: str) -> list[str]:
    """Customers who ask for a person: each conversation waits for a human, its no-human timer armed."""
    numbers = [f"whatsapp:+1888{tag}{n:05d}" for n in range(4)]
    sent = [send_whatsapp(http, base, ledger, number, "transfer to agent") for number in numbers]
    client = lab.client()
    cids = [str(client.get(keys.key(keys.DEDUPE, workspace_id=WORKSPACE, channel="wa", provider_id=s.provider_id)))
            .partition("|")[0] for s in sent]

    def armed() -> bool:
        conversations = [keys.key(keys.CONVERSATION, workspace_id=WORKSPACE, conversation_id=cid) for cid in cids]
        return all(client.hget(conversation, "waiting_since") for conversation in conversations)

    wait_for(armed, "the handovers", 30)
    client.close()
    return cids


def _outage(lab: Lab, signum: int, http: httpx.Client, base: str, probes: list[tuple[float, float, Any]]
            ) -> tuple[float, float, float]:
    """Stop Valkey with `signum`, probe the webhook while it is down, start it again; (down at, restarted at,
    ready at)."""
    assert lab.valkey_proc is not None and lab.valkey_proc.popen is not None
    lab.valkey_proc.signal(signum)
    lab.valkey_proc.popen.wait(30)
    down_at = time.time()
    url = f"{base}/webhooks/wa"
    while time.time() < down_at + DOWN_S:
        start = time.time()
        form = whatsapp_form("whatsapp:+15550000000", "probe", new_sid())
        try:
            status: Any = http.post(url, data=form, headers=signed(url, form)).status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        probes.append((start, time.time(), status))
        time.sleep(0.2)
    restarted_at = time.time()
    lab.valkey_proc.start()
    lab.wait_valkey()
    return down_at, restarted_at, time.time()


class Inbox(threading.Thread):
    """An agent's open event stream: the events it shows (with when), and whether it ended."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.events: list[tuple[float, str]] = []
        self.ended = False
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(15, read=60)) as http, http.stream(
                    "GET", f"{self.base}/api/events", headers={"Authorization": f"Bearer {self.token}"}) as response:
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        self.events.append((time.time(), line[7:]))
        except httpx.HTTPError:
            pass
        self.ended = True


@pytest.mark.timeout(300)
def test_valkey_stopped_and_killed_under_traffic(lab: Lab, figures: Callable[..., None]) -> None:
    lab.twilio()
    lab.valkey()
    config = lab.config(handover={"no_human_timeout": TIMEOUT_S}, notify=True)
    serve, base = lab.serve(config, wait=False)
    workers = [lab.worker(config, f"worker-{n}") for n in (1, 2)]
    lab.up(serve, base)
    lab.workers_ready(workers)
    client = lab.client()
    inbox = Inbox(base, create_agent(client, WORKSPACE, "ada", "Ada"))
    inbox.start()
    assert inbox.opened.wait(10)
    ledger = Ledger()
    probes: list[tuple[float, float, Any]] = []
    outages: list[tuple[float, float, float]] = []
    timers: list[str] = []
    with Traffic(base, ledger, rate=10, whatsapp=20, visitors=10) as traffic, httpx.Client(timeout=15) as http:
        time.sleep(2)
        for tag, signum in (("1", signal.SIGTERM), ("2", signal.SIGKILL)):
            timers += _arm_timers(lab, http, base, ledger, tag)
            outages.append(_outage(lab, signum, http, base, probes))
            time.sleep(4)
    back = [min((end for _, end, status in ledger.attempts() if status in (200, 201) and end > restarted), default=0.0)
            - restarted for _, restarted, _ in outages]
    windows = [(ready, min([down for down, _, _ in outages if down > ready], default=ready + 10))
               for _, _, ready in outages]  # from Valkey being back to the next outage
    late = [(start - ready, status) for start, _, status in ledger.attempts() + probes for ready, until in windows
            if ready <= start <= until and status not in (200, 201)]
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=60)
    attempts = ledger.attempts() + probes
    during = [status for start, end, status in attempts for down, up, _ in outages if start >= down and end <= up]
    histories = {cid: keys.key(keys.MESSAGES, workspace_id=WORKSPACE, conversation_id=cid) for cid in timers}
    forms = {cid: sum(json.loads(m).get("kind") == "contact_form" for m in client.lrange(history, 0, -1))
             for cid, history in histories.items()}
    told = {(n["conversation"], n["type"]) for n in notified(lab.twilio_log)}
    untold = [(cid, kind) for cid in timers for kind in ("handover", "contact_form_sent") if (cid, kind) not in told]
    where = _notification_work(client) if untold else {}
    client.close()
    figures("2. Valkey SIGTERM, then SIGKILL, restarted", report,
            recovery=" / ".join(f"{b:.1f} s" for b in back) + " to the first 200; "
                     f"{len(late)} refused after Valkey was back (the last {max((t for t, _ in late), default=0):.1f}"
                     f" s after)",
            held=f"{traffic.sent} traffic messages; {len(during)} requests while down: "
                 f"{sorted(set(map(str, during)))}; {len(timers)} timers armed before the outages fired "
                 f"{sorted(set(forms.values()))} time(s) each, every agent notified; workers never exited; an agent's "
                 f"open stream went on through both outages")
    assert during and 200 not in during, during
    assert all(isinstance(status, int) and status == 503 for status in during), sorted(set(map(str, during)))
    assert set(forms.values()) == {1}, forms
    assert not inbox.ended and any(at > outages[-1][2] for at, _ in inbox.events), inbox.events[-5:]
    assert not untold, (untold, where)
    report.check()
    assert all(worker.running() and worker.starts == 1 for worker in workers), [w.log()[-2000:] for w in workers]
    assert serve.running()


def _notification_work(client: Any) -> dict[str, Any]:
    """Where notification work stands in Redis: the stream's unacknowledged entries and RQ's queues and registries."""
    from rq import Queue

    stream = keys.key(keys.NOTIFICATIONS, workspace_id=WORKSPACE)
    work: dict[str, Any] = {"stream": client.xlen(stream),
                            "pending": client.xpending(stream, "notifiers") if client.exists(stream) else None}
    for queue in Queue.all(client):
        work[queue.name] = {"queued": queue.count, "intermediate": client.lrange(queue.intermediate_queue_key, 0, -1),
                            "started": queue.started_job_registry.get_job_ids(),
                            "scheduled": queue.scheduled_job_registry.get_job_ids(),
                            "failed": queue.failed_job_registry.get_job_ids()}
    return work
