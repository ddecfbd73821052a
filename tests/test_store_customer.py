"""The customer's operations of the state script, each on its own through the typed store: `inbound` (a message
arrives), `fire` (nobody came: the contact form goes out) and `capture` (the details the customer left)."""

from __future__ import annotations

import pytest

from gateway import keys
from gateway.handover.store import Refused
from tests.store_kit import TIMEOUT_MS, Kit

FORM = {"type": "contact_form", "fields": [{"name": "email", "type": "email"}]}
DETAILS = {"name": "Maria Lopez", "email": "maria@example.com", "phone": "+442079460958", "message": "Call me"}


# --- inbound ----------------------------------------------------------------------------------------------------

def test_inbound_starts_a_conversation_owned_by_the_ai(kit: Kit) -> None:
    before = kit.store.now_ms()
    recorded = kit.customer("Hello there", sender="+15550100", channel="web", provider_id="p-1",
                            profile_name="Maria", phone="+15550100", customer="Maria")
    after = kit.store.now_ms()
    cid, mid = recorded.conversation, recorded.message
    assert (recorded.duplicate, recorded.created, recorded.owner) == (False, True, "ai")

    stored = kit.raw(cid)
    assert {name: stored[name] for name in ("id", "channel", "sender", "status", "owner", "epoch", "profile_name",
                                             "customer", "previous", "delivers", "last_customer", "last_text",
                                             "last_author")} == {
        "id": cid, "channel": "web", "sender": "+15550100", "status": "open", "owner": "ai", "epoch": "0",
        "profile_name": "Maria", "customer": "Maria", "previous": "", "delivers": "", "last_customer": mid,
        "last_text": "Hello there", "last_author": "customer"}
    assert before <= int(stored["created_at"]) <= int(stored["last_message_at"]) <= after

    [message] = kit.history(cid)
    assert (message["id"], message["author"], message["text"], message["kind"], message["visibility"]) == (
        mid, "customer", "Hello there", "message", "public")
    assert kit.redis.get(kit.key(keys.ACTIVE, channel="web", sender="+15550100")) == cid
    assert kit.redis.get(kit.key(keys.LATEST, channel="web", sender="+15550100")) == cid
    assert kit.view("ai") == kit.view("open") == [cid]
    assert kit.redis.get(kit.key(keys.DEDUPE, channel="web", provider_id="p-1")) == f"{cid}|{mid}"
    assert 0 < kit.redis.ttl(kit.key(keys.DEDUPE, channel="web", provider_id="p-1")) <= 7 * 24 * 3600
    assert [e["type"] for e in kit.events()] == ["conversation.created", "message.created"]
    created, shown = kit.events()
    assert (created["conversation"], created["owner"], created["previous"]) == (cid, "ai", "")
    assert (shown["id"], shown["author"], shown["text"], shown["channel"]) == (mid, "customer", "Hello there", "web")
    assert kit.notifications() == []


def test_inbound_files_the_customer_in_contacts(kit: Kit) -> None:
    recorded = kit.customer(sender="+15550100", channel="wa", profile_name="Maria", phone="+15550100")
    contact_id = kit.raw(recorded.conversation)["contact"]
    assert kit.redis.get(kit.key(keys.CONTACT_BY_IDENTITY, channel="wa", sender="+15550100")) == contact_id
    contact = kit.store.contact(kit.ws, contact_id)
    assert (contact["name"], contact["phone"], contact["identities"]) == ("Maria", "+15550100", ["wa:+15550100"])
    assert contact["conversations"] == [recorded.conversation]
    assert kit.store.contact_ids(kit.ws) == [contact_id]


