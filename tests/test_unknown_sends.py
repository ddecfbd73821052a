"""Sends of unknown outcome (a sender that died mid-send, Twilio taking a message without answering) resolved by
asking the provider, against the fake Twilio REST server: the automatic check a few minutes later, an agent's
"Send again" and the conversation's bulk "Send again", each audited as sent (what reached Twilio) vs stored vs
delivered, nothing doubled. A WhatsApp Cloud channel, whose provider cannot be asked, leaves it to an agent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import keys
from gateway.deployment import Deployment
from gateway.web.app import create_app
from gateway.work import worker
from gateway.work.delivery import CHECK_AFTER_MS, drain
from tests.conftest import agent_token, run_jobs, workspace_of
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

CUSTOMER = "whatsapp:+14155550100"
BUSINESS = "whatsapp:+14155550199"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


class Desk:
    """A WhatsApp (Twilio) conversation that agent alex holds, and what Twilio got of it."""

    def __init__(self, deployment: Deployment, twilio: FakeTwilio) -> None:
        self.deployment, self.twilio, self.store = deployment, twilio, deployment.store
        self.ws = workspace_of(deployment)
        self.client = TestClient(create_app(deployment))
        self.headers = agent_token(deployment, "alex")
        self.id = self.store.inbound(self.ws, _customer_message()).conversation
        self.store.assign(self.ws, self.id, "agent:alex", "agent:alex", reason="took it")

    def say(self, *texts: str) -> list[str]:
        return [self.store.post(self.ws, self.id, "agent", text, agent_id="alex") for text in texts]

    def delivery(self, mid: str) -> str:
        return str(self.deployment.redis.hget(keys.key(keys.DELIVERY, workspace_id=self.ws, conversation_id=self.id),
                                              mid))

    def error(self, mid: str) -> str:
        return str(self.deployment.redis.hget(keys.key(keys.DELIVERY, workspace_id=self.ws, conversation_id=self.id),
                                              f"{mid}:error") or "")

    def notes(self, kind: str) -> list[str]:
        return [m["text"] for m in self.store.messages(self.ws, self.id) if m["kind"] == kind]

    def unresolved(self) -> dict[str, float]:
        found: Any = self.deployment.redis.zrange(keys.key(keys.UNRESOLVED, workspace_id=self.ws), 0, -1,
                                                  withscores=True)
        return dict(found)

    def checks_come_due(self) -> list[str]:
        """The minutes pass: every scheduled question is due, and a worker's chores take it."""
        zset = keys.key(keys.UNRESOLVED, workspace_id=self.ws)
        due = list(self.unresolved())
        if due:
            self.deployment.redis.zadd(zset, dict.fromkeys(due, 0))
        return self.store.recheck_due(self.ws)

    def posted(self) -> list[str]:
        """Every body Twilio created, in order."""
        return [form.get("Body", [""])[0] for form, _ in self.twilio.created]

    def audit(self, texts: list[str]) -> dict[str, int]:
        """Sent (created at Twilio) vs stored (in the history) vs delivered (Twilio has it and Baton knows its sid)."""
        created = Counter(self.posted())
        stored = [m for m in self.store.messages(self.ws, self.id) if m["author"] == "agent"]
        return {"stored": sum(1 for m in stored if m["text"] in texts),
                "sent": sum(min(created[t], 1) for t in texts),
                "doubled": sum(created[t] - 1 for t in texts if created[t] > 1),
                "recorded_sent": sum(1 for m in stored if m.get("delivery") in ("queued", "sent", "delivered"))}


def _customer_message() -> Any:
    from gateway.handover.store import CustomerMessage

    return CustomerMessage(channel="wa", sender=CUSTOMER, provider_id="", text="Hello", customer="Maria",
                           delivers=True, published=True, timeout_ms=120_000)


@pytest.fixture
def desk(make_deployment: Callable[..., Deployment], twilio: FakeTwilio) -> Iterator[Desk]:
    deployment = make_deployment(channels=[{
        "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
        "from": BUSINESS, "api_base_url": twilio.base_url, "send_timeout": 0.5}])
    desk = Desk(deployment, twilio)
    with desk.client:
        yield desk


