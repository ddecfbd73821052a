"""Every list pages with a stable cursor: the inbox views and Contacts reach every conversation and contact they count,
each once, however many there are and whatever arrives while an agent pages."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.client import Pipeline
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.store import CustomerMessage
from tests.conftest import agent_token, chat_channel, workspace_of


def customer(deployment: Deployment, sender: str, text: str = "Hello") -> str:
    message = CustomerMessage(channel=chat_channel(deployment), sender=sender, provider_id="", text=text,
                              customer=f"Visitor {sender}", delivers=False, published=True, timeout_ms=120_000)
    return deployment.store.inbound(workspace_of(deployment), message).conversation


def pages(client: TestClient, headers: dict[str, str], path: str, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor; the answers."""
    answers = []
    cursor = ""
    while True:
        response = client.get(path, params={**params, "cursor": cursor}, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        cursor = answers[-1]["next_cursor"]
        if cursor is None:
            return answers
        assert answers[-1][name], "a page with a next_cursor holds something"


def test_a_view_pages_through_every_conversation_it_counts_each_once(client: TestClient,
                                                                     deployment: Deployment) -> None:
    headers = agent_token(deployment)
    made = [customer(deployment, f"v{n}") for n in range(130)]
    answers = pages(client, headers, "/api/conversations", "conversations", view="all", limit=50)
    ids = [c["id"] for answer in answers for c in answer["conversations"]]
    assert len(answers) == 3 and [len(a["conversations"]) for a in answers] == [50, 50, 30]
    assert sorted(ids) == sorted(made)  # every one once
    # latest activity first; conversations of the same millisecond by id as the cursor orders them (as text)
    activity = {c["id"]: c["last_message_at"] for answer in answers for c in answer["conversations"]}
    assert ids == sorted(made, key=lambda cid: (activity[cid], cid), reverse=True)
    assert all(answer["counts"]["all"] == 130 == answer["counts"]["ai"] for answer in answers)


def test_new_activity_while_paging_neither_repeats_nor_skips_the_rest(client: TestClient,
                                                                      deployment: Deployment) -> None:
    """An offset shifted by every new conversation: page 2 repeated page 1's last rows. A cursor does not."""
    headers = agent_token(deployment)
    made = [customer(deployment, f"v{n}") for n in range(60)]
    first = client.get("/api/conversations", params={"view": "all", "limit": 20}, headers=headers).json()
    for n in range(15):  # new customers arrive, and one already listed writes again
        customer(deployment, f"new{n}")
    customer(deployment, "v59", "me again")
    seen = [c["id"] for c in first["conversations"]]
    cursor = first["next_cursor"]
    while cursor:
        answer = client.get("/api/conversations", params={"view": "all", "limit": 20, "cursor": cursor},
                            headers=headers).json()
        seen += [c["id"] for c in answer["conversations"]]
        cursor = answer["next_cursor"]
    assert len(seen) == len(set(seen)) == 60
    assert set(seen) == set(made)


def test_conversations_of_the_same_millisecond_page_apart(client: TestClient, deployment: Deployment) -> None:
    """Ties of the score (the same ms of activity) are ordered by id: a page boundary inside them loses none."""
    headers = agent_token(deployment)
    made = [customer(deployment, f"v{n}") for n in range(12)]
    view = f"baton:{workspace_of(deployment)}:view:open"
    deployment.redis.zadd(view, {cid: 1_700_000_000_000 for cid in made})
    answers = pages(client, headers, "/api/conversations", "conversations", view="all", limit=5)
    ids = [c["id"] for answer in answers for c in answer["conversations"]]
    assert sorted(ids) == sorted(made) and len(ids) == 12


def test_every_view_and_closed_pages_and_counts_agree(client: TestClient, deployment: Deployment) -> None:
    headers = agent_token(deployment)
    for n in range(7):
        customer(deployment, f"v{n}")
    listed = client.get("/api/conversations", params={"view": "all", "limit": 3}, headers=headers).json()
    for view in ("mine", "waiting", "ai", "all", "closed"):
        answers = pages(client, headers, "/api/conversations", "conversations", view=view, limit=3)
        assert sum(len(a["conversations"]) for a in answers) == listed["counts"][view], view


def test_contacts_page_with_a_cursor_and_count(client: TestClient, deployment: Deployment) -> None:
    headers = agent_token(deployment)
    for n in range(23):
        customer(deployment, f"v{n}")
    answers = pages(client, headers, "/api/contacts", "contacts", limit=10)
    contacts = [c for answer in answers for c in answer["contacts"]]
    assert [len(a["contacts"]) for a in answers] == [10, 10, 3]
    assert len({c["id"] for c in contacts}) == 23 and all(a["count"] == 23 for a in answers)
    assert all(len(c["conversations"]) == 1 and c["identities"][0]["channel"] for c in contacts)


def test_a_page_of_contacts_is_one_round_trip_whatever_its_size(deployment: Deployment,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """/api/contacts read each contact with two commands of its own: 1,000 round trips for a page of 500."""
    for n in range(40):
        customer(deployment, f"v{n}")
    trips: list[str] = []
    command, execute = redis.Redis.execute_command, Pipeline.execute

    def one_command(self: Any, *args: Any, **options: Any) -> Any:
        trips.append(str(args[0]))
        return command(self, *args, **options)

    def one_pipeline(self: Any, *args: Any, **options: Any) -> Any:
        trips.append(f"pipeline of {len(self.command_stack)}")
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", one_command)
    monkeypatch.setattr(Pipeline, "execute", one_pipeline)
    deployment.store.contact_page(workspace_of(deployment), "", 1)  # the script loaded
    trips.clear()
    contacts, _, count = deployment.store.contact_page(workspace_of(deployment), "", 40)
    monkeypatch.undo()
    assert len(contacts) == 40 == count
    assert trips == ["EVALSHA"], trips


def test_a_malformed_cursor_is_refused_with_the_reason(client: TestClient, deployment: Deployment) -> None:
    headers = agent_token(deployment)
    for path in ("/api/conversations", "/api/contacts"):
        response = client.get(path, params={"cursor": "page-2"}, headers=headers)
        assert response.status_code == 400 and "'cursor'" in response.json()["error"], response.text