def test_a_known_contact_follows_the_profile_name_they_change(kit: Kit) -> None:
    """A WhatsApp customer who renames their profile is shown by their new name (issue 17 item 7); a name they gave
    in the contact form is kept instead (tests/test_webhooks.py)."""
    first = kit.customer(sender="+15550100")
    contact_id = kit.raw(first.conversation)["contact"]
    assert "name" not in kit.store.contact(kit.ws, contact_id)
    for name in ("Maria", "Someone Else"):  # a known contact is looked up when a conversation starts
        kit.store.close(kit.ws, kit.customer(sender="+15550100").conversation, "agent:alex")
        kit.customer(sender="+15550100", profile_name=name)
    assert kit.store.contact(kit.ws, contact_id)["name"] == "Someone Else"


def test_inbound_wakes_the_ai_once_per_pending_episode(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    since = kit.zscore(keys.PENDING_TURNS, cid)
    second = kit.customer("Two")
    assert (second.conversation, second.created) == (cid, False)
    assert kit.wakeups() == [cid]  # the turn that takes the first message reads the second too
    assert kit.zscore(keys.PENDING_TURNS, cid) == since
    assert kit.raw(cid)["last_customer"] == second.message

    kit.redis.delete(kit.key(keys.TURNS))
    kit.store.finish(kit.ws, cid, kit.turn(cid))
    assert kit.pending() == []
    kit.customer("Three")
    assert kit.wakeups() == [cid]
    assert kit.pending() == [cid]


def test_inbound_appends_to_the_open_conversation(kit: Kit) -> None:
    first = kit.customer("One", sender="+15550100")
    other = kit.customer("Elsewhere", sender="+15550199")
    second = kit.customer("Two", sender="+15550100")
    assert second.conversation == first.conversation != other.conversation
    assert [m["text"] for m in kit.history(first.conversation)] == ["One", "Two"]
    assert kit.raw(first.conversation)["contact"] != kit.raw(other.conversation)["contact"]


def test_inbound_after_close_starts_a_fresh_conversation_for_the_same_contact(kit: Kit) -> None:
    first = kit.customer("One").conversation
    kit.store.close(kit.ws, first, "agent:alex")
    fresh = kit.customer("Back again")
    assert fresh.created and fresh.conversation != first
    stored = kit.raw(fresh.conversation)
    assert (stored["previous"], stored["owner"], stored["contact"]) == (first, "ai", kit.raw(first)["contact"])
    assert [m["text"] for m in kit.history(fresh.conversation)] == ["Back again"]
    assert kit.redis.get(kit.key(keys.LATEST, channel="web", sender="+15550100")) == fresh.conversation
    assert kit.store.contact(kit.ws, stored["contact"])["conversations"] == [first, fresh.conversation]
    assert kit.events("conversation.created")[-1]["previous"] == first


def test_inbound_drops_a_duplicate_provider_id(kit: Kit) -> None:
    first = kit.customer("Hello", provider_id="SM1")
    events = len(kit.events())
    again = kit.customer("Hello", provider_id="SM1")
    assert (again.duplicate, again.conversation, again.message) == (True, first.conversation, first.message)
    assert len(kit.history(first.conversation)) == 1
    assert len(kit.events()) == events
    assert kit.wakeups() == [first.conversation]
    elsewhere = kit.customer("Hello", provider_id="SM1", channel="other")  # ids are unique per channel only
    assert not elsewhere.duplicate and elsewhere.conversation != first.conversation


def test_inbound_keeps_media_and_data(kit: Kit) -> None:
    media = [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}]
    recorded = kit.customer("", media=media, data={"button": "yes"})
    [message] = kit.history(recorded.conversation)
    assert (message["media"], message["data"], message["text"]) == (media, {"button": "yes"}, "")
    assert kit.events("message.created")[0]["media"] == media


