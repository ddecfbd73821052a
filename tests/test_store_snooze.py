"""The state script's snooze and unsnooze: a snoozed conversation leaves its view (and All) for the snoozed view, and
comes back when the customer writes, when its time comes (fire, the timers' sweep) or when an agent wakes it; closing
it ends the snooze; the AI's conversations are not snoozed."""

from __future__ import annotations

import pytest

from gateway import keys
from gateway.handover.store import Refused
from tests.store_kit import Kit


def views_of(kit: Kit, cid: str) -> set[str]:
    found = set()
    for view in ("open", "waiting", "ai", "agent:alex", "snoozed", "closed"):
        if kit.redis.zscore(kit.key(keys.VIEW, view=view), cid) is not None:
            found.add(view)
    return found


def mine(kit: Kit, text: str = "help", sender: str = "+1") -> str:
    cid = kit.customer(text, sender=sender).conversation
    kit.store.post(kit.ws, cid, "agent", "On it", agent_id="alex", agent_name="Alex")
    return cid


def test_snooze_until_the_next_message_wakes_when_the_customer_writes(kit: Kit) -> None:
    cid = mine(kit)
    assert views_of(kit, cid) == {"open", "agent:alex"}
    assert kit.store.run("snooze", kit.ws, cid, actor="agent:alex")["snoozed_until"] == "next"
    assert views_of(kit, cid) == {"snoozed"}
    kit.store.post(kit.ws, cid, "agent", "still here", agent_id="alex", agent_name="Alex")
    assert views_of(kit, cid) == {"snoozed"}  # the agent's own message does not wake it
    kit.customer("any news?", sender="+1")
    assert views_of(kit, cid) == {"open", "agent:alex"}
    assert "snoozed_until" not in kit.raw(cid)
    assert [e["by"] for e in kit.stream(keys.EVENTS, "conversation.unsnoozed")] == ["customer"]


def test_snooze_until_a_time_wakes_on_the_timers_sweep_and_not_before(kit: Kit) -> None:
    cid = mine(kit)
    later = kit.store.now_ms() + 300
    kit.store.run("snooze", kit.ws, cid, actor="agent:alex", until=later)
    assert kit.store.fire_timers(kit.ws, "form", None).fired == [] and views_of(kit, cid) == {"snoozed"}
    while kit.store.now_ms() <= later:
        pass
    answer = kit.store.run("fire", kit.ws, text="form", form=None)
    assert answer["woke"] == [cid] and views_of(kit, cid) == {"open", "agent:alex"}


def test_unsnooze_wakes_it_and_close_ends_a_snooze(kit: Kit) -> None:
    cid = mine(kit)
    with pytest.raises(Refused) as refused:
        kit.store.run("unsnooze", kit.ws, cid, actor="agent:alex")
    assert refused.value.code == "not_snoozed"
    kit.store.run("snooze", kit.ws, cid, actor="agent:alex", until=kit.store.now_ms() + 60_000)
    kit.store.run("unsnooze", kit.ws, cid, actor="agent:alex")
    assert views_of(kit, cid) == {"open", "agent:alex"} and kit.redis.zcard(kit.key(keys.SNOOZE_TIMERS)) == 0
    kit.store.run("snooze", kit.ws, cid, actor="agent:alex", until=kit.store.now_ms() + 60_000)
    kit.store.close(kit.ws, cid, "agent:alex")
    assert views_of(kit, cid) == {"closed"} and "snoozed_until" not in kit.raw(cid)
    assert kit.redis.zcard(kit.key(keys.SNOOZE_TIMERS)) == 0


def test_snooze_refuses_the_ais_conversations_and_closed_ones(kit: Kit) -> None:
    cid = kit.customer("hello").conversation
    with pytest.raises(Refused) as refused:
        kit.store.run("snooze", kit.ws, cid, actor="agent:alex")
    assert refused.value.code == "not_owner"
    kit.store.close(kit.ws, cid, "agent:alex", force=True)
    with pytest.raises(Refused) as refused:
        kit.store.run("snooze", kit.ws, cid, actor="agent:alex")
    assert refused.value.code == "closed"
