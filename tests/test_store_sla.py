"""Response targets (sla:) in the state script, on the real server: which target runs after each sequence of events,
what a reply that meets one answers, and what a missed one does for each on_breach and owner; each timer fires once,
and going back to the queue never arms a new no-human wait (so never a second contact form)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway import keys
from gateway.web.auth import create_agent
from tests.store_kit import TIMEOUT_MS, Kit

TARGETS = {"first_ms": 300_000, "next_ms": 60_000, "on_breach": "requeue"}


def rule(mode: str = "manual", capacity: int = 5) -> dict[str, Any]:
    return {"mode": mode, "capacity": capacity, "file": f"{mode}|{capacity}"}


def handed_over(kit: Kit, sla: dict[str, Any] | None = TARGETS, sender: str = "+15550100",
                assignment: dict[str, Any] | None = None) -> str:
    cid = kit.customer("I want a human", sender=sender, sla=sla).conversation
    kit.redis.lrem(kit.key(keys.TURNS), 1, cid)
    kit.store.hand_over(kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=TIMEOUT_MS, assignment=assignment, sla=sla)
    return cid


def reply(kit: Kit, cid: str, agent: str = "alex") -> dict[str, Any]:
    answer: dict[str, Any] = {}
    kit.store.post(kit.ws, cid, "agent", "Hello, I'm here", agent_id=agent, agent_name=agent.title(), answer=answer)
    return answer


def running(kit: Kit, cid: str) -> str:
    """The target that runs ("first" or "next"), "" for none; its timer must agree."""
    raw = kit.raw(cid)
    timers: Any = kit.redis.zrange(kit.key(keys.SLA_TIMERS), 0, -1, withscores=True)
    mine = {member: int(score) for member, score in timers if member.startswith(f"{cid}|")}
    if not raw.get("sla_due"):
        assert mine == {}
        return ""
    assert mine == {f"{cid}|{raw['sla_target']}": int(raw["sla_due"])}
    return raw["sla_kind"]


# What each step does (on a conversation the AI has), run in order.
STEPS = {
    "handover": lambda kit, cid: kit.store.hand_over(
        kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="", agent_name="Lumi",
        timeout_ms=TIMEOUT_MS, sla=TARGETS),
    "customer writes": lambda kit, cid: kit.customer("are you there?", sla=TARGETS),
    "alex replies": lambda kit, cid: reply(kit, cid),
    "alex takes it": lambda kit, cid: kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it"),
    "alex notes": lambda kit, cid: kit.store.note(kit.ws, cid, "checking the order", "alex", "Alex"),
    "alex releases": lambda kit, cid: kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="released",
                                                       timeout_ms=TIMEOUT_MS),
    "back to the AI": lambda kit, cid: kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="back",
                                                        force=True),
    "closed": lambda kit, cid: kit.store.close(kit.ws, cid, "agent:alex", force=True),
}

# events, in order → the target that runs after them
TABLE = [
    ([], ""),  # the AI answers: no human owes a reply
    (["customer writes"], ""),
    (["handover"], "first"),
    (["handover", "customer writes"], "first"),
    (["handover", "alex takes it"], "first"),  # taking it is not answering
    (["handover", "alex takes it", "alex notes"], "first"),  # a private note is not an answer
    (["handover", "alex replies"], ""),
    (["handover", "alex replies", "customer writes"], "next"),
    (["handover", "alex replies", "customer writes", "customer writes"], "next"),
    (["handover", "alex replies", "customer writes", "alex replies"], ""),
    (["handover", "alex replies", "alex releases", "customer writes"], "next"),
    (["handover", "back to the AI"], ""),
    (["handover", "alex replies", "customer writes", "back to the AI"], ""),
    (["handover", "closed"], ""),
]


@pytest.mark.parametrize(("events", "expected"), TABLE, ids=[" then ".join(e) or "nothing" for e, _ in TABLE])
def test_which_target_runs(kit: Kit, events: list[str], expected: str) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    cid = kit.customer("Hello", sla=TARGETS).conversation
    for name in events:
        STEPS[name](kit, cid)
    assert running(kit, cid) == expected


def test_a_second_message_keeps_the_deadline_of_the_first(kit: Kit) -> None:
    cid = handed_over(kit)
    due = kit.raw(cid)["sla_due"]
    time.sleep(0.01)
    kit.customer("hello??", sla=TARGETS)
    assert kit.raw(cid)["sla_due"] == due


def test_without_targets_nothing_runs(kit: Kit) -> None:
    cid = handed_over(kit, sla=None)
    kit.customer("hello??")
    assert running(kit, cid) == ""
    assert reply(kit, cid).get("responded") is None


def test_a_reply_that_meets_a_target_says_which_and_how_long(kit: Kit) -> None:
    cid = handed_over(kit)
    time.sleep(0.05)
    met = reply(kit, cid)["responded"]
    assert met["kind"] == "first" and met["breached"] is False and 50 <= met["ms"] < 5000
    kit.customer("thanks, one more thing", sla=TARGETS)
    assert reply(kit, cid)["responded"]["kind"] == "next"
    assert reply(kit, cid).get("responded") is None  # nothing was owed


def test_the_deadline_is_the_offset_the_caller_computed(kit: Kit) -> None:
    """The caller counts business hours (gateway.handover.lifecycle.sla): the script adds its offset to its clock."""
    cid = handed_over(kit, sla={"first_ms": 3_600_000, "on_breach": "notify"})
    raw = kit.raw(cid)
    assert int(raw["sla_due"]) - int(raw["sla_since"]) == 3_600_000
    reply(kit, cid)
    kit.customer("and?", sla={"first_ms": 3_600_000, "on_breach": "notify"})
    assert running(kit, cid) == ""  # no next target configured


# --- a missed target -----------------------------------------------------------------------------------------

SOON = {"first_ms": 1, "next_ms": 1}


def fire(kit: Kit, on_breach: str, assignment: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    time.sleep(0.01)
    return kit.store.fire_timers(kit.ws, text="form", form={"type": "contact_form"},
                                 sla={**SOON, "on_breach": on_breach}, assignment=assignment).breached


# on_breach, the owner when it is missed, who else is online (round robin) → the owner afterwards
BREACHES = [
    ("requeue", "agent:alex", [], "none"),
    ("requeue", "agent:alex", ["sam"], "agent:sam"),
    ("requeue", "none", ["sam"], "none"),  # nobody had it: nobody to take it from (sam was offline at handover)
    ("notify", "agent:alex", ["sam"], "agent:alex"),
    ("notify", "none", [], "none"),
]


@pytest.mark.parametrize(("on_breach", "owner", "online", "after"), BREACHES)
def test_a_missed_target(kit: Kit, on_breach: str, owner: str, online: list[str], after: str) -> None:
    for agent_id in ("alex", "sam"):
        create_agent(kit.redis, kit.ws, agent_id, agent_id.title())
    cid = handed_over(kit, sla={**SOON, "on_breach": on_breach})
    if owner != "none":
        kit.store.assign(kit.ws, cid, owner, owner, reason="took it")
    for agent_id in online:
        kit.store.set_presence(kit.ws, agent_id, "online")
    timers_before = kit.timers()

    breached = fire(kit, on_breach, rule("round_robin"))
    assert [(b["conversation"], b["kind"], b["owner"]) for b in breached] == [(cid, "first", owner)]
    assert kit.conversation(cid)["owner"] == after
    raw = kit.raw(cid)
    assert raw["sla_breached"] and raw["sla_kind"] == "first"
    assert kit.view("overdue") == [cid]
    assert [(e["conversation"], e["owner"]) for e in kit.events("conversation.sla_breached")] == [(cid, owner)]
    assert [n["owner"] for n in kit.notifications("sla_breached")] == [owner]
    taken = kit.notifications("taken_over")
    requeued = on_breach == "requeue" and owner != "none"
    assert [(n["agent"], n["actor"]) for n in taken] == ([("alex", "sla")] if requeued else [])
    # Back in the queue: no new no-human wait, so never a second contact form.
    assert kit.timers() == ({} if owner != "none" else timers_before)
    assert fire(kit, on_breach, rule("round_robin")) == []  # once
    assert [k for _, k in kit.kinds(cid)].count("contact_form") == 0


def test_a_requeued_chat_waits_without_a_wait_armed_and_the_customer_writing_arms_none(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    cid = handed_over(kit, sla={**SOON, "on_breach": "requeue"})
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    fire(kit, "requeue")
    assert kit.store.queued(kit.ws) == [cid]
    kit.customer("hello???", sla=SOON)
    raw = kit.raw(cid)
    assert raw["owner"] == "none" and kit.timers() == {} and kit.pending() == []
    assert raw["handover_reason"] == "asked"  # not taken for a wait of an unpublished AI


def test_the_late_reply_meets_it_and_leaves_the_overdue_view(kit: Kit) -> None:
    cid = handed_over(kit, sla={**SOON, "on_breach": "notify"})
    fire(kit, "notify")
    met = reply(kit, cid)["responded"]
    assert met["kind"] == "first" and met["breached"] is True
    assert kit.view("overdue") == [] and running(kit, cid) == ""


def test_a_met_targets_timer_never_fires(kit: Kit) -> None:
    cid = handed_over(kit, sla={"first_ms": 1, "next_ms": 60_000, "on_breach": "notify"})
    reply(kit, cid)
    kit.customer("more", sla={"first_ms": 1, "next_ms": 60_000, "on_breach": "notify"})
    assert running(kit, cid) == "next"
    assert fire(kit, "notify") == []


def test_the_overdue_view_lists_the_most_overdue_first(kit: Kit) -> None:
    first = handed_over(kit, sla={**SOON, "on_breach": "notify"}, sender="+15550101")
    time.sleep(0.01)
    second = handed_over(kit, sla={**SOON, "on_breach": "notify"}, sender="+15550102")
    fire(kit, "notify")
    page, _, counts = kit.store.view_page(kit.ws, "overdue")
    assert [c["id"] for c in page] == [first, second] and counts["overdue"] == 2
    kit.store.close(kit.ws, first, "agent:alex")
    assert kit.view("overdue") == [second]
