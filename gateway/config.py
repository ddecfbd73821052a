"""Reading config.yaml: pydantic models, ${ENV} interpolation, errors that name the YAML path and line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from gateway import texts as customer_texts
from gateway.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KnowledgeEntryConfig(Strict):
    q: str = Field(min_length=1)
    a: str = Field(min_length=1)


class KnowledgeConfig(Strict):
    entries: list[KnowledgeEntryConfig] = []
    files: list[str] = []
    #: The most tokens (about 4 characters each) of knowledge a turn puts into the model's prompt, whatever the
    #: knowledge base's size: the best passages for the customer's question that fit.
    prompt_tokens: int = Field(default=1000, ge=50, le=100_000)
    #: …and at most this many passages.
    max_passages: int = Field(default=4, ge=1, le=50)
    #: The share of the question's (idf-weighted) terms a passage must hold to be offered at all: below it the AI
    #: says it does not know rather than answer from the wrong article.
    min_coverage: float = Field(default=0.5, gt=0, le=1)


class BreakerConfig(Strict):
    """The AI model's circuit breaker: after `failures` failed answers in a row, stop asking the model for
    `cool_down` seconds (conversations go to a human at once), then let one turn try it again."""

    failures: int = Field(default=3, ge=1)
    cool_down: float = Field(default=60.0, gt=0)


class AIAgentConfig(Strict):
    name: str = "Baton AI"
    published: bool = True
    model: str = "baton/knowledge"
    system_prompt: str = "You are a friendly, concise customer support assistant."
    knowledge: KnowledgeConfig = KnowledgeConfig()
    temperature: float | None = None
    timeout: float = Field(default=30.0, gt=0)
    #: Seconds beyond `timeout` within which a call that surely got no answer (refused, 429, 5xx) is tried again;
    #: a call that timed out, or a refusal, is not retried: the conversation goes to a human. 0: never retried.
    retry_budget: float = Field(default=5.0, ge=0)
    #: The handover summary a hosted model writes gets this long; past it, the offline summary stands in.
    summary_timeout: float = Field(default=5.0, gt=0)
    breaker: BreakerConfig = BreakerConfig()
    #: Extra keyword arguments passed to litellm.completion (api_base, api_key…).
    litellm_params: dict[str, Any] = {}
    #: Offer a transfer after this many consecutive answers the AI flagged as not knowing.
    offer_after_unknown: int = Field(default=2, ge=1)
    #: …or after the customer asks the same question this many times.
    offer_after_repeats: int = Field(default=2, ge=1)
    offer_on_frustration: bool = True
    #: Close the chat with a goodbye when the customer signals they are done.
    close_when_done: bool = True
    #: The business's own words for "that's all, thanks", counted as a closing without retraining.
    closing_phrases: list[str] = []
    #: The latest messages the model sees (and a turn reads).
    history_limit: int = Field(default=50, ge=1, le=500)

    @field_validator("litellm_params")
    @classmethod
    def _baton_owns_timing(cls, params: dict[str, Any]) -> dict[str, Any]:
        owned = sorted({"timeout", "num_retries", "max_retries"} & set(params))
        if owned:
            raise ValueError(f"{', '.join(owned)} cannot be set here: Baton gives each answer one call of "
                             "ai_agent.timeout seconds and retries only within ai_agent.retry_budget")
        return params


class HandoverConfig(Strict):
    no_human_timeout: float = Field(default=120.0, gt=0, description="Seconds before the contact form is sent")
    contact_form: bool = True
    #: The business's own words for "I want a person" (e.g. a team's name), honoured without retraining.
    phrases: list[str] = []
    #: Seconds between reminders to the team while a handed-over chat waits with nobody taking it (0: none).
    remind_every: float = Field(default=0, ge=0, le=86_400)
    #: Reminders before the chat is escalated to the admins (0: escalated at the first one's time).
    reminders: int = Field(default=2, ge=0, le=100)
    #: The key of a channel template Baton sends by itself in place of the contact form when the customer's
    #: 24-hour WhatsApp window has closed by the time it goes out ("" for none: the form is then recorded as not
    #: sent, with why). Its parameters may be named `name` (the customer's name) or `business` (the workspace's).
    window_template: str = "follow_up"


class PresenceConfig(Strict):
    #: Seconds an agent stays online after their last inbox tab closed (a reload, a flaky network) before they are
    #: shown offline and get no more chats.
    offline_after: float = Field(default=60.0, gt=0, le=3600)


class AssignmentConfig(Strict):
    """Who takes a chat that waits for a human: nobody on their own (manual), the next online agent in turn
    (round_robin), or the online agent holding the fewest open chats (balanced). An admin's choice in Settings
    wins until this changes."""

    mode: Literal["manual", "round_robin", "balanced"] = "manual"
    #: The most open chats an agent holds before automatic assignment skips them.
    capacity: int = Field(default=5, ge=1, le=1000)

    def fingerprint(self) -> str:
        return f"{self.mode}|{self.capacity}"


class SLAConfig(Strict):
    """Response targets: how soon a human answers a customer who waits for one, counted in business hours only. A
    target left out is not tracked."""

    #: Seconds from a handover to the first human reply.
    first_response: float | None = Field(default=None, gt=0, le=30 * 86_400)
    #: Seconds from a customer's message to the next human reply, once a human has answered.
    next_response: float | None = Field(default=None, gt=0, le=30 * 86_400)
    #: A missed target: `requeue` takes the chat from its assignee back to the queue (or to the next free agent) and
    #: tells the team; `notify` only tells the team.
    on_breach: Literal["requeue", "notify"] = "requeue"


_SPAN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")


class WeeklyHours(Strict):
    """Each weekday's opening hours, as "HH:MM-HH:MM" ranges in the workspace's time zone ("24:00" ends the day);
    a day left out is closed."""

    mon: list[str] = []
    tue: list[str] = []
    wed: list[str] = []
    thu: list[str] = []
    fri: list[str] = []
    sat: list[str] = []
    sun: list[str] = []

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _spans(cls, value: list[str]) -> list[str]:
        for span in value:
            if not _SPAN.match(span) or span.split("-")[0] >= span.split("-")[1]:
                raise ValueError(f"{span!r} is not an opening range such as \"09:00-17:30\"")
        return value


class BusinessHoursConfig(Strict):
    """When the team is in. Outside these hours the AI still answers and a request for a person is still a handover,
    but the AI offers no person on its own, and the contact form comes at once with when the team is back."""

    timezone: str
    weekly: WeeklyHours
    holidays: list[date] = []
    #: Outside hours the contact form comes at once (false: after handover.no_human_timeout, as in hours).
    form_at_once: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Madrid)") from exc
        return value


class ChannelConfig(BaseModel):
    """A channel: a unique name, a connector type, and that connector's own settings."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=_ID_PATTERN)
    type: str
    #: The team its handovers go to (agents join teams with `baton agent create --team`); "" for the workspace's.
    team: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9._-]{0,39})?$")

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NotifierConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Rate(Strict):
    """At most `count` requests per `seconds`."""

    count: int = Field(ge=1)
    seconds: int = Field(ge=1, le=86_400)


