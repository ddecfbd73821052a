"""The no-human follow-up (the contact form) when the customer's 24-hour WhatsApp window has closed by the time it
goes out: Baton sends the workspace's configured template in its place (`handover.window_template`, parameters
filled with the customer's or the business's name) and notes it in the conversation; with no such template, or one
whose parameters Baton cannot fill, nothing is sent and the inbox says why. Against the local fake Graph API and a
real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.fallback import fire_due
from gateway.web.app import create_app
from tests import fake_meta as meta
from tests.conftest import run_jobs, workspace_of
from tests.fake_meta import FakeMeta

pytestmark = pytest.mark.redis
TIMEOUT = 0.3


@pytest.fixture
def graph() -> Iterator[FakeMeta]:
    with FakeMeta() as fake:
        yield fake


def _deployment(make_deployment: Callable[..., Deployment], graph: FakeMeta, templates: dict[str, Any],
                **handover: Any) -> Deployment:
    return make_deployment(handover={"no_human_timeout": TIMEOUT, **handover}, channels=[
        {"name": "wa-meta", "type": "whatsapp_cloud", "phone_number_id": meta.PHONE_NUMBER_ID,
         "access_token": meta.ACCESS_TOKEN, "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN,
         "api_base_url": graph.base_url, "templates": templates}])


def _form_after_the_window(deployment: Deployment) -> tuple[str, list[dict[str, Any]]]:
    """A customer who wrote 25 hours ago (a webhook delivered late) asks for a person; nobody comes; the form is due:
    (the conversation, its messages)."""
    with TestClient(create_app(deployment)) as client:
        body = json.dumps(meta.webhook(meta.change([meta.text("I want to talk to a person",
                                                              timestamp=time.time() - 25 * 3600)]))).encode()
        assert client.post("/webhooks/wa-meta", content=body, headers=meta.signed_headers(body)).status_code == 200
        run_jobs(deployment)
        workspace = workspace_of(deployment)
        [cid] = deployment.store.conversation_ids(workspace, "waiting")
        time.sleep(TIMEOUT + 0.05)
        assert [f["conversation"] for f in fire_due(deployment)] == [cid]
        run_jobs(deployment)
    return cid, deployment.store.messages(workspace, cid)


def test_the_contact_form_goes_as_the_configured_template_once_the_window_has_closed(
        make_deployment: Callable[..., Deployment], graph: FakeMeta) -> None:
    deployment = _deployment(make_deployment, graph, {"follow_up": {
        "name": "support_follow_up", "language": "en", "body": "Hi {{1}}, {{2}} here: reply to reach our team.",
        "params": ["name", "business"]}})
    _, messages = _form_after_the_window(deployment)
    [(_, sent, _)] = graph.sent  # the template alone: the AI's handover notice was free text, held back
    assert sent["type"] == "template" and sent["template"]["name"] == "support_follow_up"
    parameters = [p["text"] for p in sent["template"]["components"][0]["parameters"]]
    assert parameters == ["Maria", workspace_of(deployment)]  # a workspace without a name: its id
    [form] = [m for m in messages if m["kind"] == "contact_form"]
    assert form["delivery"] == "sent"
    [said] = [m for m in messages if m["kind"] == "delivery_note"]
    assert said["data"]["message"] == form["id"] and said["visibility"] == "internal"
    assert said["text"] == "sent as the template 'follow_up': the customer's 24-hour window had closed"
    held = [m for m in messages if m["author"] != "customer" and m["kind"] not in ("contact_form", "delivery_note")
            and m.get("visibility") != "internal"]
    assert held and all(m["delivery"] == "failed" and m["delivery_final"] for m in held), messages  # only the form


@pytest.mark.parametrize("templates, handover, why", [
    ({}, {}, "no template 'follow_up' on channel wa-meta"),
    ({"follow_up": {"name": "support_follow_up", "language": "en"}}, {"window_template": ""},
     "handover.window_template is empty"),
    ({"follow_up": {"name": "order_update", "language": "en", "body": "Your order {{1}} shipped",
                    "params": ["order"]}}, {}, "the template 'follow_up' needs 'order', which Baton cannot fill"),
])
def test_without_a_template_it_can_send_the_form_is_not_sent_and_the_inbox_says_why(
        make_deployment: Callable[..., Deployment], graph: FakeMeta, templates: dict[str, Any],
        handover: dict[str, Any], why: str) -> None:
    deployment = _deployment(make_deployment, graph, templates, **handover)
    _, messages = _form_after_the_window(deployment)
    assert graph.sent == []
    [form] = [m for m in messages if m["kind"] == "contact_form"]
    assert form["delivery"] == "failed" and form["delivery_final"] is True
    assert "24-hour WhatsApp window is closed" in form["delivery_error"] and why in form["delivery_error"]