def test_a_message_twilio_took_without_answering_is_found_in_its_list_and_never_sent_twice(desk: Desk) -> None:
    desk.twilio.hold_next(1.5)  # created at Twilio, answered after the send's 0.5 s timeout
    [mid] = desk.say("Your refund was approved.")
    before = desk.store.now_ms()
    run_jobs(desk.deployment)
    after = desk.store.now_ms()
    assert desk.delivery(mid) == "unknown"
    assert desk.error(mid).endswith("Baton asks the channel whether it has it in 5 min, and sends it again only if "
                                    "it does not.")
    [due] = desk.unresolved().values()
    assert before + CHECK_AFTER_MS[0] <= due <= after + CHECK_AFTER_MS[0]
    run_jobs(desk.deployment)
    assert desk.checks_come_due() == [f"{desk.id}|{mid}"]
    run_jobs(desk.deployment)
    [(_, sid)] = desk.twilio.created
    assert desk.posted() == ["Your refund was approved."]  # asked, found, not sent again
    assert [r.method for r in desk.twilio.requests] == ["POST", "GET"]
    assert desk.delivery(mid) == "queued" and desk.error(mid) == ""
    assert desk.notes("delivery_confirmed") == [f"The channel already had this message ({sid}): it was not sent "
                                                "again."]
    assert desk.store.status(desk.ws, "wa", sid, "delivered")  # Twilio's later callbacks now reach it
    assert desk.audit(["Your refund was approved."]) == {"stored": 1, "sent": 1, "doubled": 0, "recorded_sent": 1}
    assert desk.unresolved() == {}


def test_a_message_whose_sender_died_before_twilio_got_it_is_sent_once_when_the_check_finds_nothing(
        desk: Desk) -> None:
    first, second = desk.say("One moment, I am checking.", "Found it: it ships today.")
    desk.store.outbox_next(desk.ws, desk.id, "dead-worker")  # took the first, died before calling Twilio
    desk.deployment.redis.delete(keys.key(keys.OUTBOX_LOCK, workspace_id=desk.ws, conversation_id=desk.id))
    run_jobs(desk.deployment)
    assert (desk.delivery(first), desk.delivery(second)) == ("unknown", "queued")
    assert desk.posted() == ["Found it: it ships today."]
    desk.checks_come_due()
    run_jobs(desk.deployment)
    assert desk.posted() == ["Found it: it ships today.", "One moment, I am checking."]
    assert [r.method for r in desk.twilio.requests] == ["POST", "GET", "POST"]  # asked before sending
    assert desk.delivery(first) == "queued" and desk.notes("delivery_confirmed") == []
    assert desk.audit(["One moment, I am checking.", "Found it: it ships today."]) == {
        "stored": 2, "sent": 2, "doubled": 0, "recorded_sent": 2}


def test_a_message_a_dead_sender_did_get_to_twilio_is_confirmed_not_sent_again(desk: Desk) -> None:
    [mid] = desk.say("Your table is booked for 8 pm.")
    outgoing = desk.store.outbox_next(desk.ws, desk.id, "dead-worker")
    assert outgoing is not None
    from gateway.work.delivery import send

    send(desk.deployment, desk.ws, desk.id, outgoing)  # Twilio took it; the worker died before recording it
    desk.deployment.redis.delete(keys.key(keys.OUTBOX_LOCK, workspace_id=desk.ws, conversation_id=desk.id))
    drain(desk.deployment, desk.ws, desk.id)  # the next sender finds it `sending`: unknown
    assert desk.delivery(mid) == "unknown"
    desk.checks_come_due()
    run_jobs(desk.deployment)
    assert desk.posted() == ["Your table is booked for 8 pm."]
    assert desk.delivery(mid) == "queued" and len(desk.notes("delivery_confirmed")) == 1