def test_inbound_with_the_ai_unpublished_waits_for_a_human_and_tells_the_team(kit: Kit) -> None:
    recorded = kit.customer("Hello?", published=False, timeout_ms=5_000)
    cid = recorded.conversation
    assert recorded.owner == "none"
    stored = kit.conversation(cid)
    assert (stored["owner"], stored["waits"], stored["handover_reason"]) == ("none", 1, "AI agent is unpublished")
    assert kit.view("waiting") == kit.view("open") == [cid] and kit.view("ai") == []
    assert kit.timers() == {f"{cid}|1": stored["waiting_since"] + 5_000}
    assert 0 < kit.pttl(keys.AWAITING_HUMAN, conversation_id=cid) <= 5_000
    assert kit.pending() == [] and kit.wakeups() == []
    [handover] = kit.events("conversation.handover")
    assert (handover["conversation"], handover["route"]) == (cid, "unpublished")
    [told] = kit.notifications()
    assert (told["type"], told["conversation"], told["route"], told["summary"], told["customer"]) == (
        "handover", cid, "unpublished", "Hello?", "Maria")

    kit.customer("Anyone?", published=False, timeout_ms=5_000)  # the wait is armed already
    assert kit.conversation(cid)["waits"] == 1
    assert len(kit.timers()) == 1 and len(kit.notifications()) == 1


def test_inbound_prefers_an_admins_runtime_publication_to_the_configured_one(kit: Kit) -> None:
    kit.redis.hset(kit.key(keys.AI_AGENT), "published", "0")
    assert kit.customer(published=True, sender="a").owner == "none"
    kit.redis.hset(kit.key(keys.AI_AGENT), "published", "1")
    assert kit.customer(published=False, sender="b").owner == "ai"


def test_inbound_while_an_agent_owns_the_chat_wakes_nobody(kit: Kit) -> None:
    cid = kit.customer("One").conversation
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    kit.store.finish(kit.ws, cid, kit.turn(cid))
    kit.redis.delete(kit.key(keys.TURNS))
    kit.customer("Two")
    assert kit.pending() == [] and kit.wakeups() == [] and kit.timers() == {}
    assert kit.view("agent:alex") == [cid]


def test_inbound_while_waiting_for_a_human_wakes_nobody_until_the_form_is_out(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.customer("Still there?")
    assert kit.pending() == [] and kit.wakeups() == []
    assert kit.conversation(cid)["waits"] == 1  # the armed wait goes on

    for form_state in ("sent", "done"):  # the AI reads the details in the text, or says the team will follow up
        kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), "form_state", form_state)
        kit.customer(f"Form {form_state}")
        assert kit.pending() == [cid] and kit.wakeups() == [cid]
        kit.redis.delete(kit.key(keys.PENDING_TURNS), kit.key(keys.TURNS))


# --- fire -------------------------------------------------------------------------------------------------------

def due(kit: Kit, cid: str, wait: int = 1, ago_ms: int = 500) -> None:
    """Make a wait's deadline `ago_ms` in the past (Redis's clock), instead of waiting for it."""
    kit.redis.zadd(kit.key(keys.FALLBACK_TIMERS), {f"{cid}|{wait}": kit.store.now_ms() - ago_ms})


def test_fire_sends_the_contact_form_once_per_wait(kit: Kit) -> None:
    cid = kit.handed_over()
    assert kit.store.fire(kit.ws, "Leave your details", FORM) == []  # not due yet
    assert list(kit.timers()) == [f"{cid}|1"]

    due(kit, cid, ago_ms=500)
    [fired] = kit.store.fire(kit.ws, "Leave your details", FORM)
    form = kit.last(cid)
    assert fired["conversation"] == cid and fired["message"] == form["id"] and fired["channel"] == "web"
    assert 500 <= fired["late_ms"] < 60_000
    assert (form["author"], form["kind"], form["text"], form["rich"], form["visibility"]) == (
        "system", "contact_form", "Leave your details", FORM, "public")
    stored = kit.conversation(cid)
    assert (stored["form_state"], stored["owner"]) == ("sent", "none")
    assert stored["form_sent_at"] >= stored["waiting_since"]
    assert kit.timers() == {}
    assert kit.events("contact.form_sent")[0]["conversation"] == cid
    assert kit.notifications("contact_form_sent") == [{
        "type": "contact_form_sent", "conversation": cid, "channel": "web", "customer": "Maria",
        "message": form["id"], "at": stored["form_sent_at"]}]

    due(kit, cid, ago_ms=10)  # the same wait again (a timer written twice): the form is out already
    assert kit.store.fire(kit.ws, "Leave your details", FORM) == []
    assert kit.kinds(cid).count(("system", "contact_form")) == 1


