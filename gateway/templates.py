"""A WhatsApp channel's templates as the provider lists them (Meta's message_templates, Twilio's Content API), cached
in Redis and merged with the channel's `templates:` in config.yaml, whose keys, bodies and parameter names win and
which are the fallback when the provider cannot be asked. Refreshed on demand (`POST /api/channels/{name}/templates`)
and otherwise after `TTL` seconds."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from gateway import keys, window
from gateway.connector import Connector, Template
from gateway.deployment import Channel, Deployment

log = logging.getLogger("baton.templates")

TTL = 3600  # seconds a provider's list is kept before it is asked again
RETRY_AFTER = 60  # seconds before a provider that could not be asked is asked again


def listed(deployment: Deployment, channel_name: str) -> list[Template]:
    """The channel's templates: the provider's (cached), merged with the configured ones."""
    channel = deployment.channels.get(channel_name)
    if channel is None:
        return []
    configured = window.templates(channel.connector)
    if not asks(channel):
        return configured
    raw: Any = deployment.redis.get(_key(deployment, channel_name))
    if raw is None:
        return refresh(deployment, channel_name)[0]
    cached = json.loads(raw)
    return merge(configured, [_template(t) for t in cached.get("templates", [])])


def refresh(deployment: Deployment, channel_name: str) -> tuple[list[Template], str]:
    """Ask the provider now: the merged templates, and why the provider could not be asked ("" when it was)."""
    channel = deployment.channels[channel_name]
    configured = window.templates(channel.connector)
    if not asks(channel):
        return configured, ""
    try:
        fetched = channel.connector.provider_templates()
    except Exception as exc:  # noqa: BLE001 - the configured templates still serve
        why = getattr(exc, "reason", "") or type(exc).__name__
        log.warning("channel %s: the provider's templates could not be read (%s); the configured ones are used",
                    channel_name, why, extra={"channel": channel_name})
        deployment.redis.set(_key(deployment, channel_name), json.dumps({"templates": [], "error": why}),
                             ex=RETRY_AFTER)
        return configured, why
    deployment.redis.set(_key(deployment, channel_name),
                         json.dumps({"templates": [asdict(t) for t in fetched]}), ex=TTL)
    return merge(configured, fetched), ""


def merge(configured: list[Template], fetched: list[Template]) -> list[Template]:
    """The configured templates, each with the provider's body where config.yaml gives none, then the provider's other
    templates under their own names (a key config.yaml already uses is left to config.yaml)."""
    by_name = {(t.name, t.language): t for t in fetched} | {(t.name, ""): t for t in fetched}
    merged = []
    for own in configured:
        theirs = by_name.get((own.name, own.language)) or by_name.get((own.name, ""))
        merged.append(Template(own.key, own.name, own.language or (theirs.language if theirs else ""),
                               own.body or (theirs.body if theirs else ""), own.params))
    used = {t.key for t in merged} | {(t.name, t.language) for t in merged}
    for theirs in fetched:
        if theirs.key not in used and (theirs.name, theirs.language) not in used:
            merged.append(theirs)
            used.add(theirs.key)
    return merged


def template(deployment: Deployment, channel_name: str, key: str) -> Template | None:
    return next((t for t in listed(deployment, channel_name) if t.key == key), None)


def asks(channel: Channel) -> bool:
    """Whether the channel's provider can be asked for its templates."""
    return not channel.disabled and type(channel.connector).provider_templates is not Connector.provider_templates


def _key(deployment: Deployment, channel_name: str) -> str:
    return keys.key(keys.TEMPLATES, queue=deployment.config.queue, channel=channel_name)


def _template(data: dict[str, Any]) -> Template:
    return Template(key=str(data["key"]), name=str(data["name"]), language=str(data.get("language") or ""),
                    body=str(data.get("body") or ""), params=tuple(data.get("params") or ()))
