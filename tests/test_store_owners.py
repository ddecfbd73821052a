"""The humans' operations of the state script, each on its own through the typed store: `assign` (an agent, the
AI or nobody), `post` by an agent or the system, `close` and `publish`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway import keys
from gateway.handover.store import Refused
from tests.store_kit import TIMEOUT_MS, Kit


def refused(call: Callable[[], Any]) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


def taken(kit: Kit, agent: str = "alex", **extra: Any) -> str:
    """A conversation an agent owns, its AI turn done."""
    cid = kit.customer("Hello", **extra).conversation
    kit.store.finish(kit.ws, cid, kit.turn(cid))
    kit.store.assign(kit.ws, cid, f"agent:{agent}", f"agent:{agent}", reason="took it")
    return cid


# --- assign -----------------------------------------------------------------------------------------------------

def test_assign_to_an_agent(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    answer = kit.store.assign(kit.ws, cid, "agent:sam", "agent:alex", reason="assigned by Alex",
                              notice="Sam joined the conversation.")
    assert answer == {"owner": "agent:sam", "previous": "ai"}
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["epoch"]) == ("agent:sam", 1)
    assert kit.view("ai") == [] and kit.view("agent:sam") == kit.view("open") == [cid]
    assert kit.store.conversation_ids(kit.ws, "mine", agent_id="sam") == [cid]
    _, note, notice = kit.history(cid)
    assert (note["kind"], note["visibility"], note["data"]) == ("assignment", "internal", {
        "actor": "agent:alex", "previous": "ai", "owner": "agent:sam", "reason": "assigned by Alex"})
    assert (notice["author"], notice["kind"], notice["visibility"], notice["text"]) == (
        "system", "notice", "public", "Sam joined the conversation.")
    [event] = kit.events("conversation.assigned")
    assert {name: event[name] for name in ("conversation", "owner", "previous", "actor", "reason")} == {
        "conversation": cid, "owner": "agent:sam", "previous": "ai", "actor": "agent:alex",
        "reason": "assigned by Alex"}


def test_assign_ends_the_no_human_wait_and_the_form(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), "form_state", "sent")
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    stored = kit.conversation(cid)
    assert "waiting_since" not in stored and stored["form_state"] == ""
    assert kit.timers() == {} and not kit.exists(keys.AWAITING_HUMAN, conversation_id=cid)
    assert kit.view("waiting") == [] and kit.view("agent:alex") == [cid]


def test_assign_to_nobody_arms_the_wait_only_with_a_timeout(kit: Kit) -> None:
    cid = taken(kit)
    kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="unassigned", timeout_ms=TIMEOUT_MS)
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["waits"]) == ("none", 1)
    assert kit.timers() == {f"{cid}|1": stored["waiting_since"] + TIMEOUT_MS}
    assert kit.view("waiting") == [cid] and kit.view("agent:alex") == []

    other = taken(kit, sender="+15550199")
    kit.store.assign(kit.ws, other, "none", "agent:alex", reason="unassigned")
    assert "waits" not in kit.conversation(other) and len(kit.timers()) == 1


def test_assign_to_the_current_owner_changes_nothing(kit: Kit) -> None:
    cid = taken(kit)
    events, history = kit.events(), kit.history(cid)
    assert kit.store.assign(kit.ws, cid, "agent:alex", "agent:sam", reason="") == {"unchanged": True,
                                                                                   "owner": "agent:alex"}
    assert kit.events() == events and kit.history(cid) == history and kit.conversation(cid)["epoch"] == 1


def test_assign_away_from_another_agent_is_a_conflict_unless_forced(kit: Kit) -> None:
    cid = taken(kit, "alex")
    conflict = refused(lambda: kit.store.assign(kit.ws, cid, "agent:sam", "agent:sam", reason="claim"))
    assert (conflict.code, conflict.status, conflict.details["owner"]) == ("conflict", 409, "agent:alex")
    assert "assigned to agent:alex" in conflict.reason
    assert refused(lambda: kit.store.assign(kit.ws, cid, "ai", "agent:sam", reason="")).code == "conflict"
    assert kit.conversation(cid)["owner"] == "agent:alex"

    kit.store.assign(kit.ws, cid, "agent:sam", "agent:admin", reason="reassigned", force=True)
    assert kit.conversation(cid)["owner"] == "agent:sam"
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:sam", reason="passed on")  # the owner may pass it on
    assert kit.conversation(cid)["owner"] == "agent:alex"


def test_assign_to_the_ai_while_it_is_unpublished_is_refused(kit: Kit) -> None:
    cid = taken(kit)
    assert refused(lambda: kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="", published=False)).code == (
        "ai_unpublished")
    kit.redis.hset(kit.key(keys.AI_AGENT), "published", "0")
    assert refused(lambda: kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="")).code == "ai_unpublished"
    assert kit.conversation(cid)["owner"] == "agent:alex"


def test_assign_hands_back_to_the_ai_for_what_comes_next(kit: Kit) -> None:
    cid = kit.customer("I need a refund").conversation  # pending: the AI has not answered it
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    kit.customer("Are you there?")
    kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), mapping={"offer": "1", "unknown_streak": "2"})
    before = kit.store.now_ms()
    kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="handed back", notice="You're chatting with Lumi.")
    stored = kit.conversation(cid)
    last = kit.last(cid)
    assert (last["kind"], last["text"]) == ("notice", "You're chatting with Lumi.")
    assert stored["ai_cursor"] == last["id"]  # the AI answers what the customer says next, not what Alex handled
    assert (stored["owner"], stored["offer"], stored["unknown_streak"]) == ("ai", False, 0)
    assert stored["handed_back_at"] >= before
    assert kit.pending() == []
    assert kit.view("ai") == [cid] and kit.view("agent:alex") == []

    kit.customer("One more thing")
    assert kit.pending() == [cid]


def test_assign_refuses_closed_and_unknown_conversations(kit: Kit) -> None:
    cid = taken(kit)
    kit.store.close(kit.ws, cid, "agent:alex")
    assert refused(lambda: kit.store.assign(kit.ws, cid, "agent:sam", "agent:sam", reason="")).code == "closed"
    assert refused(lambda: kit.store.assign(kit.ws, "404", "agent:sam", "agent:sam", reason="")).code == "not_found"


# --- post by an agent or the system -----------------------------------------------------------------------------

def agent_post(kit: Kit, cid: str, text: str, agent: str = "alex") -> str:
    return kit.store.post(kit.ws, cid, "agent", text, agent_id=agent, agent_name=agent.title(),
                          notice=f"{agent.title()} joined the conversation.")


def test_post_by_the_owning_agent(kit: Kit) -> None:
    cid = taken(kit)
    count = len(kit.history(cid))
    mid = agent_post(kit, cid, "How can I help?")
    [reply] = kit.history(cid)[count:]
    assert (reply["id"], reply["author"], reply["agent"], reply["agent_name"], reply["text"]) == (
        mid, "agent", "alex", "Alex", "How can I help?")
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["epoch"], stored["last_author"]) == ("agent:alex", 1, "agent")
    assert kit.zscore(keys.VIEW, cid, view="agent:alex") == reply["created_at"]


def test_post_by_an_agent_takes_the_chat_over_from_the_ai(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    agent_post(kit, cid, "Alex here.")
    assert kit.kinds(cid)[1:] == [("system", "assignment"), ("system", "notice"), ("agent", "message")]
    _, note, notice, _ = kit.history(cid)
    assert note["data"] == {"actor": "agent:alex", "previous": "ai", "owner": "agent:alex", "reason": "replied"}
    assert notice["text"] == "Alex joined the conversation."
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["epoch"]) == ("agent:alex", 1)
    assert kit.view("ai") == [] and kit.view("agent:alex") == [cid]
    [event] = kit.events("conversation.assigned")
    assert (event["owner"], event["previous"], event["reason"]) == ("agent:alex", "ai", "replied")


def test_post_by_an_agent_ends_the_no_human_wait(kit: Kit) -> None:
    cid = kit.handed_over()
    agent_post(kit, cid, "Alex here.")
    assert kit.conversation(cid)["owner"] == "agent:alex"
    assert kit.timers() == {} and not kit.exists(keys.AWAITING_HUMAN, conversation_id=cid)


def test_post_by_an_agent_in_another_agents_chat_is_a_conflict(kit: Kit) -> None:
    cid = taken(kit, "alex")
    history = kit.history(cid)
    assert refused(lambda: agent_post(kit, cid, "Sam here.", agent="sam")).code == "conflict"
    assert kit.history(cid) == history


def test_post_refuses_closed_and_unknown_conversations(kit: Kit) -> None:
    cid = taken(kit)
    kit.store.close(kit.ws, cid, "agent:alex")
    assert refused(lambda: agent_post(kit, cid, "Hello?")).code == "closed"
    assert refused(lambda: kit.store.post(kit.ws, cid, "system", "Notice")).code == "closed"
    assert refused(lambda: agent_post(kit, "404", "Hello?")).code == "not_found"


def test_post_of_a_system_notice_changes_no_owner(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    kit.store.post(kit.ws, cid, "system", "We are closed on Sunday.", kind="notice")
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["epoch"], stored["last_text"]) == ("ai", 0, "Hello")
    assert kit.last(cid)["kind"] == "notice"


# --- close ------------------------------------------------------------------------------------------------------

def test_close_by_an_agent(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.customer("Still there?")
    before = kit.store.now_ms()
    kit.store.close(kit.ws, cid, "agent:alex")
    stored = kit.conversation(cid)
    assert (stored["status"], stored["closed_by"], stored["offer"]) == ("closed", "agent:alex", False)
    assert stored["closed_at"] >= before
    assert kit.view("waiting") == kit.view("open") == [] and kit.view("closed") == [cid]
    assert kit.timers() == {} and not kit.exists(keys.AWAITING_HUMAN, conversation_id=cid)
    assert "waiting_since" not in stored
    assert not kit.exists(keys.ACTIVE, channel="web", sender="+15550100")
    assert kit.redis.get(kit.key(keys.LATEST, channel="web", sender="+15550100")) == cid
    closed = kit.last(cid)
    assert (closed["author"], closed["kind"], closed["visibility"], closed["text"], closed["data"]) == (
        "system", "closed", "public", "This conversation was closed.", {"actor": "agent:alex"})
    [event] = kit.events("conversation.closed")
    assert (event["conversation"], event["actor"]) == (cid, "agent:alex")
    assert kit.pending() == []


def test_close_by_the_ais_turn_says_goodbye_first(kit: Kit) -> None:
    cid = kit.customer("Thanks, that's all", delivers=True).conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.close(kit.ws, cid, "ai", turn=turn, goodbye="Bye!", agent_name="Lumi")
    goodbye, closed = kit.history(cid)[-2:]
    assert (goodbye["author"], goodbye["text"], goodbye["agent_name"]) == ("ai", "Bye!", "Lumi")
    assert (closed["kind"], closed["data"]) == ("closed", {"actor": "ai"})
    assert kit.outbox(cid) == [goodbye["id"], closed["id"]]  # both reach the customer on WhatsApp
    stored = kit.conversation(cid)
    assert (stored["status"], stored["closed_by"], stored["ai_cursor"]) == ("closed", "ai", turn.upto)
    assert kit.view("ai") == [] and kit.view("closed") == [cid]
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)


def test_close_by_the_ai_when_it_no_longer_owns_the_chat_is_refused(kit: Kit) -> None:
    cid = kit.customer("Thanks, that's all").conversation
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    answer = refused(lambda: kit.store.close(kit.ws, cid, "ai", turn=turn, goodbye="Bye!"))
    assert (answer.code, answer.details["owner"]) == ("not_owner", "agent:alex")
    stored = kit.conversation(cid)
    assert (stored["status"], stored["ai_cursor"]) == ("open", turn.upto)
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)
    assert refused(lambda: kit.store.close(kit.ws, cid, "ai", turn=turn)).code == "stale_turn"


def test_close_of_another_agents_chat_is_a_conflict_unless_forced(kit: Kit) -> None:
    cid = taken(kit, "alex")
    assert refused(lambda: kit.store.close(kit.ws, cid, "agent:sam")).code == "conflict"
    assert kit.conversation(cid)["status"] == "open"
    kit.store.close(kit.ws, cid, "agent:sam", force=True)
    assert kit.conversation(cid)["closed_by"] == "agent:sam"


def test_close_refuses_closed_and_unknown_conversations(kit: Kit) -> None:
    cid = taken(kit)
    kit.store.close(kit.ws, cid, "agent:alex")
    count = len(kit.history(cid))
    assert refused(lambda: kit.store.close(kit.ws, cid, "agent:alex")).code == "closed"
    assert len(kit.history(cid)) == count
    assert refused(lambda: kit.store.close(kit.ws, "404", "agent:alex")).code == "not_found"


# --- publish ----------------------------------------------------------------------------------------------------

def test_publish_false_moves_the_ais_conversations_in_batches(kit: Kit) -> None:
    chats = [kit.customer("Hello", sender=f"+1555010{n}").conversation for n in range(3)]
    mine = taken(kit, sender="+15550199")
    assert kit.store.publish(kit.ws, False, "agent:admin", reason="unpublished", timeout_ms=TIMEOUT_MS,
                             limit=2) == {"moved": 2, "remaining": 1}
    assert kit.redis.hget(kit.key(keys.AI_AGENT), "published") == "0"
    assert [kit.conversation(cid)["owner"] for cid in chats] == ["none", "none", "ai"]  # the oldest first
    assert kit.store.publish(kit.ws, False, "agent:admin", reason="unpublished", timeout_ms=TIMEOUT_MS,
                             announce=False, limit=2) == {"moved": 1, "remaining": 0}
    assert kit.view("ai") == [] and sorted(kit.view("waiting")) == sorted(chats)
    assert kit.conversation(mine)["owner"] == "agent:alex"
    [announced] = kit.events("ai_agent.updated")  # once, however many steps
    assert (announced["published"], announced["actor"]) == (False, "agent:admin")


def test_publish_false_arms_the_wait_only_where_a_customer_waits_for_an_answer(kit: Kit) -> None:
    waiting = kit.customer("Hello?", sender="+15550101").conversation  # not answered yet: pending
    answered = kit.customer("Thanks", sender="+15550102").conversation
    kit.store.finish(kit.ws, answered, kit.turn(answered))
    kit.store.publish(kit.ws, False, "agent:admin", reason="AI agent unpublished by Admin", timeout_ms=TIMEOUT_MS)
    assert kit.pending() == []
    assert kit.conversation(waiting)["waits"] == 1 and list(kit.timers()) == [f"{waiting}|1"]
    assert "waits" not in kit.conversation(answered)
    for cid in (waiting, answered):
        stored = kit.conversation(cid)
        assert (stored["owner"], stored["handover_reason"], stored["offer"]) == (
            "none", "AI agent unpublished by Admin", False)
        note = kit.last(cid)
        assert (note["kind"], note["visibility"], note["data"]["route"]) == ("handover", "internal", "unpublished")

    kit.customer("Hello again?", sender="+15550102", published=False)  # now the wait starts for this one too
    assert kit.conversation(answered)["waits"] == 1 and len(kit.timers()) == 2


def test_publish_false_tells_everyone(kit: Kit) -> None:
    waiting = kit.customer("Hello?", sender="+15550101").conversation
    answered = kit.customer("Thanks", sender="+15550102").conversation
    kit.store.finish(kit.ws, answered, kit.turn(answered))
    kit.store.publish(kit.ws, False, "agent:admin", reason="unpublished", timeout_ms=TIMEOUT_MS)
    told = {n["conversation"]: (n["type"], n["route"], n["waiting"]) for n in kit.notifications()}
    assert told == {waiting: ("handover", "unpublished", True), answered: ("handover", "unpublished", False)}
    shown = {e["conversation"]: e["waiting"] for e in kit.events("conversation.handover")}
    assert shown == {waiting: True, answered: False}


def test_publish_false_drops_stale_entries_from_the_ai_view(kit: Kit) -> None:
    cid = taken(kit)
    kit.redis.zadd(kit.key(keys.VIEW, view="ai"), {cid: 1, "404": 2})  # left by some crash
    assert kit.store.publish(kit.ws, False, "agent:admin", reason="", timeout_ms=TIMEOUT_MS) == {
        "moved": 0, "remaining": 0}
    assert kit.conversation(cid)["owner"] == "agent:alex" and kit.notifications() == []


def test_publish_true_gives_back_what_unpublishing_left_waiting_and_no_human_took(kit: Kit) -> None:
    asking = kit.customer("Hello?", sender="+15550101").conversation  # not answered yet
    done = kit.customer("Thanks", sender="+15550102").conversation
    kit.store.finish(kit.ws, done, kit.turn(done))
    took = kit.customer("Hi", sender="+15550103").conversation
    kit.store.finish(kit.ws, took, kit.turn(took))
    asked_for_a_person = kit.handed_over(sender="+15550105")  # waits for a human for its own reason
    kit.store.publish(kit.ws, False, "agent:admin", reason="", timeout_ms=TIMEOUT_MS)
    kit.store.assign(kit.ws, took, "agent:alex", "agent:alex", reason="took it")
    started = kit.customer("New while unpublished", sender="+15550104", published=False).conversation
    assert kit.store.publish(kit.ws, True, "agent:admin", reason="AI agent published by Admin",
                             timeout_ms=TIMEOUT_MS, limit=2, notice="You're chatting with Lumi again.") == {
        "moved": 2, "remaining": 1}
    assert kit.store.publish(kit.ws, True, "agent:admin", reason="AI agent published by Admin", announce=False,
                             timeout_ms=TIMEOUT_MS, notice="You're chatting with Lumi again.") == {
        "moved": 1, "remaining": 0}
    owners = {cid: kit.conversation(cid)["owner"] for cid in (asking, done, took, started, asked_for_a_person)}
    assert owners == {asking: "ai", done: "ai", took: "agent:alex", started: "ai", asked_for_a_person: "none"}
    assert sorted(kit.pending()) == sorted([asking, started])  # their questions are answered now
    for cid in (asking, started):
        assert (kit.last(cid)["kind"], kit.last(cid)["text"]) == ("notice", "You're chatting with Lumi again.")
    assert kit.last(done)["kind"] == "assignment"  # a customer who was done is not disturbed
    assert list(kit.timers()) == [f"{asked_for_a_person}|1"]  # the others' waits are over
    back = {e["conversation"]: (e["previous"], e["owner"]) for e in kit.events("conversation.assigned")
            if e["owner"] == "ai"}
    assert back == {asking: ("none", "ai"), done: ("none", "ai"), started: ("none", "ai")}
    assert [e["published"] for e in kit.events("ai_agent.updated")] == [False, True]
    assert kit.customer("New here", sender="+15550177", published=False).owner == "ai"
    assert kit.store.publish(kit.ws, True, "agent:admin", reason="", timeout_ms=TIMEOUT_MS) == {
        "moved": 0, "remaining": 0}


def test_publish_true_ends_a_contact_form_that_unpublishing_led_to(kit: Kit) -> None:
    cid = kit.customer("Hello?", published=False, timeout_ms=1).conversation
    kit.redis.zadd(kit.key(keys.FALLBACK_TIMERS), {f"{cid}|1": 0})  # due now
    [fired] = kit.store.fire(kit.ws, text="Leave your details", form={"type": "contact_form", "fields": []})
    assert fired["conversation"] == cid and kit.conversation(cid)["form_state"] == "sent"
    kit.store.publish(kit.ws, True, "agent:admin", reason="", timeout_ms=TIMEOUT_MS, notice="Back.")
    stored = kit.conversation(cid)
    assert (stored["owner"], stored.get("form_state", "")) == ("ai", "")
    assert kit.last(cid)["text"] == "Back." and kit.pending() == [cid]


def test_closing_or_taking_a_conversation_drops_it_from_those_publishing_gives_back(kit: Kit) -> None:
    closed = kit.customer("Hello?", sender="+15550101", published=False).conversation
    taken_over = kit.customer("Hello?", sender="+15550102", published=False).conversation
    kit.store.close(kit.ws, closed, "agent:alex")
    kit.store.post(kit.ws, taken_over, "agent", "Hi, Alex here", agent_id="alex", agent_name="Alex")
    assert kit.redis.zcard(kit.key(keys.UNPUBLISHED_WAITS)) == 0
    assert kit.store.publish(kit.ws, True, "agent:admin", reason="", timeout_ms=TIMEOUT_MS) == {
        "moved": 0, "remaining": 0}
