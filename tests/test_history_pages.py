"""A long conversation shows its newest messages first, to agents and to the visitor, and pages back with
`before=` to its first message, never reading the whole history at once."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.store import CustomerMessage
from tests.conftest import Visitor, agent_token, chat_channel, workspace_of


def long_conversation(deployment: Deployment, visitor: Visitor, customer: int, internal_every: int = 0) -> str:
    """A conversation of `customer` customer messages ("m0"…), with an internal note after every n-th."""
    cid = str(visitor.say("m0")["conversation"])
    workspace, store = workspace_of(deployment), deployment.store
    for n in range(1, customer):
        store.inbound(workspace, CustomerMessage(channel=chat_channel(deployment), sender=_visitor_id(deployment, cid),
                                                 provider_id=f"p{n}", text=f"m{n}", customer="v", delivers=False,
                                                 published=True, timeout_ms=120_000))
        if internal_every and n % internal_every == 0:
            store.post(workspace, cid, "system", f"note after m{n}", kind="note", visibility="internal")
    return cid


def _visitor_id(deployment: Deployment, cid: str) -> str:
    return deployment.store.conversation(workspace_of(deployment), cid)["sender"]


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def test_the_agents_detail_shows_the_newest_messages_and_pages_back_to_the_first(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    cid = long_conversation(deployment, visitor, 250)
    alex = agent_token(deployment)
    detail = client.get(f"/api/conversations/{cid}", headers=alex).json()["conversation"]
    assert texts(detail["messages"]) == [f"m{n}" for n in range(150, 250)]  # the customer's latest is there
    assert detail["has_more"] is True
    pages, before = [detail["messages"]], detail["next_before"]
    while before:
        page = client.get(f"/api/conversations/{cid}/messages", params={"before": before}, headers=alex).json()
        pages.insert(0, page["messages"])
        before = page["next_before"]
        assert page["has_more"] is bool(before)
    assert texts([m for page in pages for m in page]) == [f"m{n}" for n in range(250)]
    assert [len(p) for p in pages] == [50, 100, 100]
    small = client.get(f"/api/conversations/{cid}/messages", params={"before": detail["messages"][0]["id"],
                                                                     "limit": 3}, headers=alex).json()
    assert texts(small["messages"]) == ["m147", "m148", "m149"] and small["next_before"] == small["messages"][0]["id"]


def test_a_page_of_the_visitors_history_holds_only_public_messages_and_the_newest(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    long_conversation(deployment, visitor, 600, internal_every=2)
    first = visitor.history()
    assert texts(first["messages"]) == [f"m{n}" for n in range(550, 600)]
    assert first["has_more"] is True
    seen, before = first["messages"], first["next_before"]
    while before:
        page = client.get(f"/webchat/{visitor.channel}/messages", params={"before": before, "limit": 200},
                          headers=visitor.headers).json()
        assert all(not m["text"].startswith("note") for m in page["messages"])
        seen = page["messages"] + seen
        before = page["next_before"]
    assert texts(seen) == [f"m{n}" for n in range(600)]


def test_a_page_behind_a_long_run_of_internal_notes_still_pages_on(deployment: Deployment, visitor: Visitor) -> None:
    cid = str(visitor.say("first")["conversation"])
    workspace = workspace_of(deployment)
    for n in range(2_000):
        deployment.store.post(workspace, cid, "system", f"note {n}", kind="note", visibility="internal")
    page = deployment.store.page(workspace, cid, limit=10, public_only=True)
    assert page.messages == [] and page.has_more  # bounded reads, and where to go on from
    while page.has_more and not page.messages:
        page = deployment.store.page(workspace, cid, page.next_before, limit=10, public_only=True)
    assert texts(page.messages) == ["first"] and not page.has_more


def test_before_must_be_a_message_id_and_the_conversation_must_exist(client: TestClient, deployment: Deployment,
                                                                     visitor: Visitor) -> None:
    cid = visitor.say("hello")["conversation"]
    alex = agent_token(deployment)
    for bad in ("abc", "1-2-3", "١٢-٣"):
        response = client.get(f"/api/conversations/{cid}/messages", params={"before": bad}, headers=alex)
        assert response.status_code == 400 and "message id" in response.json()["error"]
        visitor_response = client.get(f"/webchat/{visitor.channel}/messages", params={"before": bad},
                                      headers=visitor.headers)
        assert visitor_response.status_code == 400
    assert client.get("/api/conversations/999999/messages", headers=alex).status_code == 404
    beyond = client.get(f"/api/conversations/{cid}/messages", params={"before": "1-999999"}, headers=alex).json()
    assert texts(beyond["messages"]) == ["hello"] and beyond["has_more"] is False