class LimitsConfig(Strict):
    """Rate limits (429 with Retry-After beyond them), shared by every gateway through Redis."""

    visitor_messages: Rate = Rate(count=20, seconds=10)  # one webchat visitor
    ip_messages: Rate = Rate(count=300, seconds=60)  # all visitors behind one IP address
    ip_sessions: Rate = Rate(count=60, seconds=60)  # new webchat sessions from one IP address
    agent_requests: Rate = Rate(count=1200, seconds=60)  # one agent's /api calls


class RetentionConfig(Strict):
    """How long closed conversations are kept in Redis; before one is deleted it is archived."""

    #: Days after closing; 0 keeps them for ever.
    closed_days: float = Field(default=0, ge=0)
    #: A directory (relative to data_dir) where each deleted conversation is appended as one JSON line per
    #: workspace and month; "" for none (the `baton_archive` hook may archive elsewhere).
    archive_dir: str = "archive"


class ReportsConfig(Strict):
    """How the Reports count resolutions (see gateway/reports.py)."""

    #: Seconds of quiet after the AI's last word (no handover, the customer silent) before an AI conversation is
    #: resolved automatically and counted as the AI's; 0 never resolves one.
    resolve_after: float = Field(default=86_400.0, ge=0)
    #: A customer back (a new conversation) within this many days of an AI resolution makes it not durable.
    durable_days: float = Field(default=7.0, ge=0, le=366)
    #: Ask the customer for a rating (1-5) after a close: the widget shows stars; on WhatsApp a message asks while
    #: the reply window is open, and a lone "1"-"5" within csat_reply_hours of it is the answer.
    csat: bool = True
    csat_reply_hours: float = Field(default=24.0, gt=0, le=168)


