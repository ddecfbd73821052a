"""The AI's commits, each on its own through the typed store: `hand_over`, `post` by a turn and `finish`. A commit
applies only for the turn that read the current AI cursor; it moves the cursor, releases the turn's lock (its own
only) and clears the pending mark, or wakes a worker again when the customer wrote meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway import keys
from gateway.handover.store import Refused, TurnStamp
from tests.store_kit import Kit


def hand_over(kit: Kit, cid: str, turn: TurnStamp, notice: str = "Connecting you with a person.") -> int:
    return kit.store.hand_over(kit.ws, cid, turn, reason="The customer asked for a human", route="customer",
                               summary="Wants a refund", notice=notice, agent_name="Lumi", timeout_ms=60_000)


def ai_post(kit: Kit, cid: str, text: str, turn: TurnStamp | None, published: bool | None = True,
            **fields: Any) -> str:
    return kit.store.post(kit.ws, cid, "ai", text, turn=turn, agent_name="Lumi", published=published, **fields)


def refused(call: Callable[[], Any]) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


# --- hand_over --------------------------------------------------------------------------------------------------

def test_hand_over_by_the_current_turn(kit: Kit) -> None:
    cid = kit.customer("I want a human").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    before = kit.store.now_ms()
    assert hand_over(kit, cid, turn) == 1

    stored = kit.conversation(cid)
    assert (stored["owner"], stored["epoch"], stored["waits"], stored["handovers"]) == ("none", 1, 1, 1)
    assert (stored["handover_reason"], stored["handover_summary"], stored["offer"]) == (
        "The customer asked for a human", "Wants a refund", False)
    assert before <= stored["waiting_since"] == stored["handover_at"]
    assert stored["ai_cursor"] == turn.upto
    assert kit.view("ai") == [] and kit.view("waiting") == kit.view("open") == [cid]
    assert kit.timers() == {f"{cid}|1": stored["waiting_since"] + 60_000}
    assert 0 < kit.pttl(keys.AWAITING_HUMAN, conversation_id=cid) <= 60_000
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)

    _, said, note = kit.history(cid)
    assert (said["author"], said["text"], said["agent_name"], said["visibility"]) == (
        "ai", "Connecting you with a person.", "Lumi", "public")
    assert (note["author"], note["kind"], note["visibility"], note["text"]) == (
        "system", "handover", "internal", "The customer asked for a human")
    assert note["data"] == {"reason": "The customer asked for a human", "summary": "Wants a refund",
                            "route": "customer"}
    [event] = kit.events("conversation.handover")
    assert (event["conversation"], event["route"], event["summary"], event["handovers"]) == (
        cid, "customer", "Wants a refund", 1)
    [told] = kit.notifications()
    assert {name: told[name] for name in ("type", "conversation", "channel", "customer", "reason", "route")} == {
        "type": "handover", "conversation": cid, "channel": "web", "customer": "Maria",
        "reason": "The customer asked for a human", "route": "customer"}


def test_hand_over_without_a_notice_counts_every_handover(kit: Kit) -> None:
    cid = kit.customer("Human please").conversation
    hand_over(kit, cid, kit.turn(cid), notice="")
    assert kit.kinds(cid) == [("customer", "message"), ("system", "handover")]
    kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="handed back")
    kit.customer("Human again")
    assert hand_over(kit, cid, kit.turn(cid), notice="") == 2
    assert kit.conversation(cid)["waits"] == 2


def test_hand_over_by_a_stale_turn_is_refused_and_writes_nothing(kit: Kit) -> None:
    cid = kit.customer("I want a human").conversation
    lock = kit.take_turn_lock(cid)
    turn = kit.turn(cid, lock)
    kit.store.finish(kit.ws, cid, turn)  # another run of the same turn committed first
    kit.redis.set(kit.key(keys.TURN_LOCK, conversation_id=cid), lock)
    history, events = kit.history(cid), kit.events()
    assert refused(lambda: hand_over(kit, cid, turn)).code == "stale_turn"
    assert kit.history(cid) == history and kit.events() == events
    assert kit.conversation(cid)["owner"] == "ai" and kit.timers() == {}
    assert kit.exists(keys.TURN_LOCK, conversation_id=cid)  # the holder's lease lets go of it


def test_hand_over_when_the_ai_no_longer_owns_the_chat_ends_the_turn(kit: Kit) -> None:
    cid = kit.customer("I want a human").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    events = len(kit.events())
    answer = refused(lambda: hand_over(kit, cid, turn))
    assert (answer.code, answer.details["owner"]) == ("not_owner", "agent:alex")
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["ai_cursor"]) == ("agent:alex", turn.upto)
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid) and kit.timers() == {}
    assert len(kit.events()) == events and kit.notifications() == []


def test_hand_over_of_an_unknown_conversation(kit: Kit) -> None:
    assert refused(lambda: hand_over(kit, "404", TurnStamp("", "", ""))).code == "not_found"


# --- post by the AI ---------------------------------------------------------------------------------------------

def test_post_by_the_current_turn_commits_the_reply(kit: Kit) -> None:
    cid = kit.customer("Opening hours?").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    mid = ai_post(kit, cid, "Nine to five.", turn, offer=1, unknown_streak=2)
    reply = kit.last(cid)
    assert (reply["id"], reply["author"], reply["text"], reply["agent_name"], reply["visibility"]) == (
        mid, "ai", "Nine to five.", "Lumi", "public")
    stored = kit.conversation(cid)
    assert (stored["ai_cursor"], stored["offer"], stored["unknown_streak"]) == (turn.upto, True, 2)
    assert (stored["last_text"], stored["last_author"], stored["last_message_at"]) == (
        "Nine to five.", "ai", reply["created_at"])
    assert kit.zscore(keys.VIEW, cid, view="ai") == reply["created_at"]
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)
    assert kit.events("message.created")[-1]["id"] == mid
    assert kit.delivery(cid) == {} and kit.outbox(cid) == []  # the widget reads it from the history


def test_post_by_the_ai_is_suppressed_when_it_no_longer_owns_the_chat(kit: Kit) -> None:
    cid = kit.customer("Opening hours?").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    public = kit.store.messages(kit.ws, cid, public_only=True)
    answer = refused(lambda: ai_post(kit, cid, "Nine to five.", turn))
    assert (answer.code, answer.details["owner"]) == ("suppressed", "agent:alex")
    assert kit.store.messages(kit.ws, cid, public_only=True) == public
    note = kit.last(cid)
    assert (note["kind"], note["visibility"], note["text"]) == ("suppressed", "internal", "Nine to five.")
    assert note["data"] == {"owner": "agent:alex", "reason": "the AI no longer owns the conversation"}
    assert kit.conversation(cid)["ai_cursor"] == turn.upto
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)


@pytest.mark.parametrize(("override", "configured"), [("0", True), (None, False)])
def test_post_by_the_ai_is_suppressed_while_it_is_unpublished(kit: Kit, override: str | None,
                                                              configured: bool) -> None:
    cid = kit.customer("Opening hours?").conversation
    if override is not None:
        kit.redis.hset(kit.key(keys.AI_AGENT), "published", override)
    assert refused(lambda: ai_post(kit, cid, "Nine to five.", kit.turn(cid), published=configured)).code == (
        "suppressed")
    assert kit.kinds(cid) == [("customer", "message"), ("system", "suppressed")]


def test_post_by_a_stale_turn_is_recorded_as_suppressed(kit: Kit) -> None:
    cid = kit.customer("Opening hours?").conversation
    turn = kit.turn(cid)
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="handed back")  # moves the cursor
    cursor = kit.conversation(cid)["ai_cursor"]
    answer = refused(lambda: ai_post(kit, cid, "Nine to five.", turn))
    assert (answer.code, answer.details["cursor"]) == ("stale_turn", cursor)
    note = kit.last(cid)
    assert (note["kind"], note["visibility"], note["text"], note["data"]["owner"]) == (
        "suppressed", "internal", "Nine to five.", "ai")
    assert not any(m["author"] == "ai" for m in kit.history(cid))
    assert kit.conversation(cid)["ai_cursor"] == cursor


def test_post_by_a_turn_in_a_closed_conversation_ends_the_turn(kit: Kit) -> None:
    cid = kit.customer("Opening hours?").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.close(kit.ws, cid, "agent:alex")
    count = len(kit.history(cid))
    assert refused(lambda: ai_post(kit, cid, "Nine to five.", turn)).code == "closed"
    assert len(kit.history(cid)) == count
    assert kit.conversation(cid)["ai_cursor"] == turn.upto
    assert not kit.exists(keys.TURN_LOCK, conversation_id=cid)


def test_post_of_a_system_notice_by_a_turn(kit: Kit) -> None:
    """The fallback's answers on channels without forms: system notices, committed by the turn."""
    cid = kit.handed_over()
    kit.customer("Maria Lopez")
    turn = kit.turn(cid)
    kit.store.post(kit.ws, cid, "system", "Thanks, Maria.", kind="notice", turn=turn, form_name="Maria Lopez")
    notice = kit.last(cid)
    assert (notice["author"], notice["kind"], notice["visibility"]) == ("system", "notice", "public")
    stored = kit.conversation(cid)
    assert (stored["form_name"], stored["ai_cursor"], stored["owner"]) == ("Maria Lopez", turn.upto, "none")
    assert stored["last_text"] == "Maria Lopez"  # system notices are not the conversation's last message


