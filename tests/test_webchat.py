"""The webchat visitor API: sessions, confinement to one's own conversation, dedupe, SSE with catch-up."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from gateway.deployment import Deployment
from tests.conftest import LiveServer, Visitor, chat_channel, run_jobs


def test_a_visitor_chats_with_the_ai(visitor: Visitor, deployment: Deployment) -> None:
    sent = visitor.say("How long does shipping take?")
    run_jobs(deployment)
    history = visitor.history()
    assert history["conversation"]["id"] == sent["conversation"]
    assert [(m["author"], m["text"]) for m in history["messages"]] == [
        ("customer", "How long does shipping take?"), ("ai", "Delivery takes 2-4 business days.")]


def test_a_message_arriving_after_the_server_forgot_the_state_script_is_recorded_once_and_answered(
        visitor: Visitor, deployment: Deployment) -> None:
    visitor.say("What are your opening hours?")
    deployment.redis.script_flush()  # as after a Redis restart without persistence
    visitor.say("How long does shipping take?")
    run_jobs(deployment)
    assert visitor.texts("customer") == ["What are your opening hours?", "How long does shipping take?"]
    assert visitor.texts("ai")[-1] == "Delivery takes 2-4 business days."


def test_a_retried_post_with_the_same_client_id_is_one_message(visitor: Visitor, deployment: Deployment) -> None:
    first = visitor.say("What are your opening hours?", client_id="abc-1")
    again = visitor.say("What are your opening hours?", client_id="abc-1")
    assert again["duplicate"] is True and again["id"] == first["id"]
    run_jobs(deployment)
    assert visitor.texts("customer") == ["What are your opening hours?"]
    assert len(visitor.texts("ai")) == 1


def test_visitors_are_confined_to_their_own_conversation(client, deployment: Deployment) -> None:
    channel = chat_channel(deployment)
    alice, bob = Visitor(client, channel), Visitor(client, channel)
    alice.say("my order number is 4711")
    bob.say("hello")
    assert alice.texts() == ["my order number is 4711"]
    assert bob.texts() == ["hello"]
    # A session id is random: a changed character is no one's session, and there is nothing else to forge.
    forged = alice.token[:-1] + ("A" if alice.token[-1] != "A" else "B")
    response = client.get(f"/webchat/{channel}/messages", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert client.get(f"/webchat/{channel}/messages").status_code == 401


def test_a_token_for_another_channel_is_refused(make_deployment, client, deployment: Deployment) -> None:
    other = make_deployment()
    from starlette.testclient import TestClient

    from gateway.web.app import create_app

    with TestClient(create_app(other)) as other_client:
        stranger = Visitor(other_client, chat_channel(other))
    response = client.post(f"/webchat/{chat_channel(deployment)}/messages", json={"text": "hi"},
                           headers=stranger.headers)
    assert response.status_code in (401, 403)


@pytest.mark.parametrize("body, reason", [
    ({"text": ""}, "text"), ({"text": 5}, "text"), ({}, "text"), ({"text": "x" * 5000}, "longer"),
    ({"text": "hi", "client_id": "bad id!"}, "client_id"), ({"text": "hi", "client_id": ""}, "client_id"),
    ({"text": "hi", "client_id": None}, "client_id"), ({"text": "hi", "client_id": 0}, "client_id"),
    ({"text": "hi", "client_id": "m1\n"}, "client_id"),
])
def test_bad_messages_get_400_with_a_reason(visitor: Visitor, body: dict[str, Any], reason: str) -> None:
    response = visitor.client.post(f"/webchat/{visitor.channel}/messages", json=body, headers=visitor.headers)
    assert response.status_code == 400 and reason in response.json()["error"]


def test_malformed_json_is_400(visitor: Visitor) -> None:
    response = visitor.client.post(f"/webchat/{visitor.channel}/messages", content=b"{nope",
                                   headers={**visitor.headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_unknown_webchat_channel_is_404(client) -> None:
    assert client.post("/webchat/nope/sessions").status_code == 404


def read_events(url: str, params: dict[str, str], headers: dict[str, str], count: int,
                timeout: float = 10) -> list[dict[str, Any]]:
    """Read `count` SSE events from a live stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with httpx.stream("GET", url, params=params, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                events.append(current)
                current = {}
                if len(events) == count:
                    break
    return events


def test_sse_streams_live_messages_and_catches_up_from_the_last_event_id(
        live_server: LiveServer, deployment: Deployment) -> None:
    channel = chat_channel(deployment)
    base = f"{live_server.url}/webchat/{channel}"
    token = httpx.post(f"{base}/sessions").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}

    received: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: received.extend(
        read_events(f"{base}/events", {}, auth, count=2)))
    reader.start()
    time.sleep(0.3)
    httpx.post(f"{base}/messages", json={"text": "What are your opening hours?", "client_id": "1"}, headers=auth)
    run_jobs(deployment)  # in the main thread, as an RQ worker runs
    reader.join(timeout=10)
    live = received
    assert [e["data"]["author"] for e in live] == ["customer", "ai"]
    assert live[1]["data"]["text"] == "We are open Monday to Friday, 9:00 to 17:00."

    # Disconnected after the first event: reconnecting with its id replays exactly what came after.
    httpx.post(f"{base}/messages", json={"text": "How long does shipping take?", "client_id": "2"}, headers=auth)
    run_jobs(deployment)
    caught_up = read_events(f"{base}/events", {}, {**auth, "Last-Event-ID": live[0]["id"]}, count=3)
    assert [e["data"]["text"] for e in caught_up] == [
        "We are open Monday to Friday, 9:00 to 17:00.", "How long does shipping take?",
        "Delivery takes 2-4 business days."]
    assert all(e["id"].startswith(live[0]["data"]["conversation"] + "/") for e in caught_up)


