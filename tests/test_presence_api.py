"""Presence and automatic assignment over HTTP: PUT /api/me/presence, the team with each agent's presence, the
assignment in Settings against config.yaml's, a handover given to an online agent end to end, and an agent's
inbox stream keeping them online until it closes and the grace period passes (a real uvicorn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests.conftest import LiveServer, Visitor, agent_token, chat_channel, inbox_events, run_jobs, workspace_of


def presence_of(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    response = client.get("/api/team", headers=headers)
    assert response.status_code == 200, response.text
    return {a["id"]: a["presence"] for a in response.json()["agents"]}


def test_an_agent_sets_their_presence_and_the_team_sees_it(client: TestClient, deployment: Deployment) -> None:
    alex, sam = agent_token(deployment, "alex"), agent_token(deployment, "sam")
    assert presence_of(client, sam) == {"alex": "offline", "sam": "offline"}
    response = client.put("/api/me/presence", json={"status": "away"}, headers=alex)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "away", "given": 0}
    assert presence_of(client, sam) == {"alex": "away", "sam": "offline"}
    assert client.get("/api/team", headers=alex).json()["me"]["presence"] == "away"
    events = inbox_events(client, sam, "agent.presence")
    assert [(e["agent"], e["status"]) for e in events] == [("alex", "away")]


@pytest.mark.parametrize("body", [{}, {"status": "busy"}, {"status": None}, {"status": ["online"]}])
def test_a_bad_presence_is_400(client: TestClient, deployment: Deployment, body: dict[str, Any]) -> None:
    response = client.put("/api/me/presence", json=body, headers=agent_token(deployment, "alex"))
    assert response.status_code == 400
    assert "online, away, offline" in response.json()["error"]


def test_settings_assignment_wins_over_the_files_until_it_changes(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(assignment={"mode": "manual", "capacity": 4})
    admin, alex = agent_token(deployment, "robin", admin=True), agent_token(deployment, "alex")
    with TestClient(create_app(deployment)) as client:
        state = client.get("/api/assignment", headers=alex).json()["assignment"]
        assert state == {"mode": "manual", "capacity": 4, "source": "config.yaml",
                         "file": {"mode": "manual", "capacity": 4}, "queued": 0}
        assert client.put("/api/assignment", json={"mode": "balanced"}, headers=alex).status_code == 403
        response = client.put("/api/assignment", json={"mode": "balanced", "capacity": 2}, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["assignment"]["source"] == "settings"
        assert response.json()["assignment"]["mode"] == "balanced"
    # The file changes: its value is in force again.
    changed = Deployment.build(deployment.config.model_copy(deep=True), deployment.redis_url)
    changed.config.workspaces[0].assignment.capacity = 7
    try:
        with TestClient(create_app(changed)) as client:
            state = client.get("/api/assignment", headers=alex).json()["assignment"]
            assert (state["mode"], state["capacity"], state["source"]) == ("manual", 7, "config.yaml")
    finally:
        changed.close()


@pytest.mark.parametrize("body", [{}, {"mode": "fastest"}, {"mode": "balanced", "capacity": 0},
                                  {"mode": "balanced", "capacity": "3"}, {"mode": "balanced", "capacity": True}])
def test_a_bad_assignment_is_400(client: TestClient, deployment: Deployment, body: dict[str, Any]) -> None:
    response = client.put("/api/assignment", json=body, headers=agent_token(deployment, "robin", admin=True))
    assert response.status_code == 400, response.text


def test_a_handover_goes_to_the_online_agent_and_shows_in_their_inbox(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(assignment={"mode": "round_robin", "capacity": 3})
    alex, sam = agent_token(deployment, "alex"), agent_token(deployment, "sam")
    with TestClient(create_app(deployment)) as client:
        client.put("/api/me/presence", json={"status": "online"}, headers=sam)
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("transfer to agent")["conversation"]
        run_jobs(deployment)
        mine = client.get("/api/conversations", params={"view": "mine"}, headers=sam).json()
        assert [c["id"] for c in mine["conversations"]] == [cid]
        assert client.get("/api/conversations", params={"view": "mine"}, headers=alex).json()["conversations"] == []
        assert "Sam joined the conversation." in visitor.texts("system")
        assigned = [e for e in inbox_events(client, alex, "conversation.assigned") if e["conversation"] == cid]
        assert assigned[-1]["owner"] == "agent:sam" and assigned[-1]["actor"] == "auto"


def test_the_inbox_stream_keeps_an_agent_online_until_it_closes_and_the_grace_passes(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(presence={"offline_after": 0.5})
    workspace_id = workspace_of(deployment)
    alex = agent_token(deployment, "alex")
    opened, stop = threading.Event(), threading.Event()

    def listen(url: str) -> None:
        with httpx.stream("GET", f"{url}/api/events", headers=alex, timeout=30) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                opened.set()
                if stop.is_set():
                    return

    def status() -> str:
        return str(deployment.store.presence(workspace_id).get("alex", {}).get("status", "offline"))

    with LiveServer(deployment) as server:
        reader = threading.Thread(target=listen, args=(server.url,), daemon=True)
        reader.start()
        assert opened.wait(10)
        assert status() == "online"
        assert deployment.store.presence_sweep(workspace_id) == []
        stop.set()
        deployment.store.set_presence(workspace_id, "alex", "away")  # an event, so the reader sees a line and quits
        reader.join(10)
        deadline = time.monotonic() + 10
        gone: list[str] = []
        while not gone and time.monotonic() < deadline:
            time.sleep(0.1)
            gone = deployment.store.presence_sweep(workspace_id)
        assert gone == ["alex"]
        assert status() == "offline"


def test_a_chat_of_a_team_is_taken_by_its_members_and_admins_only(make_deployment: Callable[..., Deployment]) -> None:
    from gateway.web.auth import create_agent

    deployment = make_deployment(team="support")
    workspace_id = workspace_of(deployment)
    token = create_agent(deployment.redis, workspace_id, "sam", "Sam", teams=["support"])
    members = {"Authorization": f"Bearer {token}"}
    outsider = agent_token(deployment, "alex")
    admin = agent_token(deployment, "robin", admin=True)
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("transfer to agent")["conversation"]
        run_jobs(deployment)
        detail = client.get(f"/api/conversations/{cid}", headers=outsider).json()["conversation"]
        assert detail["team"] == "support"
        refused = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=outsider)
        assert refused.status_code == 403 and "support team" in refused.json()["error"]
        refused = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "alex"}, headers=admin)
        assert refused.status_code == 403 and "Alex is not in it" in refused.json()["error"]
        taken = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=members)
        assert taken.status_code == 200, taken.text
        forced = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me", "force": True}, headers=admin)
        assert forced.status_code == 200, forced.text
        me = client.get("/api/team", headers=members).json()["me"]
        assert me["teams"] == ["support"]


def test_an_agent_created_while_others_are_signed_in_is_announced(client: TestClient, deployment: Deployment) -> None:
    alex = agent_token(deployment, "alex")
    agent_token(deployment, "sam")
    created = [e["agent"] for e in inbox_events(client, alex, "agent.created")]
    assert created == ["alex", "sam"]


def test_an_admin_edits_an_agents_teams_and_who_may_take_a_chat_follows(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(team="support")
    alex, admin = agent_token(deployment, "alex"), agent_token(deployment, "robin", admin=True)
    with TestClient(create_app(deployment)) as client:
        cid = Visitor(client, chat_channel(deployment)).say("transfer to agent")["conversation"]
        run_jobs(deployment)
        take = {"assignee": "me"}
        assert client.post(f"/api/conversations/{cid}/assign", json=take, headers=alex).status_code == 403
        changed = client.put("/api/agents/alex/teams", json={"teams": ["support", "sales", "support"]},
                             headers=admin)
        assert changed.status_code == 200, changed.text
        assert changed.json()["agent"] == {"id": "alex", "name": "Alex", "admin": False,
                                           "teams": ["sales", "support"]}
        assert client.get("/api/team", headers=alex).json()["me"]["teams"] == ["sales", "support"]
        updated = inbox_events(client, admin, "agent.updated")
        assert [(e["agent"], e["teams"]) for e in updated] == [("alex", ["sales", "support"])]
        assert client.post(f"/api/conversations/{cid}/assign", json=take, headers=alex).status_code == 200
        cleared = client.put("/api/agents/alex/teams", json={"teams": []}, headers=admin)
        assert cleared.json()["agent"]["teams"] == []


@pytest.mark.parametrize(("who", "path", "body", "status"), [
    ("alex", "/api/agents/alex/teams", {"teams": ["support"]}, 403),  # not an admin: not even their own
    ("robin", "/api/agents/nobody/teams", {"teams": ["support"]}, 404),
    ("robin", "/api/agents/alex/teams", {"teams": "support"}, 400),
    ("robin", "/api/agents/alex/teams", {}, 400),
    ("robin", "/api/agents/alex/teams", {"teams": ["Support Team"]}, 400),
    ("robin", "/api/agents/alex/teams", {"teams": [7]}, 400),
    ("robin", "/api/agents/alex/teams", {"teams": [f"t{n}" for n in range(21)]}, 400),
])
def test_bad_team_edits_are_refused_with_a_reason(client: TestClient, deployment: Deployment, who: str, path: str,
                                                  body: dict[str, Any], status: int) -> None:
    tokens = {"alex": agent_token(deployment, "alex"), "robin": agent_token(deployment, "robin", admin=True)}
    response = client.put(path, json=body, headers=tokens[who])
    assert response.status_code == status, response.text
    assert response.json()["error"]