def test_fire_never_after_an_assignment(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    assert kit.timers() == {} and not kit.exists(keys.AWAITING_HUMAN, conversation_id=cid)
    due(kit, cid)  # a timer left behind by a crash between the two steps of some older version
    assert kit.store.fire(kit.ws, "Leave your details", FORM) == []
    assert kit.timers() == {}
    assert ("system", "contact_form") not in kit.kinds(cid)


def test_fire_only_the_current_wait(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="released", timeout_ms=TIMEOUT_MS)
    assert list(kit.timers()) == [f"{cid}|2"]
    due(kit, cid, wait=1)
    assert kit.store.fire(kit.ws, "Form", FORM) == []
    due(kit, cid, wait=2)
    assert [f["conversation"] for f in kit.store.fire(kit.ws, "Form", FORM)] == [cid]


def test_fire_skips_closed_conversations(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.close(kit.ws, cid, "agent:alex")
    due(kit, cid)
    assert kit.store.fire(kit.ws, "Form", FORM) == []
    assert kit.timers() == {}


def test_fire_takes_at_most_limit_per_call(kit: Kit) -> None:
    waiting = [kit.handed_over(sender=f"+1555010{n}") for n in range(3)]
    for cid in waiting:
        due(kit, cid)
    assert len(kit.store.fire(kit.ws, "Form", FORM, limit=2)) == 2
    assert len(kit.store.fire(kit.ws, "Form", FORM, limit=2)) == 1
    assert {kit.conversation(cid)["form_state"] for cid in waiting} == {"sent"}


# --- capture ----------------------------------------------------------------------------------------------------

def form_out(kit: Kit, sender: str = "+15550100") -> str:
    cid = kit.handed_over(sender=sender)
    due(kit, cid)
    kit.store.fire(kit.ws, "Form", FORM)
    return cid


def test_capture_stores_the_forms_details_in_contacts(kit: Kit) -> None:
    cid = form_out(kit)
    contact_id = kit.store.capture(kit.ws, cid, DETAILS, summary="Maria left details", confirmation="Thank you!")
    assert contact_id == kit.raw(cid)["contact"]
    contact = kit.store.contact(kit.ws, contact_id)
    assert {name: contact[name] for name in DETAILS} == DETAILS
    assert contact["captured_in"] == cid
    stored = kit.conversation(cid)
    assert (stored["form_state"], stored["owner"]) == ("done", "none")
    assert int(contact["captured_at"]) == stored["captured_at"]
    assert kit.zscore(keys.CONTACTS, contact_id) == stored["captured_at"]

    note, confirmation = kit.history(cid)[-2:]
    assert (note["kind"], note["visibility"], note["text"], note["data"]) == (
        "contact_captured", "internal", "Maria left details", DETAILS)
    assert (confirmation["author"], confirmation["kind"], confirmation["visibility"], confirmation["text"]) == (
        "system", "notice", "public", "Thank you!")
    [captured] = kit.events("contact.captured")
    assert (captured["contact"], captured["email"], captured["phone"]) == (contact_id, DETAILS["email"],
                                                                           DETAILS["phone"])
    [told] = kit.notifications("contact_captured")
    assert {name: told[name] for name in ("conversation", "contact", *DETAILS)} == {
        "conversation": cid, "contact": contact_id, **DETAILS}


def test_capture_refuses_without_a_form_out(kit: Kit) -> None:
    cid = kit.handed_over()
    with pytest.raises(Refused) as refused:
        kit.store.capture(kit.ws, cid, DETAILS, summary="", confirmation="")
    assert (refused.value.code, refused.value.status) == ("no_form", 409)
    assert kit.conversation(cid).get("form_state", "") == ""
    assert "email" not in kit.store.contact(kit.ws, kit.raw(cid)["contact"])

    done = form_out(kit, sender="+15550199")
    kit.store.capture(kit.ws, done, DETAILS, summary="", confirmation="")
    with pytest.raises(Refused, match="no contact form is pending"):
        kit.store.capture(kit.ws, done, DETAILS, summary="", confirmation="")


def test_capture_refuses_a_closed_or_unknown_conversation(kit: Kit) -> None:
    cid = form_out(kit)
    kit.store.close(kit.ws, cid, "agent:alex")
    with pytest.raises(Refused) as refused:
        kit.store.capture(kit.ws, cid, DETAILS, summary="", confirmation="")
    assert refused.value.code == "closed"
    with pytest.raises(Refused) as missing:
        kit.store.capture(kit.ws, "999", DETAILS, summary="", confirmation="")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)


def test_capture_by_a_turn_commits_the_turn(kit: Kit) -> None:
    """On channels without forms a turn reads the details in the customer's text."""
    cid = form_out(kit)
    kit.customer("maria@example.com")
    lock = kit.take_turn_lock(cid)
    turn = kit.turn(cid, lock)
    kit.store.capture(kit.ws, cid, {"email": "maria@example.com"}, summary="", confirmation="Thanks", turn=turn)
    stored = kit.conversation(cid)
    assert (stored["form_state"], stored["ai_cursor"]) == ("done", turn.upto)
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)

    history = kit.history(cid)  # the same commit made again (its answer was lost): it changes nothing
    kit.store.capture(kit.ws, cid, {"email": "x@example.com"}, summary="", confirmation="", turn=turn)
    assert kit.store.contact(kit.ws, stored["contact"])["email"] == "maria@example.com"
    assert kit.history(cid) == history
    with pytest.raises(Refused) as stale:  # another commit of the same turn is stale
        kit.store.finish(kit.ws, cid, turn)
    assert stale.value.code == "stale_turn"