def test_a_last_event_id_naming_another_visitors_conversation_replays_none_of_it(
        live_server: LiveServer, deployment: Deployment) -> None:
    channel = chat_channel(deployment)
    with httpx.Client(base_url=live_server.url) as http:
        alice, bob = Visitor(http, channel), Visitor(http, channel)  # type: ignore[arg-type]
        theirs = alice.say("my order number is 4711")["conversation"]
        bob.say("hello")
        received: list[str] = []
        headers = {**bob.headers, "Last-Event-ID": f"{theirs}/0"}
        with http.stream("GET", f"/webchat/{channel}/events", headers=headers, timeout=30) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("retry: ")  # sent once the stream's start is fixed: what follows is live
            bob.say("anyone there?")
            for line in lines:
                if line.startswith("data: "):
                    received.append(json.loads(line[6:])["text"])
                    break
    assert received == ["anyone there?"]


@pytest.mark.parametrize(("header", "query"), [("x", ""), ("²/0", ""), ("1/²", ""), ("/1-0", ""), ("1/0", "x"),
                                               ("", "١/0")])
def test_a_malformed_last_event_id_is_400(live_server: LiveServer, deployment: Deployment, header: str,
                                          query: str) -> None:
    url = f"{live_server.url}/webchat/{chat_channel(deployment)}/events"
    token = httpx.post(url.replace("/events", "/sessions")).json()["token"]
    headers = {"Authorization": f"Bearer {token}".encode()}
    if header:
        headers["Last-Event-ID"] = header.encode("latin-1")
    response = httpx.get(url, headers=headers, params={"last_event_id": query} if query else {}, timeout=5)
    assert response.status_code == 400 and response.json()["error"]


def test_sse_needs_a_valid_token(live_server: LiveServer, deployment: Deployment) -> None:
    url = f"{live_server.url}/webchat/{chat_channel(deployment)}/events"
    assert httpx.get(url, headers={"Authorization": "Bearer v2.nobody"}).status_code == 401
    assert httpx.get(url).status_code == 401
    token = httpx.post(url.replace("/events", "/sessions")).json()["token"]
    assert httpx.get(url, params={"token": token}).status_code == 401  # never in a URL, where logs keep it


def test_the_widget_is_told_who_replies_to_a_new_chat_and_who_has_the_visitors_chat_now(
        live_server: LiveServer, deployment: Deployment) -> None:
    from gateway import keys
    from gateway.web.auth import create_agent

    channel = chat_channel(deployment)
    base = f"{live_server.url}/webchat/{channel}"
    workspace = deployment.config.workspaces[0].id
    admin = {"Authorization": f"Bearer {create_agent(deployment.redis, workspace, 'robin', 'Robin', admin=True)}"}
    assert httpx.get(f"{base}/config").json()["replies"] == "ai"
    httpx.patch(f"{live_server.url}/api/ai-agent", json={"published": False}, headers=admin).raise_for_status()
    session = httpx.post(f"{base}/sessions").json()
    assert session["replies"] == "team" and httpx.get(f"{base}/config").json()["replies"] == "team"
    auth = {"Authorization": f"Bearer {session['token']}"}
    received: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: received.extend(read_events(f"{base}/events", {}, auth, count=1)))
    reader.start()
    time.sleep(0.3)
    httpx.post(f"{base}/messages", json={"text": "Hello?", "client_id": "1"}, headers=auth)
    reader.join(timeout=10)
    assert received[0]["data"]["with"] == "waiting"  # a live event says who has the chat
    assert httpx.get(f"{base}/messages", headers=auth).json()["conversation"]["with"] == "waiting"
    httpx.patch(f"{live_server.url}/api/ai-agent", json={"published": True}, headers=admin).raise_for_status()
    assert httpx.get(f"{base}/messages", headers=auth).json()["conversation"]["with"] == "ai"
    deployment.redis.hset(keys.key(keys.MODEL_BREAKER, workspace_id=workspace), mapping={
        "model": "baton/knowledge", "state": "open", "until": int(time.time() * 1000) + 60_000, "failures": 3})
    assert httpx.get(f"{base}/config").json()["replies"] == "team"  # the model is failing: a person answers
