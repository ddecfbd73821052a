"""Response targets end to end (the app, its worker's jobs and timers, the real server): a handover starts the first
target, the inbox lists each chat's deadline, a missed one is in the overdue view and counted, the assignee loses it
to the queue and the admins are told (an event for the inbox, a notification and a metric), and the reply after it
says how long the customer waited."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.testclient import TestClient

from gateway import metrics
from gateway.deployment import Deployment
from gateway.handover import fallback
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, chat_channel, inbox_events, run_jobs, workspace_of


def listed(client: TestClient, headers: dict[str, str], view: str) -> tuple[list[dict[str, object]], dict[str, int]]:
    response = client.get("/api/conversations", params={"view": view}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["conversations"], response.json()["counts"]


def breaches(kind: str) -> float:
    return metrics.SLA_BREACHES.labels(kind)._value.get()  # type: ignore[attr-defined]


def test_a_missed_first_response_target(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(sla={"first_response": 2, "next_response": 600})
    alex, robin = agent_token(deployment, "alex"), agent_token(deployment, "robin", admin=True)
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("transfer to agent")["conversation"]
        run_jobs(deployment)
        assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex).status_code == 200
        rows, counts = listed(client, alex, "mine")
        assert rows[0]["sla_kind"] == "first" and rows[0]["sla_due"] == rows[0]["handover_at"] + 2000
        assert "sla_breached" not in rows[0] and counts["overdue"] == 0

        before = breaches("first")
        time.sleep(max(0.0, rows[0]["sla_due"] / 1000 - time.time()) + 0.05)
        fallback.fire_due(deployment)
        rows, counts = listed(client, robin, "overdue")
        assert [r["id"] for r in rows] == [cid] and counts["overdue"] == 1
        assert rows[0]["owner"] == "none" and rows[0]["sla_breached"] >= rows[0]["sla_due"]
        assert breaches("first") == before + 1
        missed = inbox_events(client, robin, "conversation.sla_breached")
        assert [(e["conversation"], e["owner"], e["kind"]) for e in missed] == [(cid, "agent:alex", "first")]
        assert listed(client, alex, "mine")[0] == []  # back in the queue
        fallback.fire_due(deployment)
        assert breaches("first") == before + 1  # once

        # Sam answers late: the target is met (late), the chat leaves the overdue view.
        sam = agent_token(deployment, "sam")
        reply = client.post(f"/api/conversations/{cid}/messages", json={"text": "Sorry for the wait!"}, headers=sam)
        assert reply.status_code in (200, 201), reply.text
        assert listed(client, robin, "overdue") == ([], listed(client, robin, "overdue")[1])
        assert listed(client, robin, "all")[1]["overdue"] == 0
        # The customer writes again: the next target runs.
        visitor.say("thanks, and where is my order?")
        run_jobs(deployment)
        mine = listed(client, sam, "mine")[0]
        assert mine[0]["sla_kind"] == "next"


def test_a_bad_view_names_the_views(client: TestClient, deployment: Deployment) -> None:
    response = client.get("/api/conversations", params={"view": "late"}, headers=agent_token(deployment))
    assert response.status_code == 400 and "overdue" in response.json()["error"]


def test_the_workspace_without_targets_lists_no_deadline(client: TestClient, deployment: Deployment) -> None:
    visitor = Visitor(client, chat_channel(deployment))
    cid = visitor.say("transfer to agent")["conversation"]
    run_jobs(deployment)
    rows, counts = listed(client, agent_token(deployment), "waiting")
    assert [r["id"] for r in rows] == [cid] and "sla_due" not in rows[0] and counts["overdue"] == 0
    assert workspace_of(deployment)
