"""Presence and automatic assignment in the state script, on the real server: who gets a chat for each mode, each
agent's presence and load, and each event (a handover, an agent coming online, a slot freed, a release), and
presence from the inbox's streams (online while one is open, offline a grace period after the last one closed)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway import keys
from gateway.web.auth import create_agent
from tests.store_kit import TIMEOUT_MS, Kit


def rule(mode: str, capacity: int = 2) -> dict[str, Any]:
    return {"mode": mode, "capacity": capacity, "file": f"{mode}|{capacity}"}


def team(kit: Kit, presence: dict[str, str]) -> None:
    """Agents by id with the presence each has set."""
    for agent_id, status in presence.items():
        create_agent(kit.redis, kit.ws, agent_id, agent_id.title())
        kit.store.set_presence(kit.ws, agent_id, status)


def handed_over(kit: Kit, assignment: dict[str, Any], sender: str) -> str:
    cid = kit.customer("I want a human", sender=sender).conversation
    kit.redis.lrem(kit.key(keys.TURNS), 1, cid)
    kit.store.hand_over(kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=TIMEOUT_MS, assignment=assignment)
    return cid


def holding(kit: Kit, agent_id: str, count: int) -> None:
    """Give the agent `count` open chats by hand (manual assignment ignores capacity)."""
    for n in range(count):
        cid = kit.customer("hi", sender=f"+1555{agent_id}{n}").conversation
        kit.store.assign(kit.ws, cid, f"agent:{agent_id}", f"agent:{agent_id}", reason="took it")


def owner(kit: Kit, cid: str) -> str:
    return kit.conversation(cid)["owner"]


# mode, presence, open chats held, capacity → who gets the next handover ("none": it waits in the queue)
TABLE = [
    ("manual", {"alex": "online"}, {}, 2, "none"),
    ("round_robin", {"alex": "online", "sam": "online"}, {}, 2, "agent:alex"),
    ("round_robin", {"alex": "away", "sam": "online"}, {}, 2, "agent:sam"),
    ("round_robin", {"alex": "offline", "sam": "away"}, {}, 2, "none"),
    ("round_robin", {"alex": "online", "sam": "online"}, {"alex": 2}, 2, "agent:sam"),
    ("round_robin", {"alex": "online", "sam": "online"}, {"alex": 2, "sam": 2}, 2, "none"),
    ("balanced", {"alex": "online", "sam": "online"}, {"alex": 1}, 3, "agent:sam"),
    ("balanced", {"alex": "online", "sam": "online"}, {"alex": 1, "sam": 2}, 3, "agent:alex"),
    ("balanced", {"alex": "online", "sam": "offline"}, {"alex": 2}, 3, "agent:alex"),
    ("balanced", {"alex": "online", "sam": "online"}, {"alex": 3, "sam": 3}, 3, "none"),
]


@pytest.mark.parametrize(("mode", "presence", "load", "capacity", "expected"), TABLE)
def test_who_gets_a_handover(kit: Kit, mode: str, presence: dict[str, str], load: dict[str, int], capacity: int,
                             expected: str) -> None:
    team(kit, presence)
    for agent_id, count in load.items():
        holding(kit, agent_id, count)
    cid = handed_over(kit, rule(mode, capacity), "+15550001")
    assert owner(kit, cid) == expected
    assert kit.store.queued(kit.ws) == ([cid] if expected == "none" else [])


def test_round_robin_takes_turns(kit: Kit) -> None:
    team(kit, {"alex": "online", "kim": "online", "sam": "online"})
    owners = [owner(kit, handed_over(kit, rule("round_robin", 5), f"+1555000{n}")) for n in range(4)]
    assert owners == ["agent:alex", "agent:kim", "agent:sam", "agent:alex"]


def test_the_assignee_is_told_and_every_agent_still_notified(kit: Kit) -> None:
    team(kit, {"alex": "online"})
    cid = handed_over(kit, rule("balanced"), "+15550001")
    notifications = [n for n in kit.stream(keys.NOTIFICATIONS) if n["conversation"] == cid]
    assert [n["type"] for n in notifications] == ["handover", "assigned"]
    assert notifications[1]["agent"] == "alex" and notifications[1]["actor"] == "auto"
    assigned = [e for e in kit.stream(keys.EVENTS, "conversation.assigned") if e["conversation"] == cid]
    assert assigned[-1]["owner"] == "agent:alex" and assigned[-1]["actor"] == "auto"
    conversation = kit.conversation(cid)
    assert "waiting_since" not in conversation  # taken: the no-human wait (and so the contact form) is off
    assert kit.redis.zcard(kit.key(keys.FALLBACK_TIMERS)) == 0
    assert kit.last(cid)["text"] == "Alex joined the conversation."


# event → who gets the queued chats, oldest first
def test_an_agent_coming_online_gets_the_oldest_waiting_chats_up_to_capacity(kit: Kit) -> None:
    team(kit, {"alex": "offline"})
    waiting = [handed_over(kit, rule("round_robin", 2), f"+1555000{n}") for n in range(3)]
    assert kit.store.queued(kit.ws) == waiting
    answer = kit.store.set_presence(kit.ws, "alex", "online", rule("round_robin", 2))
    assert answer["given"] == 2
    assert [owner(kit, c) for c in waiting] == ["agent:alex", "agent:alex", "none"]
    assert kit.store.queued(kit.ws) == waiting[2:]


def test_a_freed_slot_takes_the_next_waiting_chat(kit: Kit) -> None:
    team(kit, {"alex": "online"})
    first, second = (handed_over(kit, rule("balanced", 1), f"+1555000{n}") for n in range(2))
    assert (owner(kit, first), owner(kit, second)) == ("agent:alex", "none")
    kit.store.close(kit.ws, first, "agent:alex", assignment=rule("balanced", 1))
    assert owner(kit, second) == "agent:alex"


def test_a_chat_handed_back_to_the_ai_frees_a_slot(kit: Kit) -> None:
    team(kit, {"alex": "online"})
    first, second = (handed_over(kit, rule("round_robin", 1), f"+1555000{n}") for n in range(2))
    kit.store.assign(kit.ws, first, "ai", "agent:alex", reason="back", assignment=rule("round_robin", 1))
    assert (owner(kit, first), owner(kit, second)) == ("ai", "agent:alex")


def test_a_released_chat_goes_to_someone_else_never_back_to_who_let_it_go(kit: Kit) -> None:
    team(kit, {"alex": "online", "sam": "offline"})
    cid = handed_over(kit, rule("round_robin"), "+15550001")
    assert owner(kit, cid) == "agent:alex"
    moved = kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="released", timeout_ms=TIMEOUT_MS,
                             assignment=rule("round_robin"))
    assert moved["owner"] == "none" and kit.store.queued(kit.ws) == [cid]
    kit.store.set_presence(kit.ws, "sam", "online", rule("round_robin"))
    assert owner(kit, cid) == "agent:sam"


def test_manual_mode_queues_so_that_switching_to_automatic_hands_out(kit: Kit) -> None:
    team(kit, {"alex": "online"})
    cid = handed_over(kit, rule("manual"), "+15550001")
    assert owner(kit, cid) == "none"
    answer = kit.store.set_assignment(kit.ws, "balanced", 3, "agent:robin", rule("manual"))
    assert answer == {"mode": "balanced", "capacity": 3, "given": 1}
    assert owner(kit, cid) == "agent:alex"


def test_set_assignment_wins_until_the_files_value_changes(kit: Kit) -> None:
    team(kit, {"alex": "online"})
    kit.store.set_assignment(kit.ws, "round_robin", 3, "agent:robin", rule("manual"))
    assert owner(kit, handed_over(kit, rule("manual"), "+15550001")) == "agent:alex"  # Settings' mode in force
    # The file now says something else: it wins (round_robin with capacity 1, which alex has used up).
    assert owner(kit, handed_over(kit, rule("round_robin", 1), "+15550002")) == "none"
    kit.store.set_assignment(kit.ws, None, None, "agent:robin", rule("round_robin", 1))
    assert kit.store.assignment_override(kit.ws) == {}


def test_a_closed_chat_leaves_the_queue(kit: Kit) -> None:
    team(kit, {"alex": "offline"})
    cid = handed_over(kit, rule("balanced"), "+15550001")
    kit.store.close(kit.ws, cid, "agent:robin", assignment=rule("balanced"))
    kit.store.set_presence(kit.ws, "alex", "online", rule("balanced"))
    assert owner(kit, cid) == "none" and kit.conversation(cid)["status"] == "closed"
    assert kit.store.queued(kit.ws) == []


# --- presence from the inbox's streams --------------------------------------------------------------------------

def presence(kit: Kit, agent_id: str) -> str:
    return str(kit.store.presence(kit.ws).get(agent_id, {}).get("status", "offline"))


def test_stream_open_brings_an_agent_online_and_hands_out_waiting_chats(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    cid = handed_over(kit, rule("balanced"), "+15550001")
    answer = kit.store.stream_open(kit.ws, "alex", "tab-1", 60_000, rule("balanced"))
    assert answer == {"status": "online", "given": 1}
    assert owner(kit, cid) == "agent:alex"
    events = kit.stream(keys.EVENTS, "agent.presence")
    assert [(e["agent"], e["status"], e["previous"]) for e in events] == [("alex", "online", "offline")]


def test_stream_lease_of_a_closed_stream_gives_a_grace_period_before_the_agent_goes_offline(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    kit.store.stream_open(kit.ws, "alex", "tab-1", 60_000)
    kit.store.stream_open(kit.ws, "alex", "tab-2", 60_000)
    kit.store.stream_lease(kit.ws, "alex", "tab-1", 50)  # closed: 50 ms of grace
    time.sleep(0.1)
    assert kit.store.presence_sweep(kit.ws) == []  # tab-2 is still open
    assert presence(kit, "alex") == "online"
    kit.store.stream_lease(kit.ws, "alex", "tab-2", 300)
    assert kit.store.presence_sweep(kit.ws) == []  # within the grace period: a reload comes back in time
    kit.store.stream_open(kit.ws, "alex", "tab-3", 60_000)  # it came back
    kit.store.stream_lease(kit.ws, "alex", "tab-3", 50)
    time.sleep(0.4)
    assert kit.store.presence_sweep(kit.ws) == ["alex"]
    assert presence(kit, "alex") == "offline"
    assert kit.store.presence_sweep(kit.ws) == []  # once


def test_presence_sweep_ends_the_streams_of_a_gateway_that_died(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    kit.store.stream_open(kit.ws, "alex", "tab-1", 100)  # never renewed, never closed
    time.sleep(0.2)
    assert kit.store.presence_sweep(kit.ws) == ["alex"]


@pytest.mark.parametrize("chosen", ["away", "offline"])
def test_reopening_the_inbox_keeps_what_the_agent_chose(kit: Kit, chosen: str) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex")
    kit.store.stream_open(kit.ws, "alex", "tab-1", 60_000)
    kit.store.set_presence(kit.ws, "alex", chosen)
    kit.store.stream_lease(kit.ws, "alex", "tab-1", 1)
    time.sleep(0.05)
    kit.store.presence_sweep(kit.ws)
    assert presence(kit, "alex") == "offline"
    assert kit.store.stream_open(kit.ws, "alex", "tab-2", 60_000)["status"] == chosen
    assert presence(kit, "alex") == chosen


def test_presence_of_an_unknown_agent_is_refused(kit: Kit) -> None:
    from gateway.handover.store import Refused

    with pytest.raises(Refused):
        kit.store.set_presence(kit.ws, "nobody", "online")


# --- teams ------------------------------------------------------------------------------------------------------

def team_chat(kit: Kit, team: str, sender: str, assignment: dict[str, Any]) -> str:
    cid = kit.customer("I want a human", sender=sender, team=team).conversation
    kit.redis.lrem(kit.key(keys.TURNS), 1, cid)
    kit.store.hand_over(kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=TIMEOUT_MS, assignment=assignment)
    return cid


def teams(kit: Kit) -> None:
    create_agent(kit.redis, kit.ws, "alex", "Alex", teams=["sales"])
    create_agent(kit.redis, kit.ws, "sam", "Sam", teams=["support"])
    create_agent(kit.redis, kit.ws, "robin", "Robin", admin=True)  # an admin in no team
    for agent_id in ("alex", "sam", "robin"):
        kit.store.set_presence(kit.ws, agent_id, "online")


# team of the chat, who is at capacity → who gets it
@pytest.mark.parametrize(("team", "full", "expected"), [
    ("support", [], "agent:sam"),
    ("sales", [], "agent:alex"),
    ("sales", ["alex"], "none"),  # not Sam (another team), not Robin (an admin takes by hand, is not given)
    ("", ["alex", "sam"], "agent:robin"),  # a workspace-wide chat: anyone
])
def test_a_chat_goes_only_to_its_teams_agents(kit: Kit, team: str, full: list[str], expected: str) -> None:
    teams(kit)
    for agent_id in full:
        holding(kit, agent_id, 2)
    cid = team_chat(kit, team, "+15550001", rule("balanced", 2))
    assert owner(kit, cid) == expected
    notified = [n for n in kit.stream(keys.NOTIFICATIONS) if n["conversation"] == cid and n["type"] == "handover"]
    assert notified[0].get("team", "") == team
    assert kit.conversation(cid).get("team", "") == team


def test_a_waiting_chat_of_a_full_team_does_not_hold_up_another_teams(kit: Kit) -> None:
    teams(kit)
    kit.store.set_presence(kit.ws, "sam", "away")
    holding(kit, "alex", 1)
    sales = team_chat(kit, "sales", "+15550001", rule("round_robin", 1))
    support = team_chat(kit, "support", "+15550002", rule("round_robin", 1))
    assert kit.store.queued(kit.ws) == [sales, support]
    kit.store.set_presence(kit.ws, "sam", "online", rule("round_robin", 1))
    assert (owner(kit, sales), owner(kit, support)) == ("none", "agent:sam")
