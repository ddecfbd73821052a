"""A running deployment: the config, its channels' connectors, Redis, the queue and the state."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from pydantic import ValidationError
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from gateway import keys, reports
from gateway.config import BatonConfig, WorkspaceConfig, locate
from gateway.connector import Connector, WebhookConnector
from gateway.errors import ChannelUnavailable, ConfigError, UnknownChannel
from gateway.handover.store import Store
from gateway.knowledge import KnowledgeEntry, load_knowledge
from gateway.plugin_host import connector_types, notifier_types
from gateway.plugin_host import failures as plugin_failures
from gateway.queue import rq_queue
from gateway.redis_server import connect
from gateway.retrieval.base import Indexes, KnowledgeBase
from gateway.retrieval.index import Index

log = logging.getLogger("baton")

STORE_TIMEOUT_S = 10.0  # the longest a state-script call waits for Redis's answer


@dataclass
class Channel:
    workspace: WorkspaceConfig
    connector: Connector
    disabled: str | None = None  # why the channel cannot run, or None

    @property
    def name(self) -> str:
        return self.connector.name


@dataclass
class Deployment:
    config: BatonConfig
    redis_url: str
    channels: dict[str, Channel] = field(default_factory=dict)
    notifiers: dict[str, list[Any]] = field(default_factory=dict)
    knowledge_base: dict[str, list[KnowledgeEntry]] = field(default_factory=dict)
    #: Set once a worker in this process has warmed the channels and models up (gateway.work.worker.warm_up).
    warmed_up: bool = False

    @classmethod
    def build(cls, config: BatonConfig, redis_url: str, quiet: bool = False) -> Deployment:
        """The deployment of a config; `quiet`: do not log disabled channels (the process that starts the others
        has said it once)."""
        deployment = cls(config, redis_url)
        deployment.channels = build_channels(config, quiet)
        deployment.notifiers = build_notifiers(config)
        if not quiet:  # the configuration needs nothing a failed plugin would have provided: say so once, go on
            for failure in plugin_failures():
                log.error("%s; the configuration uses nothing it would provide, so Baton goes on without it",
                          failure.describe())
        deployment.knowledge_base = load_knowledge_bases(config)
        return deployment

    @cached_property
    def redis(self) -> redis.Redis:
        """For state: strings in, strings out; enough connections for every thread of a worker."""
        worker = self.config.worker
        return connect(self.redis_url, decode_responses=True, health_check_interval=30,
                       max_connections=worker.concurrency + worker.deliveries + worker.jobs + 32)

    @cached_property
    def rq_redis(self) -> Redis:
        """RQ needs bytes responses."""
        return connect(self.redis_url, max_connections=self.config.worker.jobs + 16)

    @cached_property
    def store_redis(self) -> Redis:
        """For the state script: never retried by redis-py behind Baton's back (a change whose answer was lost may
        have been made: it raises CommitUnknown for the caller to settle), and no answer awaited past
        STORE_TIMEOUT_S."""
        worker = self.config.worker
        return connect(self.redis_url, decode_responses=True, health_check_interval=30, retry=Retry(NoBackoff(), 0),
                       socket_timeout=STORE_TIMEOUT_S, max_connections=worker.concurrency + worker.deliveries + 32)

    @cached_property
    def store(self) -> Store:
        durability = self.config.durability
        store = Store(self.store_redis, durability.replica_acks, durability.timeout_ms, durability.aof_acks)
        store.settings = {workspace.id: reports.settings(workspace) for workspace in self.config.workspaces}
        return store

    @cached_property
    def queue(self) -> Queue:
        return rq_queue(self.rq_redis, self.config.queue)

    @cached_property
    def secret(self) -> bytes:
        """The HMAC key for visitor tokens: from config, else generated once and shared through Redis."""
        if self.config.secret:
            return self.config.secret.encode()
        self.redis.set(keys.SECRET, secrets.token_urlsafe(32), nx=True)
        return str(self.redis.get(keys.SECRET)).encode()

    def channel(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            raise UnknownChannel(f"no channel named {name!r}")
        if channel.disabled:
            raise ChannelUnavailable(f"channel {name!r} is disabled: {channel.disabled}")
        return channel

    def knowledge(self, workspace_id: str) -> list[KnowledgeEntry]:
        """The config's knowledge (`ai_agent.knowledge`), as loaded at start-up; the knowledge base in Redis starts
        from it (`sync_knowledge`)."""
        return self.knowledge_base.get(workspace_id, [])

    @cached_property
    def indexes(self) -> Indexes:
        return Indexes()

    def kb(self, workspace_id: str) -> KnowledgeBase:
        return KnowledgeBase(self.redis, workspace_id)

    def knowledge_index(self, workspace_id: str, version: str | None) -> Index:
        """The workspace's knowledge index at `version` (read beside the conversation): this process's copy, rebuilt
        from Redis only when the knowledge changed."""
        return self.indexes.get(self.kb(workspace_id), version, self.knowledge(workspace_id))

    def sync_knowledge(self) -> None:
        """Write each workspace's config knowledge into its knowledge base, where it changed since last written."""
        for workspace in self.config.workspaces:
            if workspace.ai_agent is not None and self.kb(workspace.id).sync_config(self.knowledge(workspace.id)):
                log.info("workspace %s: the config's knowledge (%d entries) was written into the knowledge base",
                         workspace.id, len(self.knowledge(workspace.id)), extra={"workspace": workspace.id})

    def workspace(self, workspace_id: str) -> WorkspaceConfig:
        return self.config.workspace(workspace_id)

    def public_url(self, fallback: str = "") -> str:
        return self.config.public_url or fallback.rstrip("/")

    def close(self) -> None:
        for name in ("redis", "store_redis", "rq_redis"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                client.close()


def build_channels(config: BatonConfig, quiet: bool = False) -> dict[str, Channel]:
    types = connector_types()
    channels: dict[str, Channel] = {}
    for w_index, workspace in enumerate(config.workspaces):
        for c_index, channel in enumerate(workspace.channels):
            path = ("workspaces", w_index, "channels", c_index)
            connector = _build(types, channel.type, channel.name, channel.settings(), config, path)
            disabled = connector.disabled_reason()
            if disabled and not quiet:
                log.warning("channel %r (%s) is disabled: %s", channel.name, channel.type, disabled,
                            extra={"channel": channel.name})
            if config.public_url and isinstance(connector, WebhookConnector):
                connector.webhook_url = f"{config.public_url}/webhooks/{channel.name}"
            built = channels[channel.name] = Channel(workspace, connector, disabled)
            if not disabled and not quiet and (missing := no_statuses(built)):
                log.warning("channel %r (%s): %s", channel.name, channel.type, missing, extra={"channel": channel.name})
    return channels


def no_statuses(channel: Channel) -> str | None:
    """Why the channel's provider cannot report what became of a message Baton sent (public_url unset), or None."""
    connector = channel.connector
    if isinstance(connector, WebhookConnector) and connector.sends and connector.statuses_need_webhook_url() \
            and not connector.webhook_url:
        return ("public_url is not set, so the provider cannot post delivery statuses back: sent messages show "
                "'Sent' and never 'Delivered', 'Read' or 'Failed'; set public_url (BATON_PUBLIC_URL) to the URL the "
                "provider reaches Baton at")
    return None


def load_knowledge_bases(config: BatonConfig) -> dict[str, list[KnowledgeEntry]]:
    loaded: dict[str, list[KnowledgeEntry]] = {}
    for index, workspace in enumerate(config.workspaces):
        if workspace.ai_agent is None:
            continue
        knowledge = workspace.ai_agent.knowledge
        try:
            loaded[workspace.id] = load_knowledge([e.model_dump() for e in knowledge.entries], knowledge.files,
                                                  config.base_dir)
        except ConfigError as exc:
            where = locate(config, ("workspaces", index, "ai_agent", "knowledge", "files"))
            raise ConfigError(f"{where}: {exc.reason}") from exc
    return loaded


def build_notifiers(config: BatonConfig) -> dict[str, list[Any]]:
    types = notifier_types()
    built: dict[str, list[Any]] = {}
    for w_index, workspace in enumerate(config.workspaces):
        built[workspace.id] = [
            _build(types, notifier.type, f"{workspace.id}-{n}", notifier.settings(), config,
                   ("workspaces", w_index, "notifiers", n))
            for n, notifier in enumerate(workspace.notifiers)
        ]
    return built


def _build(types: dict[str, Any], kind: str, name: str, settings: dict[str, Any], config: BatonConfig,
           path: tuple[Any, ...]) -> Any:
    cls = types.get(kind)
    if cls is None:
        known = ", ".join(sorted(types)) or "none installed"
        reason = f"{locate(config, path + ('type',))}: unknown type {kind!r} (known: {known})"
        broken = plugin_failures()
        if broken:  # the type may be what a plugin that failed would have provided
            reason += "; a plugin that may provide it failed:\n  " + "\n  ".join(f.describe() for f in broken)
        raise ConfigError(reason)
    try:
        parsed = cls.Settings.model_validate(settings)
    except ValidationError as exc:
        problems = [f"{locate(config, path + tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(problems)) from exc
    return cls(name, parsed)
