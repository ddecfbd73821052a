"""The WhatsApp Cloud connector through a real gateway, store and worker: webhooks written from Meta's documented
payload shapes and signed as Meta signs them, sends to a local fake of the Graph API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.whatsapp_cloud import WhatsAppCloud
from gateway.connector import Media, Outbound, Template
from gateway.deployment import Deployment
from gateway.errors import SendFailed
from gateway.web import pipeline
from gateway.web.app import create_app
from tests import fake_meta as meta
from tests.conftest import agent_token, run_jobs, workspace_of
from tests.fake_meta import FakeMeta

pytestmark = pytest.mark.redis


@pytest.fixture
def graph() -> Iterator[FakeMeta]:
    with FakeMeta() as fake:
        yield fake


def channel(name: str, fake: FakeMeta, number: str = meta.PHONE_NUMBER_ID, **settings: Any) -> dict[str, Any]:
    return {"name": name, "type": "whatsapp_cloud", "phone_number_id": number, "access_token": meta.ACCESS_TOKEN,
            "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN, "api_base_url": fake.base_url,
            "send_timeout": 2, **settings}


class Site:
    def __init__(self, deployment: Deployment, client: TestClient) -> None:
        self.deployment, self.client = deployment, client
        self.workspace_id = workspace_of(deployment)
        self.meta, self.other = "wa-meta", "wa-other"

    def post(self, payload: dict[str, Any] | bytes, channel_name: str | None = None,
             headers: dict[str, str] | None = None) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.post(f"/webhooks/{channel_name or self.meta}", content=body,
                                headers=headers if headers is not None else meta.signed_headers(body))

    def conversations(self) -> list[dict[str, Any]]:
        store = self.deployment.store
        return [dict(store.conversation(self.workspace_id, conversation_id))
                for conversation_id in store.conversation_ids(self.workspace_id, "all")]

    def messages(self, author: str | None = None) -> list[dict[str, Any]]:
        store = self.deployment.store
        return [dict(m) for conversation_id in sorted(store.conversation_ids(self.workspace_id, "all"), key=int)
                for m in store.messages(self.workspace_id, conversation_id)
                if author is None or m["author"] == author]


@pytest.fixture
def site(make_deployment: Callable[..., Deployment], graph: FakeMeta) -> Iterator[Site]:
    deployment = make_deployment(public_url="https://baton.example.com", channels=[
        channel("wa-meta", graph, templates={"follow_up": {
            "name": "support_follow_up", "language": "en", "body": "Hi {{1}}, about your request: {{2}}",
            "params": ["name", "topic"]}}),
        channel("wa-other", graph, meta.OTHER_NUMBER_ID)])
    with TestClient(create_app(deployment)) as client:
        yield Site(deployment, client)


def connector(fake: FakeMeta, **settings: Any) -> WhatsAppCloud:
    values = channel("wa", fake, **settings)
    return WhatsAppCloud("wa", WhatsAppCloud.Settings.model_validate(
        {k: v for k, v in values.items() if k not in ("name", "type")}))


# --- verification and signatures ---------------------------------------------------------------------------------

def test_the_verification_request_gets_the_challenge_as_plain_text(site: Site) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": meta.VERIFY_TOKEN, "hub.challenge": "1158201444"}
    answer = site.client.get(f"/webhooks/{site.meta}", params=query)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert answer.headers["content-type"].startswith("text/plain")
    for wrong in ({"hub.verify_token": "guess"}, {"hub.mode": "unsubscribe"}, {"hub.verify_token": ""}):
        assert site.client.get(f"/webhooks/{site.meta}", params=query | wrong).status_code == 403
    assert site.client.get(f"/webhooks/{site.meta}", params={"hub.challenge": "1"}).status_code == 403


def test_the_signature_is_of_the_raw_bytes(site: Site) -> None:
    payload = meta.webhook(meta.change([meta.text("hello", "wamid.RAW")]))
    body = json.dumps(payload).encode()
    respaced = json.dumps(payload, indent=1).encode()  # the same JSON, other bytes
    assert site.post(respaced, headers=meta.signed_headers(body)).status_code == 403
    assert site.post(body, headers=meta.signed_headers(body, "another-app-secret")).status_code == 403
    assert site.post(body, headers={"Content-Type": "application/json"}).status_code == 403
    assert site.messages() == []
    assert site.post(body).status_code == 200
    assert [m["text"] for m in site.messages()] == ["hello"]


def test_an_empty_app_secret_refuses_everything(graph: FakeMeta) -> None:
    wa = connector(graph, app_secret="")
    assert wa.disabled_reason() == "missing app_secret"


# --- batches and routing ---------------------------------------------------------------------------------------

def test_every_entry_and_change_is_recorded_in_its_numbers_channel(site: Site, caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline._unrouted, "_last", 0.0)  # its line is throttled: another test's may be recent
    payload = meta.webhook(
        meta.change([meta.text("first", "wamid.A1"), meta.text("second", "wamid.A2")]),
        meta.change([meta.text("to the other number", "wamid.B1", sender="34600000002")],
                    number=meta.OTHER_NUMBER_ID, wa_id="34600000002", name="Bo"),
        meta.change([meta.text("to nobody's number", "wamid.C1")], number="1000000009"),
        meta.change([meta.text("third", "wamid.A3")]),
        entries=2)
    with caplog.at_level(logging.WARNING, logger="baton.webhooks"):
        assert site.post(payload).status_code == 200
    by_channel = {(c["channel"], c["sender"]) for c in site.conversations()}
    assert by_channel == {(site.meta, meta.CUSTOMER), (site.other, "34600000002")}
    texts = sorted(m["text"] for m in site.messages("customer"))
    assert texts == ["first", "second", "third", "to the other number"]
    assert "1000000009" in caplog.text and "not recorded" in caplog.text


def test_a_webhook_for_something_else_is_acknowledged(site: Site) -> None:
    payload = {"object": "whatsapp_business_account", "entry": [{"id": meta.WABA_ID, "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}}]}]}
    assert site.post(payload).status_code == 200
    assert site.post({"object": "page", "entry": []}).status_code == 200
    assert site.messages() == []


@pytest.mark.parametrize("payload", [
    {"object": "whatsapp_business_account"},
    {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messages": [meta.text("no metadata")]}}]}]},
    {"object": "whatsapp_business_account", "entry": ["not an object"]},
])
def test_a_malformed_webhook_gets_a_400_naming_the_field(site: Site, payload: dict[str, Any]) -> None:
    answer = site.post(payload)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]
    assert site.post(b"{not json").status_code == 400


# --- what customers send -------------------------------------------------------------------------------------------

def test_every_message_type_is_recorded_as_what_it_is(site: Site, graph: FakeMeta) -> None:
    graph.add_media("1234567890", b"\x89PNG fake image bytes", "image/png")
    messages = [
        meta.text("plain text"),
        meta.message("button", {"payload": "STOP", "text": "Stop promotions"}),
        meta.message("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}),
        meta.message("interactive", {"type": "list_reply", "list_reply": {
            "id": "lamp", "title": "Arc lamp", "description": "Repairs"}}),
        meta.message("image", {"id": "1234567890", "mime_type": "image/png", "sha256": "abc",
                               "caption": "the broken lamp"}),
        meta.message("location", {"latitude": 40.4168, "longitude": -3.7038, "name": "Shop", "address": "Sol 1"}),
        meta.message("contacts", [{"name": {"formatted_name": "Ana Ruiz"}, "phones": [{"phone": "+34 600 000 003"}]}]),
        meta.message("reaction", {"message_id": "wamid.OURS", "emoji": "👍"}),
        {"from": meta.CUSTOMER, "id": "wamid.UNSUPPORTED", "timestamp": "1700000000", "type": "unsupported",
         "errors": [{"code": 131051, "title": "Message type unknown"}]},
    ]
    assert site.post(meta.webhook(meta.change(messages))).status_code == 200
    recorded = site.messages("customer")
    assert [m["text"] for m in recorded] == [
        "plain text", "Stop promotions", "Yes please", "Arc lamp\nRepairs", "the broken lamp",
        "📍 Location: 40.4168,-3.7038 (Shop, Sol 1)", "👤 Contact: Ana Ruiz · +34 600 000 003",
        "Reacted 👍 to a message", "[A message of a type Baton cannot show: unsupported (Message type unknown)]"]
    assert recorded[1]["data"]["button_payload"] == "STOP"
    assert recorded[2]["data"]["reply_id"] == "yes"
    [image] = recorded[4]["media"]
    assert (image["provider_id"], image["content_type"]) == ("1234567890", "image/png")
    assert recorded[8]["data"]["unsupported"] is True


def test_the_customer_is_their_wa_id_and_their_profile_name(site: Site) -> None:
    assert site.post(meta.webhook(meta.change([meta.text("hi")], name="Maria"))).status_code == 200
    [conversation] = site.conversations()
    assert (conversation["sender"], conversation["customer"]) == (meta.CUSTOMER, "Maria")
    contact = site.deployment.store.contact(site.workspace_id, conversation["contact"])
    assert (contact["name"], contact["phone"]) == ("Maria", f"+{meta.CUSTOMER}")


def test_a_retried_delivery_is_recorded_once_even_in_one_batch(site: Site) -> None:
    payload = meta.webhook(meta.change([meta.text("once", "wamid.SAME"), meta.text("once", "wamid.SAME")]))
    assert site.post(payload).status_code == 200
    assert site.post(payload).status_code == 200
    assert [m["text"] for m in site.messages("customer")] == ["once"]


# --- statuses ------------------------------------------------------------------------------------------------------

def _answered(site: Site, graph: FakeMeta) -> str:
    """A customer asks; the AI's answer goes out through the fake; its wamid."""
    assert site.post(meta.webhook(meta.change([meta.text("What are your opening hours?")]))).status_code == 200
    run_jobs(site.deployment)
    [(number, body, wamid)] = graph.sent
    assert number == meta.PHONE_NUMBER_ID and body["to"] == meta.CUSTOMER and body["type"] == "text"
    return wamid


