"""POST /webhooks/{channel} end to end: a Twilio-signed WhatsApp message in, the AI's reply out through
Twilio's REST API (a local fake speaking its protocol), with signature checks and dedupe."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway import keys
from gateway.deployment import Deployment
from gateway.handover.lifecycle import HANDOVER_NOTICE
from gateway.plugin import (
    Acknowledgement,
    ConnectorSettings,
    DeliveryStatus,
    Inbound,
    SignatureInvalid,
    WebhookConnector,
    WebhookRequest,
    WebhookSchema,
    hookimpl,
)
from gateway.plugin_host import plugin_manager
from gateway.web import pipeline
from gateway.web.app import create_app
from gateway.work.turn import ATTACHMENT, OFFER, TEXT_ONLY
from tests.conftest import agent_token, run_jobs, workspace_of
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

CUSTOMER = "whatsapp:+14155550100"
BUSINESS = "whatsapp:+14155550199"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def whatsapp_channel(twilio: FakeTwilio, **settings: Any) -> dict[str, Any]:
    return {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": twilio.base_url, **settings}


@pytest.fixture
def wa(make_deployment: Callable[..., Deployment], twilio: FakeTwilio) -> Iterator[tuple[Deployment, TestClient]]:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)])
    with TestClient(create_app(deployment)) as client:
        yield deployment, client


def inbound(sid: str, body: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS,
            "Body": body, "NumMedia": "0", "ProfileName": "Maria", "WaId": "14155550100", **extra}


def post_signed(client: TestClient, form: dict[str, str], url: str = "http://testserver/webhooks/wa",
                token: str = AUTH_TOKEN, path: str = "/webhooks/wa", **headers: str) -> Any:
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature, **headers})


def sent_bodies(twilio: FakeTwilio) -> list[str]:
    return [r.form["Body"][0] for r in twilio.requests]


def test_signed_message_is_acknowledged_with_twiml_and_answered_through_twilio(wa, twilio) -> None:
    deployment, client = wa
    response = post_signed(client, inbound("SM" + "a" * 32, "How long does shipping take?"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response" in response.text
    run_jobs(deployment)
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form["To"] == [CUSTOMER]
    assert request.form["From"] == [BUSINESS]
    assert request.form["Body"] == ["Delivery takes 2-4 business days."]


def test_reply_records_twilio_sid_and_status_callbacks_never_go_backwards(wa, twilio) -> None:
    deployment, client = wa
    post_signed(client, inbound("SM" + "b" * 32, "What are your opening hours?"))
    run_jobs(deployment)
    workspace = workspace_of(deployment)
    conversation = deployment.store.conversation_ids(workspace, "ai")[0]
    reply = [m for m in deployment.store.messages(workspace, conversation) if m["author"] == "ai"][0]
    assert reply["delivery"] == "queued"
    [record] = deployment.redis.keys(f"baton:{workspace}:sent:wa:SM*")
    sid = record.rsplit(":", 1)[1]
    for status in ("delivered", "read", "sent"):  # "sent" arrives late: it must not overwrite "read"
        callback = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
        assert post_signed(client, callback).status_code == 200
    reply = [m for m in deployment.store.messages(workspace, conversation) if m["author"] == "ai"][0]
    assert reply["delivery"] == "read"


def test_duplicate_delivery_of_the_same_message_sid_gives_one_message_and_one_reply(wa, twilio) -> None:
    deployment, client = wa
    form = inbound("SM" + "c" * 32, "How do I return a lamp?")
    first = post_signed(client, form, **{"I-Twilio-Idempotency-Token": "tok-1"})
    retry = post_signed(client, form, **{"I-Twilio-Idempotency-Token": "tok-1"})
    assert first.status_code == retry.status_code == 200
    run_jobs(deployment)
    post_signed(client, form)  # a late retry after the reply went out
    run_jobs(deployment)
    workspace = workspace_of(deployment)
    [cid] = deployment.store.conversation_ids(workspace, "all")
    customer = [m for m in deployment.store.messages(workspace, cid) if m["author"] == "customer"]
    assert [m["text"] for m in customer] == ["How do I return a lamp?"]
    assert sent_bodies(twilio) == ["Start a return from the order page within 30 days."]


@pytest.mark.parametrize("token, url, note", [
    ("wrong-token", "http://testserver/webhooks/wa", "signed with another account's token"),
    (AUTH_TOKEN, "http://testserver/webhooks/other", "signed for another URL"),
])
def test_bad_signatures_are_refused_and_nothing_is_recorded(wa, twilio, token, url, note) -> None:
    deployment, client = wa
    response = post_signed(client, inbound("SM" + "d" * 32, "hello"), url=url, token=token)
    assert response.status_code == 403, note
    assert "X-Twilio-Signature" in response.json()["error"]
    assert deployment.store.conversation_ids(workspace_of(deployment), "all") == []


def test_missing_signature_header_is_refused(wa) -> None:
    deployment, client = wa
    response = client.post("/webhooks/wa", data=inbound("SM" + "e" * 32, "hello"))
    assert response.status_code == 403
    assert "missing" in response.json()["error"].lower()


def test_public_url_is_used_to_verify_behind_a_tls_proxy(make_deployment, twilio) -> None:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)], public_url="https://support.example.com")
    with TestClient(create_app(deployment)) as client:
        form = inbound("SM" + "f" * 32, "hi")
        # Twilio signed the public https URL; the app itself is reached over plain http by the proxy.
        assert post_signed(client, form, url="https://support.example.com/webhooks/wa").status_code == 200
        assert post_signed(client, form, url="http://testserver/webhooks/wa").status_code == 403


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "baton.webhooks" and r.levelno == logging.WARNING]


def test_a_webhook_signed_for_another_url_is_logged_with_the_url_checked_and_the_public_url_to_set(
        make_deployment, twilio, caplog) -> None:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)], public_url="https://old.example.com")
    caplog.set_level(logging.INFO)
    with TestClient(create_app(deployment)) as client:
        form = inbound("SM" + "1" * 32, "hi")
        # Twilio calls (and signs) the URL in its console; the proxy passes its Host on.
        for _ in range(3):
            refused = post_signed(client, form, url="https://support.example.com/webhooks/wa",
                                  host="support.example.com")
            assert refused.status_code == 403
    [line] = _refusals(caplog)  # once a minute, not once per request
    assert "channel wa refused (403): X-Twilio-Signature does not match" in line
    assert "checked against https://old.example.com/webhooks/wa" in line
    assert ("the provider signed https://support.example.com/webhooks/wa: set public_url (BATON_PUBLIC_URL) to "
            "https://support.example.com instead of https://old.example.com") in line


def test_behind_a_proxy_without_public_url_the_refusal_names_the_url_the_provider_signed(
        make_deployment, twilio, caplog) -> None:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)])
    caplog.set_level(logging.INFO)
    with TestClient(create_app(deployment)) as client:
        refused = post_signed(client, inbound("SM" + "2" * 32, "hi"), url="https://support.example.com/webhooks/wa",
                              **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "support.example.com"})
    assert refused.status_code == 403
    [line] = _refusals(caplog)
    assert "checked against http://testserver/webhooks/wa" in line
    assert "set public_url (BATON_PUBLIC_URL) to https://support.example.com" in line


def test_a_refusal_the_url_does_not_explain_names_the_other_suspects_and_counts_what_was_held_back(
        make_deployment, twilio, caplog) -> None:
    from gateway.web import webhooks

    deployment = make_deployment(channels=[whatsapp_channel(twilio)])
    caplog.set_level(logging.INFO)
    with TestClient(create_app(deployment)) as client:
        for sid in ("3", "4", "5"):
            post_signed(client, inbound("SM" + sid * 32, "hi"), token="another-accounts-token")
        webhooks._refusals[f"{workspace_of(deployment)}/wa"]._last = 0.0  # a minute has passed
        client.post("/webhooks/wa", data=inbound("SM" + "6" * 32, "hi"))  # no signature at all
    first, second = _refusals(caplog)
    assert "the provider calls another URL than the URL Baton received" in first
    assert "or the channel's credentials are not those of the account that sent it" in first
    assert "missing X-Twilio-Signature header" in second
    assert "Likely cause: the request did not come from Twilio, or a proxy dropped the header" in second
    assert second.endswith("(2 more like this since the last one)")


def test_unknown_channel_is_404_and_disabled_channel_is_503(make_deployment, twilio) -> None:
    deployment = make_deployment(channels=[
        {"name": "wa", "type": "twilio_whatsapp", "account_sid": "", "auth_token": "", "from": ""}])
    with TestClient(create_app(deployment)) as client:
        missing = client.post("/webhooks/nope", data={"a": "b"})
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        disabled = client.post("/webhooks/wa", data={"a": "b"})
        assert disabled.status_code == 503 and "auth_token" in disabled.json()["error"]


def test_malformed_bodies_get_400_with_a_reason(wa) -> None:
    deployment, client = wa
    no_sid = inbound("", "hello")
    del no_sid["MessageSid"]
    response = post_signed(client, no_sid)
    assert response.status_code == 400 and "MessageSid" in response.json()["error"]
    garbage = client.post("/webhooks/wa", content=b"%zz=&&=", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})
    assert garbage.status_code in (400, 403)


def test_webchat_channels_take_no_webhooks(client, deployment) -> None:
    response = client.post(f"/webhooks/{workspace_of(deployment)}-chat", data={"a": "b"})
    assert response.status_code == 404


def test_a_send_that_twilio_refuses_is_recorded_for_the_agents(wa, twilio) -> None:
    deployment, client = wa
    twilio.fail_next(400, 63016, "Outside the allowed window")
    post_signed(client, inbound("SM" + "9" * 32, "What are your opening hours?"))
    run_jobs(deployment)
    workspace = workspace_of(deployment)
    [cid] = deployment.store.conversation_ids(workspace, "all")
    messages = deployment.store.messages(workspace, cid)
    failure = [m for m in messages if m["kind"] == "delivery_failed"]
    assert failure and "63016" in failure[0]["text"]
    assert [m for m in messages if m["author"] == "ai"][0]["delivery"] == "failed"


def test_a_429_from_twilio_is_retried_with_backoff_and_the_order_is_kept(wa, twilio) -> None:
    from gateway.work.dispatch import GRACE_MS, sweep

    deployment, client = wa
    twilio.fail_next(429, 20429, "Too Many Requests")
    post_signed(client, inbound("SM" + "8" * 32, "What are your opening hours?"))
    run_jobs(deployment)
    assert len(twilio.requests) == 1 and sent_bodies(twilio) == ["We are open Monday to Friday, 9:00 to 17:00."]
    workspace = workspace_of(deployment)
    [(cid, due)] = deployment.redis.zrange(f"baton:{workspace}:outboxes", 0, -1, withscores=True)
    assert 700 <= due + GRACE_MS - deployment.store.now_ms() <= 1_000  # the first retry is due a second later
    post_signed(client, inbound("SM" + "7" * 32, "How long does shipping take?"))
    run_jobs(deployment)
    assert len(twilio.requests) == 1  # the next reply waits behind the one being retried: order is kept
    assert sweep(deployment, deployment.store.now_ms()) == 0  # not due yet
    time.sleep(1.05)
    assert sweep(deployment, deployment.store.now_ms()) == 1
    run_jobs(deployment)
    assert sent_bodies(twilio)[1:] == ["We are open Monday to Friday, 9:00 to 17:00.",
                                       "Delivery takes 2-4 business days."]


def test_an_image_without_text_is_told_the_ai_cannot_view_it_and_offered_a_person(wa, twilio) -> None:
    deployment, client = wa
    photo = inbound("SM" + "d" * 32, "", NumMedia="1", MediaUrl0="https://api.twilio.com/m0",
                    MediaContentType0="image/jpeg")
    assert post_signed(client, photo).status_code == 200
    run_jobs(deployment)
    assert sent_bodies(twilio) == [f"{ATTACHMENT} {OFFER}"]
    assert "don't know" not in sent_bodies(twilio)[0]
    post_signed(client, inbound("SM" + "e" * 32, "yes please"))
    run_jobs(deployment)
    assert sent_bodies(twilio)[-1] == HANDOVER_NOTICE
    assert deployment.store.conversation_ids(workspace_of(deployment), "waiting") != []


def test_a_photo_with_a_caption_is_answered_from_the_caption_saying_the_photo_was_not_seen(wa, twilio) -> None:
    deployment, client = wa
    photo = inbound("SM" + "c" * 32, "How long does shipping take?", NumMedia="1",
                    MediaUrl0="https://api.twilio.com/m1", MediaContentType0="image/jpeg")
    assert post_signed(client, photo).status_code == 200
    run_jobs(deployment)
    assert sent_bodies(twilio) == [f"{TEXT_ONLY}\n\nDelivery takes 2-4 business days."]
    post_signed(client, inbound("SM" + "b" * 32, "And how do I return a lamp?"))
    run_jobs(deployment)
    assert sent_bodies(twilio)[-1] == "Start a return from the order page within 30 days."


def test_a_knowledge_answer_reaches_whatsapp_without_the_markdown_files_line_wraps(
        make_deployment: Callable[..., Deployment], twilio: FakeTwilio, tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text(
        "# How do I return a lamp?\n"
        "You can return any lamp within 30 days of delivery. Start a return from the order page in your\n"
        "account, print the prepaid label and drop the parcel at any post office.\n"
        "\n"
        "- Refunds arrive within 5 business days\n"
        "- Lamps must be unused\n")
    deployment = make_deployment(channels=[whatsapp_channel(twilio)],
                                 ai_agent={"knowledge": {"entries": [], "files": [str(tmp_path / "faq.md")]}})
    with TestClient(create_app(deployment)) as client:
        post_signed(client, inbound("SM" + "f" * 32, "How do I return a lamp?"))
        run_jobs(deployment)
    assert sent_bodies(twilio) == [
        "You can return any lamp within 30 days of delivery. Start a return from the order page in your account, "
        "print the prepaid label and drop the parcel at any post office.\n"
        "\n"
        "- Refunds arrive within 5 business days\n"
        "- Lamps must be unused"]


# --- optional connector capabilities: a GET handshake, one webhook for several numbers -----------------------------

class HandshakingConnector(WebhookConnector):
    """A provider in the manner of Meta's: a GET verification, and one webhook posting for several numbers."""

    type = "handshaking"
    webhook_schema = WebhookSchema(
        summary="A test provider", request={"application/json": {"schema": {"type": "object"}}},
        security_scheme="sharedSecret", security={"type": "apiKey", "in": "header", "name": "X-Secret"},
        acknowledgement="application/json",
        handshake=[{"name": "challenge", "in": "query", "required": True, "schema": {"type": "string"}}])

    class Settings(ConnectorSettings):
        secret: str = "s3"
        number: str = ""

    def verify(self, request: WebhookRequest) -> None:
        if request.headers.get("x-secret") != self.settings.secret:  # type: ignore[attr-defined]
            raise SignatureInvalid("wrong X-Secret")

    def parse(self, request: WebhookRequest) -> list[Inbound | DeliveryStatus]:
        return [Inbound(channel=self.name, sender=m["from"], provider_id=m["id"], text=m["text"], account=m["to"])
                for m in json.loads(request.body)["messages"]]

    def handshake(self, request: WebhookRequest) -> Acknowledgement:
        if request.query.get("secret") != self.settings.secret:  # type: ignore[attr-defined]
            raise SignatureInvalid("wrong secret")
        return Acknowledgement(request.query.get("challenge", ""))

    def account(self) -> str:
        return str(self.settings.number)  # type: ignore[attr-defined]


class HandshakingPlugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(HandshakingConnector)


@pytest.fixture
def handshaking() -> Iterator[None]:
    plugin = HandshakingPlugin()
    plugin_manager().register(plugin)
    try:
        yield
    finally:
        plugin_manager().unregister(plugin)


def test_a_connector_with_a_handshake_answers_the_providers_get(make_deployment, handshaking) -> None:
    deployment = make_deployment(channels=[{"name": "hooked", "type": "handshaking"}])
    with TestClient(create_app(deployment)) as client:
        verified = client.get("/webhooks/hooked", params={"secret": "s3", "challenge": "1158201444"})
        assert (verified.status_code, verified.text) == (200, "1158201444")
        assert verified.headers["content-type"].startswith("text/plain")
        refused = client.get("/webhooks/hooked", params={"secret": "nope", "challenge": "1158201444"})
        assert refused.status_code == 403 and refused.json() == {"error": "wrong secret"}


def test_a_connector_without_a_handshake_answers_get_with_405(wa, make_deployment, handshaking) -> None:
    _, client = wa
    for method in ("GET", "OPTIONS", "PUT"):
        response = client.request(method, "/webhooks/wa")
        assert response.status_code == 405 and response.headers["allow"] == "POST", method
    with TestClient(create_app(make_deployment(channels=[{"name": "hooked", "type": "handshaking"}]))) as other:
        response = other.request("DELETE", "/webhooks/hooked")
        assert response.status_code == 405 and response.headers["allow"] == "GET, POST"


