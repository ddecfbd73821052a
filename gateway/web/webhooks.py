"""POST /webhooks/{channel}: verify, parse, record, acknowledge. Nothing slower, and no thread hop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway import metrics
from gateway.connector import WebhookConnector, WebhookRequest
from gateway.errors import BadRequest, BatonError, UnknownChannel
from gateway.web.http import read_body
from gateway.web.pipeline import record

MAX_BODY = 64 * 1024  # a Twilio webhook is a few KB; 10 media URLs and a 4,096-character text fit many times


async def receive(request: Request) -> Response:
    """
    summary: Inbound webhook of a channel (Twilio WhatsApp's messages and delivery statuses)
    security: [{twilioSignature: []}]
    parameters:
      - {name: channel, in: path, required: true, schema: {type: string}, example: whatsapp}
    requestBody:
      required: true
      content:
        application/x-www-form-urlencoded:
          schema:
            oneOf:
              - title: A message
                type: object
                required: [MessageSid, From]
                not: {required: [MessageStatus]}
                properties:
                  MessageSid: {type: string, minLength: 1}
                  From: {type: string, minLength: 1, example: 'whatsapp:+34612345678'}
                  To: {type: string}
                  Body: {type: string}
                  ProfileName: {type: string}
                  NumMedia: {type: string, pattern: '^0*([0-9]|10)?$'}
                  MediaUrl0: {type: string}
                  MediaContentType0: {type: string}
              - title: A delivery status
                type: object
                required: [MessageSid, MessageStatus]
                properties:
                  MessageSid: {type: string, minLength: 1}
                  MessageStatus: {type: string, minLength: 1, example: delivered}
                  ErrorCode: {type: string}
    responses:
      200:
        description: Recorded (a retried delivery is recorded once); the body is what the provider expects
        content: {text/xml: {schema: {type: string}}}
      400:
        description: A malformed body, with the reason
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      403:
        description: Signature missing or invalid
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      404:
        description: No channel of that name takes webhooks
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      413: {$ref: '#/components/responses/TooLarge'}
      503:
        description: The channel is disabled (missing credentials), or storage is unavailable (the provider retries)
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    deployment = request.app.state.deployment
    channel = deployment.channel(request.path_params["channel"])
    connector = channel.connector
    if not isinstance(connector, WebhookConnector):
        raise UnknownChannel(f"channel {channel.name!r} takes no webhooks (it has its own API)")
    started = time.perf_counter()
    with counted(channel.name):
        webhook = await read(request, deployment.public_url())
        connector.verify(webhook)
        recorded = await record(request.app.state.astore, channel, connector.parse(webhook))
    for item in recorded:
        outcome = "status" if isinstance(item, bool) else "duplicate" if item.duplicate else "accepted"
        metrics.WEBHOOKS.labels(channel.name, outcome).inc()
    ack = connector.acknowledge(webhook)
    metrics.ACK.labels(channel.name).observe(time.perf_counter() - started)
    return Response(ack.body, status_code=ack.status, media_type=ack.media_type)


@contextlib.contextmanager
def counted(channel: str) -> Iterator[None]:
    """Count a request refused on the way in, by why."""
    try:
        yield
    except BatonError as exc:
        metrics.WEBHOOKS.labels(channel, _refusal(exc)).inc()
        raise
    except (RedisError, OSError):
        metrics.WEBHOOKS.labels(channel, "unavailable").inc()
        raise


def _refusal(exc: BatonError) -> str:
    if exc.status in (401, 403):
        return "refused"
    return "unavailable" if exc.status >= 500 else "rate_limited" if exc.status == 429 else "bad_request"


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
