"""Human handover end to end over HTTP with a real Redis: the AI answers, offers, hands over, notifies
every agent, takes the conversation back, and closes it when the customer is done."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rq.registry import ScheduledJobRegistry
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.lifecycle import HANDOVER_NOTICE
from gateway.queue import NOTIFY_RETRY
from gateway.web.app import create_app
from gateway.work.turn import GOODBYE, OFFER, OFFER_DECLINED, SORRY
from tests.conftest import (
    Visitor,
    agent_token,
    chat_channel,
    hosted_model,
    inbox_events,
    run_jobs,
    workspace_of,
)

UNKNOWN = "I'm sorry, I don't know the answer to that one."
HOURS = "We are open Monday to Friday, 9:00 to 17:00."
SHIPPING = "Delivery takes 2-4 business days."


def conversation(client: TestClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    response = client.get(f"/api/conversations/{cid}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["conversation"]  # type: ignore[no-any-return]


def chat(visitor: Visitor, deployment: Deployment, *texts: str) -> str:
    """Say each text and let the AI take its turn; return the conversation id."""
    cid = ""
    for text in texts:
        cid = visitor.say(text)["conversation"]
        run_jobs(deployment)
    return cid


@pytest.fixture
def agent(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex")


# --- how conversations start ----------------------------------------------------------------------

def test_a_new_webchat_conversation_is_owned_by_the_ai_and_answered_from_the_knowledge(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "How long does shipping take?")
    assert visitor.texts("ai") == [SHIPPING]
    assert conversation(client, agent, cid)["owner"] == "ai"
    listing = client.get("/api/conversations", params={"view": "ai"}, headers=agent).json()
    assert [c["id"] for c in listing["conversations"]] == [cid]
    assert listing["counts"]["ai"] == 1 and listing["counts"]["waiting"] == 0


# --- the customer asks for a human ----------------------------------------------------------------

@pytest.mark.parametrize("request_text", ["transfer to agent", "speak to someone", "support"])
def test_asking_for_a_human_hands_over_at_once_and_notifies_every_agent(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str],
        notifications: list[dict[str, Any]], request_text: str) -> None:
    cid = chat(visitor, deployment, "What are your opening hours?", request_text)
    assert visitor.texts("ai") == [HOURS, HANDOVER_NOTICE]
    detail = conversation(client, agent, cid)
    assert detail["owner"] == "none"
    assert detail["handover_reason"] == "The customer asked for a human"
    assert request_text in detail["handover_summary"]
    [handover] = inbox_events(client, agent, "conversation.handover")
    assert handover["conversation"] == cid
    assert handover["reason"] == "The customer asked for a human"
    assert request_text in handover["summary"]
    [notified] = [n for n in notifications if n["workspace"] == workspace_of(deployment)]
    assert notified["type"] == "handover" and notified["conversation"] == cid
    assert notified["route"] == "customer" and request_text in notified["summary"]
    counts = client.get("/api/conversations", params={"view": "waiting"}, headers=agent).json()["counts"]
    assert counts["waiting"] == 1 and counts["ai"] == 0


def test_a_request_for_a_human_as_the_very_first_message_still_notifies(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str],
        notifications: list[dict[str, Any]]) -> None:
    cid = chat(visitor, deployment, "I want to talk to a human please")
    assert visitor.texts("ai") == [HANDOVER_NOTICE]
    assert conversation(client, agent, cid)["owner"] == "none"
    assert [e["conversation"] for e in inbox_events(client, agent, "conversation.handover")] == [cid]
    assert [n["conversation"] for n in notifications
            if n["workspace"] == workspace_of(deployment) and n["type"] == "handover"] == [cid]


# --- the AI offers a transfer ---------------------------------------------------------------------

def test_the_ai_offers_a_transfer_after_consecutive_unknown_answers(
        deployment: Deployment, visitor: Visitor) -> None:
    chat(visitor, deployment, "Do you sell gift cards?", "Can I pay with bitcoin?")
    assert visitor.texts("ai") == [UNKNOWN, f"{UNKNOWN}\n\n{OFFER}"]


def test_a_known_answer_in_between_resets_the_unknown_streak(deployment: Deployment, visitor: Visitor) -> None:
    chat(visitor, deployment, "Do you sell gift cards?", "What are your opening hours?", "Can I pay with bitcoin?")
    assert visitor.texts("ai") == [UNKNOWN, HOURS, UNKNOWN]


@pytest.mark.parametrize("after, offered_at", [(1, 0), (3, 2)])
def test_the_number_of_unknown_answers_before_the_offer_is_configurable(
        make_deployment: Callable[..., Deployment], after: int, offered_at: int) -> None:
    deployment = make_deployment(ai_agent={"offer_after_unknown": after, "offer_after_repeats": 10})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        chat(visitor, deployment, "Do you sell gift cards?", "Can I pay with bitcoin?", "Is there a loyalty scheme?")
        replies = visitor.texts("ai")
    assert [i for i, text in enumerate(replies) if text.endswith(OFFER)][0] == offered_at
    assert all(not text.endswith(OFFER) for text in replies[:offered_at])


def test_the_ai_offers_a_transfer_when_the_customer_rephrases_the_same_question(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(ai_agent={"offer_after_unknown": 10})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        chat(visitor, deployment, "Do you sell gift cards?", "Are gift cards something you sell?")
        assert visitor.texts("ai") == [UNKNOWN, f"{UNKNOWN}\n\n{OFFER}"]


def test_the_ai_offers_a_transfer_when_the_customer_is_frustrated(deployment: Deployment,
                                                                   visitor: Visitor) -> None:
    chat(visitor, deployment, "How long does shipping take?", "this is useless")
    assert visitor.texts("ai") == [SHIPPING, f"{SORRY} {OFFER}"]


@pytest.mark.parametrize("answer", ["yes", "sure", "\N{THUMBS UP SIGN}", "yes please"])
def test_accepting_the_offer_hands_over(client: TestClient, deployment: Deployment, visitor: Visitor,
                                        agent: dict[str, str], notifications: list[dict[str, Any]],
                                        answer: str) -> None:
    cid = chat(visitor, deployment, "Do you sell gift cards?", "Can I pay with bitcoin?", answer)
    assert visitor.texts("ai")[-1] == HANDOVER_NOTICE
    detail = conversation(client, agent, cid)
    assert detail["owner"] == "none"
    assert detail["handover_reason"] == "The customer accepted the AI's offer of a human"
    [notified] = [n for n in notifications if n["workspace"] == workspace_of(deployment)]
    assert notified["route"] == "offer"


def test_declining_the_offer_keeps_the_ai(client: TestClient, deployment: Deployment, visitor: Visitor,
                                          agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "How long does shipping take?", "this is useless", "no thanks")
    assert visitor.texts("ai") == [SHIPPING, f"{SORRY} {OFFER}", OFFER_DECLINED]
    assert conversation(client, agent, cid)["owner"] == "ai"
    chat(visitor, deployment, "yes")  # the offer was declined: a later 'yes' is no acceptance
    assert conversation(client, agent, cid)["owner"] == "ai"
    assert HANDOVER_NOTICE not in visitor.texts("ai")


def test_another_question_is_answered_normally_and_the_offer_lapses(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "How long does shipping take?", "this is useless", "How do I return a lamp?")
    assert visitor.texts("ai") == [SHIPPING, f"{SORRY} {OFFER}", "Start a return from the order page within 30 days."]
    chat(visitor, deployment, "yes")
    assert conversation(client, agent, cid)["owner"] == "ai"
    assert HANDOVER_NOTICE not in visitor.texts("ai")


# --- every agent is notified ----------------------------------------------------------------------

class WebhookReceiver:
    """A local HTTP endpoint recording signed notifications; answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/baton"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver([500]) as server:
        yield server


