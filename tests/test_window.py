"""WhatsApp's 24-hour window on both providers: it closes 24 hours after the customer's last message as the provider
stamped it; outside it an agent's free text is refused (409) before anything is sent, a template goes out instead, and
neither the AI nor a follow-up ever sends free text."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway import keys
from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests import fake_meta as meta
from tests.conftest import agent_token, run_jobs, workspace_of
from tests.fake_meta import FakeMeta
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.redis
HOUR = 3600
PUBLIC = "https://baton.example.com"
CONTENT_SID = "HX" + "0123456789abcdef" * 2


@pytest.fixture
def graph() -> Iterator[FakeMeta]:
    with FakeMeta() as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def site(make_deployment: Callable[..., Deployment], graph: FakeMeta,
         twilio: FakeTwilio) -> Iterator[tuple[Deployment, TestClient]]:
    deployment = make_deployment(public_url=PUBLIC, channels=[
        {"name": "wa-meta", "type": "whatsapp_cloud", "phone_number_id": meta.PHONE_NUMBER_ID,
         "access_token": meta.ACCESS_TOKEN, "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN,
         "api_base_url": graph.base_url, "templates": {"follow_up": {
             "name": "support_follow_up", "language": "en", "body": "Hi {{1}}, about {{2}}: we are on it.",
             "params": ["name", "topic"]}}},
        {"name": "wa-twilio", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
         "from": "+14155238886", "api_base_url": twilio.base_url, "templates": {"follow_up": {
             "content_sid": CONTENT_SID, "body": "Hi {{1}}, we are on it.", "params": ["name"]}}}])
    with TestClient(create_app(deployment)) as client:
        yield deployment, client


def _from_meta(client: TestClient, text: str, sent_at: float) -> None:
    body = json.dumps(meta.webhook(meta.change([meta.text(text, timestamp=sent_at)]))).encode()
    assert client.post("/webhooks/wa-meta", content=body, headers=meta.signed_headers(body)).status_code == 200


def _from_twilio(client: TestClient, text: str, sid: str) -> None:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+14155550100",
            "To": "whatsapp:+14155238886", "Body": text, "NumMedia": "0"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}/webhooks/wa-twilio", form)
    assert client.post("/webhooks/wa-twilio", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200


def _conversation(deployment: Deployment, channel_name: str) -> str:
    store = deployment.store
    workspace_id = workspace_of(deployment)
    [conversation_id] = [c for c in store.conversation_ids(workspace_id, "all")
                         if store.conversation(workspace_id, c)["channel"] == channel_name]
    return conversation_id


def _taken(deployment: Deployment, client: TestClient, conversation_id: str) -> dict[str, str]:
    headers = agent_token(deployment)
    answer = client.post(f"/api/conversations/{conversation_id}/assign", headers=headers, json={"assignee": "me"})
    assert answer.status_code == 200, answer.text
    return headers


def test_the_window_closes_24_hours_after_the_providers_stamp(site: tuple[Deployment, TestClient]) -> None:
    deployment, client = site
    stamped = time.time() - 23 * HOUR  # delivered late: the window still closes 24 h after the customer wrote
    _from_meta(client, "hello?", stamped)
    conversation_id = _conversation(deployment, "wa-meta")
    headers = agent_token(deployment)
    detail = client.get(f"/api/conversations/{conversation_id}", headers=headers).json()["conversation"]
    assert detail["window_closes_at"] == int(stamped) * 1000 + 24 * HOUR * 1000
    listed = client.get("/api/conversations?view=all", headers=headers).json()["conversations"]
    assert listed[0]["window_closes_at"] == detail["window_closes_at"]
    assert [t["key"] for t in detail["templates"]] == ["follow_up"]
    _from_meta(client, "an older one, delivered later", stamped - HOUR)  # never moves the window back
    detail = client.get(f"/api/conversations/{conversation_id}", headers=headers).json()["conversation"]
    assert detail["window_closes_at"] == int(stamped) * 1000 + 24 * HOUR * 1000


def test_outside_the_window_free_text_is_refused_and_a_template_goes_out(site: tuple[Deployment, TestClient],
                                                                          graph: FakeMeta) -> None:
    deployment, client = site
    _from_meta(client, "my lamp is broken", time.time() - 25 * HOUR)
    run_jobs(deployment)  # the AI's answer is not sent either: the window is closed
    assert graph.sent == []
    conversation_id = _conversation(deployment, "wa-meta")
    headers = _taken(deployment, client, conversation_id)
    refused = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                          json={"text": "Sorry for the wait!"})
    assert refused.status_code == 409 and "24-hour" in refused.json()["error"], refused.text
    wrong = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                        json={"template": "follow_up", "params": ["Maria"]})
    assert wrong.status_code == 409 and "2 parameter" in wrong.json()["error"]
    assert client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                       json={"template": "nope"}).status_code == 409
    sent = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                       json={"template": "follow_up", "params": ["Maria", "your arc lamp"]})
    assert sent.status_code == 201, sent.text
    run_jobs(deployment)
    [(_, body, _)] = graph.sent
    assert body["type"] == "template" and body["template"]["name"] == "support_follow_up"
    assert [p["text"] for p in body["template"]["components"][0]["parameters"]] == ["Maria", "your arc lamp"]
    messages = deployment.store.messages(workspace_of(deployment), conversation_id)
    ai = [m for m in messages if m["author"] == "ai" and m.get("visibility", "public") == "public"]
    assert ai and all(m.get("delivery") == "failed" and "24-hour" in m.get("delivery_error", "") for m in ai)
    [template] = [m for m in messages if m["author"] == "agent"]
    assert template["text"] == "Hi Maria, about your arc lamp: we are on it."


def test_inside_the_window_free_text_goes_out(site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    _from_meta(client, "I want a human", time.time() - 60)
    run_jobs(deployment)
    conversation_id = _conversation(deployment, "wa-meta")
    headers = _taken(deployment, client, conversation_id)
    assert client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                       json={"text": "Alex here"}).status_code == 201
    run_jobs(deployment)
    assert graph.sent[-1][1]["text"]["body"] == "Alex here"


def test_twilio_has_the_same_window_and_sends_templates_by_content_sid(site: tuple[Deployment, TestClient],
                                                                       twilio: FakeTwilio) -> None:
    deployment, client = site
    _from_twilio(client, "hello", "SM" + "1" * 32)
    run_jobs(deployment)
    conversation_id = _conversation(deployment, "wa-twilio")
    workspace_id = workspace_of(deployment)
    # Twilio stamps no time on its webhook: the window runs from when Baton received it. Make that 25 hours ago.
    deployment.redis.hset(keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id=conversation_id),
                          "customer_at", int((time.time() - 25 * HOUR) * 1000))
    headers = _taken(deployment, client, conversation_id)
    refused = client.post(f"/api/conversations/{conversation_id}/messages", headers=headers, json={"text": "hi"})
    assert refused.status_code == 409 and "24-hour" in refused.json()["error"]
    before = len(twilio.created)
    assert client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                       json={"template": "follow_up", "params": ["Maria"]}).status_code == 201
    run_jobs(deployment)
    [(form, _)] = twilio.created[before:]
    assert form["ContentSid"] == [CONTENT_SID] and json.loads(form["ContentVariables"][0]) == {"1": "Maria"}
    assert "Body" not in form


def test_a_template_setting_names_its_yaml_path(make_deployment: Callable[..., Deployment]) -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        make_deployment(channels=[{"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID,
                                   "auth_token": AUTH_TOKEN, "from": "+14155238886",
                                   "templates": {"follow_up": {"content_sid": "HX12"}}}])
    assert "workspaces[0].channels[0].templates.follow_up.content_sid" in refused.value.reason


def test_twilio_failures_say_why_in_words_and_never_hold_exception_text(twilio: FakeTwilio) -> None:
    from connectors.twilio_whatsapp import TwilioWhatsApp
    from gateway.connector import Outbound, WebhookRequest
    from gateway.errors import SendFailed

    def connector(base_url: str) -> TwilioWhatsApp:
        settings = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155238886",
                    "api_base_url": base_url, "send_timeout": 1}
        return TwilioWhatsApp("wa", TwilioWhatsApp.Settings.model_validate(settings))

    message = Outbound("wa", "whatsapp:+14155550100", "hello", "1-0", "1")
    twilio.fail_next(400, 63016, "Failed to send freeform message because you are outside the allowed window.")
    with pytest.raises(SendFailed) as window:
        connector(twilio.base_url).send(message)
    assert window.value.reason == ("Twilio error 63016: the customer's 24-hour window is closed: only an approved "
                                   "template can reach them")
    with pytest.raises(SendFailed) as unreachable:
        connector("http://127.0.0.1:9").send(message)
    assert unreachable.value.reason == "Twilio unreachable (the connection was refused or timed out)"
    form = [("MessageSid", "SM" + "2" * 32), ("MessageStatus", "undelivered"), ("ErrorCode", "63032")]
    [status] = connector(twilio.base_url).parse(WebhookRequest("POST", PUBLIC, {}, b"", form, {}))
    assert status.reason == "Twilio error 63032: the customer cannot receive this message (blocked, or not on WhatsApp)"
