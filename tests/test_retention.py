"""Retention: closed conversations past `retention.closed_days` are archived, then deleted; open ones and recent
ones stay; an archive that fails keeps the conversation; one worker at a time does it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from gateway import hookimpl, keys
from gateway.deployment import Deployment
from gateway.plugin_host import plugin_manager
from gateway.web.app import create_app
from gateway.work import retention
from tests.conftest import Visitor, chat_channel, workspace_of

DAY_MS = 86_400_000


def conversations(deployment: Deployment, *texts: str, close: bool = True) -> list[str]:
    with TestClient(create_app(deployment)) as client:
        ids = [Visitor(client, chat_channel(deployment)).say(text)["conversation"] for text in texts]
    for cid in ids if close else []:
        deployment.store.close(workspace_of(deployment), cid, "agent:alex")
    return ids


def test_closed_conversations_past_retention_are_archived_then_deleted(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(retention={"closed_days": 30})
    workspace = workspace_of(deployment)
    old = conversations(deployment, "my lamp flickers", "where is my parcel")
    [still_open] = conversations(deployment, "hello?", close=False)
    later = deployment.store.now_ms() + 31 * DAY_MS
    assert retention.sweep(deployment, "w1", now_ms=later) == 2
    for cid in old:
        assert not deployment.redis.exists(keys.key(keys.CONVERSATION, workspace_id=workspace, conversation_id=cid))
        assert not deployment.redis.exists(keys.key(keys.MESSAGES, workspace_id=workspace, conversation_id=cid))
    assert deployment.store.conversation(workspace, still_open)["status"] == "open"
    assert deployment.store.conversation_ids(workspace, "closed") == []
    [archive] = (deployment.config.data_path() / "archive" / workspace).glob("*.jsonl")
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(old)
    assert {m["text"] for line in lines for m in line["messages"] if m["author"] == "customer"} == {
        "my lamp flickers", "where is my parcel"}


def test_recent_closed_conversations_stay_and_zero_days_keeps_everything(
        make_deployment: Callable[..., Deployment]) -> None:
    keep = make_deployment(retention={"closed_days": 0})
    conversations(keep, "hello")
    assert retention.sweep(keep, "w1", now_ms=keep.store.now_ms() + 1000 * DAY_MS) == 0
    recent = make_deployment(retention={"closed_days": 30})
    conversations(recent, "hello")
    assert retention.sweep(recent, "w1", now_ms=recent.store.now_ms() + 29 * DAY_MS) == 0
    assert len(recent.store.conversation_ids(workspace_of(recent), "closed")) == 1


def test_a_failing_archive_keeps_the_conversation_for_the_next_run(
        make_deployment: Callable[..., Deployment]) -> None:
    calls: list[str] = []

    class Broken:
        @hookimpl
        def baton_archive(self, workspace: str, conversation: dict[str, Any]) -> None:
            calls.append(conversation["id"])
            raise OSError("archive storage is full")

    deployment = make_deployment(retention={"closed_days": 1, "archive_dir": ""})
    [cid] = conversations(deployment, "hello")
    plugin = Broken()
    plugin_manager().register(plugin)
    try:
        assert retention.sweep(deployment, "w1", now_ms=deployment.store.now_ms() + 2 * DAY_MS) == 0
    finally:
        plugin_manager().unregister(plugin)
    assert calls == [cid]
    assert deployment.store.conversation(workspace_of(deployment), cid)["status"] == "closed"


def test_one_worker_at_a_time_runs_retention(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(retention={"closed_days": 1})
    conversations(deployment, "one", "two")
    later = deployment.store.now_ms() + 2 * DAY_MS
    assert retention.sweep(deployment, "w1", now_ms=later) == 2
    conversations(deployment, "three")
    assert retention.sweep(deployment, "w2", now_ms=later + 2 * DAY_MS) == 0  # w1 leads for the minute