def test_a_check_twilio_cannot_answer_is_asked_again_later_then_left_to_an_agent(desk: Desk) -> None:
    desk.twilio.hold_next(1.5)
    [mid] = desk.say("We have restocked your size.")
    run_jobs(desk.deployment)
    for n, after in enumerate(CHECK_AFTER_MS[1:], 2):
        desk.twilio.fail_next(500, 20500, "Internal Server Error")  # the list fails too
        desk.checks_come_due()
        before = desk.store.now_ms()
        run_jobs(desk.deployment)
        assert desk.delivery(mid) == "unknown"
        assert desk.error(mid).startswith("Baton could not ask the channel whether it has it (Twilio error 20500")
        [due] = desk.unresolved().values()
        assert before + after - 5_000 <= due <= desk.store.now_ms() + after, n
    desk.twilio.fail_next(500, 20500, "Internal Server Error")
    desk.checks_come_due()
    run_jobs(desk.deployment)
    assert desk.unresolved() == {}
    assert desk.error(mid).endswith("Baton asked 3 times without an answer: send it again to ask once more.")
    assert desk.posted() == ["We have restocked your size."]  # never sent twice meanwhile
    # The agent's "Send again" asks once more: Twilio answers now, and has it.
    answer = desk.client.post(f"/api/conversations/{desk.id}/messages/{mid}/resend", headers=desk.headers)
    assert answer.status_code == 202
    run_jobs(desk.deployment)
    assert desk.posted() == ["We have restocked your size."] and desk.delivery(mid) == "queued"


def test_the_conversation_s_send_again_sends_only_what_twilio_does_not_have(desk: Desk) -> None:
    desk.twilio.hold_next(1.5)  # A reaches Twilio; its answer does not reach Baton
    [had] = desk.say("A: shipped.")
    run_jobs(desk.deployment)
    [lost] = desk.say("B: tracking number 123.")
    desk.store.outbox_next(desk.ws, desk.id, "dead-worker")  # B: a sender took it and died before calling Twilio
    desk.deployment.redis.delete(keys.key(keys.OUTBOX_LOCK, workspace_id=desk.ws, conversation_id=desk.id))
    desk.twilio.fail_next(503, 20503, "Service Unavailable", times=6)  # C: Twilio refuses it until Baton gives up
    [refused] = desk.say("C: invoice attached.")
    for _ in range(6):
        run_jobs(desk.deployment)
        desk.deployment.redis.zadd(keys.key(keys.OUTBOXES, workspace_id=desk.ws), {desk.id: 0}, xx=True)
        from gateway.work.dispatch import sweep

        sweep(desk.deployment, desk.store.now_ms())
    run_jobs(desk.deployment)
    [fine] = desk.say("D: bye.")
    run_jobs(desk.deployment)
    assert [desk.delivery(m) for m in (had, lost, refused, fine)] == ["unknown", "unknown", "failed", "queued"]
    assert desk.posted() == ["A: shipped.", "D: bye."]
    before = len(desk.twilio.created)
    answer = desk.client.post(f"/api/conversations/{desk.id}/resend", headers=desk.headers)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"queued": [had, lost, refused], "skipped": 0}
    assert desk.unresolved() == {}  # asked now, at the send, instead of later
    run_jobs(desk.deployment)
    resent = [form["Body"][0] for form, _ in desk.twilio.created[before:]]
    assert resent == ["B: tracking number 123.", "C: invoice attached."]  # A was found at Twilio
    assert {mid: desk.delivery(mid) for mid in (had, lost, refused, fine)} == dict.fromkeys(
        (had, lost, refused, fine), "queued")
    again = desk.client.post(f"/api/conversations/{desk.id}/resend", headers=desk.headers)
    assert again.status_code == 409 and "nothing to send again" in again.json()["error"]


def test_the_conversation_s_send_again_takes_a_list_and_refuses_bad_input(desk: Desk) -> None:
    url = f"/api/conversations/{desk.id}/resend"
    for body, reason in (([1], "must be a JSON object"), ({"messages": "1-0"}, "'messages' must be a list"),
                         ({"messages": ["x"]}, "not an event id"),
                         ({"messages": ["1-0"] * 1001}, "at most 1,000")):
        answer = desk.client.post(url, json=body, headers=desk.headers)
        assert answer.status_code == 400 and reason in answer.json()["error"], (body, answer.text)
    assert desk.client.post(url, json={"messages": ["1-0"]}).status_code == 401
    assert desk.client.post("/api/conversations/999999/resend", headers=desk.headers).status_code == 404


