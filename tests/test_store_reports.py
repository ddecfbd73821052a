"""The reports' counters, kept by the state script in the step that changes a conversation: every conversation has
one outcome at a time (so the outcomes add up to the conversations), times land in their histogram bucket once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway import keys, reports
from gateway.handover.store import Refused
from tests.store_kit import Kit


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def counters(kit: Kit, day: str = "") -> dict[str, int]:
    stored: Any = kit.redis.hgetall(kit.key(keys.REPORT, day=day or today()))
    return {field: int(value) for field, value in stored.items() if int(value)}


def answered(kit: Kit, text: str = "Hello", **extra: Any) -> str:
    cid = kit.customer(text, **extra).conversation
    kit.store.post(kit.ws, cid, "ai", "Here is the answer", turn=kit.turn(cid), published=True)
    return cid


def ai_says(kit: Kit, cid: str, resolve_ms: int) -> None:
    """The AI's answer, with reports.resolve_after as given (milliseconds)."""
    kit.store.run("post", kit.ws, cid, author="ai", text="Answer", turn=kit.turn(cid).__dict__, published=True,
                  resolve_ms=resolve_ms)


def test_inbound_counts_a_new_conversation_open_by_channel(kit: Kit) -> None:
    cid = kit.customer("Hi", channel="web").conversation
    kit.customer("Hi again", channel="web")  # the same conversation
    kit.customer("Hola", channel="whatsapp", sender="+34600000000")
    assert counters(kit) == {"conversations|web": 1, "open|web": 1, "conversations|whatsapp": 1, "open|whatsapp": 1}
    assert kit.raw(cid)["day"] == today() and kit.raw(cid)["outcome"] == "open"


def test_close_after_an_ai_answer_is_ai_resolved_and_before_one_abandoned(kit: Kit) -> None:
    resolved = answered(kit, sender="a")
    abandoned = kit.customer("Hello?", sender="b").conversation
    kit.store.close(kit.ws, resolved, "agent:alex")
    kit.store.close(kit.ws, abandoned, "agent:alex")
    found = counters(kit)
    assert found["conversations|web"] == 2 and found["ai_resolved|web"] == 1 and found["abandoned|web"] == 1
    assert "open|web" not in found and "auto_resolved|web" not in found
    assert kit.raw(resolved)["outcome"] == "ai_resolved" and kit.raw(abandoned)["outcome"] == "abandoned"
    # the AI's answer was the first response (bucket 1: within 10 s); both have their resolution time, once
    assert found["first_response:1|web"] == 1 and found["resolution:1|web"] == 2