def test_post_of_a_system_notice_by_a_turn_is_dropped_once_a_human_has_the_chat(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), "form_state", "sent")
    kit.customer("Maria Lopez")
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.post(kit.ws, cid, "agent", "Alex here, how can I help?", agent_id="alex")
    public = kit.store.messages(kit.ws, cid, public_only=True)
    answer = refused(lambda: kit.store.post(kit.ws, cid, "system", "Thanks, Maria. Your phone?", kind="notice",
                                            turn=turn, form_name="Maria Lopez"))
    assert (answer.code, answer.details["owner"]) == ("suppressed", "agent:alex")
    assert kit.store.messages(kit.ws, cid, public_only=True) == public  # no bot notice after Alex joined
    assert "form_name" not in kit.conversation(cid)
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)


def test_post_queues_public_messages_on_channels_that_deliver(kit: Kit) -> None:
    cid = kit.customer("Opening hours?", delivers=True).conversation
    assert kit.outbox(cid) == [] and kit.wakeups(keys.DELIVERIES) == []  # customer messages are not sent back
    before = kit.store.now_ms()
    first = ai_post(kit, cid, "Nine to five.", kit.turn(cid))
    second = kit.store.post(kit.ws, cid, "system", "A notice", kind="notice")
    kit.store.post(kit.ws, cid, "system", "Internal", kind="note", visibility="internal")
    assert kit.outbox(cid) == [first, second]
    assert kit.delivery(cid) == {first: "pending", second: "pending"}
    assert [m.get("delivery") for m in kit.history(cid)] == [None, "pending", "pending", None]
    assert before <= (kit.zscore(keys.OUTBOXES, cid) or 0) <= kit.store.now_ms()
    assert kit.wakeups(keys.DELIVERIES) == [cid]  # one wake-up for the idle outbox, not one per message