def test_the_worker_s_chores_queue_the_checks_that_are_due(desk: Desk) -> None:
    desk.twilio.hold_next(1.5)
    [mid] = desk.say("See you tomorrow.")
    run_jobs(desk.deployment)
    zset = keys.key(keys.UNRESOLVED, workspace_id=desk.ws)
    desk.deployment.redis.zadd(zset, {f"{desk.id}|{mid}": 0})
    worker.Chores(desk.deployment, "chores-test").every_second()
    assert desk.unresolved() == {} and desk.delivery(mid) == "pending"
    run_jobs(desk.deployment)
    assert desk.posted() == ["See you tomorrow."] and desk.delivery(mid) == "queued"


def test_on_whatsapp_cloud_an_unknown_send_is_left_to_an_agent_who_is_told_why(
        make_deployment: Callable[..., Deployment]) -> None:
    from tests import fake_meta as meta

    with meta.FakeMeta() as graph:
        deployment = make_deployment(channels=[{
            "name": "wa", "type": "whatsapp_cloud", "phone_number_id": meta.PHONE_NUMBER_ID,
            "access_token": meta.ACCESS_TOKEN, "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN,
            "api_base_url": graph.base_url, "send_timeout": 0.5}])
        ws = workspace_of(deployment)
        cid = deployment.store.inbound(ws, _customer_message()).conversation
        deployment.store.assign(ws, cid, "agent:alex", "agent:alex", reason="took it")
        graph.hold_next(1.5)  # Meta takes it; its answer comes after the send's timeout
        mid = deployment.store.post(ws, cid, "agent", "Your parcel is at the pick-up point.", agent_id="alex")
        run_jobs(deployment)
        delivery = keys.key(keys.DELIVERY, workspace_id=ws, conversation_id=cid)
        assert deployment.redis.hget(delivery, mid) == "unknown"
        assert str(deployment.redis.hget(delivery, f"{mid}:error")).endswith(
            "This channel cannot be asked whether it has a message: send it again only if the customer did not get "
            "it.")
        assert deployment.redis.zcard(keys.key(keys.UNRESOLVED, workspace_id=ws)) == 0  # nothing to ask Meta
        assert deployment.store.recheck_due(ws) == []
        # The agent decides: sent again, and the audit shows the double they accepted.
        with TestClient(create_app(deployment)) as client:
            answer = client.post(f"/api/conversations/{cid}/resend", headers=agent_token(deployment, "alex"))
        assert answer.status_code == 202 and answer.json()["queued"] == [mid]
        run_jobs(deployment)
        assert [body["text"]["body"] for _, body, _ in graph.sent] == ["Your parcel is at the pick-up point."] * 2
        assert deployment.redis.hget(delivery, mid) == "sent"


def test_the_same_words_sent_later_are_not_taken_for_the_message_twilio_never_got(desk: Desk) -> None:
    [lost] = desk.say("Thank you!")
    desk.store.outbox_next(desk.ws, desk.id, "dead-worker")  # died before calling Twilio
    desk.deployment.redis.delete(keys.key(keys.OUTBOX_LOCK, workspace_id=desk.ws, conversation_id=desk.id))
    run_jobs(desk.deployment)
    [later] = desk.say("Thank you!")  # the same words, sent (and recorded) after it
    run_jobs(desk.deployment)
    assert (desk.delivery(lost), desk.delivery(later)) == ("unknown", "queued")
    desk.checks_come_due()
    run_jobs(desk.deployment)
    # Twilio's only match is the later one: the two cannot be told apart, so Baton does not send it on its own.
    assert desk.posted() == ["Thank you!"] and desk.delivery(lost) == "unknown"
    assert "same words that Baton sent as another one" in desk.error(lost)
    assert desk.notes("delivery_confirmed") == []
    answer = desk.client.post(f"/api/conversations/{desk.id}/messages/{lost}/resend", headers=desk.headers)
    assert answer.status_code == 202
    run_jobs(desk.deployment)
    assert desk.posted() == ["Thank you!", "Thank you!"]  # the agent's decision: sent
    assert desk.delivery(lost) == "queued"