def test_hand_over_counts_handed_over_by_route_once(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.assign(kit.ws, cid, "ai", "agent:alex", reason="back")
    kit.store.assign(kit.ws, cid, "none", "agent:alex", reason="again", timeout_ms=1000)
    kit.store.close(kit.ws, cid, "agent:alex")
    found = counters(kit)
    assert found == {"conversations|web": 1, "handed_over|web": 1, "handover:customer|web": 1,
                     "resolution:1|web": 1}
    assert found.get("handed_over|web", 0) + found.get("open|web", 0) == found["conversations|web"]


def test_post_by_an_agent_takes_over_and_times_assignment_and_first_human_reply(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.post(kit.ws, cid, "agent", "Hi, I'm Alex", agent_id="alex", agent_name="Alex")
    kit.store.post(kit.ws, cid, "agent", "Anything else?", agent_id="alex", agent_name="Alex")
    found = counters(kit)
    assert found["to_assignment:1|web"] == 1 and found["to_human_reply:1|web"] == 1
    assert found["first_response:1|web"] == 1  # the agent's reply; nobody answered before


def test_assign_by_an_agent_of_an_ai_conversation_is_a_handover_by_an_agent(kit: Kit) -> None:
    cid = answered(kit)
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="took it")
    found = counters(kit)
    assert found["handed_over|web"] == 1 and found["handover:agent|web"] == 1 and "open|web" not in found
    assert found["to_assignment:1|web"] == 1


def test_inbound_while_unpublished_is_handed_over_as_unpublished(kit: Kit) -> None:
    kit.redis.hset(kit.key(keys.AI_AGENT), "published", 0)
    kit.customer("Anyone?")
    assert counters(kit) == {"conversations|web": 1, "handed_over|web": 1, "handover:unpublished|web": 1}


def test_fire_resolves_an_ai_conversation_quiet_past_resolve_ms(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    ai_says(kit, cid, resolve_ms=1)
    time.sleep(0.01)
    sent, resolved = kit.store.timers(kit.ws, text="form", form=None)
    assert sent == [] and resolved == [{"conversation": cid, "channel": "web"}]
    assert kit.conversation(cid)["status"] == "closed" and kit.raw(cid)["closed_by"] == "auto"
    assert kit.last(cid)["kind"] == "closed" and kit.last(cid)["visibility"] == "public"  # the widget shows it
    found = counters(kit)
    assert found["ai_resolved|web"] == 1 and found["auto_resolved|web"] == 1 and "open|web" not in found
    assert kit.store.timers(kit.ws, text="form", form=None) == ([], [])


def test_fire_resolves_quietly_on_a_channel_that_delivers(kit: Kit) -> None:
    cid = kit.customer("Hello", channel="whatsapp", delivers=True).conversation
    ai_says(kit, cid, resolve_ms=1)
    time.sleep(0.01)
    kit.store.timers(kit.ws, text="form", form=None)
    closing = kit.last(cid)
    assert closing["kind"] == "closed" and closing["visibility"] == "internal"
    assert closing["id"] not in kit.outbox(cid)


def test_inbound_after_the_ai_answer_stops_the_idle_timer(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    ai_says(kit, cid, resolve_ms=1)
    kit.customer("But wait")  # the AI owes an answer: not resolved while it does
    time.sleep(0.01)
    assert kit.store.timers(kit.ws, text="form", form=None) == ([], [])
    assert kit.conversation(cid)["status"] == "open"
    # finish (nothing to say) arms it again
    kit.store.run("finish", kit.ws, cid, turn=kit.turn(cid).__dict__, resolve_ms=1)
    time.sleep(0.01)
    assert [r["conversation"] for r in kit.store.timers(kit.ws, text="form", form=None)[1]] == [cid]


def test_post_with_resolve_ms_zero_never_resolves(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    ai_says(kit, cid, resolve_ms=0)
    assert kit.zscore(keys.IDLE_TIMERS, cid) is None


def test_post_arms_resolution_after_a_day_by_default(kit: Kit) -> None:
    cid = answered(kit)
    assert abs(kit.zscore(keys.IDLE_TIMERS, cid) - kit.store.now_ms() - 86_400_000) < 5_000  # type: ignore[operator]
    kit.store.assign(kit.ws, cid, "agent:alex", "agent:alex", reason="mine")
    assert kit.zscore(keys.IDLE_TIMERS, cid) is None  # a person has it: never the AI's resolution


def test_inbound_within_durable_ms_of_an_ai_resolution_counts_it_returned(kit: Kit) -> None:
    first = answered(kit, sender="back")
    kit.store.close(kit.ws, first, "ai")
    kit.customer("Me again", sender="back")
    kit.customer("And again", sender="back")
    other = answered(kit, sender="gone")
    kit.store.close(kit.ws, other, "ai")
    time.sleep(0.01)
    kit.store.settings[kit.ws] = {"inbound": {"durable_ms": 1}}  # as config.yaml's reports.durable_days gives it
    kit.customer("Later", sender="gone")  # past its durable time: it stays durable
    found = counters(kit)
    assert found["ai_resolved|web"] == 2 and found["returned|web"] == 1 and found["conversations|web"] == 4


def test_reopen_of_an_ai_resolution_makes_it_handed_over(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    ai_says(kit, cid, resolve_ms=1)
    time.sleep(0.01)
    kit.store.timers(kit.ws, text="form", form=None)
    kit.store.reopen(kit.ws, cid, "agent:alex")
    found = counters(kit)
    assert found == {"conversations|web": 1, "handed_over|web": 1, "handover:reopened|web": 1,
                     "first_response:1|web": 1, "resolution:1|web": 1}
    totals: Any = kit.redis.hgetall(kit.key(keys.REPORT_TOTALS))
    assert totals["ai_resolved|web"] == "1" and totals["handed_over|web"] == "1"  # events, for Prometheus


def test_capture_counts_forms_sent_and_captured(kit: Kit) -> None:
    cid = kit.customer("I want a human").conversation
    kit.store.hand_over(kit.ws, cid, kit.turn(cid), reason="asked", route="customer", summary="", notice="",
                        agent_name="Lumi", timeout_ms=1)
    time.sleep(0.01)
    kit.store.fire(kit.ws, text="Leave your details", form={"fields": ["email"]})
    kit.store.capture(kit.ws, cid, {"email": "m@example.com"}, summary="", confirmation="Thanks")
    found = counters(kit)
    assert found["forms_sent|web"] == 1 and found["forms_captured|web"] == 1
    with pytest.raises(Refused):
        kit.store.capture(kit.ws, cid, {"email": "m@example.com"}, summary="", confirmation="Thanks")
    assert counters(kit)["forms_captured|web"] == 1


def test_close_of_a_conversation_from_before_the_reports_counts_nothing(kit: Kit) -> None:
    cid = answered(kit)
    kit.redis.hdel(kit.key(keys.CONVERSATION, conversation_id=cid), "day", "outcome")
    before = counters(kit)
    kit.store.close(kit.ws, cid, "ai")
    assert counters(kit) == before


def test_the_rendered_buckets_are_exactly_gateway_reports(kit: Kit) -> None:
    import json
    import re

    from gateway.handover.store import SCRIPT

    [table] = re.findall(r"^local BUCKETS = .*$", SCRIPT, flags=re.MULTILINE)
    assert json.loads(str(kit.redis.eval(f"{table}\nreturn cjson.encode(BUCKETS)", 0))) == list(reports.BUCKETS)


# --- the customer's verdict ------------------------------------------------------------------------------------

QUESTION = {"en": "How did we do? Reply 1-5", "es": "¿Qué tal? Responde 1-5", "default": "en"}


def test_rate_attributes_an_ai_resolution_to_the_ai_and_a_new_rating_replaces_it(kit: Kit) -> None:
    cid = answered(kit)
    with pytest.raises(Refused) as still_open:
        kit.store.rate(kit.ws, cid, 5)
    assert still_open.value.code == "not_closed"
    kit.store.close(kit.ws, cid, "ai")
    assert kit.store.rate(kit.ws, cid, 5, "Quick and right", via="widget") == "ai"
    assert kit.store.rate(kit.ws, cid, 3) == "ai"
    found = counters(kit)
    assert found["csat:ai:3|web"] == 1 and "csat:ai:5|web" not in found
    stored = kit.conversation(cid)
    assert stored["csat"] == 3 and stored["csat_by"] == "ai" and stored["csat_comment"] == ""
    assert [m["kind"] for m in kit.history(cid)][-2:] == ["csat", "csat"]  # notes for the team
    assert kit.events("conversation.rated")[-1]["rating"] == 3


def test_rate_attributes_a_handed_over_conversation_to_the_agent_who_held_it(kit: Kit) -> None:
    cid = kit.handed_over()
    kit.store.post(kit.ws, cid, "agent", "Done", agent_id="alex", agent_name="Alex")
    kit.store.close(kit.ws, cid, "agent:alex")
    assert kit.store.rate(kit.ws, cid, 2, "Slow") == "human"
    assert counters(kit)["csat:human:2|web"] == 1
    assert kit.raw(cid)["csat_agent"] == "alex" and kit.raw(cid)["csat_comment"] == "Slow"
    with pytest.raises(Refused) as missing:
        kit.store.rate(kit.ws, "999999", 2)
    assert missing.value.code == "not_found"


def whatsapp_closed(kit: Kit, sender: str = "+34600000001") -> str:
    cid = kit.customer("Hola", channel="whatsapp", sender=sender, delivers=True).conversation
    kit.store.post(kit.ws, cid, "ai", "Respuesta", turn=kit.turn(cid), published=True)
    kit.store.settings[kit.ws] = {"close": {"csat_question": QUESTION, "window_ms": 86_400_000},
                                  "inbound": {"csat_ms": 3_600_000, "csat_thanks": {"en": "Thanks!", "default": "en"}}}
    kit.store.close(kit.ws, cid, "ai")
    return cid


def test_close_asks_a_whatsapp_customer_for_a_rating_inside_the_window(kit: Kit) -> None:
    cid = whatsapp_closed(kit)
    asked = kit.last(cid)
    assert asked["kind"] == "csat_question" and asked["text"] == "How did we do? Reply 1-5"
    assert asked["id"] in kit.outbox(cid) and kit.raw(cid)["csat_asked"]


def test_close_outside_the_window_asks_nothing(kit: Kit) -> None:
    cid = kit.customer("Hola", channel="whatsapp", delivers=True, sent_at_ms=1).conversation
    kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), "customer_at", kit.store.now_ms() - 86_400_001)
    kit.store.settings[kit.ws] = {"close": {"csat_question": QUESTION, "window_ms": 86_400_000}}
    kit.store.close(kit.ws, cid, "agent:alex")
    assert "csat_asked" not in kit.raw(cid) and kit.last(cid)["kind"] == "closed"


def test_inbound_of_a_lone_digit_after_the_question_rates_the_last_conversation(kit: Kit) -> None:
    cid = whatsapp_closed(kit)
    recorded = kit.customer(" 4 ", channel="whatsapp", sender="+34600000001", delivers=True)
    assert recorded.conversation == cid and recorded.rated == 4 and not recorded.created
    assert kit.conversation(cid)["status"] == "closed" and kit.conversation(cid)["csat"] == 4
    assert kit.conversation(cid)["csat_via"] == "reply"  # type: ignore[typeddict-item]
    assert kit.last(cid)["text"] == "Thanks!" and kit.last(cid)["id"] in kit.outbox(cid)
    assert counters(kit)["csat:ai:4|whatsapp"] == 1 and counters(kit)["conversations|whatsapp"] == 1
    assert kit.pending() == []
    # rated: the next "5" is a message, and starts a new conversation
    again = kit.customer("5", channel="whatsapp", sender="+34600000001", delivers=True)
    assert again.created and again.conversation != cid and again.rated == 0


def test_inbound_of_words_after_the_question_starts_a_new_conversation(kit: Kit) -> None:
    cid = whatsapp_closed(kit)
    recorded = kit.customer("4 more questions", channel="whatsapp", sender="+34600000001", delivers=True)
    assert recorded.created and recorded.conversation != cid
    assert "csat" not in kit.raw(cid)


def test_inbound_of_a_digit_where_nothing_was_asked_is_a_message(kit: Kit) -> None:
    cid = answered(kit)
    kit.store.settings[kit.ws] = {"inbound": {"csat_ms": 3_600_000}}
    kit.store.close(kit.ws, cid, "ai")  # web chat: the widget asks, not a message
    recorded = kit.customer("5")
    assert recorded.created and recorded.rated == 0
