"""The agent API over HTTP with a real Redis: claiming, replying, taking over from the AI, unpublishing
the AI agent, authentication, and bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.lifecycle import HANDOVER_NOTICE
from gateway.web.app import create_app
from gateway.web.auth import create_agent, revoke_agent
from tests.conftest import KNOWLEDGE, Visitor, agent_token, chat_channel, inbox_events, run_jobs, workspace_of

HOURS = "We are open Monday to Friday, 9:00 to 17:00."


def conversation(client: TestClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    response = client.get(f"/api/conversations/{cid}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["conversation"]  # type: ignore[no-any-return]


def listing(client: TestClient, headers: dict[str, str], view: str) -> dict[str, Any]:
    response = client.get("/api/conversations", params={"view": view}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def waiting_conversation(visitor: Visitor, deployment: Deployment) -> str:
    """A conversation the AI answered once and then handed over."""
    visitor.say("What are your opening hours?")
    run_jobs(deployment)
    cid = visitor.say("transfer to agent")["conversation"]
    run_jobs(deployment)
    return str(cid)


def assign(client: TestClient, headers: dict[str, str], cid: str, assignee: str, **body: Any) -> Any:
    return client.post(f"/api/conversations/{cid}/assign", json={"assignee": assignee, **body}, headers=headers)


@pytest.fixture
def alex(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex")


@pytest.fixture
def sam(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "sam")


@pytest.fixture
def admin(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "robin", admin=True)


# --- an agent picks the conversation up -----------------------------------------------------------

def test_an_agent_claims_a_waiting_conversation_sees_everything_and_replies(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assert listing(client, alex, "waiting")["counts"]["waiting"] == 1
    claimed = assign(client, alex, cid, "me")
    assert claimed.status_code == 200 and claimed.json()["conversation"]["owner"] == "agent:alex"
    mine = listing(client, alex, "mine")
    assert [c["id"] for c in mine["conversations"]] == [cid]
    assert mine["counts"]["waiting"] == 0 and mine["counts"]["mine"] == 1
    history = [(m["author"], m["kind"], m.get("text", "")) for m in conversation(client, alex, cid)["messages"]]
    assert history[:4] == [("customer", "message", "What are your opening hours?"), ("ai", "message", HOURS),
                           ("customer", "message", "transfer to agent"), ("ai", "message", HANDOVER_NOTICE)]
    assert [kind for author, kind, _ in history[4:]] == ["handover", "assignment", "notice"]
    assert {author for author, _, _ in history[4:]} == {"system"}
    sent = client.post(f"/api/conversations/{cid}/messages", json={"text": "Hi, Alex here. How can I help?"},
                       headers=alex)
    assert sent.status_code == 201
    messages = visitor.history()["messages"]
    assert messages[-2:] == [
        {"id": messages[-2]["id"], "author": "system", "kind": "notice", "text": "Alex joined the conversation.",
         "created_at": messages[-2]["created_at"]},
        {"id": sent.json()["id"], "author": "agent", "kind": "message", "text": "Hi, Alex here. How can I help?",
         "agent_name": "Alex", "created_at": messages[-1]["created_at"]}]
    assert [e["owner"] for e in inbox_events(client, alex, "conversation.assigned")] == ["agent:alex"]


def test_the_customer_is_not_answered_by_the_ai_while_an_agent_owns_the_conversation(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assign(client, alex, cid, "me")
    visitor.say("How long does shipping take?")
    run_jobs(deployment)
    assert visitor.texts("ai") == [HOURS, HANDOVER_NOTICE]
    assert conversation(client, alex, cid)["owner"] == "agent:alex"


def test_a_second_agents_claim_is_a_409_naming_the_owner(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        sam: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assert assign(client, alex, cid, "me").status_code == 200
    refused = assign(client, sam, cid, "me")
    assert refused.status_code == 409 and refused.json()["owner"] == "agent:alex"
    replied = client.post(f"/api/conversations/{cid}/messages", json={"text": "I'll take it"}, headers=sam)
    assert replied.status_code == 409 and replied.json()["owner"] == "agent:alex"
    assert client.post(f"/api/conversations/{cid}/unassign", headers=sam).status_code == 409
    assert client.post(f"/api/conversations/{cid}/close", headers=sam).status_code == 409
    assert conversation(client, sam, cid)["owner"] == "agent:alex"
    assert assign(client, alex, cid, "me").json()["conversation"]["owner"] == "agent:alex"  # idempotent


def test_only_an_admin_may_force_a_claim(client: TestClient, deployment: Deployment, visitor: Visitor,
                                        alex: dict[str, str], sam: dict[str, str],
                                        admin: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assign(client, alex, cid, "me")
    assert assign(client, sam, cid, "me", force=True).status_code == 403
    forced = assign(client, admin, cid, "me", force=True)
    assert forced.status_code == 200 and forced.json()["conversation"]["owner"] == "agent:robin"
    assert listing(client, alex, "mine")["conversations"] == []
    [assigned] = [e for e in inbox_events(client, admin, "conversation.assigned") if e["owner"] == "agent:robin"]
    assert assigned["previous"] == "agent:alex" and assigned["actor"] == "agent:robin"


def test_an_agent_assigns_a_conversation_to_a_colleague(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        sam: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assert assign(client, alex, cid, "sam").json()["conversation"]["owner"] == "agent:sam"
    assert [c["id"] for c in listing(client, sam, "mine")["conversations"]] == [cid]
    assert "Sam joined the conversation." in visitor.texts("system")
    assert assign(client, sam, cid, "nobody-here").status_code == 404


# --- stopping the AI at any time ------------------------------------------------------------------

def test_unassigning_the_ai_stops_it_at_once(client: TestClient, deployment: Deployment, visitor: Visitor,
                                             alex: dict[str, str]) -> None:
    cid = visitor.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    response = client.post(f"/api/conversations/{cid}/unassign", headers=alex)
    assert response.status_code == 200
    detail = response.json()["conversation"]
    assert detail["owner"] == "none" and detail["waiting_since"] > 0
    assert [c["id"] for c in listing(client, alex, "waiting")["conversations"]] == [cid]
    visitor.say("How long does shipping take?")
    run_jobs(deployment)
    assert visitor.texts("ai") == [HOURS]


def test_an_agent_replying_in_an_ai_conversation_takes_it_over(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    cid = visitor.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    sent = client.post(f"/api/conversations/{cid}/messages", json={"text": "Alex here, jumping in."}, headers=alex)
    assert sent.status_code == 201
    assert conversation(client, alex, cid)["owner"] == "agent:alex"
    assert [c["id"] for c in listing(client, alex, "mine")["conversations"]] == [cid]
    visitor.say("How long does shipping take?")
    run_jobs(deployment)
    assert visitor.texts("ai") == [HOURS]
    assert visitor.texts()[-3:] == ["Alex joined the conversation.", "Alex here, jumping in.",
                                    "How long does shipping take?"]


# --- unpublishing the AI agent --------------------------------------------------------------------

def test_unpublishing_needs_an_admin(client: TestClient, alex: dict[str, str]) -> None:
    response = client.patch("/api/ai-agent", json={"published": False}, headers=alex)
    assert response.status_code == 403
    assert client.get("/api/ai-agent", headers=alex).json()["ai_agent"]["published"] is True


def test_unpublishing_hands_every_ai_conversation_to_the_team_and_keeps_history(
        client: TestClient, deployment: Deployment, admin: dict[str, str],
        notifications: list[dict[str, Any]]) -> None:
    channel = chat_channel(deployment)
    first, second = Visitor(client, channel), Visitor(client, channel)
    held = [first.say("What are your opening hours?")["conversation"],
            second.say("How long does shipping take?")["conversation"]]
    run_jobs(deployment)
    response = client.patch("/api/ai-agent", json={"published": False}, headers=admin)
    assert response.status_code == 200 and response.json()["ai_agent"]["published"] is False
    run_jobs(deployment)
    assert listing(client, admin, "ai")["counts"]["ai"] == 0
    assert sorted(c["id"] for c in listing(client, admin, "waiting")["conversations"]) == sorted(held)
    assert sorted(e["conversation"] for e in inbox_events(client, admin, "conversation.handover")) == sorted(held)
    assert sorted(n["conversation"] for n in notifications
                  if n["workspace"] == workspace_of(deployment) and n["route"] == "unpublished") == sorted(held)
    assert first.texts() == ["What are your opening hours?", HOURS]  # history kept, nothing added

    first.say("Are you still there?")
    newcomer = Visitor(client, channel)
    started = newcomer.say("How long does shipping take?")["conversation"]
    run_jobs(deployment)
    assert first.texts("ai") == [HOURS] and newcomer.texts("ai") == []
    assert conversation(client, admin, started)["owner"] == "none"
    assert started in [n["conversation"] for n in notifications if n["workspace"] == workspace_of(deployment)]
    refused = assign(client, admin, held[0], "ai")
    assert refused.status_code == 409 and "unpublished" in refused.json()["error"]


def test_publishing_again_sends_new_conversations_to_the_ai(
        client: TestClient, deployment: Deployment, admin: dict[str, str]) -> None:
    channel = chat_channel(deployment)
    client.patch("/api/ai-agent", json={"published": False}, headers=admin)
    before = Visitor(client, channel)
    waiting = before.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    response = client.patch("/api/ai-agent", json={"published": True}, headers=admin)
    assert response.status_code == 200 and response.json()["ai_agent"]["published"] is True
    after = Visitor(client, channel)
    started = after.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    assert after.texts("ai") == [HOURS] and conversation(client, admin, started)["owner"] == "ai"
    # The customer who wrote while it was unpublished, and whom no one answered, is the AI's again and answered.
    assert conversation(client, admin, waiting)["owner"] == "ai"
    assert before.texts()[-2:] == ["You're chatting with Lumi again.", HOURS]


def test_an_agent_unpublished_in_the_config_leaves_new_conversations_to_the_team(
        make_deployment: Callable[..., Deployment], notifications: list[dict[str, Any]]) -> None:
    deployment = make_deployment(ai_agent={"published": False})
    admin = agent_token(deployment, "robin", admin=True)
    with TestClient(create_app(deployment)) as client:
        assert client.get("/api/ai-agent", headers=admin).json()["ai_agent"]["published"] is False
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("What are your opening hours?")["conversation"]
        run_jobs(deployment)
        assert visitor.texts("ai") == []
        assert conversation(client, admin, cid)["owner"] == "none"
        [handover] = inbox_events(client, admin, "conversation.handover")
        assert handover["conversation"] == cid and handover["reason"] == "AI agent is unpublished"
        assert [n["conversation"] for n in notifications if n["workspace"] == workspace_of(deployment)] == [cid]
        client.patch("/api/ai-agent", json={"published": True}, headers=admin)
        other = Visitor(client, chat_channel(deployment))
        other.say("What are your opening hours?")
        run_jobs(deployment)
        assert other.texts("ai") == [HOURS]


# --- authentication -------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Basic YWxleDpzZWNyZXQ=",
                                           "Bearer baton_tnothere00_" + "x" * 32])
def test_requests_without_a_valid_token_are_401(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [("GET", "/api/conversations"), ("GET", "/api/conversations/1"),
                         ("POST", "/api/conversations/1/assign"), ("GET", "/api/contacts"),
                         ("PATCH", "/api/ai-agent"), ("GET", "/api/events")]:
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)


def test_a_revoked_token_is_401(client: TestClient, deployment: Deployment, alex: dict[str, str]) -> None:
    assert client.get("/api/conversations", headers=alex).status_code == 200
    revoke_agent(deployment.redis, workspace_of(deployment), "alex")
    assert client.get("/api/conversations", headers=alex).status_code == 401


def test_an_agent_of_another_deployments_workspace_cannot_read_this_one(
        make_deployment: Callable[..., Deployment], client: TestClient, deployment: Deployment,
        visitor: Visitor, alex: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    stranger = agent_token(make_deployment(), "mallory", admin=True)  # same Redis, another workspace
    for method, path in [("GET", f"/api/conversations/{cid}"), ("GET", "/api/conversations"),
                         ("POST", f"/api/conversations/{cid}/assign")]:
        response = client.request(method, path, headers=stranger, json={"assignee": "me"})
        assert response.status_code in (401, 403, 404), (method, path, response.status_code)
    assert conversation(client, alex, cid)["owner"] == "none"


def test_workspaces_of_one_deployment_are_isolated(make_deployment: Callable[..., Deployment]) -> None:
    ids = [f"w{uuid.uuid4().hex[:10]}" for _ in range(2)]
    deployment = make_deployment(workspaces=[
        {"id": ws, "channels": [{"name": f"{ws}-chat", "type": "webchat"}],
         "ai_agent": {"name": "Lumi", "knowledge": {"entries": KNOWLEDGE}}} for ws in ids])
    tokens = [{"Authorization": f"Bearer {create_agent(deployment.redis, ws, 'alex', 'Alex')}"} for ws in ids]
    with TestClient(create_app(deployment)) as client:
        cid = Visitor(client, f"{ids[0]}-chat").say("What are your opening hours?")["conversation"]
        assert conversation(client, tokens[0], cid)["channel"] == f"{ids[0]}-chat"
        assert client.get(f"/api/conversations/{cid}", headers=tokens[1]).status_code == 404
        assert assign(client, tokens[1], cid, "me").status_code == 404
        assert client.get("/api/conversations", headers=tokens[1]).json()["conversations"] == []
        assert conversation(client, tokens[0], cid)["owner"] == "ai"


# --- bad input ------------------------------------------------------------------------------------

def test_unknown_conversations_are_404(client: TestClient, alex: dict[str, str]) -> None:
    assert client.get("/api/conversations/999", headers=alex).status_code == 404
    assert assign(client, alex, "999", "me").status_code == 404
    assert client.post("/api/conversations/999/messages", json={"text": "hi"}, headers=alex).status_code == 404
    assert client.post("/api/conversations/999/close", headers=alex).status_code == 404
    assert client.get("/api/contacts/999", headers=alex).status_code == 404


def test_malformed_json_is_400_with_a_reason(client: TestClient, deployment: Deployment, visitor: Visitor,
                                             alex: dict[str, str]) -> None:
    cid = visitor.say("hello")["conversation"]
    for path in (f"/api/conversations/{cid}/assign", f"/api/conversations/{cid}/messages"):
        response = client.post(path, content=b'{"assignee": ', headers={**alex, "Content-Type": "application/json"})
        assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = client.post(f"/api/conversations/{cid}/assign", json=["me"], headers=alex)
    assert response.status_code == 400


@pytest.mark.parametrize("body", [{}, {"assignee": ""}, {"assignee": 7}])
def test_a_missing_assignee_is_400(client: TestClient, visitor: Visitor, alex: dict[str, str],
                                   body: dict[str, Any]) -> None:
    cid = visitor.say("hello")["conversation"]
    response = client.post(f"/api/conversations/{cid}/assign", json=body, headers=alex)
    assert response.status_code == 400 and "assignee" in response.json()["error"]


@pytest.mark.parametrize("force", ["true", 1, None, {}])
def test_force_must_be_a_boolean(client: TestClient, visitor: Visitor, admin: dict[str, str], force: Any) -> None:
    cid = visitor.say("hello")["conversation"]
    response = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me", "force": force}, headers=admin)
    assert response.status_code == 400 and "force" in response.json()["error"]


@pytest.mark.parametrize("body", [{}, {"text": "   "}, {"text": 5}, {"text": "x" * 5000}])
def test_a_bad_reply_is_400(client: TestClient, visitor: Visitor, alex: dict[str, str],
                            body: dict[str, Any]) -> None:
    cid = visitor.say("hello")["conversation"]
    response = client.post(f"/api/conversations/{cid}/messages", json=body, headers=alex)
    assert response.status_code == 400 and "text" in response.json()["error"]


def test_posting_to_a_closed_conversation_is_409(client: TestClient, deployment: Deployment, visitor: Visitor,
                                                 alex: dict[str, str]) -> None:
    cid = waiting_conversation(visitor, deployment)
    assert client.post(f"/api/conversations/{cid}/close", headers=alex).status_code == 200
    response = client.post(f"/api/conversations/{cid}/messages", json={"text": "hello?"}, headers=alex)
    assert response.status_code == 409 and response.json()["status"] == "closed"
    assert assign(client, alex, cid, "me").status_code == 409
    assert client.post(f"/api/conversations/{cid}/close", headers=alex).status_code == 409
    assert client.post(f"/api/conversations/{cid}/unassign", headers=alex).status_code == 409


@pytest.mark.parametrize("params", [{"view": "everything"}, {"status": "pending"}, {"limit": "-1"},
                                    {"limit": "lots"}, {"cursor": "x"}, {"limit": "²"}, {"cursor": "١:1"},
                                    {"cursor": "1:"}, {"cursor": "1" * 17 + ":1"},
                                    {"limit": "1" * 5000}, {"limit": "201"}])
def test_bad_listing_parameters_are_400(client: TestClient, alex: dict[str, str], params: dict[str, str]) -> None:
    response = client.get("/api/conversations", params=params, headers=alex)
    assert response.status_code == 400 and response.json()["error"]


@pytest.mark.parametrize("limit", ["²", "1" * 5000, "501"])
def test_a_bad_contacts_limit_is_400(client: TestClient, alex: dict[str, str], limit: str) -> None:
    response = client.get("/api/contacts", params={"limit": limit}, headers=alex)
    assert response.status_code == 400 and "limit" in response.json()["error"]


def test_limits_may_have_leading_zeros(client: TestClient, alex: dict[str, str]) -> None:
    assert client.get("/api/conversations", params={"limit": "0050", "offset": "000"}, headers=alex).status_code == 200


def test_publishing_needs_a_boolean(client: TestClient, admin: dict[str, str]) -> None:
    response = client.patch("/api/ai-agent", json={"published": "no"}, headers=admin)
    assert response.status_code == 400 and "published" in response.json()["error"]


# --- how the customer is shown ------------------------------------------------------------------------------------

def test_a_webchat_customer_is_named_in_the_handover_event_the_notification_and_the_summaries(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        notifications: list[dict[str, Any]]) -> None:
    cid = visitor.say("support")["conversation"]
    run_jobs(deployment)
    [event] = inbox_events(client, alex, "conversation.handover")
    [notified] = [n for n in notifications if n["workspace"] == workspace_of(deployment)]
    assert event["customer"].startswith("Visitor ") and notified["customer"] == event["customer"]
    [listed] = listing(client, alex, "waiting")["conversations"]
    detail = conversation(client, alex, cid)
    for shown in (listed, detail):
        assert (shown["customer"], shown["address"], shown["channel_type"]) == (event["customer"], event["customer"],
                                                                                "webchat")


def test_a_whatsapp_customer_is_shown_by_number_and_the_contacts_identity_by_channel_type_and_address(
        make_deployment: Callable[..., Deployment]) -> None:
    from twilio.request_validator import RequestValidator

    from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

    with FakeTwilio() as twilio:
        deployment = make_deployment(channels=[{
            "name": "whatsapp", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": "whatsapp:+14155550199", "api_base_url": twilio.base_url}])
        alex = agent_token(deployment, "alex")
        with TestClient(create_app(deployment)) as client:
            form = {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+34612345678",
                    "To": "whatsapp:+14155550199", "Body": "transfer to agent", "NumMedia": "0"}
            signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/webhooks/whatsapp", form)
            client.post("/webhooks/whatsapp", data=form, headers={"X-Twilio-Signature": signature})
            run_jobs(deployment)
            [listed] = listing(client, alex, "waiting")["conversations"]
            detail = conversation(client, alex, listed["id"])
            [contact] = client.get("/api/contacts", headers=alex).json()["contacts"]
            [event] = inbox_events(client, alex, "conversation.handover")
            shown = client.get(f"/api/contacts/{contact['id']}", headers=alex).text + str(listed) + str(detail)
    assert (listed["customer"], listed["address"], listed["channel_type"]) == ("+34612345678", "+34612345678",
                                                                               "twilio_whatsapp")
    identity = {"channel": "whatsapp", "channel_type": "twilio_whatsapp", "address": "+34612345678"}
    assert contact["identities"] == detail["contact"]["identities"] == [identity]
    assert event["customer"] == "+34612345678"
    assert "whatsapp:whatsapp:" not in shown
