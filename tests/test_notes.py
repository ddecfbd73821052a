"""Private notes and reopening, through the agent API and the widget's: a note is for the team only (never sent,
never in the widget's history or stream, no preview in the lists), an @mention notifies the agent mentioned, and a
closed conversation can be opened again by an agent and written to."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from gateway import keys
from gateway.deployment import Deployment
from tests.conftest import LiveServer, Visitor, agent_token, inbox_events, run_jobs, workspace_of
from tests.test_webchat import read_events


def detail(client: TestClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    response = client.get(f"/api/conversations/{cid}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["conversation"]  # type: ignore[no-any-return]


def notifications(deployment: Deployment) -> list[dict[str, Any]]:
    entries: Any = deployment.redis.xrange(keys.key(keys.NOTIFICATIONS, workspace_id=workspace_of(deployment)))
    return [json.loads(fields["data"]) for _, fields in entries]


def test_a_note_is_for_the_team_only(client: TestClient, deployment: Deployment, visitor: Visitor,
                                     live_server: LiveServer) -> None:
    alex = agent_token(deployment, "alex")
    cid = visitor.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    before = detail(client, alex, cid)
    answer = client.post(f"/api/conversations/{cid}/notes", json={"text": "VIP customer, refund approved"},
                         headers=alex)
    assert answer.status_code == 201, answer.text
    note_id = answer.json()["id"]
    run_jobs(deployment)  # nothing to deliver: a note is never sent

    now = detail(client, alex, cid)
    [note] = [m for m in now["messages"] if m["id"] == note_id]
    assert note["kind"] == "note" and note["visibility"] == "internal" and note["author"] == "agent"
    assert note["text"] == "VIP customer, refund approved" and note["agent"] == "alex"
    assert now["owner"] == before["owner"] == "ai"  # a note takes nothing over
    assert now["last_text"] == before["last_text"]  # nor is it the list's preview
    assert "refund approved" not in str(visitor.history())
    page = client.get(f"/webchat/{visitor.channel}/messages", params={"before": note_id, "limit": 500},
                      headers=visitor.headers).json()
    assert "refund approved" not in str(page)
    visitor.say("Thanks")  # a public message after the note: the widget's stream replays up to it
    events = read_events(f"{live_server.url}/webchat/{visitor.channel}/events", {},
                         {**visitor.headers, "Last-Event-ID": f"{cid}/0"}, count=3)
    assert [e["data"]["text"] for e in events][-1] == "Thanks"
    assert "refund approved" not in str(events)
    assert [e["text"] for e in inbox_events(client, alex, "message.created") if e["id"] == note_id] == \
        ["VIP customer, refund approved"]


def test_a_mention_notifies_the_agent_mentioned(client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    alex = agent_token(deployment, "alex")
    agent_token(deployment, "sam")
    cid = visitor.say("Hello")["conversation"]
    answer = client.post(f"/api/conversations/{cid}/notes",
                         json={"text": "@sam can you check this order? cc @nobody and @alex, mail x@sam.com"},
                         headers=alex)
    assert answer.status_code == 201 and answer.json()["mentions"] == ["sam"], answer.text
    [told] = [n for n in notifications(deployment) if n["type"] == "mention"]
    assert told["agent"] == "sam" and told["actor"] == "agent:alex" and told["conversation"] == cid
    assert told["message"] == answer.json()["id"] and "check this order" in told["text"]
    [event] = inbox_events(client, alex, "note.mention")
    assert event["agents"] == ["sam"] and event["conversation"] == cid


def test_a_note_needs_text_and_a_conversation(client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    alex = agent_token(deployment, "alex")
    cid = visitor.say("Hello")["conversation"]
    for body in ({}, {"text": " "}, {"text": 3}, {"text": "x" * 4097}):
        response = client.post(f"/api/conversations/{cid}/notes", json=body, headers=alex)
        assert response.status_code == 400 and "'text'" in response.json()["error"], (body, response.text)
    assert client.post("/api/conversations/999999/notes", json={"text": "hi"}, headers=alex).status_code == 404
    assert client.post(f"/api/conversations/{cid}/notes", json={"text": "hi"}).status_code == 401


def test_a_closed_conversation_reopens_as_the_agents_and_takes_the_next_message(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    alex = agent_token(deployment, "alex")
    cid = visitor.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    assert client.post(f"/api/conversations/{cid}/close", headers=alex).status_code == 200
    note = client.post(f"/api/conversations/{cid}/notes", json={"text": "closed: resolved"}, headers=alex)
    assert note.status_code == 201  # a closed conversation can still be annotated

    reopened = client.post(f"/api/conversations/{cid}/reopen", headers=alex)
    assert reopened.status_code == 200, reopened.text
    conversation = reopened.json()["conversation"]
    assert conversation["status"] == "open" and conversation["owner"] == "agent:alex"
    assert "closed_at" not in conversation and conversation["messages"][-1]["kind"] == "reopened"
    listed = client.get("/api/conversations", params={"view": "mine"}, headers=alex).json()
    assert [c["id"] for c in listed["conversations"]] == [cid]
    assert listed["counts"]["closed"] == 0 and listed["counts"]["all"] == 1
    assert client.post(f"/api/conversations/{cid}/messages", json={"text": "Alex here, one more thing"},
                       headers=alex).status_code == 201
    assert visitor.say("Thanks!")["conversation"] == cid  # the customer's next message comes here
    run_jobs(deployment)
    assert "Alex here, one more thing" in visitor.texts("agent")
    assert [e["conversation"] for e in inbox_events(client, alex, "conversation.reopened")] == [cid]


def test_reopen_is_refused_for_an_open_one_or_when_the_customer_moved_on(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    alex = agent_token(deployment, "alex")
    cid = visitor.say("Hello")["conversation"]
    refused = client.post(f"/api/conversations/{cid}/reopen", headers=alex)
    assert refused.status_code == 409 and "not closed" in refused.json()["error"]
    assert client.post(f"/api/conversations/{cid}/close", headers=alex).status_code == 200
    newer = visitor.say("Me again")["conversation"]
    assert newer != cid
    refused = client.post(f"/api/conversations/{cid}/reopen", headers=alex)
    assert refused.status_code == 409 and refused.json()["conversation"] == newer, refused.text
    assert client.post("/api/conversations/999999/reopen", headers=alex).status_code == 404
