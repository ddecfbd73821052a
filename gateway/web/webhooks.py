"""POST /webhooks/{channel}: verify, parse, record, acknowledge. Nothing slower, and no thread hop."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway import metrics
from gateway.connector import WebhookConnector, WebhookRequest
from gateway.deployment import Channel
from gateway.errors import BadRequest, BatonError, SignatureInvalid, UnknownChannel
from gateway.logs import Throttled, held_back
from gateway.web.http import read_body
from gateway.web.pipeline import record

log = logging.getLogger("baton.webhooks")

MAX_BODY = 64 * 1024  # a Twilio webhook is a few KB; 10 media URLs and a 4,096-character text fit many times
REFUSALS_EVERY = 60.0  # seconds between two log lines about a channel's refused signatures
_refusals: dict[str, Throttled] = {}


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
        try:
            connector.verify(webhook)
        except SignatureInvalid as exc:
            log_refusal(channel, connector, webhook, exc, str(request.url), deployment.public_url())
            raise
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


def log_refusal(channel: Channel, connector: WebhookConnector, webhook: WebhookRequest, exc: SignatureInvalid,
                received: str, public_base: str) -> None:
    """Say why a channel's webhooks are refused, once a minute: a setup mistake (the public URL, a proxy, a token)
    otherwise shows only as the provider's failed deliveries."""
    held = _refusals.setdefault(f"{channel.workspace.id}/{channel.name}", Throttled(log, REFUSALS_EVERY)).due()
    if held is None:
        return
    cause = str(exc.details.get("cause") or _url_cause(connector, webhook, received, public_base))
    log.warning("webhook for channel %s refused (403): %s; the signature was checked against %s. Likely cause: "
                "%s%s", channel.name, exc.reason, webhook.url, cause, held_back(held),
                extra={"channel": channel.name, "workspace": channel.workspace.id})


def _url_cause(connector: WebhookConnector, webhook: WebhookRequest, received: str, public_base: str) -> str:
    """The provider signs the URL it called: find a URL the signature is good for among those the request suggests
    (as received, and as a proxy's headers say it was called); else name the usual suspects."""
    for candidate in _candidate_urls(webhook, received):
        try:
            connector.verify(dataclasses.replace(webhook, url=candidate))
        except SignatureInvalid:
            continue
        base = "{0.scheme}://{0.netloc}".format(urlsplit(candidate))
        return (f"the provider signed {candidate}: set public_url (BATON_PUBLIC_URL) to {base}"
                + (f" instead of {public_base}" if public_base else ""))
    forwarded = {"x-forwarded-host", "x-forwarded-proto", "forwarded"} & set(webhook.headers)
    if forwarded and not public_base:
        return ("Baton is behind a proxy and public_url is not set: set public_url (BATON_PUBLIC_URL) to the URL the "
                "provider calls, or run baton serve --proxy-headers --forwarded-allow-ips=<the proxy's address>")
    where = "public_url + the webhook path" if public_base else "the URL Baton received"
    return (f"the provider calls another URL than {where} (compare it with the webhook URL in the provider's "
            "console), or the channel's credentials are not those of the account that sent it")


def _candidate_urls(webhook: WebhookRequest, received: str) -> list[str]:
    parts = urlsplit(received)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = webhook.headers
    host = headers.get("x-forwarded-host") or headers.get("host") or parts.netloc
    schemes = [headers.get("x-forwarded-proto", ""), "https", "http"]
    forwarded = dict(item.split("=", 1) for item in headers.get("forwarded", "").split(";") if "=" in item)
    urls = [received] + [f"{scheme}://{host.split(',')[0].strip()}{path}" for scheme in schemes if scheme]
    if forwarded.get("host"):
        urls.append(f"{forwarded.get('proto', 'https')}://{forwarded['host'].strip(chr(34))}{path}")
    return [url for url in dict.fromkeys(urls) if url != webhook.url]
