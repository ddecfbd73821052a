"""Is this gateway alive, and is the deployment ready to serve? For load balancers and orchestrators."""

from __future__ import annotations

import hmac
import time
from typing import Any

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__, keys, schema
from gateway.breaker import State
from gateway.metrics import exposition

WORKER_FRESH_MS = 10_000  # a worker heartbeat older than this does not count


async def healthz(request: Request) -> Response:
    """
    summary: Liveness (the process answers)
    responses:
      200:
        description: Alive
        content:
          application/json:
            schema:
              type: object
              required: [status, version]
              properties: {status: {type: string, enum: [ok]}, version: {type: string}}
    """
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    """
    summary: Readiness (Redis reachable and writable, its data of this release's schema, a worker alive, the no-human
      timers running)
    responses:
      200:
        description: Ready
        content:
          application/json:
            schema:
              type: object
              required: [status, workers]
              properties:
                status: {type: string, enum: [ready]}
                workers: {type: integer, minimum: 1}
                degraded:
                  description: Workspaces whose AI model's circuit breaker is open (their conversations go to
                    a human at once); absent when none is
                  type: array
                  items:
                    type: object
                    required: [workspace, state, model, reason]
                    properties:
                      workspace: {type: string}
                      state: {type: string, enum: [open, probing]}
                      model: {type: string}
                      reason: {type: string}
      503:
        description: Not ready, and why
        content:
          application/json:
            schema:
              type: object
              required: [status, reason]
              properties: {status: {type: string, enum: [unavailable]}, reason: {type: string}}
    """
    client = request.app.state.aredis
    now = int(time.time() * 1000)
    queue = request.app.state.deployment.config.queue
    try:
        await client.set("baton:readyz", now, px=60_000)
        if problem := await _schema_problem(request):
            return _unavailable(problem)
        beats = await client.zrangebyscore(keys.key(keys.WORKERS, queue=queue), now - WORKER_FRESH_MS, "+inf")
        timers = [await client.hget(keys.key(keys.WORKER, queue=queue, name=name), "timers_at") for name in beats]
    except (RedisError, OSError) as exc:
        return _unavailable(f"Redis is not reachable or not writable: {exc}")
    if not beats:
        return _unavailable("no worker has sent a heartbeat in the last 10 s: nothing answers customers or fires "
                            "the no-human timers")
    if not any(at and now - int(at) < WORKER_FRESH_MS for at in timers):
        return _unavailable("no worker has checked the no-human timers in the last 10 s")
    answer: dict[str, object] = {"status": "ready", "workers": len(beats)}
    if degraded := await _degraded(request, client, now):
        answer["degraded"] = degraded
    return JSONResponse(answer)


async def _schema_problem(request: Request) -> str:
    """Why the data in Redis is not this release's to serve, or "". A store that carries no schema version (new, or
    flushed) is examined once a minute at most: that takes a scan of its keys."""
    found = await request.app.state.aredis.hmget(keys.SCHEMA, ["version", "migrating"])
    state = schema.State(*(int(v) if v is not None else None for v in found))
    if state.version is not None or state.migrating is not None:
        return schema.describe(state)
    checked = getattr(request.app.state, "schema_checked", None)
    if checked is None or time.monotonic() - checked[0] > 60:
        try:
            await run_in_threadpool(schema.ensure, request.app.state.deployment.redis)
            checked = (time.monotonic(), "")
        except schema.SchemaMismatch as exc:
            checked = (time.monotonic(), exc.reason)
        request.app.state.schema_checked = checked
    return str(checked[1])


async def _degraded(request: Request, client: Any, now: int) -> list[dict[str, str]]:
    """The workspaces whose AI model's circuit is open: Baton is ready, but their customers get no AI answers."""
    agents = [(w.id, w.ai_agent) for w in request.app.state.deployment.config.workspaces if w.ai_agent]
    try:
        async with client.pipeline(transaction=False) as pipe:
            for workspace_id, _ in agents:
                pipe.hgetall(keys.key(keys.MODEL_BREAKER, workspace_id=workspace_id))
            found = await pipe.execute()
    except (RedisError, OSError):
        return []
    degraded = []
    for (workspace_id, agent), data in zip(agents, found, strict=True):
        state = State.of(_text(data), agent.model).describe(now)
        if state["state"] != "closed":
            degraded.append({"workspace": workspace_id, "state": state["state"], "model": agent.model,
                             "reason": f"the AI's model failed {state['failures']} times in a row "
                                       f"({state['last_error']}): conversations go to a human at once"})
    return degraded


def _text(data: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in data.items()}


async def metrics(request: Request) -> Response:
    """
    summary: Prometheus metrics (to a request from this machine, or with the bearer metrics_token)
    responses:
      200:
        description: The Prometheus text exposition format, names prefixed baton_
        content: {text/plain: {schema: {type: string}}}
      403:
        description: Neither from this machine nor with a valid metrics token
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    deployment = request.app.state.deployment
    token = deployment.config.metrics_token
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    # A request a proxy forwarded is not local, whatever address the proxy connects from.
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    local = not forwarded and request.client is not None and request.client.host in ("127.0.0.1", "::1", "localhost")
    if not (hmac.compare_digest(given, token) if token else local):
        return JSONResponse({"error": _metrics_refusal(bool(token), bool(given), local, forwarded)}, status_code=403)
    body, content_type = await run_in_threadpool(exposition, deployment)
    return Response(body, media_type=content_type)


def _metrics_refusal(token: bool, given: bool, local: bool, forwarded: bool) -> str:
    """Why /metrics said no, in terms of what this request was (a local one is not told it is not local)."""
    if token:
        wrong = "is not metrics_token" if given else "is missing"
        return (f"metrics need 'Authorization: Bearer <metrics_token>': the token {wrong} (with metrics_token set, "
                "requests from this machine need it too)")
    if forwarded:
        return ("metrics answer requests from this machine only, and this one came through a proxy "
                "(X-Forwarded-For): set metrics_token to scrape from elsewhere")
    return "metrics answer requests from this machine only: set metrics_token to scrape from elsewhere"


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