def test_the_webhook_notifier_posts_signed_json_and_is_retried_after_a_500(
        make_deployment: Callable[..., Deployment], receiver: WebhookReceiver) -> None:
    secret = "a-shared-secret-of-16+"
    deployment = make_deployment(notifiers=[{"type": "webhook", "url": receiver.url, "secret": secret}])
    with TestClient(create_app(deployment)) as client:
        cid = chat(Visitor(client, chat_channel(deployment)), deployment, "transfer to agent")
    assert len(receiver.received) == 1  # answered 500: RQ schedules the retry
    scheduled = ScheduledJobRegistry(queue=deployment.queue)
    [job_id] = scheduled.get_job_ids()
    job = deployment.queue.fetch_job(job_id)
    assert job.func_name == "gateway.work.jobs.notify" and job.retries_left == NOTIFY_RETRY.max - 1
    delay = (scheduled.get_scheduled_time(job_id) - datetime.now(UTC)).total_seconds()
    assert 0 < delay <= NOTIFY_RETRY.intervals[0]
    scheduled.requeue(job_id)  # what RQ's scheduler does once the retry is due, without the wait
    run_jobs(deployment)
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        signed = headers["x-baton-timestamp"].encode() + b"." + body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-baton-signature"], expected)
        assert headers["content-type"] == "application/json"
        notification = json.loads(body)
        assert notification["type"] == "handover" and notification["conversation"] == cid
        assert notification["reason"] == "The customer asked for a human"
    assert not ScheduledJobRegistry(queue=deployment.queue).get_job_ids()


