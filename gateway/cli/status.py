"""`baton status`: the workers, the work waiting and in flight, the no-human timers, and Redis, on one screen."""

from __future__ import annotations

import time
from typing import Any

from gateway import keys
from gateway.deployment import Deployment
from gateway.redis_server import redact


def report(deployment: Deployment) -> str:
    client = deployment.redis
    now = int(time.time() * 1000)
    lines = [_redis_line(deployment)]
    queue = deployment.config.queue
    workers: Any = client.zrangebyscore(keys.key(keys.WORKERS, queue=queue), now - 60_000, "+inf")
    lines.append(f"workers: {len(workers)} seen in the last minute")
    for name in workers:
        info: Any = client.hgetall(keys.key(keys.WORKER, queue=queue, name=name))
        if info:
            lines.append(f"  {name}: alive (Baton {info.get('version', '?')}, pid {info.get('pid')} on "
                         f"{info.get('host')}), "
                         f"{info.get('turns_in_flight', 0)} turns and {info.get('deliveries_in_flight', 0)} "
                         f"deliveries in flight")
        else:
            lines.append(f"  {name}: no heartbeat for over 5 s")
    for workspace in deployment.config.workspaces:
        lines.append(f"workspace {workspace.id}:")
        lines.append("  " + _line(deployment, workspace.id, now))
    jobs = deployment.queue
    lines.append(f"RQ queue {jobs.name}: {jobs.count} waiting, {jobs.started_job_registry.count} running, "
                 f"{jobs.failed_job_registry.count} failed, {jobs.scheduled_job_registry.count} scheduled")
    return "\n".join(lines)


def _line(deployment: Deployment, workspace_id: str, now: int) -> str:
    client = deployment.redis
    parts = []
    for label, template in (("AI turns pending", keys.PENDING_TURNS), ("outboxes to send", keys.OUTBOXES)):
        zset = keys.key(template, workspace_id=workspace_id)
        oldest = client.zrange(zset, 0, 0, withscores=True)
        age = f", oldest {max(0, now - int(oldest[0][1])) / 1000:.1f} s" if oldest else ""
        parts.append(f"{label}: {client.zcard(zset)}{age}")
    timers = keys.key(keys.FALLBACK_TIMERS, workspace_id=workspace_id)
    due = client.zrange(timers, 0, 0, withscores=True)
    next_due = f", next in {(int(due[0][1]) - now) / 1000:.0f} s" if due else ""
    parts.append(f"no-human timers: {client.zcard(timers)}{next_due}")
    counts = deployment.store.counts(workspace_id)
    parts.append(f"open: {counts['all']} ({counts['ai']} with the AI, {counts['waiting']} waiting for a human)")
    return "; ".join(parts)


def _redis_line(deployment: Deployment) -> str:
    info = deployment.redis.info("replication")
    role = info.get("role", "?")
    replicas = [info[k] for k in info if k.startswith("slave") and isinstance(info[k], dict)]
    described = ", ".join(f"{r.get('ip')}:{r.get('port')} ({r.get('state')}, lag {r.get('lag')} s)" for r in replicas)
    where = redact(deployment.redis_url)
    return f"redis: {where} — {role}, {len(replicas)} replica(s){': ' + described if described else ''}"
