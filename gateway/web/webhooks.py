"""POST /webhooks/{channel}: verify, parse, record, acknowledge. Nothing slower, and no thread hop."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from redis.exceptions import RedisError
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import metrics
from gateway.connector import Inbound, WebhookConnector, WebhookRequest
from gateway.deployment import Channel, Deployment
from gateway.errors import BadRequest, BatonError, SignatureInvalid, UnknownChannel
from gateway.handover.store import Recorded
from gateway.logs import Throttled, held_back
from gateway.web import media
from gateway.web.http import read_body
from gateway.web.pipeline import Item, record, route

log = logging.getLogger("baton.webhooks")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_BODY = 64 * 1024  # a webhook is a few KB; 10 media URLs and a 4,096-character text fit many times
REFUSALS_EVERY = 60.0  # seconds between two log lines about a channel's refused signatures
_refusals: dict[str, Throttled] = {}


async def receive(request: Request) -> Response:
    """A provider's webhook. Not in the OpenAPI document as such: each channel's connector describes its own request
    and signature, and gateway.web.openapi documents POST /webhooks/<name> for each configured channel from them."""
    deployment = request.app.state.deployment
    channel = webhook_channel(deployment, request.path_params["channel"])
    connector = channel.connector
    assert isinstance(connector, WebhookConnector)
    started = time.perf_counter()
    with counted(channel.name):
        webhook = await read(request, deployment.public_url())
        try:
            connector.verify(webhook)
        except SignatureInvalid as exc:
            log_refusal(channel, connector, webhook, exc, str(request.url), deployment.public_url())
            raise
        routed = route(deployment, channel, connector.parse(webhook))
        recorded = await record(request.app.state.astore, routed)
    for item in recorded:
        outcome = "status" if isinstance(item, bool) else "duplicate" if item.duplicate else "accepted"
        metrics.WEBHOOKS.labels(channel.name, outcome).inc()
    ack = connector.acknowledge(webhook)
    metrics.ACK.labels(channel.name).observe(time.perf_counter() - started)
    return Response(ack.body, status_code=ack.status, media_type=ack.media_type,
                    background=_downloads(deployment, routed, recorded))


def _downloads(deployment: Deployment, routed: list[tuple[Channel, Item]],
               recorded: list[Recorded | bool]) -> BackgroundTasks | None:
    """The attachments named by id in the new messages, downloaded once the provider has its answer."""
    tasks = BackgroundTasks()
    for (target, item), outcome in zip(routed, recorded, strict=True):
        if isinstance(item, Inbound) and not isinstance(outcome, bool) and not outcome.duplicate and \
                media.fetchable(target):
            wanted = [m for m in item.media if m.provider_id and not m.url]
            if wanted:
                tasks.add_task(media.keep, deployment, target, wanted)
    return tasks if tasks.tasks else None


async def endpoint(request: Request) -> Response:
    """Any method on a channel's webhook: POST (which WebhooksFirst usually takes before the router), or GET for a
    connector with a handshake (Meta's verification). Allow names the channel's own methods."""
    if request.method == "POST":
        return await receive(request)
    deployment = request.app.state.deployment
    channel = webhook_channel(deployment, request.path_params["channel"])
    connector = channel.connector
    allowed = ["GET", "POST"] if "handshake" in connector.capabilities() else ["POST"]
    if request.method != "GET" or "GET" not in allowed:
        return JSONResponse({"error": f"channel {channel.name!r} takes {' and '.join(allowed)} only"},
                            status_code=405, headers={"Allow": ", ".join(allowed)})
    assert isinstance(connector, WebhookConnector)
    with counted(channel.name):
        ack = connector.handshake(await read(request, deployment.public_url()))
    return Response(ack.body, status_code=ack.status, media_type=ack.media_type)


def webhook_channel(deployment: Deployment, name: str) -> Channel:
    channel = deployment.channel(name)
    if not isinstance(channel.connector, WebhookConnector):
        raise UnknownChannel(f"channel {channel.name!r} takes no webhooks (it has its own API)")
    return channel


@contextlib.contextmanager
def counted(channel_name: str) -> Iterator[None]:
    """Count a request refused on the way in, by why."""
    try:
        yield
    except BatonError as exc:
        metrics.WEBHOOKS.labels(channel_name, _refusal(exc)).inc()
        raise
    except (RedisError, OSError):
        metrics.WEBHOOKS.labels(channel_name, "unavailable").inc()
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