# --- human back to AI -----------------------------------------------------------------------------

def test_handed_back_the_ai_answers_and_does_not_hand_over_again_for_the_old_request(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "I need to speak to someone about my invoice")
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=agent).status_code == 200
    client.post(f"/api/conversations/{cid}/messages", json={"text": "Sorted, I fixed the invoice."}, headers=agent)
    handed = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "ai"}, headers=agent)
    assert handed.status_code == 200 and handed.json()["conversation"]["owner"] == "ai"
    run_jobs(deployment)
    chat(visitor, deployment, "How long does shipping take?")
    assert visitor.texts("ai") == [HANDOVER_NOTICE, SHIPPING]
    assert "You're chatting with Lumi again." in visitor.texts("system")
    detail = conversation(client, agent, cid)
    assert detail["owner"] == "ai"
    assert len(inbox_events(client, agent, "conversation.handover")) == 1


def test_handed_back_a_hosted_model_is_told_to_carry_on(
        make_deployment: Callable[..., Deployment], fake_openai: Any) -> None:
    deployment = make_deployment(ai_agent=hosted_model(fake_openai))
    headers = agent_token(deployment, "alex")
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = chat(visitor, deployment, "transfer to agent")
        client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=headers)
        client.post(f"/api/conversations/{cid}/assign", json={"assignee": "ai"}, headers=headers)
        fake_openai.reply("Your parcel left the warehouse today.")
        before = len(fake_openai.requests)
        chat(visitor, deployment, "Where is my parcel?")
        assert visitor.texts("ai")[-1] == "Your parcel left the warehouse today."
    asked = fake_openai.requests[before]["messages"]
    assert any(m["role"] == "system" and "handed it back to you" in m["content"] for m in asked)
    assert asked[-1] == {"role": "user", "content": "Where is my parcel?"}


def test_closing_makes_the_next_message_a_fresh_conversation_with_the_ai(
        client: TestClient, deployment: Deployment, visitor: Visitor, agent: dict[str, str]) -> None:
    old = chat(visitor, deployment, "support")
    client.post(f"/api/conversations/{old}/assign", json={"assignee": "me"}, headers=agent)
    closed = client.post(f"/api/conversations/{old}/close", headers=agent)
    assert closed.status_code == 200 and closed.json()["conversation"]["status"] == "closed"
    new = chat(visitor, deployment, "What are your opening hours?")
    assert new != old
    assert visitor.history()["conversation"] == {"id": new, "status": "open", "with": "ai", "form_pending": False,
                                                 "language": "en"}
    assert visitor.texts("ai") == [HOURS]
    fresh = conversation(client, agent, new)
    assert fresh["owner"] == "ai" and fresh["previous"] == old
    assert fresh["contact"]["conversations"] == [old, new]
    assert conversation(client, agent, old)["status"] == "closed"
    closed_view = client.get("/api/conversations", params={"view": "closed"}, headers=agent).json()
    assert [c["id"] for c in closed_view["conversations"]] == [old]


# --- the AI closes when the customer is done ------------------------------------------------------

