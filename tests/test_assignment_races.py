"""Automatic assignment under races, with real processes: handovers and agents coming online at the same moment,
from separate OS processes each with its own Redis connection, never put an agent over capacity nor give one chat
to two agents; whatever the interleaving, every chat is either with exactly one agent or waiting in the queue."""

from __future__ import annotations

import json
import multiprocessing
from typing import Any

import redis

from gateway import keys
from gateway.handover.store import Store
from gateway.web.auth import create_agent
from tests.store_kit import TIMEOUT_MS, Kit

AGENTS = ["alex", "kim", "robin", "sam"]
CAPACITY = 2
CHATS = 14
RULE = {"mode": "balanced", "capacity": CAPACITY, "file": f"balanced|{CAPACITY}"}


def hand_over_all(url: str, workspace_id: str, conversation_ids: list[str], start: Any) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    store = Store(client)
    start.wait()
    for conversation_id in conversation_ids:
        conversation = store.conversation(workspace_id, conversation_id)
        from gateway.handover.store import TurnStamp

        turn = TurnStamp(expect=conversation.get("ai_cursor", ""), upto=conversation.get("last_customer", ""), lock="")
        store.hand_over(workspace_id, conversation_id, turn, reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=TIMEOUT_MS, assignment=RULE)
    client.close()


def come_online(url: str, workspace_id: str, agent_ids: list[str], start: Any) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    store = Store(client)
    start.wait()
    for agent_id in agent_ids:
        store.stream_open(workspace_id, agent_id, f"tab-{agent_id}", 60_000, RULE)
    client.close()


def test_handovers_and_agents_coming_online_at_once_never_overfill_or_double_assign(kit: Kit, redis_url: str) -> None:
    for agent_id in AGENTS:
        create_agent(kit.redis, kit.ws, agent_id, agent_id.title())
    chats = []
    for n in range(CHATS):
        cid = kit.customer("I want a human", sender=f"+1555{n:04d}").conversation
        kit.redis.lrem(kit.key(keys.TURNS), 1, cid)
        chats.append(cid)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=hand_over_all, args=(redis_url, kit.ws, chats[0::2], start)),
        context.Process(target=hand_over_all, args=(redis_url, kit.ws, chats[1::2], start)),
        context.Process(target=come_online, args=(redis_url, kit.ws, AGENTS[:2], start)),
        context.Process(target=come_online, args=(redis_url, kit.ws, AGENTS[2:], start)),
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0

    owners = {cid: kit.conversation(cid)["owner"] for cid in chats}
    held = {agent_id: sum(1 for o in owners.values() if o == f"agent:{agent_id}") for agent_id in AGENTS}
    assert all(count <= CAPACITY for count in held.values()), held
    assert sum(held.values()) == len(AGENTS) * CAPACITY  # everyone online and 14 chats: every slot filled
    waiting = [cid for cid, o in owners.items() if o == "none"]
    assert sorted(kit.store.queued(kit.ws)) == sorted(waiting)
    assert len(waiting) == CHATS - len(AGENTS) * CAPACITY
    # One owner each: in exactly one view, and given automatically at most once.
    for cid in chats:
        views = [v for v in ["waiting", *(f"agent:{a}" for a in AGENTS)]
                 if kit.redis.zscore(kit.key(keys.VIEW, view=v), cid) is not None]
        assert len(views) == 1, (cid, views)
    given: dict[str, int] = {}
    for _, fields in kit.redis.xrange(kit.key(keys.EVENTS)):
        event = json.loads(fields["data"])
        if event["type"] == "conversation.assigned" and event.get("actor") == "auto":
            given[event["conversation"]] = given.get(event["conversation"], 0) + 1
    assert set(given.values()) == {1} and len(given) == len(AGENTS) * CAPACITY
    # Freeing slots later still hands the rest out, oldest first.
    first_waiting = kit.store.queued(kit.ws)[0]
    holder = next(o for o in owners.values() if o.startswith("agent:"))
    victim = next(cid for cid, o in owners.items() if o == holder)
    kit.store.close(kit.ws, victim, holder, assignment=RULE)
    assert kit.conversation(first_waiting)["owner"] == holder
