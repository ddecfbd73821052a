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
    responses: {200: {description: '{"status": "ok", "version"}'}}
    """
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    """
    summary: Readiness (Redis reachable and writable, a worker alive, the no-human timers running)
    responses:
      200: {description: '{"status": "ready", "workers": n}'}
      503: {description: '{"status": "unavailable", "reason"}'}
    """
    client = request.app.state.aredis
    now = int(time.time() * 1000)
    try:
        await client.set("baton:readyz", now, px=60_000)
        workers = keys.key(keys.WORKERS, queue=request.app.state.deployment.config.queue)
        beats = await client.zrangebyscore(workers, now - WORKER_FRESH_MS, "+inf")
    except (RedisError, OSError) as exc:
        return _unavailable(f"Redis is not reachable or not writable: {exc}")
    if not beats:
        return _unavailable("no worker has sent a heartbeat in the last 10 s: nothing answers customers or fires "
                            "the no-human timers")
    return JSONResponse({"status": "ready", "workers": len(beats)})


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
