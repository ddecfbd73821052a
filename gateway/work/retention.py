"""Retention: closed conversations older than `retention.closed_days` are archived (a JSON line per conversation
in the archive directory, and the `baton_archive` hook), then deleted from Redis. One worker at a time does it."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from gateway import keys
from gateway.deployment import Deployment
from gateway.plugin_host import call_hook

log = logging.getLogger("baton.retention")

BATCH = 100  # conversations per workspace per run
LEADER_MS = 55_000  # runs every minute; the leader's claim lapses before the next run


def sweep(deployment: Deployment, worker: str, now_ms: int | None = None) -> int:
    """Archive and delete what is past retention, if this worker is the one to do it now; how many."""
    days = deployment.config.retention.closed_days
    if not days:
        return 0
    leader = keys.key(keys.LEADER, queue=deployment.config.queue, task="retention")
    if not deployment.redis.set(leader, worker, nx=True, px=LEADER_MS):
        return 0
    now_ms = now_ms if now_ms is not None else deployment.store.now_ms()
    cutoff = now_ms - int(days * 86_400_000)
    count = 0
    for workspace in deployment.config.workspaces:
        for conversation_id in deployment.store.closed_before(workspace.id, cutoff, BATCH):
            count += forget(deployment, workspace.id, conversation_id)
    return count


def forget(deployment: Deployment, workspace_id: str, conversation_id: str) -> int:
    """Archive one closed conversation and delete it; 0 when archiving failed (it is kept for the next run)."""
    record: dict[str, Any] = dict(deployment.store.conversation(workspace_id, conversation_id))
    record["messages"] = deployment.store.messages(workspace_id, conversation_id, limit=1_000_000)
    try:
        _write(deployment, workspace_id, record)
        call_hook("baton_archive", workspace=workspace_id, conversation=record)
    except Exception:  # noqa: BLE001 - the chore's boundary: keep the conversation, try again next time
        log.exception("archiving conversation %s/%s failed; it is kept", workspace_id, conversation_id,
                      extra={"workspace": workspace_id, "conversation": conversation_id})
        return 0
    forgotten = deployment.store.forget(workspace_id, conversation_id)
    if forgotten:
        log.info("conversation %s/%s deleted by retention (closed %s; archived first)", workspace_id, conversation_id,
                 time.strftime("%Y-%m-%d", time.gmtime(int(record.get("closed_at", 0)) / 1000)),
                 extra={"workspace": workspace_id, "conversation": conversation_id})
    return int(forgotten)


def _write(deployment: Deployment, workspace_id: str, record: dict[str, Any]) -> None:
    directory = deployment.config.retention.archive_dir
    if not directory:
        return
    month = time.strftime("%Y-%m", time.gmtime(int(record.get("closed_at", 0)) / 1000))
    path = deployment.config.data_path() / directory / workspace_id / f"{month}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("a", encoding="utf-8") as archive:
        archive.write(json.dumps(record, ensure_ascii=False) + "\n")


