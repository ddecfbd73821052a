"""`baton serve` as most users run it (gateway, worker and the embedded Valkey as its children), under traffic from
customers that retry on connection errors as Twilio does: its gateway SIGKILLed three times (the supervisor starts
it again), then `baton serve` itself SIGKILLed and started again: no process is left behind, nothing is lost."""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.audit import audit
from tests.faults.lab import PYTHON, Lab, alive, answers, command_line, descendants, free_port, wait_for
from tests.faults.traffic import Ledger, Traffic

ORPHAN_GRACE_S = 15.0  # children get SIGTERM when `baton serve` dies; each finishes what it can and exits


def _embedded_url(lab: Lab) -> str:
    return str(json.loads((lab.dir / "data-baton" / "valkey.json").read_text())["url"])


def _gateway(serve_pid: int) -> int | None:
    return next((pid for pid in descendants(serve_pid) if "gateway.cli gateway" in command_line(pid)), None)


def _replaced(serve_pid: int, old: int, base: str) -> bool:
    return _gateway(serve_pid) not in (None, old) and answers(f"{base}/healthz")


@pytest.mark.timeout(300)
def test_gateway_and_serve_killed_under_traffic(lab: Lab, figures: Callable[..., None]) -> None:
    lab.twilio()
    config = lab.config()
    port = free_port()
    serve = lab.process("serve", PYTHON, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
                        "--gateways", "1", "--workers", "1")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/readyz"), "baton serve and its worker", 90, every=0.2)
    lab.redis_url = _embedded_url(lab)
    ledger = Ledger()
    gateway_gaps: list[float] = []
    with Traffic(base, ledger, rate=10, whatsapp=20, visitors=10) as traffic:
        time.sleep(2)
        for _ in range(3):
            gateway = _gateway(serve.pid)
            assert gateway is not None
            os.kill(gateway, signal.SIGKILL)
            killed = time.time()
            wait_for(functools.partial(_replaced, serve.pid, gateway, base), "a new gateway", 30)
            gateway_gaps.append(time.time() - killed)
            time.sleep(2)
        children = descendants(serve.pid)
        names = sorted(command_line(pid).split(" ")[3] if "gateway.cli" in command_line(pid) else "valkey"
                       for pid in children)
        serve.signal(signal.SIGKILL)
        killed = time.time()
        assert serve.popen is not None
        serve.popen.wait(10)
        gone = wait_for(lambda: not any(alive(pid) for pid in children) or None, "the children to exit",
                        ORPHAN_GRACE_S) and time.time() - killed
        serve.start()
        wait_for(lambda: answers(f"{base}/readyz"), "baton serve, started again", 90, every=0.2)
        serve_gap = time.time() - killed
        lab.redis_url = _embedded_url(lab)
        time.sleep(3)
    report = audit(lab.redis_url, ledger, lab.twilio_log, settle=60)
    retried = sum(1 for sent in ledger.all() if len(sent.attempts) > 1)
    figures("3. gateway SIGKILLed 3×, then `baton serve` SIGKILLed and restarted", report,
            recovery=f"gateway {' / '.join(f'{g:.1f}' for g in gateway_gaps)} s; serve {serve_gap:.1f} s",
            held=f"{traffic.sent} traffic messages, {retried} retried by the customer; after the kill of serve its "
                 f"{len(children)} children ({', '.join(names)}) exited within {gone:.1f} s, none left")
    report.check()
