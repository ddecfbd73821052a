"""Rate limits shared by every gateway: a counter per subject and fixed window in Redis, one round trip a check."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from gateway import keys
from gateway.config import Rate
from gateway.errors import RateLimited


async def check(client: aioredis.Redis, workspace_id: str, scope: str, subject: str, rate: Rate, what: str) -> None:
    """Count one request of `subject`; RateLimited (429, with the seconds to wait) beyond `rate`."""
    now = time.time()
    window = int(now // rate.seconds)
    key = keys.key(keys.RATE, workspace_id=workspace_id, scope=scope, subject=f"{subject}:{window}")
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, rate.seconds + 1, nx=True)
    count, _ = await pipe.execute()
    if count > rate.count:
        retry_after = max(1, int((window + 1) * rate.seconds - now + 0.999))
        raise RateLimited(f"too many {what}: at most {rate.count} every {rate.seconds} s", retry_after)
