"""Delivery and retention in the state script, each operation on its own through the typed store: `outbox_next`
and `outbox_done` (in order, one sender at a time, at most once), `resend`, `status` (never backwards) and
`forget`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway import keys
from gateway.handover.store import Refused
from tests.store_kit import Kit


def refused(call: Callable[[], Any]) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


def queued(kit: Kit, *texts: str, sender: str = "whatsapp:+15550100") -> tuple[str, list[str]]:
    """A WhatsApp conversation an agent answered with `texts`, all queued on its outbox."""
    cid = kit.customer("Hello", channel="wa", sender=sender, delivers=True).conversation
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    return cid, [kit.store.post(kit.ws, cid, "agent", text, agent_id="alex") for text in texts]


NO_ASKING = "This channel cannot be asked whether it has a message: send it again only if the customer did not get it."


def states(kit: Kit, cid: str) -> dict[str, str]:
    """The delivery hash without the first attempts' times (`<id>:attempt`, tested on their own)."""
    return {name: value for name, value in kit.delivery(cid).items() if not name.endswith(":attempt")}


def statuses(kit: Kit, cid: str) -> list[tuple[str, str]]:
    return [(e["message"], e["status"]) for e in kit.events("message.status") if e["conversation"] == cid]


# --- outbox_next ------------------------------------------------------------------------------------------------

