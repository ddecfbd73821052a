"""A WhatsApp channel's templates read from the provider: Meta's GET /<waba_id>/message_templates and Twilio's
Content API (GET /v1/Content), every page, approved ones only (Meta), cached in Redis, refreshed on demand by an admin
(POST /api/channels/{name}/templates), merged with config.yaml's `templates:` (whose keys and parameter names win),
and config.yaml's alone when the provider cannot be asked. Against the local fakes, which page as the real APIs do."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import connectors.twilio_whatsapp as twilio_module
import connectors.whatsapp_cloud as cloud_module
from gateway import templates
from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests import fake_meta as meta
from tests.conftest import agent_token, run_jobs, workspace_of
from tests.fake_meta import FakeMeta
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.redis
SID = "HX" + "a1" * 16


def _meta_template(name: str, body: str, language: str = "en", status: str = "APPROVED") -> dict[str, Any]:
    return {"name": name, "language": language, "status": status, "category": "UTILITY",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Lumen Lamps"},
                           {"type": "BODY", "text": body, "example": {"body_text": [["Maria"]]}}]}


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMeta]:
    monkeypatch.setattr(cloud_module, "TEMPLATE_PAGE", 2)  # so that three pages are read
    with FakeMeta() as fake:
        fake.templates = [_meta_template("support_follow_up", "Hi {{1}}, about {{2}}: we are on it."),
                          _meta_template("order_update", "Your order {{1}} has shipped."),
                          _meta_template("order_update", "Tu pedido {{1}} ha salido.", language="es"),
                          _meta_template("draft_promo", "50% off!", status="REJECTED"),
                          _meta_template("survey", "How did we do?")]
        yield fake


@pytest.fixture
def site(make_deployment: Callable[..., Deployment], graph: FakeMeta) -> Iterator[tuple[Deployment, TestClient]]:
    deployment = make_deployment(channels=[
        {"name": "wa-meta", "type": "whatsapp_cloud", "phone_number_id": meta.PHONE_NUMBER_ID, "waba_id": meta.WABA_ID,
         "access_token": meta.ACCESS_TOKEN, "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN,
         "api_base_url": graph.base_url,
         "templates": {"follow_up": {"name": "support_follow_up", "language": "en", "params": ["name", "topic"]}}}])
    with TestClient(create_app(deployment)) as client:
        yield deployment, client


def _template_reads(graph: FakeMeta) -> int:
    return sum(1 for r in graph.requests if "/message_templates" in r.path)


def test_meta_templates_are_read_page_by_page_approved_only_and_merged_with_the_configured_keys(
        site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    headers = agent_token(deployment)
    answer = client.get("/api/channels/wa-meta/templates", headers=headers)
    assert answer.status_code == 200, answer.text
    listed = {t["key"]: t for t in answer.json()["templates"]}
    assert set(listed) == {"follow_up", "order_update_en", "order_update_es", "survey"}  # not the rejected one
    assert listed["follow_up"]["body"] == "Hi {{1}}, about {{2}}: we are on it."  # Meta's body, config.yaml's key
    assert listed["follow_up"]["params"] == ["name", "topic"]  # and config.yaml's parameter names
    assert (listed["order_update_es"]["name"], listed["order_update_es"]["language"]) == ("order_update", "es")
    assert _template_reads(graph) == 3  # 5 templates, 2 a page
    assert all(r.token == meta.ACCESS_TOKEN for r in graph.requests)
    client.get("/api/channels/wa-meta/templates", headers=headers)
    assert _template_reads(graph) == 3  # cached in Redis: Meta is not asked again


def test_a_template_read_from_meta_goes_out_by_its_key_outside_the_window(
        site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    body = json.dumps(meta.webhook(meta.change([meta.text("where is it?", timestamp=time.time() - 25 * 3600)])))
    assert client.post("/webhooks/wa-meta", content=body.encode(),
                       headers=meta.signed_headers(body.encode())).status_code == 200
    run_jobs(deployment)
    [cid] = deployment.store.conversation_ids(workspace_of(deployment), "all")
    headers = agent_token(deployment)
    assert client.post(f"/api/conversations/{cid}/assign", headers=headers, json={"assignee": "me"}).status_code == 200
    detail = client.get(f"/api/conversations/{cid}", headers=headers).json()["conversation"]
    assert "order_update_es" in [t["key"] for t in detail["templates"]]
    sent = client.post(f"/api/conversations/{cid}/messages", headers=headers,
                       json={"template": "order_update_es", "params": ["A-1042"]})
    assert sent.status_code == 201, sent.text
    run_jobs(deployment)
    [(_, message, _)] = [s for s in graph.sent if s[1]["type"] == "template"]
    assert (message["template"]["name"], message["template"]["language"]["code"]) == ("order_update", "es")
    history = deployment.store.messages(workspace_of(deployment), cid)
    assert [m["text"] for m in history if m["author"] == "agent"] == ["Tu pedido A-1042 ha salido."]


def test_an_admin_refreshes_on_demand_and_an_agent_may_not(site: tuple[Deployment, TestClient],
                                                           graph: FakeMeta) -> None:
    deployment, client = site
    admin, agent = agent_token(deployment, "ada", admin=True), agent_token(deployment, "bo")
    client.get("/api/channels/wa-meta/templates", headers=agent)
    graph.templates = [*graph.templates, _meta_template("holiday_hours", "We are closed on {{1}}.")]
    assert "holiday_hours" not in str(client.get("/api/channels/wa-meta/templates", headers=agent).json())
    assert client.post("/api/channels/wa-meta/templates", headers=agent).status_code == 403
    refreshed = client.post("/api/channels/wa-meta/templates", headers=admin)
    assert refreshed.status_code == 200 and "error" not in refreshed.json()
    assert "holiday_hours" in [t["key"] for t in refreshed.json()["templates"]]
    assert "holiday_hours" in str(client.get("/api/channels/wa-meta/templates", headers=agent).json())
    assert client.get("/api/channels/nope/templates", headers=agent).status_code == 404


def test_when_meta_cannot_be_asked_the_configured_templates_serve_and_the_refresh_says_why(
        site: tuple[Deployment, TestClient], graph: FakeMeta) -> None:
    deployment, client = site
    graph.templates_status = 500
    admin = agent_token(deployment, "ada", admin=True)
    refreshed = client.post("/api/channels/wa-meta/templates", headers=admin).json()
    assert [t["key"] for t in refreshed["templates"]] == ["follow_up"]
    assert refreshed["templates"][0]["body"] == ""  # config.yaml gives none
    assert "the provider could not be asked (WhatsApp error 100" in refreshed["error"]
    reads = _template_reads(graph)
    client.get("/api/channels/wa-meta/templates", headers=admin)
    assert _template_reads(graph) == reads  # not asked again at once (a minute later)


def test_twilio_templates_come_from_the_content_api_page_by_page(make_deployment: Callable[..., Deployment],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twilio_module, "CONTENT_PAGE", 2)
    with FakeTwilio() as twilio:
        twilio.contents = [
            {"sid": SID, "friendly_name": "follow_up_v2", "language": "en",
             "types": {"twilio/text": {"body": "Hi {{1}}, we are on it."}}},
            {"sid": "HX" + "b2" * 16, "friendly_name": "order_shipped", "language": "en",
             "types": {"twilio/quick-reply": {"body": "Your order {{1}} shipped. Track it?",
                                              "actions": [{"title": "Yes", "id": "track"}]}}},
            {"sid": "HX" + "c3" * 16, "friendly_name": "pedido_enviado", "language": "es",
             "types": {"twilio/text": {"body": "Tu pedido {{1}} ha salido."}}},
        ]
        deployment = make_deployment(channels=[
            {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
             "from": "+14155238886", "api_base_url": twilio.base_url,
             "templates": {"follow_up": {"content_sid": SID, "params": ["name"]}}}])
        found = {t.key: t for t in templates.listed(deployment, "wa")}
        reads = twilio.content_requests
    assert set(found) == {"follow_up", "order_shipped", "pedido_enviado"}  # follow_up_v2 is config.yaml's follow_up
    assert (found["follow_up"].name, found["follow_up"].body, found["follow_up"].params) == (
        SID, "Hi {{1}}, we are on it.", ("name",))
    assert found["order_shipped"].body == "Your order {{1}} shipped. Track it?"
    assert (found["pedido_enviado"].name, found["pedido_enviado"].language) == ("HX" + "c3" * 16, "es")
    assert len(reads) == 2 and all(r.auth == (ACCOUNT_SID, AUTH_TOKEN) for r in reads)
