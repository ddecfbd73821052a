"""Attachments a provider names by id (Meta's media ids): downloaded with the channel's credentials as soon as the
message is recorded (the provider's download URL lives minutes), kept in the store, served to agents.

A customer's message stores such an attachment with `url` = `/api/media/<channel>/<media id>`; the inbox links to
it. The bytes are fetched after the webhook is acknowledged (never on its path); if that fails (the provider down,
the process stopped), the first agent who opens it has it fetched then, while the provider still has it.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway import keys
from gateway.connector import Media
from gateway.deployment import Channel, Deployment
from gateway.errors import NotFound, SendFailed, Unavailable

log = logging.getLogger("baton.media")

KEEP_S = 30 * 24 * 3600  # how long an attachment is kept (Meta keeps its media ids 7 days)
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
#: Types an inbox may show inline; anything else is downloaded as a file (a customer's HTML never runs here).
INLINE = re.compile(r"^(image/(png|jpeg|gif|webp)|audio/[a-z0-9.+-]+|video/[a-z0-9.+-]+)$")


def url(channel_name: str, media_id: str) -> str:
    return f"/api/media/{channel_name}/{media_id}"


def fetchable(channel: Channel) -> bool:
    return "fetch_media" in channel.connector.capabilities()


def keep(deployment: Deployment, channel: Channel, media: list[Media]) -> None:
    """Download each attachment and store it (after the webhook's answer, in a thread); failures are logged, and
    left for `serve` to try again."""
    for item in media:
        try:
            fetch(deployment, channel, item.provider_id, item.content_type)
        except (SendFailed, Unavailable, NotFound) as exc:
            log.warning("channel %s: media %s not downloaded now: %s", channel.name, item.provider_id, exc.reason,
                        extra={"channel": channel.name})


def fetch(deployment: Deployment, channel: Channel, media_id: str, content_type: str = "") -> tuple[bytes, str]:
    """The attachment's bytes and type: from the store, else from the provider (then stored)."""
    media_key = keys.key(keys.MEDIA, workspace_id=channel.workspace.id, channel=channel.name, media_id=media_id)
    stored: Any = deployment.redis.hmget(media_key, ["data", "content_type"])
    if stored[0] is not None:  # base64: the store's connections decode what they read as text
        return base64.b64decode(stored[0]), str(stored[1] or "application/octet-stream")
    content = channel.connector.fetch_media(Media(content_type=content_type, provider_id=media_id))
    pipe = deployment.redis.pipeline(transaction=True)
    pipe.hset(media_key, mapping={"data": base64.b64encode(content.data).decode(),
                                  "content_type": content.content_type})
    pipe.expire(media_key, KEEP_S)
    pipe.execute()
    return content.data, content.content_type


async def serve(request: Request, deployment: Deployment, workspace_id: str) -> Response:
    channel_name, media_id = request.path_params["channel"], request.path_params["media"]
    channel = deployment.channels.get(channel_name)
    if channel is None or channel.workspace.id != workspace_id or not fetchable(channel) or \
            not _MEDIA_ID.match(media_id):
        raise NotFound("no such attachment")
    try:
        data, kind = await run_in_threadpool(fetch, deployment, channel, media_id)
    except SendFailed as exc:
        if exc.retryable:
            raise Unavailable(f"the attachment cannot be fetched now: {exc.reason}") from exc
        raise NotFound(f"the attachment is not available: {exc.reason}") from exc
    inline = bool(INLINE.match(kind))
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
               "Cache-Control": "private, max-age=86400",
               "Content-Disposition": "inline" if inline else f'attachment; filename="{media_id}"'}
    return Response(data, media_type=kind if inline else "application/octet-stream", headers=headers)
