"""Commits whose outcome Baton cannot know: Redis ran the change but its answer was lost, or the change reached Redis
late, or Redis refused it for a while (out of memory). An agent's reply carries an idempotency key and is recorded
once however it is retried; an AI turn keeps its answer and commits it again, never asking the model twice and never
posting twice. Against a real server, through a proxy that misbehaves on command (tests/redis_proxy.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from gateway import deployment as deployment_module
from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.web.app import create_app
from gateway.work import turn as turn_module
from tests.conftest import Visitor, agent_token, chat_channel, config_tree, hosted_model, run_jobs, workspace_of
from tests.redis_proxy import RedisProxy

POST = b"\r\npost\r\n"  # the state script's operation, as it travels in the EVALSHA


@pytest.fixture
def proxy(redis_url: str) -> Iterator[RedisProxy]:
    with RedisProxy(redis_url) as running:
        yield running


def build(proxy: RedisProxy, tmp_path: Path, **overrides: Any) -> Deployment:
    tree = config_tree(f"t{uuid.uuid4().hex[:10]}", **overrides)
    return Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=tmp_path), proxy.url)


def history(deployment: Deployment, cid: str) -> list[dict[str, Any]]:
    return list(deployment.store.messages(workspace_of(deployment), cid))


def started(client: TestClient, deployment: Deployment) -> tuple[str, dict[str, str]]:
    visitor = Visitor(client, chat_channel(deployment))
    cid = str(visitor.say("transfer to agent")["conversation"])
    run_jobs(deployment)
    return cid, agent_token(deployment, "alex")


# --- an agent's reply ---------------------------------------------------------------------------------------------

def test_a_reply_whose_answer_redis_lost_is_answered_from_its_key_and_recorded_once(proxy: RedisProxy,
                                                                                    tmp_path: Path) -> None:
    deployment = build(proxy, tmp_path)
    with TestClient(create_app(deployment)) as client:
        cid, alex = started(client, deployment)
        proxy.arm(POST, "lose_answer")
        body = {"text": "Hi, Alex here. Let me look.", "client_id": "reply-1"}
        sent = client.post(f"/api/conversations/{cid}/messages", json=body, headers=alex)
        assert proxy.applied == [("lose_answer", POST)]
        assert sent.status_code == 201, sent.text  # not "503, try again": the key says it was recorded
        again = client.post(f"/api/conversations/{cid}/messages", json=body, headers=alex)  # a retry anyway
        assert again.status_code == 200 and again.json()["id"] == sent.json()["id"]
    replies = [m for m in history(deployment, cid) if m["author"] == "agent"]
    assert [m["id"] for m in replies] == [sent.json()["id"]]
    deployment.close()


def test_a_reply_that_reaches_redis_late_is_found_once_it_lands(proxy: RedisProxy, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment_module, "STORE_TIMEOUT_S", 0.5)
    deployment = build(proxy, tmp_path)
    with TestClient(create_app(deployment)) as client:
        cid, alex = started(client, deployment)
        proxy.arm(POST, "delay", delay=1.2)
        sent = client.post(f"/api/conversations/{cid}/messages", json={"text": "Late but here", "client_id": "late-1"},
                           headers=alex)
        assert sent.status_code == 201, sent.text
    assert [m["text"] for m in history(deployment, cid) if m["author"] == "agent"] == ["Late but here"]
    deployment.close()


def test_a_reply_that_never_reached_redis_says_to_send_it_again_and_the_retry_records_it_once(
        proxy: RedisProxy, tmp_path: Path) -> None:
    deployment = build(proxy, tmp_path)
    with TestClient(create_app(deployment)) as client:
        cid, alex = started(client, deployment)
        proxy.arm(POST, "lose_command")
        body = {"text": "Are you still there?", "client_id": "reply-2"}
        lost = client.post(f"/api/conversations/{cid}/messages", json=body, headers=alex)
        assert lost.status_code == 503 and "same client_id" in lost.json()["error"]
        retried = client.post(f"/api/conversations/{cid}/messages", json=body, headers=alex)
        assert retried.status_code == 201
    assert [m["text"] for m in history(deployment, cid) if m["author"] == "agent"] == ["Are you still there?"]
    deployment.close()


def test_a_client_id_is_one_reply_in_one_conversation(client: TestClient, deployment: Deployment) -> None:
    first, alex = started(client, deployment)
    visitor = Visitor(client, chat_channel(deployment))
    second = str(visitor.say("transfer to agent")["conversation"])
    body = {"text": "Hello", "client_id": "k1"}
    assert client.post(f"/api/conversations/{first}/messages", json=body, headers=alex).status_code == 201
    reused = client.post(f"/api/conversations/{second}/messages", json=body, headers=alex)
    assert reused.status_code == 409 and "another conversation" in reused.json()["error"]
    bad = client.post(f"/api/conversations/{first}/messages", json={"text": "x", "client_id": "a b"}, headers=alex)
    assert bad.status_code == 400 and "client_id" in bad.json()["error"]


# --- an AI turn ---------------------------------------------------------------------------------------------------

def test_an_answer_redis_refused_for_lack_of_memory_is_committed_again_without_asking_the_model_again(
        proxy: RedisProxy, tmp_path: Path, fake_openai: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turn_module, "COMMIT_RETRIES", (0.05, 0.05, 0.05))
    deployment = build(proxy, tmp_path, ai_agent=hosted_model(fake_openai))
    fake_openai.reply("Delivery takes 2-4 business days.")
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = str(visitor.say("How long does shipping take?")["conversation"])
        proxy.arm(POST, "oom", times=2)
        run_jobs(deployment)
    assert proxy.applied == [("oom", POST), ("oom", POST)]
    assert len(fake_openai.requests) == 1  # the answer was kept, not asked for again
    assert [m["text"] for m in history(deployment, cid) if m["author"] == "ai"] == [
        "Delivery takes 2-4 business days."]
    deployment.close()


def test_an_answer_whose_commit_answer_was_lost_is_not_posted_twice_nor_noted_as_suppressed(
        proxy: RedisProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turn_module, "COMMIT_RETRIES", (0.05,))
    deployment = build(proxy, tmp_path)
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = str(visitor.say("What are your opening hours?")["conversation"])
        proxy.arm(POST, "lose_answer")
        run_jobs(deployment)
    assert proxy.applied == [("lose_answer", POST)]
    messages = history(deployment, cid)
    assert [m["author"] for m in messages] == ["customer", "ai"]  # no second answer, no "suppressed" note
    conversation = deployment.store.conversation(workspace_of(deployment), cid)
    assert conversation["ai_cursor"] == messages[0]["id"]
    deployment.close()