def test_capture_by_a_turn_after_the_chat_was_closed_ends_the_turn(kit: Kit) -> None:
    cid = form_out(kit)
    kit.customer("maria@example.com")
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.close(kit.ws, cid, "agent:alex")
    history = kit.history(cid)
    with pytest.raises(Refused) as refused:
        kit.store.capture(kit.ws, cid, {"email": "maria@example.com"}, summary="", confirmation="Thanks", turn=turn)
    assert refused.value.code == "closed"
    assert kit.history(cid) == history  # no "we'll get back to you" after "this conversation was closed"
    assert "email" not in kit.store.contact(kit.ws, kit.raw(cid)["contact"])
    assert kit.conversation(cid)["ai_cursor"] == turn.upto and not kit.exists(keys.TURN_LOCK, conversation_id=cid)


def test_capture_by_a_turn_after_an_agent_took_the_chat_ends_the_turn(kit: Kit) -> None:
    cid = form_out(kit)
    kit.customer("maria@example.com")
    turn = kit.turn(cid, kit.take_turn_lock(cid))
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    history = kit.history(cid)
    with pytest.raises(Refused) as refused:
        kit.store.capture(kit.ws, cid, {"email": "maria@example.com"}, summary="", confirmation="Thanks", turn=turn)
    assert (refused.value.code, refused.value.details["owner"]) == ("not_owner", "agent:alex")
    assert kit.history(cid) == history
    assert kit.conversation(cid)["form_state"] == ""  # moot while someone has the chat
    assert kit.pending() == [] and not kit.exists(keys.TURN_LOCK, conversation_id=cid)