def test_one_webhook_serving_several_numbers_records_each_message_in_its_numbers_channel(
        make_deployment, handshaking, caplog, monkeypatch) -> None:
    monkeypatch.setattr(pipeline._unrouted, "_last", 0.0)  # its line is throttled: another test's may be recent
    deployment = make_deployment(channels=[{"name": "first", "type": "handshaking", "number": "111"},
                                           {"name": "second", "type": "handshaking", "number": "222"}])
    body = {"messages": [{"id": "m1", "from": "alice", "to": "111", "text": "hello"},
                         {"id": "m2", "from": "bob", "to": "222", "text": "hi there"},
                         {"id": "m3", "from": "carol", "to": "333", "text": "anyone?"}]}
    with TestClient(create_app(deployment)) as client:
        response = client.post("/webhooks/first", json=body, headers={"X-Secret": "s3"})
    assert response.status_code == 200
    workspace = workspace_of(deployment)
    conversations = [deployment.store.conversation(workspace, cid)
                     for cid in deployment.store.conversation_ids(workspace, "all")]
    assert sorted((c["channel"], c["sender"]) for c in conversations) == [("first", "alice"), ("second", "bob")]
    assert "account 333, which no handshaking channel has" in caplog.text


def test_a_changed_whatsapp_profile_name_is_picked_up_by_the_conversation_and_the_contact(wa) -> None:
    deployment, client = wa
    headers = agent_token(deployment, "alex")
    post_signed(client, inbound("SM" + "c" * 32, "How long does shipping take?"))
    run_jobs(deployment)
    post_signed(client, inbound("SM" + "d" * 32, "And returns?", ProfileName="Maria López"))
    [summary] = client.get("/api/conversations", headers=headers).json()["conversations"]
    assert (summary["customer"], summary["profile_name"]) == ("Maria López", "Maria López")
    [contact] = client.get("/api/contacts", headers=headers).json()["contacts"]
    assert contact["name"] == "Maria López"
    # A message without a ProfileName (Twilio leaves it out at times) changes nothing.
    post_signed(client, {k: v for k, v in inbound("SM" + "e" * 32, "thanks").items() if k != "ProfileName"})
    [contact] = client.get("/api/contacts", headers=headers).json()["contacts"]
    assert contact["name"] == "Maria López"


def test_a_name_the_customer_gave_in_the_contact_details_is_not_replaced_by_the_profile_name(wa) -> None:
    deployment, client = wa
    headers = agent_token(deployment, "alex")
    post_signed(client, inbound("SM" + "f" * 32, "How long does shipping take?"))
    [cid] = deployment.store.conversation_ids(workspace_of(deployment), "all")
    contact_id = deployment.store.conversation(workspace_of(deployment), cid)["contact"]
    deployment.redis.hset(keys.key(keys.CONTACT, workspace_id=workspace_of(deployment), contact=contact_id),
                          mapping={"name": "Dr. María López", "captured_at": "1"})
    post_signed(client, inbound("SM" + "9" * 32, "And returns?", ProfileName="Maria L."))
    [contact] = client.get("/api/contacts", headers=headers).json()["contacts"]
    assert contact["name"] == "Dr. María López"