def _delivery(site: Site) -> list[tuple[str, str]]:
    return [(m.get("delivery", ""), m.get("delivery_error", "")) for m in site.messages()
            if m["author"] == "ai" and m.get("visibility", "public") == "public"]


def test_the_answer_goes_out_with_the_bearer_token(site: Site, graph: FakeMeta) -> None:
    _answered(site, graph)
    [send] = [r for r in graph.requests if r.method == "POST"]
    assert send.token == meta.ACCESS_TOKEN and send.path == f"/v21.0/{meta.PHONE_NUMBER_ID}/messages"
    assert send.json["messaging_product"] == "whatsapp"


def test_statuses_in_one_batch_out_of_order_never_move_backwards(site: Site, graph: FakeMeta) -> None:
    wamid = _answered(site, graph)
    payload = meta.webhook(meta.change(statuses=[meta.status(wamid, "read"), meta.status(wamid, "sent")]),
                           meta.change(statuses=[meta.status(wamid, "delivered")]), entries=2)
    assert site.post(payload).status_code == 200
    assert _delivery(site) == [("read", "")]


def test_failed_is_final_and_says_why(site: Site, graph: FakeMeta) -> None:
    wamid = _answered(site, graph)
    failed = meta.status(wamid, "failed", [{"code": 131026, "title": "Message undeliverable",
                                            "error_data": {"details": "Message Undeliverable."}}])
    assert site.post(meta.webhook(meta.change(statuses=[failed]))).status_code == 200
    assert site.post(meta.webhook(meta.change(statuses=[meta.status(wamid, "delivered"),
                                                        meta.status(wamid, "read")]))).status_code == 200
    [(state, error)] = _delivery(site)
    assert state == "failed" and "131026" in error and "WhatsApp" in error, error


