"""Is this gateway alive, and is the deployment ready to serve? For load balancers and orchestrators."""

from __future__ import annotations

import time

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__, keys

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
    summary: Readiness (Redis reachable and writable, a worker alive, the no-human timers running)
    responses:
      200:
        description: Ready
        content:
          application/json:
            schema:
              type: object
              required: [status, workers]
              properties: {status: {type: string, enum: [ready]}, workers: {type: integer, minimum: 1}}
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
    try:
        await client.set("baton:readyz", now, px=60_000)
        beats = await client.zrangebyscore(keys.WORKERS, now - WORKER_FRESH_MS, "+inf")
    except (RedisError, OSError) as exc:
        return _unavailable(f"Redis is not reachable or not writable: {exc}")
    if not beats:
        return _unavailable("no worker has sent a heartbeat in the last 10 s: nothing answers customers or fires "
                            "the no-human timers")
    return JSONResponse({"status": "ready", "workers": len(beats)})


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
