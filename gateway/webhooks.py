"""POST /webhooks/{channel}: verify, parse, record, acknowledge. Nothing slower, and no thread hop."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from gateway.connector import WebhookConnector, WebhookRequest
from gateway.errors import BadRequest, UnknownChannel
from gateway.http import read_body
from gateway.pipeline import record

MAX_BODY = 64 * 1024  # a Twilio webhook is a few KB; 10 media URLs and a 4,096-character text fit many times


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
      413: {description: Body too large}
      503: {description: Channel disabled (e.g. missing credentials), or storage unavailable (the provider retries)}
    """
    deployment = request.app.state.deployment
    channel = deployment.channel(request.path_params["channel"])
    connector = channel.connector
    if not isinstance(connector, WebhookConnector):
        raise UnknownChannel(f"channel {channel.name!r} takes no webhooks (it has its own API)")
    webhook = await read(request, deployment.public_url())
    connector.verify(webhook)
    await record(request.app.state.astore, channel, connector.parse(webhook))
    ack = connector.acknowledge(webhook)
    return Response(ack.body, status_code=ack.status, media_type=ack.media_type)


async def read(request: Request, public_base: str) -> WebhookRequest:
    body = await read_body(request, MAX_BODY)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                             errors="strict", max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"malformed form body: {exc}") from exc
    return WebhookRequest(method=request.method, url=public_url(request, public_base),
                          headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},
                          body=body, form=form, query=dict(request.query_params))


def public_url(request: Request, public_base: str) -> str:
    """The URL the provider called: behind a proxy, rebuilt from the configured public base URL."""
    if not public_base:
        return str(request.url)
    query = request.url.query
    return f"{public_base}{request.url.path}" + (f"?{query}" if query else "")
