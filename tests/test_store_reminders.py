"""Reminders in the state script, on the real server: a handed-over chat nobody takes reminds the team every
remind_ms up to remind_limit times, then is escalated to the admins once; anyone taking it, its close or an agent
given it at once means no reminder at all."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway import keys
from gateway.web.auth import create_agent
from tests.store_kit import TIMEOUT_MS, Kit


def rule(mode: str = "manual", remind_ms: int | None = 1, remind_limit: int = 2) -> dict[str, Any]:
    found: dict[str, Any] = {"mode": mode, "capacity": 5, "file": f"{mode}|5"}
    if remind_ms is not None:
        found.update(remind_ms=remind_ms, remind_limit=remind_limit)
    return found


def handed_over(kit: Kit, assignment: dict[str, Any]) -> str:
    cid = kit.customer("I want a human").conversation
    kit.redis.lrem(kit.key(keys.TURNS), 1, cid)
    kit.store.hand_over(kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=TIMEOUT_MS, assignment=assignment)
    return cid


def tick(kit: Kit, assignment: dict[str, Any]) -> list[dict[str, Any]]:
    time.sleep(0.01)
    return kit.store.fire_timers(kit.ws, text="form", form=None, assignment=assignment).reminded


def armed(kit: Kit) -> list[str]:
    members: Any = kit.redis.zrange(kit.key(keys.REMIND_TIMERS), 0, -1)
    return list(members)


def test_reminders_then_one_escalation(kit: Kit) -> None:
    cid = handed_over(kit, rule(remind_limit=2))
    assert armed(kit) == [cid]
    told = [tick(kit, rule(remind_limit=2)) for _ in range(5)]
    assert told == [[{"conversation": cid, "reminder": 1}], [{"conversation": cid, "reminder": 2}],
                    [{"conversation": cid, "escalated": True}], [], []]
    notes = kit.notifications()
    assert [n["type"] for n in notes] == ["handover", "reminder", "reminder", "escalated"]
    assert notes[-1]["reminders"] == 2 and notes[-1]["waited_ms"] >= 0
    assert [e["conversation"] for e in kit.events("conversation.escalated")] == [cid]
    assert kit.raw(cid)["escalated_at"]


# what happens after the handover → a reminder timer armed?
CASES = [
    ("nothing", True),
    ("an agent takes it", False),
    ("it is closed", False),
    ("handed back to the AI", False),
]


@pytest.mark.parametrize(("step", "still_armed"), CASES)
def test_what_ends_the_reminders(kit: Kit, step: str, still_armed: bool) -> None:
    cid = handed_over(kit, rule(remind_ms=60_000))
    if step == "an agent takes it":
        kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    elif step == "it is closed":
        kit.store.close(kit.ws, cid, "agent:alex")
    elif step == "handed back to the AI":
        kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="back")
    assert armed(kit) == ([cid] if still_armed else [])


def test_a_chat_given_to_an_agent_at_once_reminds_nobody(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    kit.store.set_presence(kit.ws, "alex", "online")
    cid = handed_over(kit, rule("round_robin"))
    assert kit.conversation(cid)["owner"] == "agent:alex" and armed(kit) == []


def test_without_reminders_configured_nothing_is_armed(kit: Kit) -> None:
    handed_over(kit, rule(remind_ms=None))
    assert armed(kit) == []


def test_a_chat_released_again_starts_its_reminders_over(kit: Kit) -> None:
    cid = handed_over(kit, rule(remind_limit=1))
    tick(kit, rule(remind_limit=1))
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="released", timeout_ms=TIMEOUT_MS,
                     assignment=rule(remind_limit=1))
    assert tick(kit, rule(remind_limit=1)) == [{"conversation": cid, "reminder": 1}]


# --- handed over while the team was out ---------------------------------------------------------------------------

# after_hours in the assignment argument, then what happens → the chat still marked?
AFTER_HOURS = [
    (True, "nothing", True),
    (True, "an agent takes it", False),
    (True, "an agent replies", False),
    (False, "nothing", False),
]


@pytest.mark.parametrize(("after_hours", "step", "marked"), AFTER_HOURS)
def test_a_chat_left_waiting_after_hours_is_marked_until_someone_takes_it(kit: Kit, after_hours: bool, step: str,
                                                                          marked: bool) -> None:
    assignment = {**rule(remind_ms=None), **({"after_hours": True} if after_hours else {})}
    cid = handed_over(kit, assignment)
    if step == "an agent takes it":
        kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    elif step == "an agent replies":
        kit.store.post(kit.ws, cid, "agent", "Good morning!", agent_id="alex", agent_name="Alex")
    assert ("after_hours" in kit.conversation(cid)) is marked


def test_an_agent_online_after_hours_gets_the_chat_and_it_is_not_marked(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    kit.store.set_presence(kit.ws, "alex", "online")
    cid = handed_over(kit, {**rule("round_robin", remind_ms=None), "after_hours": True})
    assert kit.conversation(cid)["owner"] == "agent:alex" and "after_hours" not in kit.conversation(cid)