class WorkspaceConfig(Strict):
    id: str = Field(pattern=_ID_PATTERN)
    name: str = ""
    channels: list[ChannelConfig] = []
    ai_agent: AIAgentConfig | None = AIAgentConfig()
    handover: HandoverConfig = HandoverConfig()
    notifiers: list[NotifierConfig] = []
    presence: PresenceConfig = PresenceConfig()
    assignment: AssignmentConfig = AssignmentConfig()
    business_hours: BusinessHoursConfig | None = None
    reports: ReportsConfig = ReportsConfig()
    sla: SLAConfig | None = None
    #: The team the workspace's handovers go to, unless their channel names its own; "" for every agent.
    team: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9._-]{0,39})?$")
    #: The language Baton speaks to a customer until their own is clear (one of gateway.texts.LANGUAGES).
    language: customer_texts.Language = "en"
    #: The workspace's own wording of what Baton says to customers: {text key: {language: wording}}.
    texts: dict[str, dict[str, str]] = {}

    @field_validator("texts")
    @classmethod
    def _known_texts(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        problem = customer_texts.unknown(value)
        if problem:
            raise ValueError(problem)
        return value


class WorkerConfig(Strict):
    #: Worker processes `baton serve` starts (0: none, this node is a gateway only); default one per CPU and one more.
    processes: int | None = Field(default=None, ge=0, le=64)
    #: AI turns one worker process keeps in flight (they wait on the model, not the CPU).
    concurrency: int = Field(default=200, ge=1, le=2000)
    #: Messages one worker process sends at once (each waits on the channel's provider).
    deliveries: int = Field(default=32, ge=1, le=500)
    #: RQ jobs (notifications) one worker process runs at once.
    jobs: int = Field(default=8, ge=1, le=200)


class GatewayConfig(Strict):
    #: Gateway processes `baton serve` starts, all on one port; default one per CPU and one more.
    processes: int | None = Field(default=None, ge=1, le=64)


class SentinelConfig(Strict):
    """Redis Sentinel, as a block: the same as `redis_url: redis+sentinel://host:port,…/<service>/<db>`."""

    sentinels: list[str] = Field(min_length=1)  # "host:port"
    service: str = Field(min_length=1)
    db: int = Field(default=0, ge=0)
    password: str = ""
    sentinel_password: str = ""

    @field_validator("sentinels")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for item in value:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{item!r} is not host:port")
        return value

    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        query = f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        return f"redis+sentinel://{auth}{','.join(self.sentinels)}/{self.service}/{self.db}{query}"


class DurabilityConfig(Strict):
    """How sure an acknowledgement is: with `replica_acks` > 0 a webhook gets its 2xx only once its message is on the
    primary and on that many replicas (WAIT), else a 503 that makes the provider retry; a WhatsApp message is sent
    only once its record is on a replica. Costs a replica round trip per message; protects what is acknowledged
    across a failover."""

    replica_acks: int = Field(default=0, ge=0, le=5)
    #: A webhook or widget message gets its 2xx (and a WhatsApp message is sent) only once its record is written
    #: and fsynced to the primary's append-only file (WAITAOF: Valkey, Redis 7.2+), else a 503 the provider retries.
    #: On an older server, nothing is acknowledged while its AOF's last write failed (read once a second).
    aof_acks: bool = False
    timeout_ms: int = Field(default=500, ge=1, le=60_000)


class BatonConfig(Strict):
    redis_url: str = ""
    #: Redis Sentinel as a block, instead of a redis+sentinel:// URL in redis_url.
    sentinel: SentinelConfig | None = None
    durability: DurabilityConfig = DurabilityConfig()
    data_dir: str = ".baton"
    #: The RQ queue's name: deployments sharing one Redis need distinct queues.
    queue: str = Field(default="baton", pattern=_ID_PATTERN)
    public_url: str = ""
    secret: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: text: readable lines; json: one JSON object a line (with workspace, conversation, channel when known)
    log_format: Literal["text", "json"] = "text"
    #: A bearer token for /metrics; empty: /metrics answers requests from this machine only.
    metrics_token: str = ""
    worker: WorkerConfig = WorkerConfig()
    gateway: GatewayConfig = GatewayConfig()
    limits: LimitsConfig = LimitsConfig()
    retention: RetentionConfig = RetentionConfig()
    workspaces: list[WorkspaceConfig] = Field(min_length=1)
    #: Where the file was read from; relative paths (knowledge files, data_dir) resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    _source: str = PrivateAttr("config.yaml")
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://baton.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_redis(self) -> BatonConfig:
        if self.sentinel and self.redis_url:
            raise ValueError("give either redis_url or a sentinel block, not both")
        return self

    @model_validator(mode="after")
    def _names_are_unique(self) -> BatonConfig:
        _reject_duplicates([w.id for w in self.workspaces], "workspace id")
        _reject_duplicates([c.name for w in self.workspaces for c in w.channels], "channel name")
        return self

    def redis_location(self) -> str:
        """The configured Redis: the sentinel block's URL, else redis_url ("" for the embedded server)."""
        return self.sentinel.url() if self.sentinel else self.redis_url

    def workspace(self, workspace_id: str) -> WorkspaceConfig:
        for workspace in self.workspaces:
            if workspace.id == workspace_id:
                return workspace
        raise ConfigError(f"no workspace {workspace_id!r} in the configuration")

    def data_path(self) -> Path:
        return (self.base_dir / self.data_dir).resolve()


def _reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}: {what}s must be unique across the deployment")
        seen.add(name)