# --- finish -----------------------------------------------------------------------------------------------------

def test_finish_moves_the_cursor_clears_the_mark_and_releases_its_lock(kit: Kit) -> None:
    cid = kit.customer("ok").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.finish(kit.ws, cid, turn, offer=0, unknown_streak=0)
    stored = kit.conversation(cid)
    assert (stored["ai_cursor"], stored["offer"], stored["unknown_streak"]) == (turn.upto, False, 0)
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)
    assert kit.history(cid)[-1]["author"] == "customer"


def test_finish_wakes_another_turn_when_the_customer_wrote_meanwhile(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.redis.delete(kit.key(keys.TURNS))  # the worker took the wake-up
    later = kit.customer("Two").message
    assert kit.wakeups() == []  # pending already: the running turn's commit decides
    before = kit.store.now_ms()
    kit.store.finish(kit.ws, cid, turn)
    assert kit.conversation(cid)["ai_cursor"] == turn.upto != later
    assert kit.pending() == [cid] and kit.wakeups() == [cid]
    assert (kit.zscore(keys.PENDING_TURNS, cid) or 0) >= before  # a fresh record: the sweep waits GRACE again
    assert not kit.exists(keys.TURN_LOCK, conversation_id=cid)


def test_finish_releases_only_its_own_lock(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    kit.take_turn_lock(cid, token="someone-else")
    kit.store.finish(kit.ws, cid, kit.turn(cid, lock="mine-lapsed"))
    assert kit.redis.get(kit.key(keys.TURN_LOCK, conversation_id=cid)) == "someone-else"


def test_finish_never_moves_the_cursor_back(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    kit.store.finish(kit.ws, cid, kit.turn(cid))
    cursor = kit.conversation(cid)["ai_cursor"]
    kit.store.finish(kit.ws, cid, TurnStamp(expect=cursor, upto="1-0", lock=""))
    assert kit.conversation(cid)["ai_cursor"] == cursor


def test_finish_by_a_stale_turn_changes_nothing(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    stale = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.finish(kit.ws, cid, kit.turn(cid))
    kit.customer("Two")
    stored = kit.raw(cid)
    assert refused(lambda: kit.store.finish(kit.ws, cid, stale, offer=1)).code == "stale_turn"
    assert kit.raw(cid) == stored and kit.pending() == [cid]


def test_finish_in_a_closed_conversation_clears_the_mark(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    turn = kit.turn(cid)
    kit.store.close(kit.ws, cid, "agent:alex")
    kit.customer("Two")  # a new conversation: the closed one is not woken for it
    kit.redis.zadd(kit.key(keys.PENDING_TURNS), {cid: 1})
    kit.store.finish(kit.ws, cid, turn)
    assert cid not in kit.pending()
    assert refused(lambda: kit.store.finish(kit.ws, "404", turn)).code == "not_found"