def test_a_status_for_a_message_of_another_number_changes_nothing(site: Site, graph: FakeMeta) -> None:
    wamid = _answered(site, graph)
    other = meta.change(statuses=[meta.status(wamid, "read")], number=meta.OTHER_NUMBER_ID)
    assert site.post(meta.webhook(other), site.other).status_code == 200
    assert _delivery(site) == [("sent", "")]


# --- sending -------------------------------------------------------------------------------------------------------

def test_a_throughput_error_is_retried_and_then_sent(site: Site, graph: FakeMeta) -> None:
    graph.fail_next(400, 130429, "Rate limit hit")
    assert site.post(meta.webhook(meta.change([meta.text("What are your opening hours?")]))).status_code == 200
    run_jobs(site.deployment)
    assert graph.sent == []
    assert _delivery(site) == [("pending", "")]


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (400, 130429, True), (400, 131056, True), (500, 131000, True), (503, 0, True),
    (400, 131047, False), (400, 131026, False), (401, 190, False), (400, 100, False)])
def test_only_what_surely_sent_nothing_is_retried(graph: FakeMeta, status: int, code: int, retryable: bool) -> None:
    graph.fail_next(status, code, "as Meta says it")
    with pytest.raises(SendFailed) as failure:
        connector(graph).send(Outbound("wa", meta.CUSTOMER, "hello", "1-0", "1"))
    assert (failure.value.retryable, failure.value.maybe_sent) == (retryable, False)
    if code == 131047:
        assert "24-hour window" in failure.value.reason


def test_a_connection_dropped_mid_send_may_have_sent(graph: FakeMeta) -> None:
    graph.fail_next(0, 0, "", close=True)
    with pytest.raises(SendFailed) as failure:
        connector(graph).send(Outbound("wa", meta.CUSTOMER, "hello", "1-0", "1"))
    assert (failure.value.retryable, failure.value.maybe_sent) == (False, True)