def test_outbox_next_takes_the_outbox_and_marks_the_first_message_sending(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    outgoing = kit.store.outbox_next(kit.ws, cid, "sender-a", lock_ms=30_000)
    assert outgoing is not None
    assert (outgoing.message["id"], outgoing.message["text"], outgoing.message["author"]) == (first, "One", "agent")
    assert (outgoing.recipient, outgoing.channel_name) == ("whatsapp:+15550100", "wa")
    assert states(kit, cid) == {first: "sending", second: "pending"}
    assert kit.outbox(cid) == [first, second]  # it leaves the outbox once its outcome is recorded
    assert kit.redis.get(kit.key(keys.OUTBOX_LOCK, conversation_id=cid)) == "sender-a"
    assert 0 < kit.pttl(keys.OUTBOX_LOCK, conversation_id=cid) <= 30_000


def test_outbox_next_while_another_sender_holds_it_is_busy(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    answer = refused(lambda: kit.store.outbox_next(kit.ws, cid, "sender-b"))
    assert (answer.code, answer.details["holder"]) == ("busy", "sender-a")
    assert states(kit, cid) == {first: "sending"}


def test_outbox_next_of_an_empty_outbox_releases_it(kit: Kit) -> None:
    cid = kit.customer("Hello", channel="wa", delivers=True).conversation
    kit.redis.zadd(kit.key(keys.OUTBOXES), {cid: 1})
    assert kit.store.outbox_next(kit.ws, cid, "sender-a") is None
    assert not kit.exists(keys.OUTBOX_LOCK, conversation_id=cid) and kit.zscore(keys.OUTBOXES, cid) is None
    assert refused(lambda: kit.store.outbox_next(kit.ws, "404", "sender-a")).code == "not_found"


def test_outbox_next_after_a_dead_sender_marks_its_message_unknown_and_never_sends_it(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.redis.delete(kit.key(keys.OUTBOX_LOCK, conversation_id=cid))  # sender-a died mid-send; its lock lapsed
    outgoing = kit.store.outbox_next(kit.ws, cid, "sender-b")
    assert outgoing is not None and outgoing.message["id"] == second
    assert states(kit, cid) == {first: "unknown", f"{first}:error": f"the sender stopped mid-send. {NO_ASKING}",
                                 f"{first}:maybe_sent": "1", f"{first}:checks": "1", second: "sending"}
    assert outgoing.maybe_sent is False
    # where to look for it at the provider: since its send began (ms), kept while its outcome is unknown
    assert int(kit.delivery(cid)[f"{first}:attempt"]) <= int(kit.delivery(cid)[f"{second}:attempt"])
    assert kit.outbox(cid) == [second]
    note = kit.last(cid)
    assert (note["kind"], note["visibility"], note["data"]) == (
        "delivery_unknown", "internal", {"message": first, "reason": "the sender stopped mid-send"})
    assert kit.redis.zcard(kit.key(keys.UNRESOLVED)) == 0  # the channel cannot be asked: an agent decides
    assert statuses(kit, cid) == [(first, "unknown")]
    assert [m.get("delivery") for m in kit.history(cid) if m["id"] == first] == ["unknown"]


def test_outbox_next_after_a_dead_sender_on_a_channel_that_can_be_asked_schedules_the_question(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.redis.delete(kit.key(keys.OUTBOX_LOCK, conversation_id=cid))
    before = kit.store.now_ms()
    kit.store.outbox_next(kit.ws, cid, "sender-b", resolvable=["wa"], check_after_ms=(300_000, 900_000))
    due = kit.redis.zscore(kit.key(keys.UNRESOLVED), f"{cid}|{first}")
    assert due is not None and before + 300_000 <= due <= kit.store.now_ms() + 300_000
    assert kit.delivery(cid)[f"{first}:error"] == ("the sender stopped mid-send. Baton asks the channel whether it "
                                                   "has it in 5 min, and sends it again only if it does not.")


def test_outbox_next_says_a_message_may_be_at_the_provider_and_who_queued_it_again(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "unknown", reason="read timeout", resolvable=["wa"],
                          check_after_ms=(0,))
    assert kit.store.recheck_due(kit.ws) == [f"{cid}|{first}"]
    attempt = int(kit.delivery(cid)[f"{first}:attempt"])
    outgoing = kit.store.outbox_next(kit.ws, cid, "sender-b")
    assert outgoing is not None and (outgoing.message["id"], outgoing.maybe_sent, outgoing.auto) == (first, True, True)
    assert outgoing.attempted_at == attempt  # the first attempt's, not this one's


def test_outbox_next_skips_messages_no_longer_in_the_history(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    # the entry no longer is the queued message (history rewritten)
    history = kit.key(keys.MESSAGES, conversation_id=cid)
    place = int(first.split("-")[1])
    kit.redis.lset(history, place, json.dumps({"id": "1-0", "author": "system", "text": "", "kind": "gone"}))
    outgoing = kit.store.outbox_next(kit.ws, cid, "sender-a")
    assert outgoing is not None and outgoing.message["id"] == second
    assert kit.outbox(cid) == [second]


# --- outbox_done ------------------------------------------------------------------------------------------------

def test_outbox_done_sends_in_order_and_records_the_providers_id(kit: Kit) -> None:
    cid, mids = queued(kit, "One", "Two", "Three")
    order = []
    outgoing = kit.store.outbox_next(kit.ws, cid, "sender-a")
    while outgoing is not None:
        mid = outgoing.message["id"]
        order.append(mid)
        outgoing = kit.store.outbox_done(kit.ws, cid, "sender-a", mid, "sent", provider_id=f"SM-{mid}",
                                         status="queued")
    assert order == mids
    assert states(kit, cid) == dict.fromkeys(mids, "queued")
    assert kit.outbox(cid) == []
    assert not kit.exists(keys.OUTBOX_LOCK, conversation_id=cid) and kit.zscore(keys.OUTBOXES, cid) is None
    for mid in mids:
        assert kit.redis.get(kit.key(keys.SENT, channel="wa", provider_id=f"SM-{mid}")) == f"{cid}|{mid}"
        assert kit.redis.ttl(kit.key(keys.SENT, channel="wa", provider_id=f"SM-{mid}")) > 29 * 24 * 3600
    assert statuses(kit, cid) == [(mid, "queued") for mid in mids]


def test_outbox_done_without_a_provider_id_or_status(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    assert kit.store.outbox_done(kit.ws, cid, "sender-a", first, "sent") is None
    assert states(kit, cid) == {first: "sent"}


def test_outbox_done_by_anyone_but_the_holder_is_refused(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    assert refused(lambda: kit.store.outbox_done(kit.ws, cid, "sender-b", first, "sent")).code == "not_holder"
    assert states(kit, cid) == {first: "sending"}


def test_outbox_done_failed_and_unknown_are_noted_and_the_next_goes_out(kit: Kit) -> None:
    cid, (first, second, third) = queued(kit, "One", "Two", "Three")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    after_first = kit.store.outbox_done(kit.ws, cid, "sender-a", first, "failed", reason="invalid number",
                                        error_code="21211")
    assert after_first is not None and after_first.message["id"] == second
    after_second = kit.store.outbox_done(kit.ws, cid, "sender-a", second, "unknown", reason="read timeout")
    assert after_second is not None and after_second.message["id"] == third
    assert states(kit, cid) == {first: "failed", f"{first}:error": "invalid number", second: "unknown",
                                 f"{second}:error": f"read timeout. {NO_ASKING}", f"{second}:maybe_sent": "1",
                                 f"{second}:checks": "1", third: "sending"}
    failed, unknown = (m for m in kit.history(cid) if m["kind"].startswith("delivery_"))
    assert (failed["kind"], failed["text"], failed["data"]) == (
        "delivery_failed", "Delivery failed: invalid number", {"message": first, "reason": "invalid number"})
    assert (unknown["kind"], unknown["text"]) == ("delivery_unknown", f"Delivery unknown: read timeout. {NO_ASKING}")
    assert [e["error_code"] for e in kit.events("message.status")] == ["21211", ""]


def test_outbox_done_unknown_is_asked_about_on_schedule_then_left_to_an_agent(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    member = f"{cid}|{first}"
    for n, after in enumerate((1_000, 5_000)):
        kit.store.outbox_next(kit.ws, cid, f"sender-{n}")
        before = kit.store.now_ms()
        kit.store.outbox_done(kit.ws, cid, f"sender-{n}", first, "unknown", reason="no answer", resolvable=["wa"],
                              check_after_ms=(1_000, 5_000))
        due = kit.redis.zscore(kit.key(keys.UNRESOLVED), member)
        assert due is not None and before + after <= due <= kit.store.now_ms() + after
        kit.redis.zadd(kit.key(keys.UNRESOLVED), {member: 0})  # its time came
        assert kit.store.recheck_due(kit.ws) == [member]
    kit.store.outbox_next(kit.ws, cid, "sender-3")
    kit.store.outbox_done(kit.ws, cid, "sender-3", first, "unknown", reason="no answer", resolvable=["wa"],
                          check_after_ms=(1_000, 5_000))
    assert kit.redis.zcard(kit.key(keys.UNRESOLVED)) == 0
    assert kit.delivery(cid)[f"{first}:error"] == ("no answer. Baton asked 2 times without an answer: send it again "
                                                   "to ask once more.")


def test_outbox_done_sent_as_confirmed_by_the_provider_is_noted_and_clears_the_marks(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "unknown", reason="no answer", resolvable=["wa"],
                          check_after_ms=(0,))
    kit.store.recheck_due(kit.ws)
    kit.store.outbox_next(kit.ws, cid, "sender-b")
    kit.store.outbox_done(kit.ws, cid, "sender-b", first, "sent", provider_id="SM1", status="queued", confirmed=True)
    assert states(kit, cid) == {first: "queued"}
    note = kit.last(cid)
    assert (note["kind"], note["text"]) == ("delivery_confirmed",
                                            "The channel already had this message (SM1): it was not sent again.")
    assert kit.store.status(kit.ws, "wa", "SM1", "delivered")  # its later statuses apply


def test_outbox_done_retry_backs_off_then_fails(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    for tries, backoff in ((1, 1_000), (2, 3_000)):
        assert kit.store.outbox_next(kit.ws, cid, "sender-a").message["id"] == first  # type: ignore[union-attr]
        before = kit.store.now_ms()
        assert kit.store.outbox_done(kit.ws, cid, "sender-a", first, "retry", retry_ms=(1_000, 3_000),
                                     grace_ms=300) is None
        assert states(kit, cid) == {first: "pending", f"{first}:tries": str(tries), second: "pending"}
        assert not kit.exists(keys.OUTBOX_LOCK, conversation_id=cid)  # released: the retry may go to any sender
        due = kit.zscore(keys.OUTBOXES, cid) or 0
        assert before + backoff - 300 <= due <= kit.store.now_ms() + backoff - 300
        assert kit.outbox(cid) == [first, second]  # the order holds: nothing overtakes the retried message
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    outgoing = kit.store.outbox_done(kit.ws, cid, "sender-a", first, "retry", retry_ms=(1_000, 3_000),
                                     reason="channel down")
    assert outgoing is not None and outgoing.message["id"] == second
    assert states(kit, cid) == {first: "failed", f"{first}:error": "channel down", second: "sending"}
    assert kit.history(cid)[-1]["text"] == "Delivery failed: channel down"


def test_outbox_done_a_message_queued_while_sending_goes_out_with_the_same_hold(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.redis.delete(kit.key(keys.DELIVERIES))
    second = kit.store.post(kit.ws, cid, "agent", "Two", agent_id="alex")
    assert kit.wakeups(keys.DELIVERIES) == []  # the holder sends it: no second sender races it
    outgoing = kit.store.outbox_done(kit.ws, cid, "sender-a", first, "sent")
    assert outgoing is not None and outgoing.message["id"] == second


# --- resend -----------------------------------------------------------------------------------------------------

def test_resend_queues_a_failed_or_unknown_message_again(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "failed", reason="down")
    kit.store.outbox_done(kit.ws, cid, "sender-a", second, "unknown", reason="timeout")
    assert kit.zscore(keys.OUTBOXES, cid) is None
    kit.redis.delete(kit.key(keys.DELIVERIES))
    for mid in (second, first):
        kit.store.resend(kit.ws, cid, mid, "agent:alex")
    assert kit.outbox(cid) == [second, first]
    # the unknown one is asked about before it is sent again
    assert states(kit, cid) == {first: "pending", second: "pending", f"{second}:maybe_sent": "1"}
    assert kit.wakeups(keys.DELIVERIES) == [cid]
    notes = [m for m in kit.history(cid) if m["kind"] == "resend"]
    assert [n["data"] for n in notes] == [{"message": second, "actor": "agent:alex"},
                                          {"message": first, "actor": "agent:alex"}]
    assert statuses(kit, cid)[-2:] == [(second, "pending"), (first, "pending")]


def test_resend_refuses_a_message_that_went_out_or_is_on_its_way(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "sent")
    for mid, status in ((first, "sent"), (second, "sending"), ("1-1", "")):
        with pytest.raises(Refused) as answer:
            kit.store.resend(kit.ws, cid, mid, "agent:alex")
        assert (answer.value.code, answer.value.details.get("status", "")) == ("not_resendable", status)
    assert kit.outbox(cid) == [second]


def test_resend_all_queues_every_failed_or_unknown_message_oldest_first(kit: Kit) -> None:
    cid, (first, second, third) = queued(kit, "One", "Two", "Three")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "unknown", reason="timeout", resolvable=["wa"],
                          check_after_ms=(300_000,))
    kit.store.outbox_done(kit.ws, cid, "sender-a", second, "sent", provider_id="SM2")
    kit.store.outbox_done(kit.ws, cid, "sender-a", third, "failed", reason="down")
    assert kit.store.resend_all(kit.ws, cid, "agent:alex") == ([first, third], 0)
    assert kit.outbox(cid) == [first, third]
    assert kit.redis.zcard(kit.key(keys.UNRESOLVED)) == 0  # asked when it is sent, not later
    assert states(kit, cid) == {first: "pending", f"{first}:maybe_sent": "1", second: "sent", third: "pending"}
    assert kit.store.resend_all(kit.ws, cid, "agent:alex") == ([], 0)
    assert kit.store.resend_all(kit.ws, cid, "agent:alex", [second, "1-9"]) == ([], 2)


def test_resend_all_of_chosen_messages_queues_only_those(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "failed", reason="down")
    kit.store.outbox_done(kit.ws, cid, "sender-a", second, "failed", reason="down")
    assert kit.store.resend_all(kit.ws, cid, "agent:alex", [second]) == ([second], 0)
    assert kit.outbox(cid) == [second]


def test_resend_all_in_a_closed_conversation_is_refused(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "failed", reason="down")
    kit.store.close(kit.ws, cid, "agent:alex")
    assert refused(lambda: kit.store.resend_all(kit.ws, cid, "agent:alex")).code == "closed"


def test_recheck_due_queues_only_what_is_due_and_still_unknown(kit: Kit) -> None:
    cid, (first, second) = queued(kit, "One", "Two")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    for mid in (first, second):
        kit.store.outbox_done(kit.ws, cid, "sender-a", mid, "unknown", reason="timeout", resolvable=["wa"],
                              check_after_ms=(60_000,))
    assert kit.store.recheck_due(kit.ws) == []  # not yet
    kit.store.resend(kit.ws, cid, second, "agent:alex")  # an agent was quicker
    kit.store.outbox_next(kit.ws, cid, "sender-b")
    kit.store.outbox_done(kit.ws, cid, "sender-b", second, "sent", provider_id="SM2")
    kit.redis.zadd(kit.key(keys.UNRESOLVED), {f"{cid}|{first}": 0, f"{cid}|{second}": 0, "404|1-0": 0})
    kit.redis.delete(kit.key(keys.DELIVERIES))
    assert kit.store.recheck_due(kit.ws) == [f"{cid}|{first}"]
    assert kit.redis.zcard(kit.key(keys.UNRESOLVED)) == 0
    assert kit.outbox(cid) == [first]
    assert kit.wakeups(keys.DELIVERIES) == [cid]
    assert kit.delivery(cid)[first] == "pending" and f"{first}:error" not in kit.delivery(cid)


def test_resend_in_a_closed_conversation_is_refused(kit: Kit) -> None:
    cid, [first] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", first, "failed")
    kit.store.close(kit.ws, cid, "agent:alex")
    assert refused(lambda: kit.store.resend(kit.ws, cid, first, "agent:alex")).code == "closed"


# --- status -----------------------------------------------------------------------------------------------------

def sent(kit: Kit, provider_id: str = "SM1") -> tuple[str, str]:
    cid, [mid] = queued(kit, "One")
    kit.store.outbox_next(kit.ws, cid, "sender-a")
    kit.store.outbox_done(kit.ws, cid, "sender-a", mid, "sent", provider_id=provider_id, status="queued")
    return cid, mid


def test_status_moves_forward_only(kit: Kit) -> None:
    cid, mid = sent(kit)
    steps = [("sent", True), ("queued", False), ("delivered", True), ("sent", False), ("failed", False),
             ("read", True), ("delivered", False)]
    for status, applied in steps:
        assert kit.store.status(kit.ws, "wa", "SM1", status) is applied, status
    assert states(kit, cid) == {mid: "read"}
    assert statuses(kit, cid)[1:] == [(mid, "sent"), (mid, "delivered"), (mid, "read")]


def test_status_failed_after_sent_with_the_providers_error_code(kit: Kit) -> None:
    cid, mid = sent(kit)
    assert kit.store.status(kit.ws, "wa", "SM1", "undelivered", error_code="63016")
    assert states(kit, cid) == {mid: "undelivered"}
    assert kit.events("message.status")[-1]["error_code"] == "63016"
    kit.store.resend(kit.ws, cid, mid, "agent:alex")  # an undelivered message may be sent again
    assert kit.outbox(cid) == [mid]


def test_status_of_a_message_baton_did_not_send(kit: Kit) -> None:
    sent(kit)
    events = kit.events()
    assert kit.store.status(kit.ws, "wa", "SM-unknown", "delivered") is False
    assert kit.store.status(kit.ws, "other", "SM1", "delivered") is False  # provider ids are per channel
    assert kit.events() == events


# --- forget -----------------------------------------------------------------------------------------------------

def test_forget_deletes_a_closed_conversation(kit: Kit) -> None:
    cid, [mid] = queued(kit, "One")
    contact = kit.raw(cid)["contact"]
    kit.store.close(kit.ws, cid, "agent:alex")
    assert kit.store.forget(kit.ws, cid) is True
    for template in (keys.CONVERSATION, keys.MESSAGES, keys.DELIVERY, keys.OUTBOX, keys.OUTBOX_LOCK,
                     keys.TURN_LOCK, keys.AWAITING_HUMAN):
        assert not kit.exists(template, conversation_id=cid), template
    assert kit.view("closed") == []
    assert kit.store.contact(kit.ws, contact)["conversations"] == []
    assert not kit.exists(keys.LATEST, channel="wa", sender="whatsapp:+15550100")
    assert kit.store.forget(kit.ws, cid) is False  # already gone


def test_forget_keeps_the_latest_pointer_of_a_newer_conversation(kit: Kit) -> None:
    first = kit.customer("One").conversation
    kit.store.close(kit.ws, first, "agent:alex")
    second = kit.customer("Two").conversation
    kit.store.close(kit.ws, second, "agent:alex")
    kit.store.forget(kit.ws, first)
    assert kit.redis.get(kit.key(keys.LATEST, channel="web", sender="+15550100")) == second
    assert kit.view("closed") == [second]


def test_forget_refuses_an_open_conversation(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    assert refused(lambda: kit.store.forget(kit.ws, cid)).code == "open"
    assert kit.conversation(cid)["status"] == "open"


def test_forget_leaves_nothing_that_would_wake_it_again(kit: Kit) -> None:
    cid, _ = queued(kit, "One")  # still queued: the channel is down
    kit.store.close(kit.ws, cid, "agent:alex")
    assert kit.zscore(keys.OUTBOXES, cid) is not None
    kit.store.forget(kit.ws, cid)
    assert kit.zscore(keys.OUTBOXES, cid) is None  # else the sweep wakes a sender for it every few seconds


def test_status_of_a_forgotten_conversations_message_writes_nothing(kit: Kit) -> None:
    cid, _ = sent(kit)
    kit.store.close(kit.ws, cid, "agent:alex")
    kit.store.forget(kit.ws, cid)
    events = kit.events()
    assert kit.store.status(kit.ws, "wa", "SM1", "read") is False  # read receipts come days later
    assert not kit.exists(keys.DELIVERY, conversation_id=cid)
    assert kit.events() == events
