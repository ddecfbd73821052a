"""The no-human fallback timers and the safety sweep, run beside every worker.

Pending fallbacks live in a sorted set by deadline (durable: a deadline that passed while every
process was down fires at the next start) next to a TTL key per conversation that shows the pending
state. Firing is one atomic step in state.lua, so an assignment a millisecond before the deadline wins.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gateway import keys
from gateway.contact_form import FORM, FORM_TEXT
from gateway.deployment import Deployment

log = logging.getLogger("baton.timers")

TICK = 0.05  # seconds between checks for due timers
SWEEP_EVERY = 10.0  # seconds between sweeps for customer messages whose AI turn was lost
STALE_TURN_MS = 30_000


def fire_due(deployment: Deployment) -> list[dict[str, Any]]:
    """Send the contact form for every due fallback; return what fired."""
    from gateway.jobs import enqueue_delivery, enqueue_notifications

    fired: list[dict[str, Any]] = []
    for workspace in deployment.config.workspaces:
        if not workspace.handover.contact_form:
            continue
        result = deployment.state.run("fire", workspace.id, text=FORM_TEXT, form=FORM, limit=500).data
        for item in result["fired"]:
            enqueue_delivery(deployment, workspace.id, item["conversation"], item["message"])
            enqueue_notifications(deployment, workspace.id, {
                "type": "contact_form_sent", "workspace": workspace.id, **item})
            fired.append({"workspace": workspace.id, **item})
    return fired


def sweep_pending_turns(deployment: Deployment) -> int:
    """Re-queue AI turns for customer messages recorded long ago and never taken up."""
    from gateway.jobs import enqueue_turn

    count = 0
    cutoff = int(time.time() * 1000) - STALE_TURN_MS
    for workspace in deployment.config.workspaces:
        pending = keys.key(keys.PENDING_TURNS, ws=workspace.id)
        for cid in deployment.redis.zrangebyscore(pending, "-inf", cutoff, start=0, num=100):
            log.warning("conversation %s: re-queueing an AI turn that was never taken", cid)
            deployment.redis.zadd(pending, {str(cid): int(time.time() * 1000)})
            enqueue_turn(deployment, workspace.id, str(cid))
            count += 1
    return count


class TimerLoop(threading.Thread):
    """A daemon thread that fires due timers every TICK and sweeps every SWEEP_EVERY seconds."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(name="baton-timers", daemon=True)
        self.deployment = deployment
        self.stopping = threading.Event()

    def run(self) -> None:
        next_sweep = time.monotonic()
        while not self.stopping.is_set():
            try:
                fire_due(self.deployment)
                if time.monotonic() >= next_sweep:
                    sweep_pending_turns(self.deployment)
                    next_sweep = time.monotonic() + SWEEP_EVERY
            except Exception:  # noqa: BLE001 - keep the timers alive through a Redis hiccup
                log.exception("timer loop failed; retrying")
                self.stopping.wait(1.0)
            self.stopping.wait(TICK)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
