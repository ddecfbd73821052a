"""A failed delivery says why and, when sending the same message again can help (rate limited, unreachable, the
provider down, a token since fixed), an agent may send it again; when it cannot (not on WhatsApp, blocked, the
24-hour window closed), it is marked final and a resend is refused with the reason. Both providers, through their
local fakes, signed webhooks and a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway.deployment import Deployment
from tests import fake_meta as meta
from tests.conftest import run_jobs, workspace_of
from tests.fake_meta import FakeMeta
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.test_window import PUBLIC, _conversation, _from_meta, _from_twilio, _taken, graph, site, twilio

pytestmark = pytest.mark.redis
__all__ = ["graph", "site", "twilio"]  # the fixtures, shared with test_window.py


def _reply(deployment: Deployment, client: TestClient, channel: str, text: str,
           before: Callable[[], None] = lambda: None) -> tuple[str, str, dict[str, str]]:
    """An agent's reply in the channel's one conversation (`before` is called just before it is sent): (conversation,
    message id, the agent's headers)."""
    conversation_id = _conversation(deployment, channel)
    headers = _taken(deployment, client, conversation_id)
    run_jobs(deployment)
    before()
    answer = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers, json={"text": text})
    assert answer.status_code == 201, answer.text
    run_jobs(deployment)
    return conversation_id, answer.json()["id"], headers


def _message(client: TestClient, headers: dict[str, str], conversation_id: str, message_id: str) -> dict[str, Any]:
    messages = client.get(f"/api/conversations/{conversation_id}", headers=headers).json()["conversation"]["messages"]
    return next(m for m in messages if m["id"] == message_id)


