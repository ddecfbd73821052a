"""Labels and canned replies: admins define them; any agent puts a label on a conversation or takes it off (the state
script's `label`, with the label's view kept in the same step), a label's view lists its conversations by activity,
search narrows to a label, deleting a label takes it off everywhere; canned replies are listed to every agent and
changed by admins only."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from gateway.deployment import Deployment
from tests.conftest import Visitor, agent_token

# --- the API ---------------------------------------------------------------------------------------------------------

def test_admins_define_labels_agents_put_them_on_and_views_and_search_narrow_to_them(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    admin, agent = agent_token(deployment, "ada", admin=True), agent_token(deployment, "alex")
    assert client.put("/api/labels/vip", json={"color": "red"}, headers=agent).status_code == 403
    answer = client.put("/api/labels/vip", json={"color": "red"}, headers=admin)
    assert answer.status_code == 200 and answer.json()["label"]["color"] == "red"
    assert client.put("/api/labels/VIP", json={}, headers=admin).status_code == 400
    assert client.put("/api/labels/vip", json={"color": "plaid"}, headers=admin).status_code == 400
    cid = visitor.say("my invoice is wrong")["conversation"]
    other = Visitor(client, visitor.channel).say("another invoice question")["conversation"]
    answer = client.post(f"/api/conversations/{cid}/labels", json={"label": "vip"}, headers=agent)
    assert answer.status_code == 200 and answer.json() == {"labels": ["vip"]}
    refused = client.post(f"/api/conversations/{cid}/labels", json={"label": "nope"}, headers=agent)
    assert refused.status_code == 409 and "Settings" in refused.json()["error"]
    assert client.post(f"/api/conversations/{cid}/labels", json={"label": 3}, headers=agent).status_code == 400
    view = client.get("/api/conversations", params={"label": "vip"}, headers=agent).json()
    assert [c["id"] for c in view["conversations"]] == [cid] and view["counts"]["label"] == 1
    assert view["conversations"][0]["labels"] == ["vip"]
    assert client.get("/api/conversations", params={"label": "Bad!"}, headers=agent).status_code == 400
    assert {r["conversation"]["id"] for r in client.get("/api/search", params={"q": "invoice"},
                                                         headers=agent).json()["results"]} == {cid, other}
    assert [r["conversation"]["id"] for r in client.get("/api/search", params={"q": "invoice", "label": "vip"},
                                                         headers=agent).json()["results"]] == [cid]
    listed = client.get("/api/labels", headers=agent).json()["labels"]
    assert [(label["name"], label["conversations"]) for label in listed] == [("vip", 1)]
    assert client.delete(f"/api/conversations/{cid}/labels/vip", headers=agent).json() == {"labels": []}
    assert client.delete("/api/labels/vip", headers=agent).status_code == 403
    assert client.delete("/api/labels/vip", headers=admin).status_code == 200
    assert client.delete("/api/labels/vip", headers=admin).status_code == 404


def test_canned_replies_are_for_every_agent_and_changed_by_admins(client: TestClient, deployment: Deployment) -> None:
    admin, agent = agent_token(deployment, "ada", admin=True), agent_token(deployment, "alex")
    text = "Hi {{customer.first_name}}, {{agent.name}} here: thanks for waiting!"
    assert client.put("/api/canned/thanks", json={"text": text}, headers=agent).status_code == 403
    assert client.put("/api/canned/thanks", json={"text": text}, headers=admin).status_code == 200
    for bad in ({"text": ""}, {"text": "  "}, {"text": 3}, {"text": "x" * 4097}):
        assert client.put("/api/canned/thanks", json=bad, headers=admin).status_code == 400, bad
    assert client.put("/api/canned/Bad Name", json={"text": "x"}, headers=admin).status_code == 400
    replies: list[dict[str, Any]] = client.get("/api/canned", headers=agent).json()["canned_replies"]
    assert [(r["shortcut"], r["text"], r["by"]) for r in replies] == [("thanks", text, "ada")]
    assert client.delete("/api/canned/thanks", headers=agent).status_code == 403
    assert client.delete("/api/canned/thanks", headers=admin).status_code == 200
    assert client.delete("/api/canned/thanks", headers=admin).status_code == 404
    assert client.get("/api/canned", headers=agent).json() == {"canned_replies": []}


def test_an_agent_edits_a_contact_and_bad_details_are_refused_by_field(client: TestClient, deployment: Deployment,
                                                                       visitor: Visitor) -> None:
    agent = agent_token(deployment, "alex")
    cid = visitor.say("hello there")["conversation"]
    contact_id = client.get(f"/api/conversations/{cid}", headers=agent).json()["conversation"]["contact"]["id"]
    answer = client.patch(f"/api/contacts/{contact_id}", json={"name": "Lena Fischer", "phone": "+34 612 345 678"},
                          headers=agent)
    assert answer.status_code == 200, answer.text
    assert answer.json()["contact"]["name"] == "Lena Fischer" and "terms" not in answer.json()["contact"]
    assert [r["conversation"]["id"] for r in client.get("/api/search", params={"q": "fischer"},
                                                         headers=agent).json()["results"]] == [cid]
    for body, field in [({"email": "not-an-email"}, "email"), ({"name": 3}, "name"), ({"name": "x" * 121}, "name")]:
        refused = client.patch(f"/api/contacts/{contact_id}", json=body, headers=agent)
        assert refused.status_code == 400 and field in refused.json()["fields"], refused.text
    for body in ({}, {"notes": "x"}):
        assert client.patch(f"/api/contacts/{contact_id}", json=body, headers=agent).status_code == 400
    assert client.patch("/api/contacts/999999", json={"name": "A"}, headers=agent).status_code == 404
    assert client.patch("/api/contacts/abc", json={"name": "A"}, headers=agent).status_code == 404
    assert client.patch(f"/api/contacts/{contact_id}", json={"name": "A"}).status_code == 401


def test_an_agent_snoozes_a_conversation_and_the_views_follow(client: TestClient, deployment: Deployment,
                                                              visitor: Visitor) -> None:
    agent = agent_token(deployment, "alex")
    cid = visitor.say("I need a refund")["conversation"]
    assert client.post(f"/api/conversations/{cid}/messages", json={"text": "Looking", "client_id": "c1"},
                       headers=agent).status_code == 201
    for body in ({"until": "tomorrow"}, {"until": 1}, {"until": True}):
        assert client.post(f"/api/conversations/{cid}/snooze", json=body, headers=agent).status_code == 400, body
    answer = client.post(f"/api/conversations/{cid}/snooze", json={}, headers=agent)
    assert answer.status_code == 200 and answer.json() == {"snoozed_until": "next"}
    views = client.get("/api/conversations", params={"view": "snoozed"}, headers=agent).json()
    assert [c["id"] for c in views["conversations"]] == [cid] and views["counts"]["all"] == 0
    assert views["conversations"][0]["snoozed_until"] == "next"
    visitor.say("any news?")
    assert client.get("/api/conversations", params={"view": "snoozed"}, headers=agent).json()["conversations"] == []
    assert client.post(f"/api/conversations/{cid}/unsnooze", headers=agent).status_code == 409
    assert client.post("/api/conversations/99999/snooze", json={}, headers=agent).status_code == 404