def test_a_template_is_sent_by_name_language_and_parameters(graph: FakeMeta) -> None:
    template = Template("follow_up", "support_follow_up", "es", "Hola {{1}}", ("name",))
    result = connector(graph).send(Outbound("wa", meta.CUSTOMER, "", "1-0", "1", template=template,
                                            params=("Maria",)))
    [(_, body, wamid)] = graph.sent
    assert result.provider_id == wamid
    assert body["type"] == "template" and body["template"] == {
        "name": "support_follow_up", "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]}


def test_media_and_buttons_go_out_as_whatsapp_shows_them(graph: FakeMeta) -> None:
    wa = connector(graph)
    wa.send(Outbound("wa", meta.CUSTOMER, "The manual", "1-0", "1",
                     rich={"type": "media", "urls": ["https://shop.example.com/manual.pdf"]}))
    wa.send(Outbound("wa", meta.CUSTOMER, "Did that help?", "1-1", "1",
                     rich={"type": "buttons", "options": ["Yes", "No"]}))
    [(_, document, _), (_, buttons, _)] = graph.sent
    assert document["type"] == "document" and document["document"] == {
        "link": "https://shop.example.com/manual.pdf", "caption": "The manual"}
    assert buttons["interactive"]["action"]["buttons"][1]["reply"]["title"] == "No"


def test_the_channels_templates_come_from_its_settings(site: Site) -> None:
    [template] = site.deployment.channels[site.meta].connector.templates()
    assert (template.key, template.name, template.language, template.params) == \
        ("follow_up", "support_follow_up", "en", ("name", "topic"))


# --- media -----------------------------------------------------------------------------------------------------

def test_media_is_fetched_with_the_token_and_limited(graph: FakeMeta) -> None:
    graph.add_media("555", b"x" * 2048, "image/jpeg")
    content = connector(graph).fetch_media(Media(content_type="image/jpeg", provider_id="555"))
    assert (content.data, content.content_type) == (b"x" * 2048, "image/jpeg")
    assert [r.token for r in graph.requests] == [meta.ACCESS_TOKEN] * 2
    with pytest.raises(SendFailed) as too_large:
        connector(graph, max_media_bytes=1024).fetch_media(Media(provider_id="555"))
    assert too_large.value.retryable is False and "limit" in too_large.value.reason


def test_an_agents_reply_reaches_the_customer(site: Site, graph: FakeMeta) -> None:
    assert site.post(meta.webhook(meta.change([meta.text("I want a human")]))).status_code == 200
    run_jobs(site.deployment)
    [conversation] = site.conversations()
    headers = agent_token(site.deployment)
    site.client.post(f"/api/conversations/{conversation['id']}/assign", headers=headers)
    answer = site.client.post(f"/api/conversations/{conversation['id']}/messages", headers=headers,
                              json={"text": "Hello Maria, Alex here"})
    assert answer.status_code in (200, 201, 202), answer.text
    run_jobs(site.deployment)
    assert graph.sent[-1][1]["text"]["body"] == "Hello Maria, Alex here"


def test_an_attachment_is_downloaded_at_once_and_shown_to_agents_only(site: Site, graph: FakeMeta) -> None:
    graph.add_media("777001", b"\xff\xd8 a jpeg", "image/jpeg")
    graph.add_media("777002", b"<html><script>alert(1)</script>", "text/html")
    photo = meta.message("image", {"id": "777001", "mime_type": "image/jpeg", "sha256": "x"})
    page = meta.message("document", {"id": "777002", "mime_type": "text/html", "filename": "x.html"})
    assert site.post(meta.webhook(meta.change([photo, page]))).status_code == 200
    downloads = [r.path for r in graph.requests if r.method == "GET"]
    assert downloads == ["/v21.0/777001", "/download/777001", "/v21.0/777002", "/download/777002"]
    [image], [document] = (m["media"] for m in site.messages("customer"))
    assert image["url"] == f"/api/media/{site.meta}/777001"
    graph.media.clear()  # Meta's URL has expired: Baton serves its own copy
    assert site.client.get(image["url"]).status_code == 401
    headers = agent_token(site.deployment)
    served = site.client.get(image["url"], headers=headers)
    assert (served.status_code, served.content, served.headers["content-type"]) == \
        (200, b"\xff\xd8 a jpeg", "image/jpeg")
    served = site.client.get(document["url"], headers=headers)
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in served.headers["content-security-policy"]
    assert site.client.get(f"/api/media/{site.meta}/999", headers=headers).status_code == 404
    assert site.client.get(f"/api/media/{site.meta}/a%2Fb", headers=headers).status_code == 404


def test_an_attachment_not_downloaded_at_once_is_fetched_when_opened(site: Site, graph: FakeMeta) -> None:
    photo = meta.message("image", {"id": "888001", "mime_type": "image/png"})
    assert site.post(meta.webhook(meta.change([photo]))).status_code == 200  # Meta had no such media yet
    graph.add_media("888001", b"png bytes", "image/png")
    [message] = site.messages("customer")
    served = site.client.get(message["media"][0]["url"], headers=agent_token(site.deployment))
    assert (served.status_code, served.content) == (200, b"png bytes")