def _twilio_status(client: TestClient, sid: str, status: str, code: str) -> None:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": status, "ErrorCode": code,
            "To": "whatsapp:+14155550100", "From": "whatsapp:+14155238886"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}/webhooks/wa-twilio", form)
    assert client.post("/webhooks/wa-twilio", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200


def _resend(client: TestClient, headers: dict[str, str], conversation_id: str, message_id: str) -> Any:
    return client.post(f"/api/conversations/{conversation_id}/messages/{message_id}/resend", headers=headers)


def test_a_twilio_reply_undelivered_for_a_reason_that_can_pass_is_sent_again(
        site: tuple[Deployment, TestClient], twilio: FakeTwilio) -> None:
    deployment, client = site
    _from_twilio(client, "is my lamp shipped?", "SM" + "a" * 32)
    run_jobs(deployment)
    conversation_id, message_id, headers = _reply(deployment, client, "wa-twilio", "Yes, it left today.")
    [sid] = [sid for form, sid in twilio.created if form["Body"] == ["Yes, it left today."]]
    _twilio_status(client, sid, "undelivered", "30003")
    failed = _message(client, headers, conversation_id, message_id)
    assert failed["delivery"] == "failed" and "delivery_final" not in failed
    assert failed["delivery_error"] == "Twilio error 30003: the customer's phone is unreachable"
    assert _resend(client, headers, conversation_id, message_id).status_code == 202
    run_jobs(deployment)
    bodies = [form["Body"] for form, _ in twilio.created]
    assert bodies.count(["Yes, it left today."]) == 2
    again = _message(client, headers, conversation_id, message_id)
    assert again["delivery"] in ("queued", "sent") and "delivery_error" not in again


def test_a_twilio_reply_the_customer_cannot_receive_is_final_and_not_sent_again(
        site: tuple[Deployment, TestClient], twilio: FakeTwilio) -> None:
    deployment, client = site
    _from_twilio(client, "hello", "SM" + "b" * 32)
    run_jobs(deployment)
    conversation_id, message_id, headers = _reply(deployment, client, "wa-twilio", "Hi, how can I help?")
    [sid] = [sid for form, sid in twilio.created if form["Body"] == ["Hi, how can I help?"]]
    _twilio_status(client, sid, "undelivered", "63032")
    failed = _message(client, headers, conversation_id, message_id)
    assert failed["delivery_final"] is True
    refused = _resend(client, headers, conversation_id, message_id)
    assert refused.status_code == 409, refused.text
    assert "failed for good" in refused.json()["error"] and "blocked" in refused.text
    run_jobs(deployment)
    assert [form["Body"] for form, _ in twilio.created].count(["Hi, how can I help?"]) == 1


def test_meta_failures_at_send_time_are_final_or_not_by_their_code(
        site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    _from_meta(client, "where is my order?", time.time())
    run_jobs(deployment)
    conversation_id, first, headers = _reply(deployment, client, "wa-meta", "It ships tomorrow.",
                                             lambda: graph.fail_next(400, 131026, "Message undeliverable"))
    final = _message(client, headers, conversation_id, first)
    assert final["delivery"] == "failed" and final["delivery_final"] is True
    assert final["delivery_error"] == "WhatsApp error 131026: not deliverable (not on WhatsApp, or an old app)"
    assert _resend(client, headers, conversation_id, first).status_code == 409

    graph.fail_next(401, 190, "Error validating access token")  # a token an admin then renews: worth sending again
    answer = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers, json={"text": "Sorry!"})
    second = answer.json()["id"]
    run_jobs(deployment)
    failed = _message(client, headers, conversation_id, second)
    assert failed["delivery"] == "failed" and "delivery_final" not in failed
    assert _resend(client, headers, conversation_id, second).status_code == 202
    run_jobs(deployment)
    assert [body["text"]["body"] for _, body, _ in graph.sent if body["type"] == "text"][-1:] == ["Sorry!"]
    assert "It ships tomorrow." not in [body.get("text", {}).get("body") for _, body, _ in graph.sent]
    assert _message(client, headers, conversation_id, second)["delivery"] == "sent"


def test_a_meta_failed_status_keeps_its_reason_and_says_whether_sending_again_can_help(
        site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    _from_meta(client, "hello", time.time())
    run_jobs(deployment)
    conversation_id, first, headers = _reply(deployment, client, "wa-meta", "Hello Maria!")
    answer = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                         json={"text": "Still there?"})
    second = answer.json()["id"]
    run_jobs(deployment)
    wamids = {body["text"]["body"]: wamid for _, body, wamid in graph.sent}
    statuses = [meta.status(wamids["Hello Maria!"], "failed", [{"code": 131049, "title": "per-user limit"}]),
                meta.status(wamids["Still there?"], "failed", [{"code": 131047, "title": "Re-engagement message"}])]
    body = json.dumps(meta.webhook(meta.change(statuses=statuses))).encode()
    assert client.post("/webhooks/wa-meta", content=body, headers=meta.signed_headers(body)).status_code == 200
    limited, closed = (_message(client, headers, conversation_id, m) for m in (first, second))
    assert (limited["delivery"], "delivery_final" in limited) == ("failed", False)
    assert limited["delivery_error"].startswith("WhatsApp error 131049:")
    assert (closed["delivery"], closed.get("delivery_final")) == ("failed", True)
    assert closed["delivery_error"] == "WhatsApp error 131047: the 24-hour window is closed"
    assert _resend(client, headers, conversation_id, second).status_code == 409
    assert _resend(client, headers, conversation_id, first).status_code == 202


def test_an_answer_held_back_by_the_closed_window_is_final(site: tuple[Deployment, TestClient],
                                                           graph: FakeMeta) -> None:
    deployment, client = site
    _from_meta(client, "my lamp is broken", time.time() - 25 * 3600)
    run_jobs(deployment)
    conversation_id = _conversation(deployment, "wa-meta")
    held = [m for m in deployment.store.messages(workspace_of(deployment), conversation_id)
            if m["author"] == "ai" and m.get("delivery") == "failed"]
    assert held and all(m.get("delivery_final") is True for m in held)
    assert graph.sent == []