def test_thanks_thats_all_closes_the_chat_with_a_goodbye(client: TestClient, deployment: Deployment,
                                                          visitor: Visitor, agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "How long does shipping take?", "thanks, that's all")
    assert visitor.texts("ai") == [SHIPPING, GOODBYE]
    detail = conversation(client, agent, cid)
    assert detail["status"] == "closed"
    assert [m["data"]["actor"] for m in detail["messages"] if m["kind"] == "closed"] == ["ai"]
    assert [e["actor"] for e in inbox_events(client, agent, "conversation.closed")] == ["ai"]
    assert chat(visitor, deployment, "What are your opening hours?") != cid


def test_thanks_but_i_still_need_does_not_close(client: TestClient, deployment: Deployment, visitor: Visitor,
                                                agent: dict[str, str]) -> None:
    cid = chat(visitor, deployment, "How long does shipping take?", "thanks, but I still need to return a lamp")
    assert GOODBYE not in visitor.texts("ai")
    assert conversation(client, agent, cid)["status"] == "open"


def test_thanks_before_the_ai_said_anything_does_not_close(deployment: Deployment, visitor: Visitor) -> None:
    chat(visitor, deployment, "thanks")
    assert visitor.history()["conversation"]["status"] == "open"


def test_closing_when_done_can_be_turned_off(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(ai_agent={"close_when_done": False})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        chat(visitor, deployment, "How long does shipping take?", "thanks, that's all")
        assert visitor.history()["conversation"]["status"] == "open"


# --- a hosted model (litellm → FakeOpenAI) --------------------------------------------------------

def test_a_hosted_models_handover_tool_call_hands_over(
        make_deployment: Callable[..., Deployment], fake_openai: Any,
        notifications: list[dict[str, Any]]) -> None:
    deployment = make_deployment(ai_agent=hosted_model(fake_openai))
    headers = agent_token(deployment, "alex")
    fake_openai.reply_tool_call("handover_to_human", {"reason": "a billing dispute"})
    fake_openai.reply("The customer disputes a charge on their invoice.")
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = chat(visitor, deployment, "I was charged twice for my order")
        assert visitor.texts("ai") == [HANDOVER_NOTICE]
        detail = conversation(client, headers, cid)
        [handover] = inbox_events(client, headers, "conversation.handover")
    assert fake_openai.requests[0]["tools"][0]["function"]["name"] == "handover_to_human"
    assert detail["owner"] == "none"
    assert detail["handover_reason"] == "The AI judged that a human should take over: a billing dispute"
    assert detail["handover_summary"] == "The customer disputes a charge on their invoice."
    assert handover["summary"] == detail["handover_summary"]
    [notified] = [n for n in notifications if n["workspace"] == workspace_of(deployment)]
    assert notified["route"] == "model"
    [note] = [m for m in detail["messages"] if m["kind"] == "handover"]
    assert note["data"]["route"] == "model" and note["visibility"] == "internal"


def test_a_provider_failure_hands_over_instead_of_going_silent_and_does_not_loop(
        make_deployment: Callable[..., Deployment], fake_openai: Any,
        notifications: list[dict[str, Any]]) -> None:
    deployment = make_deployment(ai_agent=hosted_model(fake_openai, retry_budget=0))
    headers = agent_token(deployment, "alex")
    fake_openai.fail(500)  # the reply; the summary is not asked of a model that just failed
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = chat(visitor, deployment, "Where is my parcel?")
        assert visitor.texts("ai") == [HANDOVER_NOTICE]
        detail = conversation(client, headers, cid)
        assert detail["owner"] == "none"
        assert detail["handover_reason"].startswith("The AI could not answer (")
        assert "Where is my parcel?" in detail["handover_summary"]  # the extractive summary stands in
        asked = len(fake_openai.requests)
        assert asked == 1
        fake_openai.fail(500)
        chat(visitor, deployment, "Hello? Anyone there?", "???")
        assert visitor.texts("ai") == [HANDOVER_NOTICE]
        assert len(inbox_events(client, headers, "conversation.handover")) == 1
        assert conversation(client, headers, cid)["owner"] == "none"
    assert len(fake_openai.requests) == asked  # waiting for a human: the model is not asked again
    assert [n["route"] for n in notifications if n["workspace"] == workspace_of(deployment)] == ["error"]