def interpolate(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _ENV_PATTERN.sub(lambda m: _lookup(m, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _lookup(match: re.Match[str], env: Any) -> str:
    name, default = match.group(1), match.group(2)
    if name in env and env[name] != "":
        return str(env[name])
    if default is not None:
        return default
    raise ConfigError(f"environment variable {name} is not set (use ${{{name}:-default}} for a default)")


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {loader.construct_object(key): key.start_mark.line + 1 for key, _ in node.value}
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _split_lines(tree: Any) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Strip the line annotations from a loaded tree, returning {path: line}."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            for key, line in node.pop("__lines__", {}).items():
                lines[path + (key,)] = line
            return {key: walk(value, path + (key,)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, path + (index,)) for index, item in enumerate(node)]
        return node

    return walk(tree, ()), lines


def format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _line_for(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _describe(error: ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> str:
    problems = []
    for item in error.errors():
        path = tuple(p for p in item["loc"] if p not in ("function-after",))
        line = _line_for(path, lines)
        where = f"{source}:{line}" if line else source
        problems.append(f"{where}: {format_path(path)}: {item['msg']}")
    return "invalid configuration\n  " + "\n  ".join(problems)


def parse_config(text: str, source: str = "config.yaml", base_dir: Path | None = None,
                 environ: dict[str, str] | None = None) -> BatonConfig:
    """Parse and validate YAML text; raise ConfigError naming the path (and line) of each problem."""
    try:
        tree = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc, source)) from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'workspaces:' list")
    tree, lines = _split_lines(tree)
    tree = interpolate(tree, environ)
    try:
        config = BatonConfig.model_validate({**tree, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, lines)) from exc
    config._source, config._lines = source, lines
    return config


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    """'config.yaml:12:5: not valid YAML: <problem> (<context> at line 9, column 3)' and the offending line (PyYAML
    names the text it was given, "<unicode string>", not the file)."""
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{source}: not valid YAML: {exc}"
    context = ""
    if exc.context:
        where = exc.context_mark
        context = f" ({exc.context}" + (f" at line {where.line + 1}, column {where.column + 1})" if where else ")")
    snippet = mark.get_snippet(indent=4)
    return (f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {exc.problem}{context}"
            + (f"\n{snippet}" if snippet else ""))


def locate(config: BatonConfig, path: tuple[Any, ...]) -> str:
    """'config.yaml:12: workspaces[0].channels[1]' for errors found after parsing (e.g. by a connector)."""
    line = _line_for(path, config._lines)
    where = f"{config._source}:{line}" if line else config._source
    return f"{where}: {format_path(path)}"


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> BatonConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    return parse_config(text, source=str(path), base_dir=path.resolve().parent, environ=environ)
