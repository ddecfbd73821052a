"""POST /webhooks/{channel}: verify, parse, record, enqueue, acknowledge. Nothing slower."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.connector import WebhookRequest
from gateway.errors import BadRequest, UnknownChannel
from gateway.pipeline import record

MAX_BODY = 1024 * 1024


async def receive(request: Request) -> Response:
    """
    summary: Inbound webhook of a channel (e.g. Twilio WhatsApp)
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: Recorded; the body is what the provider expects (TwiML for Twilio)}
      400: {description: Malformed body, with the reason}
      403: {description: Signature missing or invalid}
      404: {description: Unknown channel}
      503: {description: Channel disabled (e.g. missing credentials)}
    """
    deployment = request.app.state.deployment
    channel = deployment.channel(request.path_params["channel"])
    if not channel.connector.has_webhook:
        raise UnknownChannel(f"channel {channel.name!r} takes no webhooks (it has its own API)")
    webhook = await read(request, deployment.public_url())
    channel.connector.verify(webhook)
    items = channel.connector.parse(webhook)
    await run_in_threadpool(record, deployment, channel, items)
    ack = channel.connector.acknowledge(webhook)
    return Response(ack.body, status_code=ack.status, media_type=ack.media_type)


async def read(request: Request, public_base: str) -> WebhookRequest:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"malformed form body: {exc}") from exc
    return WebhookRequest(method=request.method, url=public_url(request, public_base),
                          headers={k.lower(): v for k, v in request.headers.items()}, body=body, form=form,
                          query=dict(request.query_params))


def public_url(request: Request, public_base: str) -> str:
    """The URL the provider called: behind a proxy, rebuilt from the configured public base URL."""
    if not public_base:
        return str(request.url)
    query = request.url.query
    return f"{public_base}{request.url.path}" + (f"?{query}" if query else "")
